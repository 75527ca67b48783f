"""OWASP API3, broken object property level authorization: what a body may set, and what an
answer may show.

API.md: "Fields the caller may not set (`id`, `owner_id`, `created_at`, `version`, ...) are
rejected with 422", and unknown fields too. Every route with a body is sent the fields its
answer shows but its body does not take (plus the usual suspects: `role`, `password_hash`, ...)
and must refuse each by name, writing nothing; nested objects refuse theirs as well. Answers
show the documented fields only: no password hash, session or key material anywhere, the
webhook secret only on its own admin route, and no internal detail in errors.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.api import all_routes
from chalicelib.api.routing import RouteSpec
from chalicelib.domain.model import new_id
from tests.security.conftest import PASSWORD, Answer, World
from tests.security.routes import CASE_BY_KEY, Case

ROUTES = all_routes()  # every route module imported

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
# Set by the server, whatever a body says; each is refused wherever the body does not take it.
SERVER_FIELDS = {
    "id",
    "version",
    "created_at",
    "updated_at",
    "completed_at",
    "next_run_at",
    "owner_id",
    "my_role",
    "created_by",
    "author_id",
    "role",
    "password_hash",
    "personal",
    "personal_project_id",
    "project_id",
    "email",
    "user_id",
    "changed_by_rule",
}
USER_FIELDS = {"id", "email", "name", "role", "timezone", "created_at", "updated_at", "version"}


def _spec_cases() -> list[tuple[str, RouteSpec]]:
    return [(m, spec) for spec in ROUTES if spec.body is not None for m in spec.methods]


def _acting(case: Case) -> str:
    """Someone who may make this call."""
    return next(who for who in ("member", "owner", "root") if case.expected(who) < 400)


def _forbidden_fields(spec: RouteSpec) -> set[str]:
    assert spec.body is not None
    shown = set(spec.response.model_fields) if spec.response else set()
    return (shown | SERVER_FIELDS) - set(spec.body.model_fields)


@pytest.mark.parametrize(
    ("method", "spec"), _spec_cases(), ids=lambda x: x if isinstance(x, str) else x.path
)
def test_a_body_cannot_set_what_the_server_owns(world: World, method: str, spec: RouteSpec) -> None:
    case = CASE_BY_KEY[(method, spec.path)]
    who = _acting(case)
    req = case.prepare(world, who)
    forbidden = _forbidden_fields(spec)
    assert forbidden, spec.path
    body = {**(req.body or {}), **dict.fromkeys(forbidden, "01HZZZZZZZZZZZZZZZZZZZZZZZ")}
    token = req.token or world.users[who].access
    answer = world.request(method, req.path, body, token=token)
    assert answer.status == 422, answer
    assert answer.code == "validation_error"
    refused = {
        tuple(detail["loc"])
        for detail in answer.json["error"]["details"]
        if len(detail["loc"]) == 2
    }
    assert {("body", name) for name in forbidden} <= refused, refused
    assert WRITES.isdisjoint(world.dynamo_calls), world.dynamo_calls
    # The same request without them succeeds: it was the fields that were refused.
    if method in ("PUT", "PATCH") and case.access != "public":
        assert world.request(method, req.path, req.body, token=token).status == case.status


NESTED = [
    ("schedule", {"schedule": {"kind": "once", "at": "2030-01-01T00:00:00Z", "next_run_at": "x"}}),
    (
        "action",
        {"action": {"type": "webhook", "url": "https://hooks.example/x", "secret": "mine"}},
    ),
    ("retry", {"retry": {"max_attempts": 2, "attempts": 0}}),
]


@pytest.mark.parametrize(("name", "body"), NESTED, ids=[n for n, _ in NESTED])
def test_nested_task_objects_refuse_unknown_fields(
    world: World, name: str, body: dict[str, Any]
) -> None:
    answer = world.as_("member", "PATCH", f"/tasks/{world.ids['task']}", body)
    assert answer.status == 422, answer
    locs = [detail["loc"] for detail in answer.json["error"]["details"]]
    assert any(loc[:2] == ["body", name] for loc in locs), locs


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/templates/{template}", {"task": {"title": "x", "created_by": "me"}}),
        ("PATCH", "/templates/{template}", {"subtasks": [{"title": "x", "id": "y"}]}),
        (
            "PATCH",
            "/rules/{rule}",
            {"trigger": {"event": "task.created", "conditions": {}, "created_by": "me"}},
        ),
        (
            "PATCH",
            "/workflows/{workflow}",
            {"steps": [{"key": "a", "task_id": "{task}", "status": "succeeded"}]},
        ),
    ],
    ids=["template task", "template subtask", "rule trigger", "workflow step"],
)
def test_nested_objects_of_automation_refuse_unknown_fields(
    world: World, method: str, path: str, body: dict[str, Any]
) -> None:
    import json

    filled = json.loads(json.dumps(body).replace("{task}", world.ids["task"]))
    answer = world.as_("member", method, path.format(**world.ids), filled)
    assert answer.status == 422, answer
    assert WRITES.isdisjoint(world.dynamo_calls)


def test_registration_cannot_choose_a_role(world: World) -> None:
    body = {"email": f"x-{new_id().lower()}@example.com", "password": PASSWORD, "name": "X"}
    answer = world.request("POST", "/auth/register", {**body, "role": "admin"})
    assert answer.status == 422, answer
    made = world.request("POST", "/auth/register", body)
    assert made.status == 201
    assert made.json["user"]["role"] == "member"


def test_bodies_of_action_routes_are_ignored(world: World) -> None:
    """Routes that take no body ignore one: a manual run stays manual and queued, completing
    stamps the server's time."""
    execution = world.ok(
        "member",
        "POST",
        f"/tasks/{world.ids['task']}/run",
        {"status": "succeeded", "trigger": "schedule", "attempts": 9},
    )
    assert (execution["status"], execution["trigger"], execution["attempts"]) == (
        "queued",
        "manual",
        0,
    )
    task = world.fresh_task()
    done = world.ok(
        "member", "POST", f"/tasks/{task}/complete", {"completed_at": "2000-01-01T00:00:00Z"}
    )
    assert done["status"] == "completed"
    assert not done["completed_at"].startswith("2000")


