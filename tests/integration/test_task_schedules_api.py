"""Schedules, actions and the webhook secret over HTTP (Chalice's test client on moto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.dynamodb.models import TaskModel
from chalicelib.settings import Settings
from tests.integration.conftest import REGION, Http
from tests.integration.test_tasks_api import error_code


@pytest.fixture
def settings() -> Settings:
    # The webhook below points at this machine, as local development allows; that deployed
    # settings refuse it is checked in tests/integration/test_http_client.py.
    return Settings(
        table_prefix="test-",
        jwt_secret_id="test/jwt",
        aws_region=REGION,
        allow_private_webhooks=True,
    )


def test_a_scheduled_webhook_task_round_trips(http: Http) -> None:
    token = http.register("ada@example.com")["access_token"]
    body = {
        "title": "Nightly report",
        "schedule": {"kind": "cron", "expression": "30 2 * * ? *", "timezone": "Europe/Berlin"},
        "action": {
            "type": "webhook",
            "url": "http://127.0.0.1:9/hook",
            "method": "PUT",
            "body": {"x": 1},
        },
        "retry": {"max_attempts": 5},
    }
    created = http("POST", "/tasks", body, token)
    assert created.status_code == 201, created.body
    task = created.json
    assert task["schedule"]["kind"] == "cron"
    assert task["schedule"]["expression"] == "30 2 * * ? *"
    assert task["schedule"]["timezone"] == "Europe/Berlin"
    assert task["next_run_at"].endswith("Z")
    assert task["action"]["method"] == "PUT"
    assert task["retry"] == {"max_attempts": 5, "backoff_seconds": 2, "backoff_rate": 2.0}
    preview = http("GET", f"/tasks/{task['id']}/schedule/preview?count=3", token=token)
    assert preview.status_code == 200
    assert len(preview.json["runs"]) == 3
    assert preview.json["runs"][0] == task["next_run_at"]
    assert len(http.calls) <= 2
    assert (
        http("GET", f"/tasks/{task['id']}/schedule/preview?count=51", token=token).status_code
        == 422
    )


def test_schedule_validation_errors(http: Http) -> None:
    token = http.register("ada@example.com")["access_token"]
    for schedule in (
        {"kind": "cron", "expression": "0 9 * * *"},
        {"kind": "rate", "every": 0, "unit": "minutes"},
        {"kind": "once", "at": "2001-01-01T00:00:00Z"},
        {"kind": "weekly"},
        {"kind": "rate", "every": 1, "unit": "minutes", "timezone": "Mars/Base"},
    ):
        response = http("POST", "/tasks", {"title": "x", "schedule": schedule}, token)
        assert (response.status_code, error_code(response)) == (422, "validation_error"), schedule


def test_the_webhook_secret_is_for_admins_and_differs_per_project(http: Http) -> None:
    owner = http.register("ada@example.com")
    member = http.register("bob@example.com")
    project = http("POST", "/projects", {"name": "Hooks"}, owner["access_token"]).json["id"]
    other = http("POST", "/projects", {"name": "Other"}, owner["access_token"]).json["id"]
    http(
        "POST",
        f"/projects/{project}/members",
        {"user_id": member["user"]["id"], "role": "member"},
        owner["access_token"],
    )
    first = http("GET", f"/projects/{project}/webhook-secret", token=owner["access_token"])
    assert first.status_code == 200
    assert len(first.json["secret"]) == 64
    assert (
        http("GET", f"/projects/{project}/webhook-secret", token=owner["access_token"]).json
        == first.json
    )
    assert (
        http("GET", f"/projects/{other}/webhook-secret", token=owner["access_token"]).json
        != first.json
    )
    assert (
        http("GET", f"/projects/{project}/webhook-secret", token=member["access_token"]).status_code
        == 403
    )
    stranger = http.register("eve@example.com")["access_token"]
    assert http("GET", f"/projects/{project}/webhook-secret", token=stranger).status_code == 404


def test_next_run_at_is_the_next_firing_still_to_come_once_the_stored_one_passed(
    http: Http,
) -> None:
    """Firings do not write the task: once the stored `next_run_at` has passed, the task shows
    the schedule's next firing after now (the list, the read and the version agree)."""
    token = http.register("ada@example.com")["access_token"]
    schedule = {"kind": "rate", "every": 5, "unit": "minutes", "timezone": "UTC"}
    task = http("POST", "/tasks", {"title": "Poll", "schedule": schedule}, token).json
    announced = datetime.fromisoformat(task["next_run_at"].replace("Z", "+00:00"))
    # As it is stored after two firings: the first announced firing, now 7 minutes ago.
    TaskModel(id=task["id"]).update(
        actions=[TaskModel.next_run_at.set(announced - timedelta(minutes=12))]
    )
    shown = http("GET", f"/tasks/{task['id']}", token=token).json
    listed = http("GET", "/tasks", token=token).json["items"][0]
    shown_at = datetime.fromisoformat(shown["next_run_at"].replace("Z", "+00:00"))
    assert shown_at > datetime.now(UTC)
    assert shown_at - announced in (timedelta(0), timedelta(minutes=5))  # in the rate's phase
    assert listed["next_run_at"] == shown["next_run_at"]
    assert shown["version"] == task["version"]
