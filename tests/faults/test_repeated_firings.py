"""EventBridge Scheduler delivers a firing at least once: the `fire` handler gets the same
(schedule, scheduled time) twice in a row, eight times at once, while its first attempt is in
flight, and again after deliveries that failed because DynamoDB throttled them or the function
died. Each firing must yield exactly one execution (or one workflow run), one webhook request
per attempt (never a second one while the first may still answer) and one history event, and
write nothing to its task (a workflow's `next_run_at` moves on); a task's execution that
succeeds at once starts no state machine execution, and one left unfinished by a dead function
is finished by a later delivery or the sweep once its lease expired.

In process on moto, with the run state machine created in moto's Step Functions (not executed:
what counts is how many executions are started, and under which names), and a loopback
webhook that counts the requests of each delivery. moto's DynamoDB writes and Step Functions
starts are serialized, standing in for the atomicity of the real services.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap, runs
from chalicelib.adapters.dynamodb import connection
from chalicelib.adapters.http import UrllibWebhookClient
from chalicelib.adapters.system import SystemClock
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.executions import ATTEMPT_LEASE
from chalicelib.handlers import scheduling, sweep
from chalicelib.services.runs import RECORD_RETRY_DELAYS, RunService
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


class Webhook:
    """A loopback webhook: counts requests by `X-Taskbeat-Delivery`, holds each one `hold`
    seconds (so repeated deliveries arrive while it is in flight), or until `release` is set,
    and runs `on_request` (if set) when one arrives."""

    def __init__(self) -> None:
        self.deliveries: Counter[str] = Counter()
        self.hold = 0.2
        self.release = threading.Event()
        self.release.set()
        self.arrived = threading.Event()
        self.on_request: Any = None
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.deliveries[self.headers.get("X-Taskbeat-Delivery", "")] += 1
                hook.arrived.set()
                if hook.on_request is not None:
                    hook.on_request()
                hook.release.wait(timeout=20)
                threading.Event().wait(hook.hold)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def action(self) -> dict[str, Any]:
        return {"type": "webhook", "url": self.url, "timeout_seconds": 10}

    def requests_of(self, execution_id: str) -> list[int]:
        """How many requests each attempt (1, 2, ...) of the execution sent."""
        attempts = [int(d.rsplit("-", 1)[1]) for d in self.deliveries if d.startswith(execution_id)]
        return [self.deliveries[f"{execution_id}-{n}"] for n in sorted(attempts)]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def api(machine: str, settings: Settings) -> Iterator[Api]:
    configured = settings.model_copy(
        update={"state_machine_arn": machine, "allow_private_webhooks": True}
    )
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


def test_a_firing_delivered_twice_or_many_times_at_once_runs_once(
    api: Api, machine: str, webhook: Webhook
) -> None:
    owner = Owner(api)
    action = webhook.action()
    overlapping = owner.task(schedule={**EVERY_FIVE_MINUTES, "overlap": "allow"}, action=action)
    exclusive = owner.task(schedule=EVERY_FIVE_MINUTES, action=action)  # holds a slot
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
    exclusive_at_once = deliver_at_once(firing(exclusive, first, 1))
    slot_holder = one_execution_each(exclusive_at_once)
    run = one_execution_each(
        deliver_at_once(firing(workflow, first, 1, "workflow_id")), "workflow_run_id"
    )

    # The repeated deliveries found the first attempt in flight (or done): none sent again.
    for answers in (at_once, exclusive_at_once):
        taken = Counter(a["taken"] for a in answers if not a["created"])
        assert set(taken) <= {"in_flight", "nothing"}, taken
        assert taken["in_flight"] >= 1, taken
    executions = owner.executions(overlapping["id"]) + owner.executions(exclusive["id"])
    assert sorted(e["id"] for e in executions) == sorted([*both, slot_holder])
    for execution in executions:
        assert (execution["status"], execution["attempts"]) == ("succeeded", 1), execution
        assert webhook.requests_of(execution["id"]) == [1]
    assert sum(webhook.deliveries.values()) == 3
    runs_of = owner("GET", f"/workflows/{workflow['id']}/runs")["items"]
    assert [(r["id"], r["status"]) for r in runs_of] == [(run, "queued")]
    # Only the workflow run went to the state machine: the tasks' runs ended in `fire`.
    assert started(machine) == [run]
    # One history event per execution; the tasks were not written (their next_run_at is
    # shown from the schedule); the workflow's next_run_at moved on past its firing once.
    finished = [e for e in owner.history(overlapping["id"]) if e["type"] == "execution.finished"]
    assert sorted(e["changes"]["execution_id"][1] for e in finished) == sorted(both)
    for task in (overlapping, exclusive):
        assert owner("GET", f"/tasks/{task['id']}")["version"] == task["version"]
    assert owner("GET", f"/workflows/{workflow['id']}")["next_run_at"] == rfc3339(second)


def test_a_delivery_repeated_while_the_first_attempt_is_in_flight_sends_nothing(
    api: Api, machine: str, webhook: Webhook
) -> None:
    owner = Owner(api)
    task = owner.task(schedule=EVERY_FIVE_MINUTES, action=webhook.action())
    at = moment(task["next_run_at"])
    webhook.release.clear()  # the webhook answers only when told
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(scheduling.fire, firing(task, at, 1))
        assert webhook.arrived.wait(timeout=10)
        repeated = [scheduling.fire(firing(task, at, attempt)) for attempt in (2, 3, 4)]
        webhook.release.set()
        done = first.result(timeout=20)
    assert [(r["created"], r["taken"], r["status"]) for r in repeated] == [
        (False, "in_flight", "running")
    ] * 3
    assert (done["created"], done["status"]) == (True, "succeeded")
    assert webhook.requests_of(done["execution_id"]) == [1]
    assert started(machine) == []


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
    api: Api, machine: str, webhook: Webhook
) -> None:
    owner = Owner(api)
    webhook.hold = 0
    schedule = {**EVERY_FIVE_MINUTES, "overlap": "allow"}
    tasks = [owner.task(schedule=schedule, action=webhook.action()) for _ in range(3)]
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

    for task in tasks:
        executions = owner.executions(task["id"])
        mine = {at: answers[(task["id"], at)]["execution_id"] for at in firings}
        assert sorted(e["id"] for e in executions) == sorted(mine.values()), task["id"]
        assert sorted(e["scheduled_for"] for e in executions) == [rfc3339(at) for at in firings]
        for execution in executions:  # each ran once, to its end, by its own delivery
            assert (execution["status"], execution["attempts"]) == ("succeeded", 1), execution
            assert webhook.requests_of(execution["id"]) == [1], execution["id"]
        finished = [e for e in owner.history(task["id"]) if e["type"] == "execution.finished"]
        assert sorted(e["changes"]["execution_id"][1] for e in finished) == sorted(mine.values())
        assert owner("GET", f"/tasks/{task['id']}")["version"] == task["version"]
    for key, repeat in repeats.items():
        assert (repeat["execution_id"], repeat["created"]) == (answers[key]["execution_id"], False)
    runs_of = owner("GET", f"/workflows/{workflow['id']}/runs?limit=100")["items"]
    assert sorted(r["id"] for r in runs_of) == sorted(a["workflow_run_id"] for a in run_answers)
    assert len(runs_of) == len(firings)
    following = rfc3339(firings[-1] + timedelta(minutes=5))
    assert owner("GET", f"/workflows/{workflow['id']}")["next_run_at"] == following
    assert started(machine) == sorted(r["id"] for r in runs_of)


class Died(BaseException):
    """The function's process ending (a crash, its timeout): nothing in the app catches it."""


