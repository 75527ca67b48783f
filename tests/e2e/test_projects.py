"""Projects and members over real HTTP against the local stack: who may do what (owner, admin,
member, viewer, stranger, anonymous on every route), and every status code of the contract."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from local.testing import StackProcess, register_user, unique_email

pytestmark = pytest.mark.e2e
ROLES = ("owner", "admin", "member", "viewer", "stranger", "anonymous")
MEMBER_ROLES = ("admin", "member", "viewer")
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found"}
CODES |= {409: "conflict", 412: "precondition_failed", 422: "validation_error"}


@dataclass
class Team:
    """One project with a user of each role, a stranger, and a viewer to manage (`target`)."""

    api: str
    project_id: str
    tokens: dict[str, str | None]
    ids: dict[str, str]

    def call(
        self,
        role: str,
        method: str,
        path: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> requests.Response:
        all_headers = dict(headers or {})
        token = self.tokens[role]
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        return requests.request(
            method, f"{self.api}{path}", json=json, data=data, headers=all_headers, timeout=30
        )

    @property
    def path(self) -> str:
        return f"/projects/{self.project_id}"

    def user(self, prefix: str = "user") -> dict[str, Any]:
        return register_user(self.api, unique_email(prefix), name=prefix.title())

    def project(self, name: str = "Scratch", **members: str) -> str:
        """A fresh project of the owner's with {role: user_id} members."""
        created = self.call("owner", "POST", "/projects", {"name": name})
        assert created.status_code == 201, created.text
        project_id: str = created.json()["id"]
        for role, user_id in members.items():
            self.add(project_id, user_id, role)
        return project_id

    def add(self, project_id: str, user_id: str, role: str) -> None:
        added = self.call(
            "owner", "POST", f"/projects/{project_id}/members", {"user_id": user_id, "role": role}
        )
        assert added.status_code == 201, added.text


@pytest.fixture(scope="module")
def team(stack: StackProcess) -> Team:
    people = {role: register_user(stack.api, unique_email(role)) for role in ROLES[:5]}
    people["target"] = register_user(stack.api, unique_email("target"))
    tokens: dict[str, str | None] = {r: p["access_token"] for r, p in people.items()}
    tokens["anonymous"] = None
    ids = {r: p["user"]["id"] for r, p in people.items()}
    built = Team(stack.api, "", tokens, ids)
    built.project_id = built.project(
        "Launch", admin=ids["admin"], member=ids["member"], viewer=ids["viewer"]
    )
    built.add(built.project_id, ids["target"], "viewer")
    return built


def check(response: requests.Response, expected: int) -> None:
    assert response.status_code == expected, f"{response.status_code} {response.text}"
    if expected in CODES:
        payload = response.json()
        assert set(payload) == {"error", "request_id"}
        assert payload["error"]["code"] == CODES[expected]
    if expected == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


# ---- who may do what ------------------------------------------------------------------------

# Each route: a request to make as `role` (set-up done first), and the expected status per role.
Request = Callable[[Team, str], requests.Response]


def get_project(t: Team, role: str) -> requests.Response:
    return t.call(role, "GET", t.path)


def put_project(t: Team, role: str) -> requests.Response:
    return t.call(role, "PUT", t.path, {"name": "Launch"})


def patch_project(t: Team, role: str) -> requests.Response:
    return t.call(role, "PATCH", t.path, {"description": f"edited by {role}"})


def delete_project(t: Team, role: str) -> requests.Response:
    # The owner deletes a project of its own made for this; the others try the shared one.
    path = f"/projects/{t.project()}" if role == "owner" else t.path
    return t.call(role, "DELETE", path)


def list_members(t: Team, role: str) -> requests.Response:
    return t.call(role, "GET", f"{t.path}/members")


def add_member(t: Team, role: str) -> requests.Response:
    newcomer = t.user("newcomer")["user"]["id"]
    return t.call(role, "POST", f"{t.path}/members", {"user_id": newcomer, "role": "member"})


def add_member_by_email(t: Team, role: str) -> requests.Response:
    newcomer = t.user("mailed")["user"]["email"]
    return t.call(role, "POST", f"{t.path}/members", {"email": newcomer, "role": "viewer"})


def put_member(t: Team, role: str) -> requests.Response:
    return t.call(role, "PUT", f"{t.path}/members/{t.ids['target']}", {"role": "viewer"})


def patch_member(t: Team, role: str) -> requests.Response:
    return t.call(role, "PATCH", f"{t.path}/members/{t.ids['target']}", {"role": "viewer"})


def remove_member(t: Team, role: str) -> requests.Response:
    if role in ("owner", "admin"):  # a victim of its own, so the shared team stays whole
        victim = t.user("victim")["user"]["id"]
        t.add(t.project_id, victim, "member")
    else:
        victim = t.ids["target"]
    return t.call(role, "DELETE", f"{t.path}/members/{victim}")


