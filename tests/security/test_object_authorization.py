"""OWASP API1 (object level) and API5 (function level) authorization, on every route.

The route table of the app is enumerated, and every route is called as each of seven principals
(the team project's owner, admin, two members, viewer; a user outside it; the deployment's
admin, who is in no project): each gets what API.md says (non-members 404, roles too low 403).
A refused request writes nothing and answers in the contract's error body; a non-member cannot
tell an existing object from a missing one. User-scoped objects (notifications, sessions,
profile) are reached only by their user; objects named in bodies are checked like path ids.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from app import app
from chalicelib.api import all_routes
from chalicelib.api.routing import API_PREFIX
from tests.security.conftest import PRINCIPALS, Answer, World, secrets_of
from tests.security.routes import (
    CASE_BY_KEY,
    CASES,
    Case,
    calendar_token,
    ghost_id,
    path_params,
)

ROUTES = all_routes()  # every route module imported

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


def app_routes() -> set[tuple[str, str]]:
    return {
        (method, path.removeprefix(API_PREFIX))
        for path, methods in app.routes.items()
        for method in methods
        if method != "OPTIONS"
    }


def assert_error_body(answer: Answer, status: int) -> None:
    assert answer.status == status, answer
    payload = answer.json
    assert set(payload) == {"error", "request_id"}, payload
    assert set(payload["error"]) == {"code", "message", "details"}, payload
    assert b"Traceback" not in answer.body


def assert_leaks_nothing(world: World, answer: Answer) -> None:
    """No answer carries a password hash, key material or a session's refresh token id."""
    text = answer.body.decode("utf-8", errors="replace")
    for needle in ("$argon2", "password_hash", "refresh_jti", "passwordHash"):
        assert needle not in text, (needle, text[:300])
    for secret in secrets_of(world):
        assert secret not in text


# ---- the route table ----------------------------------------------------------------------------


def test_every_route_has_a_case() -> None:
    """A new route without a stated right fails here: add it to tests/security/routes.py."""
    assert len(CASE_BY_KEY) == len(CASES), "a route has two cases"
    assert app_routes() == set(CASE_BY_KEY)


def test_only_the_public_cases_are_declared_without_auth() -> None:
    declared = {(method, spec.path): spec.auth for spec in ROUTES for method in spec.methods}
    assert set(declared) == app_routes()
    public = {case.key for case in CASES if case.access == "public" or case.secret_path}
    assert {key for key, auth in declared.items() if not auth} == public


@pytest.mark.parametrize("path", sorted(app.routes), ids=str)
def test_a_path_answers_405_to_the_methods_it_does_not_declare(world: World, path: str) -> None:
    """Nothing but the declared methods (and OPTIONS, for CORS) is routed on any path."""
    declared = {m for (m, route) in CASE_BY_KEY if API_PREFIX + route == path}
    assert set(app.routes[path]) == declared | {"OPTIONS"}, path
    concrete = "/".join(
        "01HZZZZZZZZZZZZZZZZZZZZZZZ" if part.startswith("{") else part
        for part in path.removeprefix(API_PREFIX).split("/")
    )
    for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - declared):
        answer = world.as_("owner", method, concrete, {})
        assert_error_body(answer, 405)
        assert answer.code == "method_not_allowed"
        assert WRITES.isdisjoint(world.dynamo_calls)


# ---- who gets what ------------------------------------------------------------------------------