def after_the_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the app's clock reads past every lease taken so far."""
    later = datetime.now(UTC) + ATTEMPT_LEASE + timedelta(seconds=5)
    monkeypatch.setattr(SystemClock, "now", lambda self: later)


@pytest.mark.parametrize("when", ["before the attempt", "during the attempt"])
@pytest.mark.parametrize("finisher", ["a later delivery", "the sweep"])
def test_a_fire_that_dies_after_its_claim_is_finished_once_its_lease_expired(
    api: Api,
    machine: str,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
    when: str,
    finisher: str,
) -> None:
    owner = Owner(api)
    task = owner.task(schedule=EVERY_FIVE_MINUTES, action=webhook.action())
    at = moment(task["next_run_at"])

    def die(*args: Any, **kwargs: Any) -> Any:
        raise Died

    def send_then_die(client: UrllibWebhookClient, request: Any) -> Any:
        sent(client, request)  # the request is out and answered; the function dies now
        raise Died

    sent = UrllibWebhookClient.deliver
    with monkeypatch.context() as dying:
        if when == "before the attempt":
            dying.setattr(RunService, "first_attempt", die)
        else:
            dying.setattr(UrllibWebhookClient, "deliver", send_then_die)
        with pytest.raises(Died):
            scheduling.fire(firing(task, at, 1))
    (left,) = owner.executions(task["id"])
    assert (left["status"], left["attempts"]) == ("running", 0)
    # While the lease holds, a later delivery leaves it alone (its request may be in flight).
    assert scheduling.fire(firing(task, at, 2))["taken"] == "in_flight"
    assert sweep.sweep({})["taken_over"] == 0

    after_the_lease(monkeypatch)
    if finisher == "the sweep":
        assert sweep.sweep({})["taken_over"] == 1
    else:
        assert scheduling.fire(firing(task, at, 3))["taken"] == "lost_attempt"

    (execution,) = owner.executions(task["id"])
    # The lost attempt counts (its request may have been sent); the retries go on in the
    # state machine, once.
    assert (execution["id"], execution["status"], execution["attempts"]) == (
        left["id"],
        "running",
        1,
    )
    assert "did not finish" in execution["error"]
    assert started(machine) == [execution["id"]]
    assert sum(webhook.deliveries.values()) == (1 if when == "during the attempt" else 0)
    assert sweep.sweep({})["taken_over"] == 0
    assert scheduling.fire(firing(task, at, 4))["taken"] in ("in_flight", "nothing")
    assert started(machine) == [execution["id"]]