def leave(t: Team, role: str) -> requests.Response:
    if role in MEMBER_ROLES:  # leave a project of its own, so the shared team stays whole
        project_id = t.project(**{role: t.ids[role]})
        return t.call(role, "DELETE", f"/projects/{project_id}/members/{t.ids[role]}")
    me = t.ids.get(role, "01ANONYMOUS0000000000000000")
    return t.call(role, "DELETE", f"{t.path}/members/{me}")


def remove_owner(t: Team, role: str) -> requests.Response:
    return t.call(role, "DELETE", f"{t.path}/members/{t.ids['owner']}")


def change_owner_role(t: Team, role: str) -> requests.Response:
    return t.call(role, "PATCH", f"{t.path}/members/{t.ids['owner']}", {"role": "admin"})


def list_projects(t: Team, role: str) -> requests.Response:
    return t.call(role, "GET", "/projects?limit=5")


def create_project(t: Team, role: str) -> requests.Response:
    return t.call(role, "POST", "/projects", {"name": f"{role}'s"})


MATRIX: dict[str, tuple[Request, tuple[int, ...]]] = {
    #                                          owner admin member viewer stranger anonymous
    "GET /projects/{id}":           (get_project,         (200, 200, 200, 200, 404, 401)),
    "PUT /projects/{id}":           (put_project,         (200, 200, 403, 403, 404, 401)),
    "PATCH /projects/{id}":         (patch_project,       (200, 200, 403, 403, 404, 401)),
    "DELETE /projects/{id}":        (delete_project,      (204, 403, 403, 403, 404, 401)),
    "GET members":                  (list_members,        (200, 200, 200, 200, 404, 401)),
    "POST members (user_id)":       (add_member,          (201, 201, 403, 403, 404, 401)),
    "POST members (email)":         (add_member_by_email, (201, 201, 403, 403, 404, 401)),
    "PUT members/{uid}":            (put_member,          (200, 200, 403, 403, 404, 401)),
    "PATCH members/{uid}":          (patch_member,        (200, 200, 403, 403, 404, 401)),
    "DELETE members/{uid}":         (remove_member,       (204, 204, 403, 403, 404, 401)),
    "DELETE members/{me} (leave)":  (leave,               (409, 204, 204, 204, 404, 401)),
    "DELETE members/{owner}":       (remove_owner,        (409, 409, 403, 403, 404, 401)),
    "PATCH members/{owner}":        (change_owner_role,   (409, 409, 403, 403, 404, 401)),
    "GET /projects":                (list_projects,       (200, 200, 200, 200, 200, 401)),
    "POST /projects":               (create_project,      (201, 201, 201, 201, 201, 401)),
}  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", list(MATRIX))
def test_authorization_matrix(team: Team, route: str, role: str) -> None:
    request, expected = MATRIX[route]
    check(request(team, role), expected[ROLES.index(role)])


def test_the_team_is_intact_after_the_matrix(team: Team) -> None:
    roles = {m["user_id"]: m["role"] for m in list_members(team, "owner").json()["items"]}
    assert {r: roles.get(team.ids[r]) for r in ("owner", *MEMBER_ROLES, "target")} == {
        "owner": "owner",
        "admin": "admin",
        "member": "member",
        "viewer": "viewer",
        "target": "viewer",
    }


# ---- every status code ------------------------------------------------------------------------