# ---- what answers show ------------------------------------------------------------------------


def test_user_objects_show_the_documented_fields_only(world: World) -> None:
    tokens = world.login("member")
    assert set(tokens["user"]) == USER_FIELDS
    # The calendar token is a secret of its user: on their own profile only.
    assert set(world.ok("member", "GET", "/users/profile")) == USER_FIELDS | {"calendar_token"}
    listed = world.ok("root", "GET", "/users?q=&limit=100")["items"]
    assert listed
    assert all(set(user) == USER_FIELDS for user in listed)
    members = world.ok("viewer", "GET", f"/projects/{world.ids['project']}/members?limit=100")
    assert all(set(m) == {"user_id", "email", "name", "role", "added_at"} for m in members["items"])


def test_the_webhook_secret_is_shown_on_its_admin_route_only(world: World) -> None:
    project = world.ids["project"]
    secret = world.ok("admin", "GET", f"/projects/{project}/webhook-secret")["secret"]
    assert len(secret) >= 32
    for who in ("member", "viewer"):
        assert world.as_(who, "GET", f"/projects/{project}/webhook-secret").status == 403
    task = world.fresh_task(
        action={"type": "webhook", "url": "http://93.184.216.34/hook", "method": "POST"}
    )
    execution = world.ok("member", "POST", f"/tasks/{task}/run")
    answers = [
        world.as_("owner", "GET", f"/tasks/{task}"),
        world.as_("owner", "GET", f"/executions/{execution['id']}"),
        world.as_("owner", "GET", f"/projects/{project}"),
        world.as_("owner", "GET", f"/tasks/{task}/history"),
        world.as_("owner", "GET", "/openapi.json"),
    ]
    for answer in answers:
        assert answer.status == 200
        assert secret.encode() not in answer.body
    # Each project signs with its own secret: one leaked secret forges nothing elsewhere.
    personal = world.users["admin"].personal_project_id
    other = world.ok("admin", "GET", f"/projects/{personal}/webhook-secret")["secret"]
    assert other != secret


def test_validation_errors_do_not_echo_secrets(world: World) -> None:
    password = "p" * 129  # over the limit
    answer = world.request(
        "POST",
        "/auth/register",
        {"email": f"e-{new_id().lower()}@example.com", "password": password, "name": "E"},
    )
    assert answer.status == 422
    assert password.encode() not in answer.body
    changed = world.as_(
        "member", "PATCH", "/users/profile", {"password": "short", "current_password": PASSWORD}
    )
    assert changed.status == 422
    assert PASSWORD.encode() not in changed.body
    assert b'"short"' not in changed.body


def test_an_unexpected_failure_answers_500_without_detail(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("table taskbeat-prod-users at arn:aws:dynamodb:... password=hunter2")

    monkeypatch.setattr(world.container.users, "profile", broken)
    answer: Answer = world.as_("member", "GET", "/users/profile")
    assert answer.status == 500
    assert answer.json["error"] == {
        "code": "internal_error",
        "message": "internal error",
        "details": [],
    }
    assert b"hunter2" not in answer.body
    assert b"Traceback" not in answer.body
    assert b"arn:aws" not in answer.body
