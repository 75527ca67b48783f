"""Scheduled workflows on moto: the scheduler adapter's workflow schedules, the stream consumer
keeping them in step with workflows (and with a project's deletion), and the `fire` Lambda
making one run per firing however often it is delivered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.adapters.aws.scheduler import EventBridgeScheduler, schedule_name
from chalicelib.domain.projects import ProjectCreate
from chalicelib.domain.schedules import ScheduleTarget
from chalicelib.domain.tasks import TaskCreate
from chalicelib.domain.users import RegisterInput
from chalicelib.domain.workflows import WorkflowCreate, WorkflowUpdate
from chalicelib.handlers import scheduling, streams
from tests.integration.conftest import REGION, Http
from tests.integration.test_executions_api import invoke_fire
from tests.integration.test_schedule_stream import scheduled_container
from tests.integration.test_scheduler_adapter import (
    GROUP,
    HOURLY,
    PAYLOAD,
    TASK_ID,
    adapter,
    client,
    names,
)
from tests.integration.test_search import stream_event

__all__ = ["adapter", "client", "scheduled_container"]  # fixtures, shared

WORKFLOW = ScheduleTarget.WORKFLOW
WORKFLOW_ID = "01JWORKFLOWAAAAAAAAAAAAAAA01JPROJAAAAAAAAAAAAAAAAAA"
RATE = {"kind": "rate", "every": 5, "unit": "minutes", "timezone": "UTC"}


def stored(client: Any, workflow_id: str) -> dict[str, Any]:
    result: dict[str, Any] = client.get_schedule(
        GroupName=GROUP, Name=schedule_name(workflow_id, WORKFLOW)
    )
    return result


# ---- the adapter --------------------------------------------------------------------------------


def test_a_workflow_schedule_is_named_after_it_and_fires_it(
    adapter: EventBridgeScheduler, client: Any
) -> None:
    payload = {"workflow_id": WORKFLOW_ID, "project_id": PAYLOAD["project_id"]}
    adapter.put(WORKFLOW_ID, HOURLY, payload, kind=WORKFLOW)
    got = stored(client, WORKFLOW_ID)
    assert got["Name"] == f"workflow-{WORKFLOW_ID}"
    assert len(got["Name"]) <= 64
    assert got["ScheduleExpression"] == "rate(1 hour)"
    assert json.loads(got["Target"]["Input"]) == {
        **payload,
        "scheduled_time": "<aws.scheduler.scheduled-time>",
        "attempt": "<aws.scheduler.attempt-number>",
        "execution_id": "<aws.scheduler.execution-id>",
    }
    # A task's schedule lives beside it; each kind deletes its own.
    adapter.put(TASK_ID, HOURLY, PAYLOAD)
    assert sorted(names(client)) == [f"task-{TASK_ID}", f"workflow-{WORKFLOW_ID}"]
    adapter.delete(WORKFLOW_ID, kind=WORKFLOW)
    assert names(client) == [f"task-{TASK_ID}"]
    adapter.delete(WORKFLOW_ID, kind=WORKFLOW)  # gone already: fine


def test_workflow_names_stay_valid_for_any_id() -> None:
    odd = "x/" * 40
    name = schedule_name(odd, WORKFLOW)
    assert name.startswith("workflow-")
    assert len(name) <= 64
    assert name == schedule_name(odd, WORKFLOW) != schedule_name(odd)


# ---- the stream consumer ------------------------------------------------------------------------


def test_the_stream_consumer_keeps_workflow_schedules_in_step(
    scheduled_container: bootstrap.Container,
) -> None:
    container = scheduled_container
    client = boto3.client("scheduler", region_name=REGION)
    table = container.settings.table_name("workflows")
    auth = container.auth
    me = auth.authenticate(
        auth.register(RegisterInput(email="w@x.io", password="long enough", name="W")).access_token
    )
    with container.request_scope():
        task = container.tasks.create(me, TaskCreate(title="Report"))
    steps = [{"key": "report", "task_id": task.id}]
    with container.request_scope():
        workflow = container.workflows.create(
            me, WorkflowCreate.model_validate({"name": "Nightly", "steps": steps})
        )
    assert streams.on_change(stream_event(table))["schedule_calls"] == 0
    assert names(client) == []

    def change(**fields: Any) -> dict[str, Any]:
        with container.request_scope():
            container.workflows.update(me, workflow.id, WorkflowUpdate.model_validate(fields))
        # Each batch holds the whole stream: earlier records replay (at least once).
        return streams.on_change(stream_event(table))

    change(schedule={"kind": "rate", "every": 2, "unit": "hours", "timezone": "UTC"})
    got = stored(client, workflow.id)
    assert got["ScheduleExpression"] == "rate(2 hours)"
    assert json.loads(got["Target"]["Input"])["workflow_id"] == workflow.id
    assert json.loads(got["Target"]["Input"])["project_id"] == workflow.project_id
    assert "task_id" not in json.loads(got["Target"]["Input"])

    change(schedule={"kind": "cron", "expression": "30 7 * * ? *", "timezone": "Asia/Tokyo"})
    got = stored(client, workflow.id)
    assert (got["ScheduleExpression"], got["ScheduleExpressionTimezone"]) == (
        "cron(30 7 * * ? *)",
        "Asia/Tokyo",
    )
    change(name="Nightly (v2)")
    latest = {"Records": stream_event(table)["Records"][-1:]}
    assert streams.on_change(latest)["schedule_calls"] == 0  # a rename leaves it alone

    paused = {"kind": "cron", "expression": "30 7 * * ? *", "timezone": "Asia/Tokyo"}
    change(schedule={**paused, "paused": True})
    assert stored(client, workflow.id)["State"] == "DISABLED"

    change(schedule=None)
    assert names(client) == []

    with container.request_scope():
        container.workflows.update(
            me, workflow.id, WorkflowUpdate.model_validate({"schedule": _once()})
        )
        container.workflows.delete(me, workflow.id)
    streams.on_change(stream_event(table))
    assert names(client) == []


def test_a_projects_deletion_removes_its_workflows_schedules(
    scheduled_container: bootstrap.Container,
) -> None:
    container = scheduled_container
    client = boto3.client("scheduler", region_name=REGION)
    auth = container.auth
    me = auth.authenticate(
        auth.register(RegisterInput(email="p@x.io", password="long enough", name="P")).access_token
    )
    with container.request_scope():
        project = container.projects.create(me, ProjectCreate(name="Doomed")).project
    with container.request_scope():
        task = container.tasks.create(me, TaskCreate(title="Ping", project_id=project.id))
    body = {
        "name": "Hourly",
        "project_id": project.id,
        "steps": [{"key": "ping", "task_id": task.id}],
        "schedule": RATE,
    }
    with container.request_scope():
        workflow = container.workflows.create(me, WorkflowCreate.model_validate(body))
    _drain(container)
    assert names(client) == [schedule_name(workflow.id, WORKFLOW)]

    with container.request_scope():
        container.projects.delete(me, project.id)
    _drain(container)  # the project's REMOVE purges its workflows, whose REMOVEs follow
    assert names(client) == []


def _drain(container: bootstrap.Container) -> None:
    """Feed the consumer every table's stream until it has nothing more to do (each batch
    holds a whole stream; replays are harmless)."""
    tables = ("projects", "tasks", "workflows")
    for _ in range(3):
        for name in tables:
            streams.on_change(stream_event(container.settings.table_name(name)))


def _once() -> dict[str, Any]:
    at = datetime.now(UTC) + timedelta(days=2)
    return {"kind": "once", "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "timezone": "UTC"}


# ---- the fire Lambda ---------------------------------------------------------------------------


def firing(
    workflow: dict[str, Any], attempt: int, scheduled_time: str = "2026-11-21T12:05:00Z"
) -> dict[str, Any]:
    return {
        "workflow_id": workflow["id"],
        "project_id": workflow["project_id"],
        "scheduled_time": scheduled_time,
        "attempt": attempt,
        "execution_id": f"delivery-{attempt}",
    }


def scheduled_workflow(http: Http, token: str, **schedule: Any) -> dict[str, Any]:
    task = http("POST", "/tasks", {"title": "Ping"}, token)
    assert task.status_code == 201, task.body
    body = {
        "name": "Every five minutes",
        "steps": [{"key": "ping", "task_id": task.json["id"]}],
        "schedule": {**RATE, **schedule},
    }
    created = http("POST", "/workflows", body, token)
    assert created.status_code == 201, created.body
    return created.json  # type: ignore[no-any-return]


def test_three_deliveries_of_one_firing_make_one_run(http: Http) -> None:
    owner = http.register("owner@example.com")["access_token"]
    workflow = scheduled_workflow(http, owner)

    http.calls.clear()
    answers = [invoke_fire(firing(workflow, 1))]
    # Batch get of workflow + project; one transaction (claim, slot, run); next_run_at.
    assert len(http.calls) <= 3, http.calls
    answers += [invoke_fire(firing(workflow, attempt)) for attempt in (2, 3)]
    assert [a["created"] for a in answers] == [True, False, False]
    assert len({a["workflow_run_id"] for a in answers}) == 1
    assert answers[0]["status"] == "queued"  # no runner configured here

    runs = http("GET", f"/workflows/{workflow['id']}/runs", token=owner).json["items"]
    assert [r["id"] for r in runs] == [answers[0]["workflow_run_id"]]
    assert (runs[0]["trigger"], runs[0]["scheduled_for"]) == ("schedule", "2026-11-21T12:05:00Z")

    # The same instant written another way is the same firing.
    same = invoke_fire(firing(workflow, 4, "2026-11-21T13:05:00+01:00"))
    assert (same["workflow_run_id"], same["created"]) == (runs[0]["id"], False)
    # The next firing is a new one; the first run still waits (no runner here), so the
    # default overlap policy (skip) records it skipped.
    following = invoke_fire(firing(workflow, 1, "2026-11-21T12:10:00Z"))
    assert (following["created"], following["status"]) == (True, "skipped")
    assert following["reason"] == "the previous run is still running"
    skipped = http("GET", f"/workflow-runs/{following['workflow_run_id']}", token=owner).json
    assert (skipped["status"], [s["status"] for s in skipped["steps"]]) == (
        "skipped",
        ["skipped"],
    )

    # A firing moves next_run_at on (one at an earlier time never moves it back).
    assert http("GET", f"/workflows/{workflow['id']}", token=owner).json == workflow
    due = workflow["next_run_at"]
    assert invoke_fire(firing(workflow, 1, due))["created"] is True
    moved = http("GET", f"/workflows/{workflow['id']}", token=owner).json
    following_due = datetime.fromisoformat(due) + timedelta(minutes=5)
    assert datetime.fromisoformat(moved["next_run_at"]) == following_due
    assert moved["version"] == workflow["version"]


def test_overlap_allow_runs_every_firing(http: Http) -> None:
    owner = http.register("owner@example.com")["access_token"]
    workflow = scheduled_workflow(http, owner, overlap="allow")
    answers = [
        invoke_fire(firing(workflow, 1, at))
        for at in ("2026-11-21T12:05:00Z", "2026-11-21T12:10:00Z")
    ]
    assert [(a["created"], a["status"]) for a in answers] == [(True, "queued")] * 2


def test_firings_of_paused_and_deleted_workflows(http: Http) -> None:
    owner = http.register("owner@example.com")["access_token"]
    paused = scheduled_workflow(http, owner, paused=True)
    answers = [invoke_fire(firing(paused, attempt)) for attempt in (1, 2)]
    assert [(a["created"], a["status"]) for a in answers] == [(True, "skipped"), (False, "skipped")]
    assert answers[0]["workflow_run_id"] == answers[1]["workflow_run_id"]
    assert answers[0]["reason"] == "the schedule is paused"

    gone = scheduled_workflow(http, owner)
    assert http("DELETE", f"/workflows/{gone['id']}", token=owner).status_code == 204
    answer = invoke_fire(firing(gone, 1))
    assert (answer["workflow_run_id"], answer["created"]) == (None, False)


def test_a_firing_names_a_task_or_a_workflow(container: Any) -> None:
    for event in (
        {"workflow_id": "W"},
        {"workflow_id": "W", "scheduled_time": "tomorrow"},
        {"workflow_id": "W", "task_id": "T", "scheduled_time": "2026-11-21T12:05:00Z"},
        {"workflow_id": "", "scheduled_time": "2026-11-21T12:05:00Z"},
    ):
        with pytest.raises(scheduling.BadFiring):
            scheduling.fire(json.loads(json.dumps(event)))
