"""EventBridge Scheduler delivers a firing at least once: the `fire` handler gets the same
(schedule, scheduled time) twice in a row, eight times at once, and again after deliveries that
failed because DynamoDB throttled them. Each firing must yield exactly one execution (or one
workflow run), one state machine execution, one history event, and move `next_run_at` on.

In process on moto, with the run state machine created in moto's Step Functions (not executed:
what counts is how many executions are started, and under which names). moto's DynamoDB writes
and Step Functions starts are serialized, standing in for the atomicity of the real services.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap, runs
from chalicelib.adapters.dynamodb import connection
from chalicelib.domain.errors import Unavailable
from chalicelib.handlers import scheduling
from chalicelib.settings import Settings
from tests.fakes import fast_hasher
from tests.faults.throttling import Throttle
from tests.integration.conftest import REGION
from tests.integration.helpers import Api

EVERY_FIVE_MINUTES = {"kind": "cron", "expression": "0/5 * * * ? *", "timezone": "UTC"}
AT_ONCE = 8


@pytest.fixture
def machine(moto_aws: None, serialized_moto: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """The run state machine in moto; its starts serialized (Step Functions' own atomicity)."""
    from moto.stepfunctions.models import StepFunctionBackend

    lock = threading.Lock()
    start = StepFunctionBackend.start_execution

    def serialized(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return start(self, *args, **kwargs)

    monkeypatch.setattr(StepFunctionBackend, "start_execution", serialized)
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="runs", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    arn = "arn:aws:lambda:us-east-1:123456789012:function:"
    definition = runs.definition_json(arn + "plan", arn + "run_step")
    created = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name="runs", definition=definition, roleArn=role
    )
    return str(created["stateMachineArn"])


@pytest.fixture
def api(machine: str, settings: Settings) -> Iterator[Api]:
    configured = settings.model_copy(update={"state_machine_arn": machine})
    bootstrap.override(bootstrap.build(configured, hasher=fast_hasher()))
    try:
        with Client(app) as client:
            yield Api(client)
    finally:
        bootstrap.override(None)


class Owner:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.token = api.register()["access_token"]

    def __call__(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = self.api.call(method, path, body, token=self.token)
        assert response.status_code == expect, response.body
        return json.loads(response.body) if response.body else None

    def task(self, **fields: Any) -> dict[str, Any]:
        return self("POST", "/tasks", {"title": "Every five minutes", **fields}, 201)  # type: ignore[no-any-return]

    def executions(self, task_id: str) -> list[dict[str, Any]]:
        return self("GET", f"/tasks/{task_id}/executions?limit=100")["items"]  # type: ignore[no-any-return]

    def history(self, task_id: str) -> list[dict[str, Any]]:
        return self("GET", f"/tasks/{task_id}/history?limit=100")["items"]  # type: ignore[no-any-return]


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def rfc3339(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def firing(
    item: dict[str, Any], at: datetime, attempt: int, kind: str = "task_id"
) -> dict[str, Any]:
    """One delivery, as the schedule's target input carries it (handlers/scheduling.py)."""
    return {
        kind: item["id"],
        "project_id": item["project_id"],
        "scheduled_time": rfc3339(at),
        "attempt": attempt,
        "execution_id": f"delivery-{attempt}",
    }


def deliver_at_once(event: dict[str, Any]) -> list[dict[str, Any]]:
    """`AT_ONCE` deliveries of one firing, side by side (each its own attempt number)."""
    barrier = threading.Barrier(AT_ONCE)

    def one(attempt: int) -> dict[str, Any]:
        barrier.wait(timeout=10)
        return scheduling.fire({**event, "attempt": attempt, "execution_id": f"at-once-{attempt}"})

    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        return list(pool.map(one, range(1, AT_ONCE + 1)))


def started(machine: str) -> list[str]:
    """The names of the state machine executions started (each is a Taskbeat run's id)."""
    client = boto3.client("stepfunctions", region_name=REGION)
    pages = client.get_paginator("list_executions").paginate(stateMachineArn=machine)
    return sorted(e["name"] for page in pages for e in page["executions"])


def one_execution_each(answers: list[dict[str, Any]], key: str = "execution_id") -> str:
    """Every delivery of a firing named the same execution; exactly one created it."""
    assert len({a[key] for a in answers}) == 1, answers
    assert [a["created"] for a in answers].count(True) == 1, answers
    return str(answers[0][key])


def test_a_firing_delivered_twice_or_many_times_at_once_runs_once(api: Api, machine: str) -> None:
    owner = Owner(api)
    overlapping = owner.task(schedule={**EVERY_FIVE_MINUTES, "overlap": "allow"})
    exclusive = owner.task(schedule=EVERY_FIVE_MINUTES)  # overlap "skip": holds a slot
    first = moment(overlapping["next_run_at"])
    second = first + timedelta(minutes=5)
    workflow = owner(
        "POST",
        "/workflows",
        {
            "name": "Every five minutes",
            "steps": [{"key": "only", "task_id": exclusive["id"]}],
            "schedule": EVERY_FIVE_MINUTES,
        },
        201,
    )

    # Twice in a row, then eight times at once for the next firing.
    twice = [scheduling.fire(firing(overlapping, first, attempt)) for attempt in (1, 2)]
    at_once = deliver_at_once(firing(overlapping, second, 1))
    both = [one_execution_each(twice), one_execution_each(at_once)]
    slot_holder = one_execution_each(deliver_at_once(firing(exclusive, first, 1)))
    run = one_execution_each(
        deliver_at_once(firing(workflow, first, 1, "workflow_id")), "workflow_run_id"
    )

    assert sorted(e["id"] for e in owner.executions(overlapping["id"])) == sorted(both)
    assert [e["id"] for e in owner.executions(exclusive["id"])] == [slot_holder]
    runs_of = owner("GET", f"/workflows/{workflow['id']}/runs")["items"]
    assert [(r["id"], r["status"]) for r in runs_of] == [(run, "queued")]
    # One state machine execution per run, however often each was asked to start.
    assert started(machine) == sorted([*both, slot_holder, run])
    # One history event per execution, and next_run_at moved on past each firing once.
    queued = [e for e in owner.history(overlapping["id"]) if e["type"] == "execution.queued"]
    assert sorted(e["changes"]["execution_id"][1] for e in queued) == sorted(both)
    following = rfc3339(second + timedelta(minutes=5))
    assert owner("GET", f"/tasks/{overlapping['id']}")["next_run_at"] == following
    assert owner("GET", f"/tasks/{exclusive['id']}")["next_run_at"] == rfc3339(second)
    assert owner("GET", f"/workflows/{workflow['id']}")["next_run_at"] == rfc3339(second)


def deliver_until_it_goes_through(event: dict[str, Any], limit: int = 60) -> dict[str, Any]:
    """What EventBridge Scheduler does with a delivery whose Lambda fails: deliver it again.
    A throttled delivery may fail only with `Unavailable` (the function's retryable error)."""
    for attempt in range(1, limit + 1):
        try:
            return scheduling.fire({**event, "attempt": attempt})
        except Unavailable:
            continue
    raise AssertionError(f"{limit} deliveries of {event} all failed")


def test_deliveries_throttled_at_any_call_are_redelivered_into_exactly_one_run(
    api: Api, machine: str
) -> None:
    owner = Owner(api)
    tasks = [owner.task(schedule={**EVERY_FIVE_MINUTES, "overlap": "allow"}) for _ in range(3)]
    first = moment(tasks[0]["next_run_at"])
    firings = [first + timedelta(minutes=5 * n) for n in range(4)]
    workflow = owner(
        "POST",
        "/workflows",
        {
            "name": "Throttled",
            "steps": [{"key": "only", "task_id": tasks[0]["id"]}],
            "schedule": {**EVERY_FIVE_MINUTES, "overlap": "allow"},
        },
        201,
    )

    throttle = Throttle(connection.root().client, 0.25, seed=4)
    throttle.on = True
    try:
        answers = {
            (task["id"], at): deliver_until_it_goes_through(firing(task, at, 1))
            for task in tasks
            for at in firings
        }
        run_answers = [
            deliver_until_it_goes_through(firing(workflow, at, 1, "workflow_id")) for at in firings
        ]
        # A delivery may come again after one went through (at least once).
        repeats = {
            (task["id"], at): deliver_until_it_goes_through(firing(task, at, 1))
            for task in tasks[:1]
            for at in firings
        }
    finally:
        throttle.on = False
        throttle.remove()
    assert sum(throttle.injected.values()) >= 10, throttle.injected

    made: list[str] = []
    for task in tasks:
        executions = owner.executions(task["id"])
        mine = {at: answers[(task["id"], at)]["execution_id"] for at in firings}
        assert sorted(e["id"] for e in executions) == sorted(mine.values()), task["id"]
        assert sorted(e["scheduled_for"] for e in executions) == [rfc3339(at) for at in firings]
        queued = [e for e in owner.history(task["id"]) if e["type"] == "execution.queued"]
        assert sorted(e["changes"]["execution_id"][1] for e in queued) == sorted(mine.values())
        following = rfc3339(firings[-1] + timedelta(minutes=5))
        assert owner("GET", f"/tasks/{task['id']}")["next_run_at"] == following, task["id"]
        made += mine.values()
    for key, repeat in repeats.items():
        assert (repeat["execution_id"], repeat["created"]) == (answers[key]["execution_id"], False)
    runs_of = owner("GET", f"/workflows/{workflow['id']}/runs?limit=100")["items"]
    assert sorted(r["id"] for r in runs_of) == sorted(a["workflow_run_id"] for a in run_answers)
    assert len(runs_of) == len(firings)
    following = rfc3339(firings[-1] + timedelta(minutes=5))
    assert owner("GET", f"/workflows/{workflow['id']}")["next_run_at"] == following
    assert started(machine) == sorted([*made, *(r["id"] for r in runs_of)])


@pytest.mark.parametrize("kind", ["task_id", "workflow_id"])
def test_a_delivery_throttled_after_its_write_moves_next_run_at_when_redelivered(
    api: Api, kind: str
) -> None:
    """The firing's transaction went through, then moving `next_run_at` on was throttled: the
    function failed, the scheduler delivers again, and that delivery finds the firing done.
    It must still move `next_run_at` on (or a one-time schedule shows a past firing forever)."""
    owner = Owner(api)
    task = owner.task(schedule=EVERY_FIVE_MINUTES)
    item = task
    if kind == "workflow_id":
        item = owner(
            "POST",
            "/workflows",
            {
                "name": "Next",
                "steps": [{"key": "only", "task_id": task["id"]}],
                "schedule": EVERY_FIVE_MINUTES,
            },
            201,
        )
    at = moment(item["next_run_at"])
    throttle = Throttle(connection.root().client, 1.0, seed=1, operations=frozenset({"UpdateItem"}))
    throttle.on = True
    try:
        with pytest.raises(Unavailable):
            scheduling.fire(firing(item, at, 1, kind))
    finally:
        throttle.remove()
    again = scheduling.fire(firing(item, at, 2, kind))
    assert again["created"] is False
    path = "/tasks" if kind == "task_id" else "/workflows"
    shown = owner("GET", f"{path}/{item['id']}")
    assert shown["next_run_at"] == rfc3339(at + timedelta(minutes=5))
