"""The HTTP contract of projects and members, through Chalice's test client on moto."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.dynamodb import connection
from tests.integration.helpers import Api, assert_error, body

PROJECT_FIELDS = {
    "id",
    "name",
    "description",
    "owner_id",
    "my_role",
    "created_at",
    "updated_at",
    "version",
}
MEMBER_FIELDS = {"user_id", "email", "name", "role", "added_at"}
ROLES = ("owner", "admin", "member", "viewer", "stranger", "anonymous")


@pytest.fixture
def client(container: bootstrap.Container) -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


@pytest.fixture
def api(client: Client) -> Api:
    return Api(client)


@dataclass
class Team:
    api: Api
    project: dict[str, Any]
    tokens: dict[str, str | None]
    users: dict[str, dict[str, Any]]

    @property
    def path(self) -> str:
        return f"/projects/{self.project['id']}"

    def call(self, role: str, method: str, path: str, payload: Any = None, **kw: Any) -> Any:
        return self.api.call(method, path, payload, token=self.tokens[role], **kw)

    def new_user(self, email: str) -> dict[str, Any]:
        return self.api.register(email, name=email.split("@")[0].title())


@pytest.fixture
def team(api: Api) -> Team:
    owner = api.register("owner@example.com", name="Olive")
    created = api.call(
        "POST", "/projects", {"name": "Launch", "description": "Ship it"}, owner["access_token"]
    )
    assert created.status_code == 201, created.body
    project = body(created)
    tokens: dict[str, str | None] = {"owner": owner["access_token"], "anonymous": None}
    users = {"owner": owner["user"]}
    for role in ("admin", "member", "viewer", "stranger"):
        registered = api.register(f"{role}@example.com", name=role.title())
        tokens[role], users[role] = registered["access_token"], registered["user"]
        if role != "stranger":
            added = api.call(
                "POST",
                f"/projects/{project['id']}/members",
                {"user_id": registered["user"]["id"], "role": role},
                owner["access_token"],
            )
            assert added.status_code == 201, added.body
    return Team(api, project, tokens, users)


class TestProjects:
    def test_create_answers_201_with_the_project_and_its_etag(self, api: Api) -> None:
        me = api.register()
        response = api.call(
            "POST", "/projects", {"name": "  Launch ", "description": "Ship"}, me["access_token"]
        )
        assert response.status_code == 201, response.body
        project = body(response)
        assert set(project) == PROJECT_FIELDS
        assert project["name"] == "Launch"
        assert project["owner_id"] == me["user"]["id"]
        assert (project["my_role"], project["version"]) == ("owner", 1)
        assert project["created_at"].endswith("Z")
        assert response.headers["ETag"] == '"1"'
        bare = body(api.call("POST", "/projects", {"name": "Bare"}, me["access_token"]))
        assert bare["description"] is None

    @pytest.mark.parametrize(
        "payload",
        [
            {},
            {"name": ""},
            {"name": "x" * 101},
            {"name": "A", "description": "d" * 2001},
            {"name": "A", "owner_id": "someone"},
            {"name": "A", "colour": "red"},
            {"name": None},
        ],
    )
    def test_invalid_bodies_are_422(self, api: Api, payload: dict[str, Any]) -> None:
        token = api.register()["access_token"]
        payload_error = assert_error(
            api.call("POST", "/projects", payload, token), 422, "validation_error"
        )
        assert payload_error["error"]["details"]
        assert all(d["loc"][0] == "body" for d in payload_error["error"]["details"])

    def test_bad_json_is_400_and_no_token_comes_first(self, api: Api) -> None:
        token = api.register()["access_token"]
        assert_error(api.call("POST", "/projects", raw=b"{nope", token=token), 400, "bad_request")
        for raw in (b"{nope", b'{"name": ""}', b'{"name": "fine"}'):
            response = api.call("POST", "/projects", raw=raw)
            assert_error(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"].startswith("Bearer")

    def test_get_answers_304_when_if_none_match_names_the_version(self, team: Team) -> None:
        fresh = team.call("viewer", "GET", team.path)
        assert body(fresh) == {**team.project, "my_role": "viewer"}
        assert fresh.headers["ETag"] == '"1"'
        for tag in ('"1"', 'W/"1"', '"7", "1"', "*"):
            cached = team.call("viewer", "GET", team.path, headers={"If-None-Match": tag})
            assert cached.status_code == 304, tag
            assert cached.body in (b"", "")
            assert cached.headers["ETag"] == '"1"'
        changed = team.call("viewer", "GET", team.path, headers={"If-None-Match": '"2"'})
        assert changed.status_code == 200
        # Not for strangers: 404 as always.
        stranger = team.call("stranger", "GET", team.path, headers={"If-None-Match": '"1"'})
        assert_error(stranger, 404, "not_found")

    def test_if_none_match_works_on_other_versioned_reads_and_not_on_writes(self, api: Api) -> None:
        token = api.register()["access_token"]
        profile = api.call("GET", "/users/profile", token=token, headers={"If-None-Match": '"1"'})
        assert profile.status_code == 304
        project = body(api.call("POST", "/projects", {"name": "A"}, token))
        patched = api.call(
            "PATCH",
            f"/projects/{project['id']}",
            {"name": "B"},
            token,
            headers={"If-None-Match": '"2"'},
        )
        assert patched.status_code == 200
        assert body(patched)["name"] == "B"

    def test_put_and_patch_keep_absent_fields_and_null_clears_description(self, team: Team) -> None:
        renamed = team.call("admin", "PATCH", team.path, {"name": "Renamed"})
        assert renamed.status_code == 200, renamed.body
        assert (body(renamed)["name"], body(renamed)["description"]) == ("Renamed", "Ship it")
        assert (body(renamed)["my_role"], body(renamed)["version"]) == ("admin", 2)
        assert renamed.headers["ETag"] == '"2"'
        cleared = team.call("owner", "PUT", team.path, {"description": None})
        assert (body(cleared)["name"], body(cleared)["description"]) == ("Renamed", None)
        assert body(team.call("member", "GET", team.path))["description"] is None

    @pytest.mark.parametrize(
        "payload",
        [{"id": "x"}, {"owner_id": "x"}, {"version": 3}, {"created_at": "2026-01-01T00:00:00Z"},
         {"my_role": "owner"}, {"name": None}, {"name": ""}, {"unknown": 1}],
    )  # fmt: skip
    def test_read_only_unknown_and_invalid_fields_are_422(
        self, team: Team, payload: dict[str, Any]
    ) -> None:
        assert_error(team.call("owner", "PATCH", team.path, payload), 422, "validation_error")
        assert body(team.call("owner", "GET", team.path))["version"] == 1

    def test_if_match_stale_is_412_fresh_applies_and_garbage_is_400(self, team: Team) -> None:
        ok = team.call("owner", "PUT", team.path, {"name": "Two"}, headers={"If-Match": '"1"'})
        assert body(ok)["version"] == 2
        stale = team.call("owner", "PATCH", team.path, {"name": "X"}, headers={"If-Match": '"1"'})
        assert_error(stale, 412, "precondition_failed")
        garbage = team.call("owner", "PATCH", team.path, {"name": "X"}, headers={"If-Match": "v1"})
        assert_error(garbage, 400, "bad_request")
        assert body(team.call("owner", "GET", team.path))["name"] == "Two"

    def test_delete_is_204_then_everything_is_404_and_unlisted(self, team: Team) -> None:
        stale = team.call("owner", "DELETE", team.path, headers={"If-Match": '"9"'})
        assert_error(stale, 412, "precondition_failed")
        deleted = team.call("owner", "DELETE", team.path, headers={"If-Match": '"1"'})
        assert deleted.status_code == 204
        assert deleted.body in (b"", "")
        for role in ("owner", "admin", "member", "viewer"):
            assert_error(team.call(role, "GET", team.path), 404, "not_found")
            assert_error(team.call(role, "GET", f"{team.path}/members"), 404, "not_found")
            listed = body(team.call(role, "GET", "/projects"))["items"]
            assert team.project["id"] not in [p["id"] for p in listed]
        assert_error(team.call("owner", "DELETE", team.path), 404, "not_found")

    def test_the_personal_project_cannot_be_deleted_or_shared(self, team: Team) -> None:
        personal = next(
            p
            for p in body(team.call("admin", "GET", "/projects"))["items"]
            if p["name"] == "Personal"
        )
        path = f"/projects/{personal['id']}"
        assert_error(team.call("admin", "DELETE", path), 409, "conflict")
        add = team.call(
            "admin", "POST", f"{path}/members", {"email": "viewer@example.com", "role": "viewer"}
        )
        assert_error(add, 409, "conflict")
        assert body(team.call("admin", "GET", path))["my_role"] == "owner"

    def test_list_pages_the_callers_projects(self, team: Team) -> None:
        token = team.tokens["viewer"]
        for name in ("Second", "Third"):
            team.api.call("POST", "/projects", {"name": name}, token)
        seen: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(10):
            page = body(team.api.call("GET", f"/projects?limit=2{cursor}", token=token))
            assert set(page) == {"items", "next_cursor"}
            seen += page["items"]
            if page["next_cursor"] is None:
                break
            cursor = f"&cursor={page['next_cursor']}"
        assert [p["id"] for p in seen] == sorted(p["id"] for p in seen)
        assert sorted((p["name"], p["my_role"]) for p in seen) == [
            ("Launch", "viewer"), ("Personal", "owner"), ("Second", "owner"), ("Third", "owner")
        ]  # fmt: skip
        assert all(set(p) == PROJECT_FIELDS for p in seen)

    @pytest.mark.parametrize(
        ("query", "status"),
        [("limit=abc", 400), ("limit=0", 422), ("limit=101", 422), ("cursor=zzz", 400)],
    )
    def test_bad_page_parameters(self, team: Team, query: str, status: int) -> None:
        assert team.call("owner", "GET", f"/projects?{query}").status_code == status
        assert team.call("owner", "GET", f"{team.path}/members?{query}").status_code == status

    def test_a_cursor_from_another_list_is_400(self, team: Team) -> None:
        cursor = body(team.call("viewer", "GET", "/projects?limit=1"))["next_cursor"]
        assert cursor
        assert_error(
            team.call("admin", "GET", f"/projects?limit=1&cursor={cursor}"), 400, "bad_request"
        )
        members_cursor = body(team.call("owner", "GET", f"{team.path}/members?limit=1"))[
            "next_cursor"
        ]
        assert_error(
            team.call("owner", "GET", f"/projects?limit=1&cursor={members_cursor}"),
            400,
            "bad_request",
        )

    def test_unknown_and_absurd_project_ids_are_404(self, team: Team) -> None:
        for project_id in ("01NOPE", "x" * 1500):
            assert_error(team.call("owner", "GET", f"/projects/{project_id}"), 404, "not_found")
            assert_error(
                team.call("owner", "PATCH", f"/projects/{project_id}", {"name": "x"}),
                404,
                "not_found",
            )


class TestMembers:
    def test_members_list_has_the_contract_fields(self, team: Team) -> None:
        page = body(team.call("viewer", "GET", f"{team.path}/members"))
        assert page["next_cursor"] is None
        assert all(set(m) == MEMBER_FIELDS for m in page["items"])
        assert sorted((m["email"], m["name"], m["role"]) for m in page["items"]) == [
            ("admin@example.com", "Admin", "admin"),
            ("member@example.com", "Member", "member"),
            ("owner@example.com", "Olive", "owner"),
            ("viewer@example.com", "Viewer", "viewer"),
        ]

    def test_members_list_pages(self, team: Team) -> None:
        seen: list[str] = []
        cursor = ""
        for _ in range(10):
            page = body(team.call("member", "GET", f"{team.path}/members?limit=3{cursor}"))
            seen += [m["user_id"] for m in page["items"]]
            if page["next_cursor"] is None:
                break
            cursor = f"&cursor={page['next_cursor']}"
        assert sorted(seen) == sorted(u["id"] for r, u in team.users.items() if r != "stranger")
        assert len(seen) == 4

    def test_add_by_email_or_user_id_answers_201_with_the_member(self, team: Team) -> None:
        newt = team.new_user("newt@example.com")
        by_email = team.call(
            "admin", "POST", f"{team.path}/members", {"email": "NEWT@example.com", "role": "member"}
        )
        assert by_email.status_code == 201, by_email.body
        member = body(by_email)
        assert set(member) == MEMBER_FIELDS
        assert (member["user_id"], member["email"], member["name"], member["role"]) == (
            newt["user"]["id"], "newt@example.com", "Newt", "member"
        )  # fmt: skip
        assert member["added_at"].endswith("Z")
        seen = team.api.call("GET", team.path, token=newt["access_token"])
        assert body(seen)["my_role"] == "member"
        ivy = team.new_user("ivy@example.com")
        by_id = team.call(
            "owner", "POST", f"{team.path}/members", {"user_id": ivy["user"]["id"], "role": "admin"}
        )
        assert (by_id.status_code, body(by_id)["role"]) == (201, "admin")

    @pytest.mark.parametrize(
        "payload",
        [{"user_id": "01NOBODY", "role": "viewer"}, {"email": "no@example.com", "role": "viewer"}],
    )
    def test_an_unknown_user_is_404(self, team: Team, payload: dict[str, str]) -> None:
        assert_error(team.call("owner", "POST", f"{team.path}/members", payload), 404, "not_found")

    def test_a_member_added_twice_is_409(self, team: Team) -> None:
        for email in ("viewer@example.com", "owner@example.com"):
            again = team.call(
                "owner", "POST", f"{team.path}/members", {"email": email, "role": "admin"}
            )
            assert_error(again, 409, "conflict")
        assert body(team.call("viewer", "GET", team.path))["my_role"] == "viewer"

    @pytest.mark.parametrize(
        "payload",
        [
            {"email": "newt@example.com", "role": "owner"},
            {"email": "newt@example.com", "role": "root"},
            {"email": "newt@example.com"},
            {"role": "viewer"},
            {"email": "newt@example.com", "user_id": "01X", "role": "viewer"},
            {"email": "not-an-email", "role": "viewer"},
            {"email": "newt@example.com", "role": "viewer", "added_at": "2026-01-01T00:00:00Z"},
        ],
    )
    def test_invalid_member_bodies_are_422(self, team: Team, payload: dict[str, Any]) -> None:
        team.new_user("newt@example.com")
        response = team.call("owner", "POST", f"{team.path}/members", payload)
        assert_error(response, 422, "validation_error")

    def test_role_changes_answer_the_member(self, team: Team) -> None:
        viewer_id = team.users["viewer"]["id"]
        for method, role in (("PUT", "member"), ("PATCH", "admin")):
            response = team.call(
                "admin", method, f"{team.path}/members/{viewer_id}", {"role": role}
            )
            assert response.status_code == 200, response.body
            assert set(body(response)) == MEMBER_FIELDS
            assert body(response)["role"] == role
        assert body(team.call("viewer", "GET", team.path))["my_role"] == "admin"
        bad = team.call("owner", "PATCH", f"{team.path}/members/{viewer_id}", {"role": "owner"})
        assert_error(bad, 422, "validation_error")

    def test_the_owner_keeps_its_role_and_its_place(self, team: Team) -> None:
        owner_path = f"{team.path}/members/{team.users['owner']['id']}"
        for role in ("owner", "admin"):
            assert_error(team.call(role, "PATCH", owner_path, {"role": "admin"}), 409, "conflict")
            assert_error(team.call(role, "DELETE", owner_path), 409, "conflict")
        assert body(team.call("owner", "GET", team.path))["my_role"] == "owner"

    def test_removal_and_leaving_are_204_and_take_effect_at_once(self, team: Team) -> None:
        member_path = f"{team.path}/members/{team.users['member']['id']}"
        removed = team.call("admin", "DELETE", member_path)
        assert removed.status_code == 204
        assert_error(team.call("member", "GET", team.path), 404, "not_found")
        assert_error(team.call("admin", "DELETE", member_path), 404, "not_found")
        leave = team.call("viewer", "DELETE", f"{team.path}/members/{team.users['viewer']['id']}")
        assert leave.status_code == 204
        assert_error(team.call("viewer", "GET", team.path), 404, "not_found")
        listed = [p["name"] for p in body(team.call("viewer", "GET", "/projects"))["items"]]
        assert listed == ["Personal"]

    def test_unknown_members_are_404(self, team: Team) -> None:
        for user_id in (team.users["stranger"]["id"], "01NOBODY", "y" * 1500):
            path = f"{team.path}/members/{user_id}"
            assert_error(team.call("owner", "PATCH", path, {"role": "admin"}), 404, "not_found")
            assert_error(team.call("owner", "DELETE", path), 404, "not_found")


class TestAuthorizationMatrix:
    """Every project and member route, by every kind of caller."""

    EXPECTED: dict[str, tuple[int, ...]] = {
        #                      owner admin member viewer stranger anonymous
        "GET project":         (200, 200, 200, 200, 404, 401),
        "PUT project":         (200, 200, 403, 403, 404, 401),
        "PATCH project":       (200, 200, 403, 403, 404, 401),
        "DELETE project":      (204, 403, 403, 403, 404, 401),
        "GET members":         (200, 200, 200, 200, 404, 401),
        "POST member":         (201, 201, 403, 403, 404, 401),
        "PUT member":          (200, 200, 403, 403, 404, 401),
        "PATCH member":        (200, 200, 403, 403, 404, 401),
        "DELETE member":       (204, 204, 403, 403, 404, 401),
        "DELETE self (leave)": (409, 204, 204, 204, 404, 401),
        "GET projects":        (200, 200, 200, 200, 200, 401),
        "POST projects":       (201, 201, 201, 201, 201, 401),
    }  # fmt: skip

    def request(self, team: Team, route: str, role: str) -> Callable[[], Any]:
        target = team.new_user("target@example.com")
        target_id = target["user"]["id"]
        if route in ("PUT member", "PATCH member", "DELETE member"):
            added = team.call(
                "owner", "POST", f"{team.path}/members", {"user_id": target_id, "role": "viewer"}
            )
            assert added.status_code == 201
        me = team.users.get(role, {}).get("id", "01ANONYMOUS")
        member_path = f"{team.path}/members/{target_id}"
        return {
            "GET project": lambda: team.call(role, "GET", team.path),
            "PUT project": lambda: team.call(role, "PUT", team.path, {"name": "N"}),
            "PATCH project": lambda: team.call(role, "PATCH", team.path, {"description": "D"}),
            "DELETE project": lambda: team.call(role, "DELETE", team.path),
            "GET members": lambda: team.call(role, "GET", f"{team.path}/members"),
            "POST member": lambda: team.call(
                role, "POST", f"{team.path}/members", {"user_id": target_id, "role": "viewer"}
            ),
            "PUT member": lambda: team.call(role, "PUT", member_path, {"role": "member"}),
            "PATCH member": lambda: team.call(role, "PATCH", member_path, {"role": "member"}),
            "DELETE member": lambda: team.call(role, "DELETE", member_path),
            "DELETE self (leave)": lambda: team.call(role, "DELETE", f"{team.path}/members/{me}"),
            "GET projects": lambda: team.call(role, "GET", "/projects"),
            "POST projects": lambda: team.call(role, "POST", "/projects", {"name": "Mine"}),
        }[route]

    @pytest.mark.parametrize("route", list(EXPECTED))
    @pytest.mark.parametrize("role", ROLES)
    def test_matrix(self, team: Team, route: str, role: str) -> None:
        response = self.request(team, route, role)()
        expected = self.EXPECTED[route][ROLES.index(role)]
        assert response.status_code == expected, response.body
        if expected >= 400:
            code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}
            assert_error(response, expected, code[expected])


class TestCallBudget:
    """The DynamoDB calls of every route, authentication included (docs/data-model.md)."""

    @pytest.fixture
    def counted(self, team: Team) -> list[str]:
        calls: list[str] = []

        def count(event_name: str, **kwargs: Any) -> None:
            calls.append(event_name.rsplit(".", 1)[-1])

        connection.root().client.meta.events.register("before-call.dynamodb", count)
        return calls

    def test_every_route_meets_its_budget(self, team: Team, counted: list[str]) -> None:
        victim = team.new_user("victim@example.com")["user"]["id"]
        by_email = team.new_user("byemail@example.com")["user"]["id"]
        members = f"{team.path}/members"
        viewer_id = team.users["viewer"]["id"]
        cached = {"If-None-Match": '"1"'}
        by_mail = {"email": "byemail@example.com", "role": "viewer"}
        batch, tx = "BatchGetItem", "TransactWriteItems"
        routes: list[tuple[str, Callable[[], Any], int, list[str]]] = [
            ("POST /projects", lambda: team.call("owner", "POST", "/projects", {"name": "B"}),
             201, [batch, tx]),
            ("GET /projects", lambda: team.call("owner", "GET", "/projects"), 200, [batch, batch]),
            ("GET project", lambda: team.call("viewer", "GET", team.path), 200, [batch]),
            ("GET project 304", lambda: team.call("viewer", "GET", team.path, headers=cached),
             304, [batch]),
            ("PATCH project", lambda: team.call("admin", "PATCH", team.path, {"name": "C"}),
             200, [batch, "PutItem"]),
            ("GET members", lambda: team.call("viewer", "GET", members), 200, [batch, "Query"]),
            ("POST member by id", lambda: team.call(
                "admin", "POST", members, {"user_id": victim, "role": "viewer"}), 201, [batch, tx]),
            ("POST member by email", lambda: team.call("admin", "POST", members, by_mail),
             201, [batch, "GetItem", tx]),
            ("PATCH member", lambda: team.call(
                "admin", "PATCH", f"{members}/{victim}", {"role": "member"}), 200, [batch, tx]),
            ("DELETE member", lambda: team.call("admin", "DELETE", f"{members}/{by_email}"),
             204, [batch, tx]),
            ("leave", lambda: team.call("viewer", "DELETE", f"{members}/{viewer_id}"),
             204, [batch, tx]),
            ("DELETE project", lambda: team.call("owner", "DELETE", team.path),
             204, [batch, "Query", "TransactWriteItems"]),
        ]  # fmt: skip
        for label, request, status, expected in routes:
            counted.clear()
            response = request()
            assert response.status_code == status, (label, response.body)
            assert counted == expected, label