class ThrottleFirst(Throttle):
    """Throttles the first `times` calls it is asked about while on, then none."""

    def __init__(self, client: Any, times: int, operations: frozenset[str]) -> None:
        super().__init__(client, 1.0, seed=7, operations=operations)
        self.times = times

    def _before_call(self, model: Any, params: dict[str, Any], **extra: Any) -> Any:
        if not self.on or sum(self.injected.values()) >= self.times:
            return None
        return super()._before_call(model, params, **extra)


@pytest.mark.parametrize("times", [len(RECORD_RETRY_DELAYS), 1000])
def test_throttling_between_the_claim_and_the_record(
    api: Api, machine: str, webhook: Webhook, monkeypatch: pytest.MonkeyPatch, times: int
) -> None:
    """The request went out, then DynamoDB throttled the attempt's record: the same delivery
    writes it again (a few times); throttled to the end, nothing is half-written and the sweep
    finishes the run after the lease."""
    owner = Owner(api)
    task = owner.task(schedule=EVERY_FIVE_MINUTES, action=webhook.action())
    at = moment(task["next_run_at"])
    throttle = ThrottleFirst(
        connection.root().client, times, frozenset({"TransactWriteItems", "PutItem"})
    )

    def throttle_from_now() -> None:
        throttle.on = True

    webhook.on_request = throttle_from_now  # the claim is written: throttle what follows
    try:
        if times == len(RECORD_RETRY_DELAYS):
            answer = scheduling.fire(firing(task, at, 1))
            assert (answer["created"], answer["status"]) == (True, "succeeded")
        else:
            with pytest.raises(Unavailable):
                scheduling.fire(firing(task, at, 1))
    finally:
        throttle.on = False
        throttle.remove()
    assert sum(throttle.injected.values()) >= len(RECORD_RETRY_DELAYS)

    (execution,) = owner.executions(task["id"])
    assert webhook.requests_of(execution["id"]) == [1]
    if times == len(RECORD_RETRY_DELAYS):
        assert (execution["status"], execution["attempts"]) == ("succeeded", 1)
        assert started(machine) == []
        return
    assert (execution["status"], execution["attempts"]) == ("running", 0)
    after_the_lease(monkeypatch)
    assert sweep.sweep({})["taken_over"] == 1
    (execution,) = owner.executions(task["id"])
    assert (execution["status"], execution["attempts"]) == ("running", 1)
    assert started(machine) == [execution["id"]]


@pytest.mark.parametrize("kind", ["workflow_id"])
def test_a_delivery_throttled_after_its_write_moves_next_run_at_when_redelivered(
    api: Api, kind: str
) -> None:
    """A workflow's firing: the run's transaction went through, then moving `next_run_at` on
    was throttled: the function failed, the scheduler delivers again, and that delivery finds
    the firing done. It must still move `next_run_at` on. (A task's firing writes no
    `next_run_at`: it is shown from the schedule, see test_overlap.TestNextRunAt.)"""
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
