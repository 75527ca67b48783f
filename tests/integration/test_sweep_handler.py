"""The `sweep` Lambda on moto, through Chalice's test client: tasks written over HTTP, the
notifications read back over HTTP, the DynamoDB calls a sweep makes, and its metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.domain.model import rfc3339
from chalicelib.observability import metrics
from tests.integration.conftest import Http

SCHEDULED_EVENT = {
    "version": "0",
    "id": "8d3f5f32-0000-0000-0000-000000000000",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-21T12:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/taskbeat-test-sweep"],
    "detail": {},
}


def invoke_sweep() -> dict[str, Any]:
    with Client(app) as client:
        response = client.lambda_.invoke("sweep", SCHEDULED_EVENT)
    return response.payload  # type: ignore[no-any-return]


@pytest.fixture
def recorded_metrics(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    recorded: list[tuple[str, float]] = []
    recorder = metrics()
    original = recorder.add_metric

    def add_metric(name: str, unit: Any, value: float, **kwargs: Any) -> None:
        recorded.append((name, value))
        original(name=name, unit=unit, value=value, **kwargs)

    monkeypatch.setattr(recorder, "add_metric", add_metric)
    return recorded


def due_in(delta: timedelta) -> str:
    return str(rfc3339(datetime.now(UTC) + delta))


def inbox(http: Http, token: str) -> list[dict[str, Any]]:
    response = http("GET", "/notifications", token=token)
    assert response.status_code == 200, response.body
    return response.json["items"]  # type: ignore[no-any-return]


def test_a_sweep_notifies_once_and_a_repeat_writes_nothing(
    http: Http, recorded_metrics: list[tuple[str, float]]
) -> None:
    owner = http.register("owner@example.com")
    token = owner["access_token"]
    soon = http("POST", "/tasks", {"title": "Soon", "due_date": due_in(timedelta(hours=1))}, token)
    late = http(
        "POST", "/tasks", {"title": "Late", "due_date": due_in(-timedelta(minutes=1))}, token
    )
    done = http(
        "POST", "/tasks", {"title": "Done", "due_date": due_in(-timedelta(minutes=2))}, token
    )
    far = http("POST", "/tasks", {"title": "Far", "due_date": due_in(timedelta(days=3))}, token)
    for response in (soon, late, done, far):
        assert response.status_code == 201, response.body
    completed = http("POST", f"/tasks/{done.json['id']}/complete", token=token)
    assert completed.status_code == 200, completed.body

    first = invoke_sweep()
    assert (first["due_soon"], first["overdue"], first["examined"]) == (1, 1, 2)
    assert ("DueSoonNotifications", 1) in recorded_metrics
    assert ("OverdueNotifications", 1) in recorded_metrics
    received = {(n["type"], n["task_id"]) for n in inbox(http, token)}
    assert received == {
        ("task.due_soon", soon.json["id"]),
        ("task.overdue", late.json["id"]),
    }
    for notification in inbox(http, token):
        assert notification["project_id"] == soon.json["project_id"]
        assert notification["read"] is False

    recorded_metrics.clear()
    http.calls.clear()
    second = invoke_sweep()
    assert (second["due_soon"], second["overdue"], second["already"]) == (0, 0, 2)
    # One query per day of the window, one batch read of the claims: no write at all.
    assert set(http.calls) == {"Query", "BatchGetItem"}, http.calls
    assert http.calls.count("BatchGetItem") == 1
    assert ("DueSoonNotifications", 0) in recorded_metrics
    assert len(inbox(http, token)) == 2


def test_the_assignee_is_told_and_a_postponed_task_again(http: Http) -> None:
    owner = http.register("owner@example.com")["access_token"]
    member = http.register("member@example.com")
    project = http("POST", "/projects", {"name": "Team"}, owner).json
    added = http(
        "POST",
        f"/projects/{project['id']}/members",
        {"user_id": member["user"]["id"], "role": "member"},
        owner,
    )
    assert added.status_code in (200, 201), added.body
    body = {
        "title": "Review",
        "project_id": project["id"],
        "assignee_id": member["user"]["id"],
        "due_date": due_in(timedelta(hours=2)),
    }
    task = http("POST", "/tasks", body, owner)
    assert task.status_code == 201, task.body
    invoke_sweep()
    invoke_sweep()
    moved = http(
        "PATCH", f"/tasks/{task.json['id']}", {"due_date": due_in(timedelta(hours=5))}, owner
    )
    assert moved.status_code == 200, moved.body
    invoke_sweep()
    invoke_sweep()
    told = [n for n in inbox(http, member["access_token"]) if n["type"] == "task.due_soon"]
    assert len(told) == 2
    assert all(n["task_id"] == task.json["id"] for n in told)
    assert [n for n in inbox(http, owner) if n["type"] == "task.due_soon"] == []
