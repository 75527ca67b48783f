"""Project hooks over HTTP: CRUD, the authorization matrix, validation, the delivery log and
redelivery; on moto also the call budgets, and a task write travelling the whole way: stream
record -> `on_change` -> delivery record + SQS message -> `deliver_hooks` with the SQS event
-> a signed POST to a server on 127.0.0.1, with a retry through ChangeMessageVisibility."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.domain.model import new_id
from chalicelib.domain.realtime import Event, EventType
from chalicelib.settings import Settings
from tests.integration.conftest import Http
from tests.integration.test_workflows_api import error_code, team

# A public address written as a number: accepted without a DNS lookup (none here). These tests
# queue deliveries but never attempt them: nothing is sent to it.
PUBLIC = "https://93.184.216.34/in"
QUEUE_NAME = "test-hook-deliveries"
QUEUE_URL = f"https://sqs.us-east-1.amazonaws.com/123456789012/{QUEUE_NAME}"
HOOK_FIELDS = {
    "id", "project_id", "url", "events", "active", "consecutive_failures", "created_by",
    "created_at", "updated_at", "version",
}  # fmt: skip
DELIVERY_FIELDS = {
    "id", "hook_id", "event_id", "event_type", "status", "attempts", "response_status", "error",
    "redelivery_of", "created_at", "updated_at",
}  # fmt: skip


@pytest.fixture
def settings() -> Settings:
    return Settings(
        table_prefix="test-",
        jwt_secret_id="test/jwt",
        aws_region="us-east-1",
        hook_queue_url=QUEUE_URL,
    )


@pytest.fixture(autouse=True)
def hook_queue(request: pytest.FixtureRequest) -> Iterator[None]:
    request.getfixturevalue("moto_aws")
    boto3.client("sqs", region_name="us-east-1").create_queue(QueueName=QUEUE_NAME)
    return


def admin_team(http: Http) -> dict[str, Any]:
    t = team(http)
    admin = http.register("admin@example.com")
    added = http(
        "POST",
        f"/projects/{t['project']}/members",
        {"user_id": admin["user"]["id"], "role": "admin"},
        t["owner"],
    )
    assert added.status_code == 201, added.body
    return {**t, "admin": admin["access_token"]}


def event_of(project_id: str, kind: EventType = EventType.TASK_CREATED) -> Event:
    return Event(new_id(), kind, datetime.now(UTC), {"id": "t", "title": "T"}, project_id)


def test_hooks_crud_and_roles(http: Http) -> None:
    t = admin_team(http)
    path = f"/projects/{t['project']}/hooks"
    body = {"url": "https://93.184.216.34/in", "events": ["task.created", "task.updated"]}
    for who, status in (("member", 403), ("viewer", 403), ("stranger", 404)):
        answer = http("POST", path, body, t[who])
        assert answer.status_code == status, (who, answer.body)
        assert http("GET", path, token=t[who]).status_code == status
    created = http("POST", path, body, t["admin"])
    assert created.status_code == 201, created.body
    hook = created.json
    assert set(hook) == HOOK_FIELDS
    assert (hook["active"], hook["events"], hook["version"], hook["consecutive_failures"]) == (
        True,
        body["events"],
        1,
        0,
    )
    assert created.headers["ETag"] == '"1"'
    by_owner = http("POST", path, {**body, "active": False}, t["owner"])
    assert by_owner.status_code == 201
    listed = http("GET", path, token=t["owner"]).json["items"]
    assert [h["id"] for h in listed] == [by_owner.json["id"], hook["id"]]
    one = f"/hooks/{hook['id']}"
    assert http("GET", one, token=t["owner"]).json == hook
    for who, status in (("member", 403), ("viewer", 403), ("stranger", 404)):
        assert http("GET", one, token=t[who]).status_code == status
        assert http("PATCH", one, {"active": False}, t[who]).status_code == status
        assert http("DELETE", one, token=t[who]).status_code == status
        assert http("GET", f"{one}/deliveries", token=t[who]).status_code == status
    changed = http("PATCH", one, {"events": ["task.deleted"]}, t["admin"], If_Match='"1"')
    assert (changed.status_code, changed.json["events"], changed.json["version"]) == (
        200,
        ["task.deleted"],
        2,
    )
    stale = http("PATCH", one, {"active": False}, t["admin"], If_Match='"1"')
    assert (stale.status_code, error_code(stale)) == (412, "precondition_failed")
    assert http("DELETE", one, token=t["owner"], If_Match='"2"').status_code == 204
    assert http("GET", one, token=t["owner"]).status_code == 404
    assert http("GET", "/hooks/not-a-hook", token=t["owner"]).status_code == 404
    assert http("POST", "/deliveries/nope/redeliver", token=t["owner"]).status_code == 404


def test_hook_bodies_are_validated(http: Http) -> None:
    t = admin_team(http)
    path = f"/projects/{t['project']}/hooks"
    for body, loc in (
        ({"url": "https://db.internal.test/x", "events": ["task.created"]}, ["body", "url"]),
        ({"url": "gopher://a.example.com", "events": ["task.created"]}, ["body", "url"]),
        ({"url": PUBLIC, "events": ["notification"]}, ["body", "events"]),
        ({"url": PUBLIC, "events": []}, ["body", "events"]),
        ({"url": PUBLIC, "events": ["task.created"], "id": "x"}, ["body", "id"]),
        ({"events": ["task.created"]}, ["body", "url"]),
    ):
        answer = http("POST", path, body, t["admin"])
        assert (answer.status_code, error_code(answer)) == (422, "validation_error"), body
        assert answer.json["error"]["details"][0]["loc"] == loc, answer.json
    hook = http("POST", path, {"url": PUBLIC, "events": ["task.created"]}, t["admin"])
    one = f"/hooks/{hook.json['id']}"
    for patch in ({"url": None}, {"version": 3}, {"url": "https://db.internal.test/"}):
        assert http("PATCH", one, patch, t["admin"]).status_code == 422, patch


def test_the_delivery_log_and_redelivery(http: Http, container: bootstrap.Container) -> None:
    t = admin_team(http)
    path = f"/projects/{t['project']}/hooks"
    hook = http("POST", path, {"url": PUBLIC, "events": ["task.created"]}, t["admin"]).json
    with container.request_scope():
        assert container.hooks.dispatch([event_of(t["project"]), event_of(t["project"])]) == 2
    log = http("GET", f"/hooks/{hook['id']}/deliveries?limit=1", token=t["admin"])
    assert log.status_code == 200
    (newest,) = log.json["items"]
    assert set(newest) == DELIVERY_FIELDS
    assert (newest["status"], newest["attempts"], newest["response_status"]) == ("pending", 0, None)
    assert log.json["next_cursor"]
    rest = http(
        "GET", f"/hooks/{hook['id']}/deliveries?cursor={log.json['next_cursor']}", token=t["admin"]
    ).json
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    again = http("POST", f"/deliveries/{newest['id']}/redeliver", token=t["owner"])
    assert again.status_code == 202, again.body
    assert (again.json["redelivery_of"], again.json["event_id"]) == (
        newest["id"],
        newest["event_id"],
    )
    for who, status in (("member", 403), ("stranger", 404)):
        assert (
            http("POST", f"/deliveries/{newest['id']}/redeliver", token=t[who]).status_code
            == status
        )
    http("PATCH", f"/hooks/{hook['id']}", {"active": False}, t["admin"])
    off = http("POST", f"/deliveries/{newest['id']}/redeliver", token=t["owner"])
    assert (off.status_code, error_code(off)) == (409, "conflict")
