"""API tokens on every route: the route table times {a session, a token of each single scope, of
all scopes, an expired token, a revoked token, a token whose user is gone}.

Each gets what API.md's "Machine access" says: a token acts as its user within its scopes
(`read` every GET, `run` running, cancelling and retrying, `write` the rest), 403
`insufficient_scope` outside them and on the routes no token may call (tokens, credentials,
roles, sessions), 401 once expired, revoked or its user gone. A refused request writes nothing.

The scopes are stated here, apart from the routes' declarations, so a route declared with the
wrong scope fails. A new way for a token to stop working (issue 19's deactivation) is one more
entry of `DEAD`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.api import all_routes
from chalicelib.api.routing import required_scope
from chalicelib.domain.api_tokens import Scope
from tests.security.conftest import World
from tests.security.routes import CASES, Case, api_token

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}

# What the contract asks of each route (API.md), stated independently of the declarations.
RUN = {
    ("POST", "/tasks/{task_id}/run"),
    ("POST", "/workflows/{workflow_id}/run"),
    ("POST", "/workflow-runs/{run_id}/cancel"),
}
SESSION_ONLY = {
    ("POST", "/auth/logout"),
    ("PUT", "/users/profile"),
    ("PATCH", "/users/profile"),
    ("PUT", "/users/{user_id}/role"),
    ("POST", "/users/profile/calendar-token"),
    ("POST", "/users/profile/tokens"),
    ("GET", "/users/profile/tokens"),
    ("DELETE", "/users/profile/tokens/{token_id}"),
    ("GET", "/users/{user_id}/tokens"),
    ("DELETE", "/users/{user_id}/tokens/{token_id}"),
}


# API.md's `run`: running, cancelling and retrying (issue 20's cancel and retry routes too).
RUN_ACTIONS = ("run", "cancel", "retry")


def needed_scope(case: Case) -> str:
    if case.method == "POST" and case.route.rsplit("/", 1)[-1] in RUN_ACTIONS:
        return "run"
    return "read" if case.method == "GET" else "write"


def test_the_run_rule_names_the_known_run_routes() -> None:
    assert {case.key for case in CASES if needed_scope(case) == "run"} >= RUN


def _expire(world: World, who: str) -> str:
    from chalicelib.adapters.dynamodb.models import ApiTokenModel

    made = api_token(world, who, tuple(Scope))
    ApiTokenModel(user_id=world.users[who].id, id=made["id"][:26]).update(
        actions=[ApiTokenModel.expires_at.set(datetime.now(UTC) - timedelta(seconds=1))]
    )
    return str(made["token"])


def _revoke(world: World, who: str) -> str:
    made = api_token(world, who, tuple(Scope))
    world.ok(who, "DELETE", f"/users/profile/tokens/{made['id']}")
    return str(made["token"])


def _user_gone(world: World, who: str) -> str:
    from chalicelib.adapters.dynamodb.models import UserModel

    ghost = world.register(f"ghost-of-{who}")
    made = api_token(world, ghost.name, tuple(Scope))
    UserModel(id=ghost.id).delete()
    return str(made["token"])


# Tokens that no longer work, and how to make one of `who`'s.
DEAD: dict[str, Callable[[World, str], str]] = {
    "expired": _expire,
    "revoked": _revoke,
    "user_gone": _user_gone,
}
LIVE: dict[str, tuple[str, ...]] = {
    "read": ("read",),
    "write": ("write",),
    "run": ("run",),
    "all": ("read", "write", "run"),
}
KINDS = ["session", *LIVE, *DEAD]


def acting(case: Case) -> str:
    """Who calls: someone the route lets in with a session (then the token decides)."""
    return "root" if case.access == "global_admin" else "member"


@pytest.fixture(scope="module")
def tokens(world: World) -> dict[tuple[str, str], str]:
    made: dict[tuple[str, str], str] = {}
    for who in ("member", "root"):
        for kind, scopes in LIVE.items():
            made[(who, kind)] = str(api_token(world, who, scopes)["token"])
        for kind, make in DEAD.items():
            made[(who, kind)] = make(world, who)
    return made


def expected(case: Case, kind: str) -> tuple[int, str | None]:
    who = acting(case)
    if kind == "session" or case.access == "public" or case.secret_path:
        return case.expected(who), None  # no bearer token at stake
    if kind in DEAD:
        return 401, "unauthorized"
    if case.key in SESSION_ONLY or needed_scope(case) not in LIVE[kind]:
        return 403, "insufficient_scope"
    return case.expected(who), None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_each_credential_gets_what_the_contract_says(
    world: World, tokens: dict[tuple[str, str], str], case: Case, kind: str
) -> None:
    who = acting(case)
    req = case.prepare(world, who)
    if kind == "session" or case.access == "public" or case.secret_path:
        bearer = req.token or world.users[who].access
    else:
        bearer = tokens[(who, kind)]
    answer = world.request(case.method, req.path, req.body, token=bearer)
    status, code = expected(case, kind)
    assert answer.status == status, (kind, answer)
    if code is not None:
        assert answer.code == code, answer
        # Refused means refused: not even the token's last use is written.
        assert WRITES.isdisjoint(world.dynamo_calls), world.dynamo_calls
        if status == 401:
            assert (answer.header("WWW-Authenticate") or "").startswith("Bearer")


def test_the_declarations_say_what_the_contract_says() -> None:
    """Every route's declared scope and session-only flag, against the table above."""
    by_key = {case.key: case for case in CASES}
    for spec in all_routes():
        for method in spec.methods:
            case = by_key[(method, spec.path)]
            assert spec.session_only == (case.key in SESSION_ONLY), case
            if spec.auth:
                assert required_scope(spec, method) == needed_scope(case), case


def test_cancel_and_retry_routes_need_the_run_scope() -> None:
    """The rule for routes yet to come (issue 20's cancel and retry): declared `run`."""
    for spec in all_routes():
        last = spec.path.rstrip("/").rsplit("/", 1)[-1]
        if last in RUN_ACTIONS and "POST" in spec.methods:
            assert required_scope(spec, "POST") == "run", spec.path
        assert spec.scope in (None, *Scope), spec.path


def test_a_route_without_a_declaration_gets_its_scope_from_its_method() -> None:
    from chalicelib.api.routing import RouteSpec

    def spec(**extra: Any) -> RouteSpec:
        return RouteSpec("/x", ("GET",), "", "", None, None, None, 200, True, (), **extra)

    assert required_scope(spec(), "GET") == "read"
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert required_scope(spec(), method) == "write"
    assert required_scope(spec(scope="run"), "POST") == "run"