def test_status_codes_of_projects(team: Team) -> None:
    # 201 with the project and its ETag.
    created = team.call("owner", "POST", "/projects", {"name": "Codes", "description": "d"})
    check(created, 201)
    project = created.json()
    path = f"/projects/{project['id']}"
    assert (project["my_role"], project["version"]) == ("owner", 1)
    assert created.headers["ETag"] == '"1"'
    # 200, then 304 for the version the client holds, and 200 again once it changed.
    check(team.call("owner", "GET", path), 200)
    not_modified = team.call("owner", "GET", path, headers={"If-None-Match": '"1"'})
    check(not_modified, 304)
    assert not_modified.content == b""
    assert not_modified.headers["ETag"] == '"1"'
    updated = team.call("owner", "PATCH", path, {"description": None}, {"If-Match": '"1"'})
    check(updated, 200)
    assert (updated.json()["description"], updated.headers["ETag"]) == (None, '"2"')
    check(team.call("owner", "GET", path, headers={"If-None-Match": '"1"'}), 200)
    # 412 for a stale If-Match, on writes and deletes alike.
    check(team.call("owner", "PUT", path, {"name": "X"}, {"If-Match": '"1"'}), 412)
    check(team.call("owner", "DELETE", path, headers={"If-Match": '"1"'}), 412)
    # 400 for bad JSON, a bad If-Match and a bad cursor; 422 for invalid bodies and limits.
    check(team.call("owner", "PATCH", path, data=b"{not json"), 400)
    check(team.call("owner", "PATCH", path, {"name": "X"}, {"If-Match": "yesterday"}), 400)
    check(team.call("owner", "GET", "/projects?cursor=garbage"), 400)
    check(team.call("owner", "GET", "/projects?limit=many"), 400)
    check(team.call("owner", "GET", "/projects?limit=0"), 422)
    for payload in ({"name": ""}, {"name": None}, {"version": 5}, {"owner_id": "x"}, {"x": 1}):
        check(team.call("owner", "PATCH", path, payload), 422)
    check(team.call("owner", "POST", "/projects", {"description": "no name"}), 422)
    # 401 without a token or with a forged one, even with a bad body.
    check(team.call("anonymous", "POST", "/projects", data=b"{not json"), 401)
    forged = requests.get(
        f"{team.api}{path}", headers={"Authorization": "Bearer forged.token.here"}, timeout=30
    )
    check(forged, 401)
    # 403 for members whose role is too low; 404 for strangers and unknown ids.
    check(team.call("viewer", "PATCH", team.path, {"name": "No"}), 403)
    check(team.call("stranger", "GET", team.path), 404)
    check(team.call("owner", "GET", "/projects/01UNKNOWNPROJECT0000000000"), 404)
    # 204 on delete; then it is gone for everyone.
    check(team.call("owner", "DELETE", path, headers={"If-Match": '"2"'}), 204)
    check(team.call("owner", "GET", path), 404)
    listed = team.call("owner", "GET", "/projects?limit=100").json()["items"]
    assert project["id"] not in [p["id"] for p in listed]


def test_status_codes_of_members(team: Team) -> None:
    mate = team.user("mate")
    project_id = team.project("Members")
    members = f"/projects/{project_id}/members"
    # 201 with the member (email is case-insensitive).
    added = team.call(
        "owner", "POST", members, {"email": mate["user"]["email"].upper(), "role": "viewer"}
    )
    check(added, 201)
    assert added.json() == {
        "user_id": mate["user"]["id"],
        "email": mate["user"]["email"],
        "name": "Mate",
        "role": "viewer",
        "added_at": added.json()["added_at"],
    }
    # 200 for the list and for a role change, which takes effect at once.
    listed = team.call("owner", "GET", members)
    check(listed, 200)
    assert len(listed.json()["items"]) == 2
    changed = team.call("owner", "PUT", f"{members}/{mate['user']['id']}", {"role": "admin"})
    check(changed, 200)
    mates_view = requests.get(
        f"{team.api}/projects/{project_id}",
        headers={"Authorization": f"Bearer {mate['access_token']}"},
        timeout=30,
    )
    assert mates_view.json()["my_role"] == "admin"
    # 404 for unknown users; 409 for a second membership, the owner, and the personal project.
    check(
        team.call("owner", "POST", members, {"email": unique_email("ghost"), "role": "admin"}), 404
    )
    check(team.call("owner", "POST", members, {"user_id": "01NOBODY", "role": "admin"}), 404)
    check(
        team.call("owner", "POST", members, {"user_id": mate["user"]["id"], "role": "member"}), 409
    )
    check(team.call("owner", "DELETE", f"{members}/{team.ids['owner']}"), 409)
    personal = next(
        p
        for p in team.call("viewer", "GET", "/projects?limit=100").json()["items"]
        if p["name"] == "Personal"
    )
    check(
        team.call(
            "viewer",
            "POST",
            f"/projects/{personal['id']}/members",
            {"user_id": mate["user"]["id"], "role": "viewer"},
        ),
        409,
    )
    check(team.call("viewer", "DELETE", f"/projects/{personal['id']}"), 409)
    # 422 for an owner role, both or neither target, unknown fields; 400 for bad JSON.
    for payload in (
        {"user_id": mate["user"]["id"], "role": "owner"},
        {"role": "viewer"},
        {"user_id": "a", "email": "a@example.com", "role": "viewer"},
        {"user_id": mate["user"]["id"], "role": "viewer", "extra": True},
    ):
        check(team.call("owner", "POST", members, payload), 422)
    check(team.call("owner", "PATCH", f"{members}/{mate['user']['id']}", {"role": "owner"}), 422)
    check(team.call("owner", "POST", members, data=b"[not json"), 400)
    # 204 to remove; the removed member no longer sees the project.
    check(team.call("owner", "DELETE", f"{members}/{mate['user']['id']}"), 204)
    gone = requests.get(
        f"{team.api}/projects/{project_id}",
        headers={"Authorization": f"Bearer {mate['access_token']}"},
        timeout=30,
    )
    check(gone, 404)
    check(team.call("owner", "DELETE", f"{members}/{mate['user']['id']}"), 404)
