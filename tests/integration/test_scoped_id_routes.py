"""Every route with a scoped id in its path (chalicelib.domain.ids) answers a malformed one as
it answers a well-formed id of no item: 404 with API.md's error body. Nothing is read for it:
the request's only DynamoDB call is the session's (authentication still comes first, so 401
comes before 404).

The routes come from the route table, so a new route with a scoped id is covered at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.adapters.dynamodb import connection
from chalicelib.api.route_table import ROUTE_MODULES
from chalicelib.api.routing import SCOPED_ID_PARAMS
from chalicelib.domain.model import new_id
from tests.integration.conftest import PASSWORD, Http
from tests.integration.helpers import assert_error

ROUTES = sorted(
    (method, path)
    for paths in ROUTE_MODULES.values()
    for path, methods in paths.items()
    for method in methods
    if set(re.findall(r"{(\w+)}", path)) & set(SCOPED_ID_PARAMS)
)
# A body each route takes, so that its answer is the id's, not the body's (422).
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/tasks/{task_id}/assign"): {"assignee_id": None},
    ("POST", "/tasks/{task_id}/comments"): {"body": "hello"},
}


def malformed(real: str) -> dict[str, str]:
    """Near misses of a real scoped id, and things that are no id at all."""
    return {
        "lower case": real.lower(),
        "one short": real[:-1],
        "one long": real + "0",
        "not Crockford (U)": real[:-1] + "U",
        "item overflows": "8" + real[1:],
        "project overflows": real[:26] + "Z" + real[27:],
        "no project": real[:26],
        "word": "nonsense",
        "oversized": "X" * 300,
    }


class Reads:
    """Every DynamoDB call a request makes, with its parameters."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, event_name: str, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((event_name.rsplit(".", 1)[-1], json.dumps(params, default=str)))


@pytest.fixture
def reads(http: Http) -> Iterator[Reads]:
    recorder = Reads()
    events = connection.root().client.meta.events
    events.register("before-call.dynamodb", recorder)
    yield recorder
    events.unregister("before-call.dynamodb", recorder)


@pytest.fixture
def caller(http: Http) -> dict[str, Any]:
    me = http.register("ada@example.com")
    token = me["access_token"]
    task = http("POST", "/tasks", {"title": "real"}, token)
    assert task.status_code == 201, task.body
    admin = http("POST", "/auth/login", {"email": "first@example.com", "password": PASSWORD})
    assert admin.status_code == 200, admin.body
    return {
        "token": token,
        "admin_token": admin.json["access_token"],
        "task_id": task.json["id"],
        "project_id": task.json["project_id"],
        "user_id": me["user"]["id"],
    }


def test_the_table_holds_the_routes_of_every_kind_of_scoped_id() -> None:
    named = {name for _, path in ROUTES for name in re.findall(r"{(\w+)}", path)}
    assert named >= set(SCOPED_ID_PARAMS)
    assert len(ROUTES) >= 30, ROUTES


@pytest.mark.parametrize(("method", "route"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_a_malformed_scoped_id_is_404_without_a_read(
    http: Http, reads: Reads, caller: dict[str, Any], method: str, route: str
) -> None:
    body = BODIES.get((method, route), {} if method in ("PUT", "PATCH", "POST") else None)

    def path_with(scoped: str) -> str:
        values = dict.fromkeys(SCOPED_ID_PARAMS, scoped)
        return route.format(**values, comment_id=new_id(), user_id=caller["user_id"])

    # An admin's route (another user's API tokens) answers only admins, 403 before any id.
    token = caller["admin_token"] if route.startswith("/users/{user_id}") else caller["token"]
    missing = http(method, path_with(new_id() + caller["project_id"]), body, token)
    assert_error(missing, 404, "not_found")

    for why, value in malformed(caller["task_id"]).items():
        reads.calls.clear()
        answer = http(method, path_with(value), body, token)
        error = assert_error(answer, 404, "not_found")
        assert error["error"]["message"] == missing.json["error"]["message"], why
        assert error["error"]["details"] == [], why
        # The session's read (the caller is authenticated), and nothing for the id.
        assert len(reads.calls) == 1, (why, reads.calls)
        assert value not in reads.calls[0][1], (why, reads.calls)

        unauthenticated = http(method, path_with(value), body)
        assert_error(unauthenticated, 401, "unauthorized")