@pytest.mark.parametrize("who", PRINCIPALS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_each_principal_gets_what_the_contract_says(world: World, case: Case, who: str) -> None:
    req = case.prepare(world, who)
    token = req.token or world.users[who].access
    answer = world.request(case.method, req.path, req.body, token=token)
    expected = case.expected(who)
    assert answer.status == expected, (who, answer)
    assert_leaks_nothing(world, answer)
    if expected >= 400:
        assert_error_body(answer, expected)
        assert answer.code == {403: "forbidden", 404: "not_found"}[expected]
        # Refused means refused: nothing was written (a notification read is a conditional
        # update keyed by the caller's own id, which cannot touch another user's item).
        if case.access != "mine":
            assert WRITES.isdisjoint(world.dynamo_calls), world.dynamo_calls


# A secret path is its own credential: whoever sends it is let in (the feed's own test below).
PATH_CASES = [c for c in CASES if c.access == "project" and "{" in c.route and not c.secret_path]


def _variants(case: Case) -> list[str]:
    if case.method == "GET":
        return ["plain", "cursor"]
    if case.method in ("PUT", "PATCH", "DELETE"):
        return ["plain", "if-match"]
    return ["plain"]


@pytest.mark.parametrize(
    ("case", "variant"),
    [(c, v) for c in PATH_CASES for v in _variants(c)],
    ids=lambda x: str(x),
)
def test_a_non_member_cannot_tell_an_object_from_a_missing_one(
    world: World, case: Case, variant: str
) -> None:
    """The outsider's answer about a real object equals the owner's about an id that names
    nothing: same status, code and message, whatever else the request carries."""
    req = case.prepare(world, "owner")
    params = path_params(case.route, req.path)
    ghost_path = req.path
    for value in params.values():
        ghost_path = ghost_path.replace(value, ghost_id(value))
    headers: dict[str, str] = {}
    real_path = req.path
    if variant == "cursor":
        joiner = "&" if "?" in real_path else "?"
        real_path += f"{joiner}cursor=bogus"
        ghost_path += f"{joiner}cursor=bogus"
    if variant == "if-match":
        headers["if-match"] = '"999"'
    seen = world.as_("outsider", case.method, real_path, req.body, headers=headers)
    missing = world.as_("owner", case.method, ghost_path, req.body, headers=headers)
    assert_error_body(seen, 404)
    assert (seen.status, seen.code, seen.json["error"]["message"]) == (
        missing.status,
        missing.code,
        missing.json["error"]["message"],
    )


# ---- user-scoped objects ------------------------------------------------------------------------


def test_a_notification_is_reached_by_its_user_only(world: World) -> None:
    task = world.fresh_task("owner")
    world.ok("owner", "POST", f"/tasks/{task}/assign", {"assignee_id": world.users["viewer"].id})
    (note,) = [
        n
        for n in world.ok("viewer", "GET", "/notifications?unread=true")["items"]
        if n["task_id"] == task
    ]
    for who in ("owner", "admin", "member", "outsider", "root"):
        answer = world.as_(who, "POST", f"/notifications/{note['id']}/read")
        assert_error_body(answer, 404)
        world.ok(who, "POST", "/notifications/read-all")
        listed = world.ok(who, "GET", "/notifications?limit=100")["items"]
        assert note["id"] not in {n["id"] for n in listed}
    unread = world.ok("viewer", "GET", "/notifications?unread=true&limit=100")["items"]
    assert note["id"] in {n["id"] for n in unread}, "another user's call marked it read"
    assert world.as_("viewer", "POST", f"/notifications/{note['id']}/read").status == 204


def test_lists_show_only_the_callers_own_things(world: World) -> None:
    team = world.ids["project"]
    assert team not in {p["id"] for p in world.ok("outsider", "GET", "/projects")["items"]}
    assert team not in {p["id"] for p in world.ok("root", "GET", "/projects")["items"]}
    assert team in {p["id"] for p in world.ok("viewer", "GET", "/projects")["items"]}
    # Assigned to `member` in the team project: "my tasks across projects" of others omit it.
    mine = world.ok("member", "GET", "/tasks?assignee_id=me")["items"]
    assert world.ids["task"] in {t["id"] for t in mine}
    for who in ("outsider", "root", "viewer"):
        theirs = world.ok(who, "GET", "/tasks?assignee_id=me")["items"]
        assert world.ids["task"] not in {t["id"] for t in theirs}
    # Naming someone else's assignee id does not widen the scope past the caller's projects.
    member_id = world.users["member"].id
    answer = world.as_("outsider", "GET", f"/tasks?assignee_id={member_id}")
    assert answer.status == 200
    assert answer.json["items"] == []


def test_the_profile_is_always_the_callers_own(world: World) -> None:
    for who in ("member", "outsider"):
        assert world.ok(who, "GET", "/users/profile")["id"] == world.users[who].id
    # No route takes another user's id for the profile; a body naming one is refused.
    answer = world.as_("outsider", "PATCH", "/users/profile", {"id": world.users["member"].id})
    assert_error_body(answer, 422)
    assert world.ok("member", "GET", "/users/profile")["name"] == "member"


def test_logging_out_with_someone_elses_refresh_token_ends_only_ones_own_session(
    world: World,
) -> None:
    victim = world.login("member")
    thief = world.login("outsider")
    answer = world.request(
        "POST",
        "/auth/logout",
        {"refresh_token": victim["refresh_token"]},
        token=thief["access_token"],
    )
    assert answer.status == 204
    assert world.request("GET", "/users/profile", token=victim["access_token"]).status == 200
    refreshed = world.request("POST", "/auth/refresh", {"refresh_token": victim["refresh_token"]})
    assert refreshed.status == 200, refreshed
    assert world.request("GET", "/users/profile", token=thief["access_token"]).status == 401


# ---- objects named in bodies --------------------------------------------------------------------


@pytest.fixture(scope="module")
def elsewhere(world: World) -> dict[str, str]:
    """Things in a project of the outsider's: nobody of the team can see them."""
    project = world.ok("outsider", "POST", "/projects", {"name": "Private"})["id"]
    task = world.ok("outsider", "POST", "/tasks", {"title": "Secret", "project_id": project})["id"]
    template = world.ok(
        "outsider", "POST", f"/projects/{project}/templates", {"name": "T", "task": {"title": "x"}}
    )["id"]
    workflow = world.ok(
        "outsider",
        "POST",
        "/workflows",
        {"project_id": project, "name": "W", "steps": [{"key": "a", "task_id": task}]},
    )["id"]
    return {"project": project, "task": task, "template": template, "workflow": workflow}


@pytest.mark.parametrize(
    "body",
    [
        {"parent_id": "task"},
        {"depends_on": ["task"]},
        {"assignee_id": "outsider"},
    ],
    ids=["parent_id", "depends_on", "assignee_id"],
)
def test_a_task_cannot_point_at_what_its_author_cannot_see(
    world: World, elsewhere: dict[str, str], body: dict[str, Any]
) -> None:
    resolved = {
        key: (
            world.users["outsider"].id
            if value == "outsider"
            else [elsewhere["task"]]
            if isinstance(value, list)
            else elsewhere["task"]
        )
        for key, value in body.items()
    }
    create = {"title": "Pointer", "project_id": world.ids["project"], **resolved}
    answer = world.as_("member", "POST", "/tasks", create)
    assert answer.status == 422, answer
    assert_error_body(answer, 422)
    assert WRITES.isdisjoint(world.dynamo_calls), world.dynamo_calls
    patched = world.as_("member", "PATCH", f"/tasks/{world.ids['task']}", resolved)
    assert_error_body(patched, 422)
    assert WRITES.isdisjoint(world.dynamo_calls), world.dynamo_calls
    # The outsider's task is untouched: no subtask, no dependant hangs off it now.
    assert world.ok("outsider", "GET", f"/tasks/{elsewhere['task']}/subtasks")["items"] == []


def test_a_workflow_cannot_run_tasks_of_another_project(
    world: World, elsewhere: dict[str, str]
) -> None:
    body = {
        "project_id": world.ids["project"],
        "name": "Borrow",
        "steps": [{"key": "a", "task_id": elsewhere["task"]}],
    }
    answer = world.as_("member", "POST", "/workflows", body)
    assert answer.status in (404, 422), answer
    assert_error_body(answer, answer.status)
    changed = world.as_(
        "member", "PATCH", f"/workflows/{world.ids['workflow']}", {"steps": body["steps"]}
    )
    assert changed.status in (404, 422), changed


@pytest.mark.parametrize(
    "action",
    [
        {"type": "create_task", "template_id": "template"},
        {"type": "run_workflow", "workflow_id": "workflow"},
        {"type": "assign", "assignee_id": "outsider"},
        {"type": "notify", "user_id": "outsider"},
    ],
    ids=lambda a: str(a["type"]),
)
def test_a_rule_cannot_act_on_what_its_author_cannot_see(
    world: World, elsewhere: dict[str, str], action: dict[str, str]
) -> None:
    resolved = {
        key: world.users["outsider"].id if value == "outsider" else elsewhere.get(value, value)
        for key, value in action.items()
    }
    body = {
        "name": "Reach out",
        "enabled": True,
        "trigger": {"event": "task.created", "conditions": {}},
        "actions": [resolved],
    }
    answer = world.as_("member", "POST", f"/projects/{world.ids['project']}/rules", body)
    assert_error_body(answer, 422)
    (detail,) = answer.json["error"]["details"]
    assert detail["loc"][:3] == ["body", "actions", 0]


def test_a_template_of_an_invisible_project_makes_nothing(
    world: World, elsewhere: dict[str, str]
) -> None:
    body = {"template_id": elsewhere["template"], "project_id": world.ids["project"]}
    answer = world.as_("member", "POST", "/tasks/from-template", body)
    assert_error_body(answer, 404)
    # ... and a visible template cannot make tasks in a project the caller cannot see.
    body = {
        "template_id": world.ids["template"],
        "project_id": elsewhere["project"],
        "values": {"what": "x"},
    }
    answer = world.as_("member", "POST", "/tasks/from-template", body)
    assert_error_body(answer, 404)
    assert WRITES.isdisjoint(world.dynamo_calls)


def test_members_cannot_be_added_to_or_read_from_a_project_by_guessing(
    world: World, elsewhere: dict[str, str]
) -> None:
    # Adding oneself to someone else's project is a 404 like any other project route.
    answer = world.as_(
        "member",
        "POST",
        f"/projects/{elsewhere['project']}/members",
        {"user_id": world.users["member"].id, "role": "admin"},
    )
    assert_error_body(answer, 404)
    assert world.as_("member", "GET", f"/projects/{elsewhere['project']}").status == 404


# ---- WebSocket channels -------------------------------------------------------------------------


class RecordingPusher:
    def __init__(self) -> None:
        self.frames: list[tuple[str, dict[str, Any]]] = []

    def push(self, connection_id: str, frame: dict[str, Any]) -> bool:
        self.frames.append((connection_id, frame))
        return True


def test_websocket_subscriptions_follow_project_membership(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.handlers import websocket

    pusher = RecordingPusher()
    monkeypatch.setattr(world.container.realtime, "_pusher", pusher)
    channel = f"project:{world.ids['project']}"
    subscribe = json.dumps({"action": "subscribe", "channel": channel})

    def event(connection_id: str, **extra: Any) -> dict[str, Any]:
        return {"requestContext": {"connectionId": connection_id}, **extra}

    refused = websocket.on_connect(event("c-forged", queryStringParameters={"token": "x.y.z"}))
    assert refused == {"statusCode": 401}
    assert websocket.on_connect(event("c-none")) == {"statusCode": 401}
    for who, expected in (("viewer", "subscribed"), ("outsider", "error"), ("root", "error")):
        connection_id = f"c-{who}"
        token = world.users[who].access
        connected = websocket.on_connect(
            event(connection_id, queryStringParameters={"token": token})
        )
        assert connected == {"statusCode": 200}
        websocket.on_message(event(connection_id, body=subscribe))
        _, frame = pusher.frames[-1]
        assert frame["type"] == expected, (who, frame)
        if expected == "error":
            assert frame["code"] == "not_found"
    # A connection that never authenticated cannot subscribe either.
    websocket.on_message(event("c-forged", body=subscribe))
    assert pusher.frames[-1] == (
        "c-forged",
        {"type": "error", "code": "unauthorized", "message": "the connection is not authenticated"},
    )


# ---- calendar feeds: the path is the credential ------------------------------------------------


def _feed_uids(answer: Answer) -> set[str]:
    assert answer.status == 200, answer
    return set(re.findall(r"^UID:(\w+)@taskbeat\r$", answer.body.decode(), flags=re.MULTILINE))


def test_a_calendar_feed_cannot_tell_a_foreign_project_from_a_missing_one(world: World) -> None:
    """The outsider's token on the team project, a member's token on a project that does not
    exist, a token that names nobody and a member's token without `.ics`: one answer."""
    project = world.ids["project"]
    outsider, member = calendar_token(world, "outsider"), calendar_token(world, "member")
    answers = [
        world.request("GET", f"/calendar/{outsider}/projects/{project}.ics"),
        world.request("GET", f"/calendar/{member}/projects/{ghost_id(project)}.ics"),
        world.request("GET", f"/calendar/{'Z' * 43}/projects/{project}.ics"),
        world.request("GET", f"/calendar/{member}/projects/{project}"),
        world.request("GET", f"/calendar/{'Z' * 43}.ics"),
    ]
    for answer in answers:
        assert_error_body(answer, 404)
        assert (answer.code, answer.json["error"]["message"]) == (
            "not_found",
            "calendar not found",
        )
        assert WRITES.isdisjoint(world.dynamo_calls)


def test_a_calendar_token_opens_its_own_users_feed_only(world: World) -> None:
    task = world.ids["task"]  # assigned to `member`, with no due date: give it one
    world.ok("member", "PATCH", f"/tasks/{task}", {"due_date": "2099-06-01T08:00:00Z"})
    mine = world.request("GET", f"/calendar/{calendar_token(world, 'member')}.ics")
    assert task in _feed_uids(mine)
    for who in ("other", "viewer", "outsider", "root"):
        theirs = world.request("GET", f"/calendar/{calendar_token(world, who)}.ics")
        assert task not in _feed_uids(theirs), who
    # A bearer token of someone else changes nothing: the path decides.
    as_outsider = world.as_("outsider", "GET", f"/calendar/{calendar_token(world, 'member')}.ics")
    assert _feed_uids(as_outsider) == _feed_uids(mine)
    team_feed = f"/calendar/{calendar_token(world, 'viewer')}/projects/{world.ids['project']}.ics"
    assert task in _feed_uids(world.request("GET", team_feed))


def test_calendar_tokens_and_access_tokens_are_not_interchangeable(world: World) -> None:
    token = calendar_token(world, "member")
    answer = world.request("GET", "/users/profile", token=token)
    assert_error_body(answer, 401)
    access = world.users["member"].access
    assert_error_body(world.request("GET", f"/calendar/{access}.ics"), 404)


def test_a_rotated_calendar_token_opens_nothing(world: World) -> None:
    old = calendar_token(world, "other")
    new = world.ok("other", "POST", "/users/profile/calendar-token")["calendar_token"]
    assert new != old
    project = world.ids["project"]
    for path in (f"/calendar/{old}.ics", f"/calendar/{old}/projects/{project}.ics"):
        assert_error_body(world.request("GET", path), 404)
    assert world.request("GET", f"/calendar/{new}/projects/{project}.ics").status == 200
    # Rotating one's own token touches nobody else's.
    assert world.request("GET", f"/calendar/{calendar_token(world, 'member')}.ics").status == 200


# ---- function level: roles ----------------------------------------------------------------------


def test_members_cannot_raise_their_own_project_role(world: World) -> None:
    project = world.ids["project"]
    for who in ("member", "viewer"):
        me = world.users[who].id
        for method in ("PUT", "PATCH"):
            answer = world.as_(who, method, f"/projects/{project}/members/{me}", {"role": "admin"})
            assert_error_body(answer, 403)
    members = world.ok("owner", "GET", f"/projects/{project}/members?limit=100")["items"]
    roles = {m["user_id"]: m["role"] for m in members}
    assert roles[world.users["member"].id] == "member"
    assert roles[world.users["viewer"].id] == "viewer"


def test_nobody_can_take_or_grant_ownership(world: World) -> None:
    project = world.fresh_project()
    owner_id = world.users["owner"].id
    extra_id = world.users["extra"].id
    # `owner` is not a grantable role: 422 whoever asks, the owner included.
    for who in ("owner", "admin"):
        answer = world.as_(
            who, "PATCH", f"/projects/{project}/members/{extra_id}", {"role": "owner"}
        )
        assert_error_body(answer, 422)
    answer = world.as_(
        "owner",
        "POST",
        f"/projects/{project}/members",
        {"user_id": world.users["outsider"].id, "role": "owner"},
    )
    assert_error_body(answer, 422)
    # The owner's own membership cannot be changed or removed, by an admin or anyone.
    answer = world.as_(
        "admin", "PATCH", f"/projects/{project}/members/{owner_id}", {"role": "viewer"}
    )
    assert_error_body(answer, 409)
    answer = world.as_("admin", "DELETE", f"/projects/{project}/members/{owner_id}")
    assert_error_body(answer, 409)
    assert world.ok("admin", "GET", f"/projects/{project}")["owner_id"] == owner_id


def test_only_the_deployments_admin_manages_user_roles(world: World) -> None:
    extra = world.users["extra"].id
    for who in ("owner", "admin", "member", "viewer", "outsider"):
        me = world.users[who].id
        for target in (me, extra):
            answer = world.as_(who, "PUT", f"/users/{target}/role", {"role": "admin"})
            assert_error_body(answer, 403)
        assert_error_body(world.as_(who, "GET", "/users?q="), 403)
        assert world.ok(who, "GET", "/users/profile")["role"] == "member"
    # The admin cannot demote themself (a deployment keeps an admin) ...
    root = world.users["root"].id
    assert_error_body(world.as_("root", "PUT", f"/users/{root}/role", {"role": "member"}), 409)
    # ... but can make someone admin, who then may list users, and take it back.
    assert world.ok("root", "PUT", f"/users/{extra}/role", {"role": "admin"})["role"] == "admin"
    extra_token = world.login("extra")["access_token"]
    assert world.request("GET", "/users?q=", token=extra_token).status == 200
    assert world.ok("root", "PUT", f"/users/{extra}/role", {"role": "member"})["role"] == "member"
    assert world.request("GET", "/users?q=", token=extra_token).status == 403
