"""Firings on the local stack, on the fast path: `fire` makes the first attempt itself.

`python -m bench.firings` starts the local stack in this process (moto, the ticker, the run
state machine) three times over and measures:

1. Lateness: 200 one-time schedules all due at the same second, each calling a loopback
   webhook (a path per task) that answers 204 at once. Per firing: when the ticker's delivery
   started the `fire` handler, when the webhook received the signed request, and when `fire`
   returned. Delivery to webhook (webhook - fire start; the claim, the execution's write and
   the request), lateness (webhook - scheduled time; what a webhook owner sees), and the
   executions stored and requests received (one each per firing). Also: the local `fire`
   function's concurrency, and the process's CPU time per firing during the burst (the whole
   stack runs in this one Python process), which is where the time goes.
2. Deliveries: 1,000 firings (100 tasks x 10 scheduled times) of webhook tasks, each delivered
   3 times through the Lambda API (RequestResponse invocations of `fire`, as EventBridge
   Scheduler's at-least-once delivery may): two at once, and one after a random delay (some
   while the first attempt is in flight, some after it finished), by `CALLERS` concurrent
   callers. The webhook holds each request 20-50 ms, so the repeated deliveries overlap an
   attempt in flight. Then: executions stored per firing, first-attempt requests per firing
   (requests whose `X-Taskbeat-Delivery` ends in `-1`), runs succeeded, and the Step Functions
   executions started (none: every first attempt succeeds). The tasks' own schedules start in a
   month, so the ticker adds no firing of its own.
3. Retries: one firing of a task whose webhook fails twice, then succeeds (3 attempts, 1 s
   apart): `fire` makes attempt 1 and hands the run to the state machine, which waits, plans
   and runs attempts 2 and 3. Once the execution succeeded with 3 attempts, the state
   transitions of its state machine execution (named after the execution) are counted from
   its history: what the cost model bills a retried firing (bench/cost.py).

Bounded: everything targets 127.0.0.1, and every wait has a deadline.

`make bench` runs it smaller (`--quick`: 60 schedules due at one second, 10 tasks x 5 firings
x 3 deliveries, and the retried firing) to stay within its time.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.hooks import Webhook
from bench.report import Figure, SuiteResult, Target, main_for_suite

SCHEDULES, QUICK_SCHEDULES = 200, 60
SOLO = 10  # one-time schedules due one a second before the burst: one firing at a time
TASKS, FIRINGS_PER_TASK = 100, 10
QUICK_TASKS, QUICK_FIRINGS_PER_TASK = 10, 5
DELIVERIES = 3  # per firing: two at once, one later
CALLERS = 8
HOLD_SECONDS = (0.02, 0.05)  # the webhook's response time in part 2
LATER_SECONDS = (0.0, 0.15)  # the third delivery, after the first two started
RETRY_POLICY = {"max_attempts": 3, "backoff_seconds": 1, "backoff_rate": 1}
DEADLINE_SECONDS = 300
SECONDS = 1000.0  # ms per second, for the figures


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_for(condition: Callable[[], bool], deadline: float, interval: float = 0.1) -> bool:
    """Poll `condition` until it holds or `deadline` (time.monotonic()) passes."""
    while not condition():
        if time.monotonic() >= deadline:
            return False
        threading.Event().wait(interval)
    return True


@contextmanager
def local_stack() -> Iterator[Any]:
    from local.stack import LocalStack
    from local.testing import free_port

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    with LocalStack(http_port=free_port(), ws_port=free_port(), quiet=True) as stack:
        yield stack


def _api(stack: Any) -> Callable[..., Any]:
    import requests

    from local.testing import register_user

    token = register_user(stack.api_url)["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def call(method: str, path: str, body: Any = None) -> Any:
        response = session.request(method, stack.api_url + path, json=body, timeout=30)
        if response.status_code >= 300:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    return call


def executions_of(call: Callable[..., Any], task_ids: list[str]) -> list[dict[str, Any]]:
    """Every stored execution of the tasks, through the API."""
    found: list[dict[str, Any]] = []
    for task_id in task_ids:
        cursor = None
        while True:
            query = f"/tasks/{task_id}/executions?limit=100"
            page = call("GET", query + (f"&cursor={cursor}" if cursor else ""))
            found += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
    return found


def statuses(executions: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(str(e["status"]) for e in executions))


def state_machine_executions(stack: Any) -> list[dict[str, Any]]:
    """The run state machine's executions (Step Functions' list)."""
    import boto3

    client = boto3.client("stepfunctions", region_name=stack.region)
    machine = os.environ["TASKBEAT_STATE_MACHINE_ARN"]
    pages = client.get_paginator("list_executions").paginate(stateMachineArn=machine)
    return [e for page in pages for e in page["executions"]]


def _lambda_client(stack: Any, callers: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "lambda",
        region_name=stack.region,
        config=Config(
            retries={"total_max_attempts": 1},  # a retried invoke would be a 4th delivery
            max_pool_connections=callers,
            read_timeout=120,
        ),
    )


def invoke_fire(client: Any, event: dict[str, Any]) -> dict[str, Any]:
    answer = client.invoke(FunctionName="fire", Payload=json.dumps(event).encode())
    payload: dict[str, Any] = json.loads(answer["Payload"].read())
    if answer.get("FunctionError"):
        raise AssertionError(f"fire failed: {payload}")
    return payload


# ---- part 1: lateness ---------------------------------------------------------------------------

# Who spends the stack's CPU, by thread name (the stack is one process: one GIL).
THREAD_KINDS = (
    ("lambda-deliveries-fire", "fire handlers (app code, its AWS clients, the webhook call)"),
    ("lambda-deliveries-on_change", "on_change (stream consumer)"),
    ("lambda-deliveries", "other functions"),
    ("scheduler", "scheduler ticker (lists, delivers, deletes one-time schedules)"),
    ("webhook", "the bench's webhook server"),
    ("request:ThreadedWSGIServer", "moto's server (DynamoDB, streams, scheduler, Lambda API)"),
    ("request:", "other servers' request threads"),
)


def thread_kind(name: str) -> str:
    return next((kind for prefix, kind in THREAD_KINDS if prefix in name), "other threads")


def thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of each live thread of this process, by native id, with
    its name (Linux: /proc/self/task)."""
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, float]] = {}
    for entry in os.scandir("/proc/self/task"):
        try:
            with open(f"{entry.path}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        tid = int(entry.name)
        found[tid] = (names.get(tid, "?"), (int(fields[11]) + int(fields[12])) / ticks)
    return found


class RequestThreads:
    """Names the threads socketserver starts per connection (moto's server is werkzeug's, one
    thread a connection) after their server's class, and keeps the CPU time of those that
    ended, so `cpu_by_kind` can count them too."""

    def __init__(self) -> None:
        self.ended: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def watching(self) -> Iterator[RequestThreads]:
        import socketserver

        original = socketserver.ThreadingMixIn.process_request_thread

        def process_request_thread(server: Any, request: Any, client_address: Any) -> None:
            thread = threading.current_thread()
            thread.name = f"request:{type(server).__name__}"
            try:
                original(server, request, client_address)
            finally:
                with self._lock:
                    if thread.native_id is not None:
                        self.ended[thread.native_id] = (thread.name, time.thread_time())

        socketserver.ThreadingMixIn.process_request_thread = process_request_thread  # type: ignore[method-assign, assignment]
        try:
            yield self
        finally:
            socketserver.ThreadingMixIn.process_request_thread = original  # type: ignore[method-assign]


def cpu_by_kind(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    process: float,
    ended: dict[int, tuple[str, float]] | None = None,
) -> dict[str, float]:
    """CPU seconds spent between two `thread_cpu()` snapshots, by kind of thread, counting
    the request threads that ended meanwhile (`ended`: their CPU time when they ended); what
    other threads that ended spent is the process's total minus the rest."""
    spent: dict[str, float] = {}
    gone = {tid: ended for tid, ended in (ended or {}).items() if tid not in after}
    for tid, (name, seconds) in (after | gone).items():
        kind = thread_kind(name)
        spent[kind] = spent.get(kind, 0.0) + seconds - (before[tid][1] if tid in before else 0.0)
    spent["threads that ended meanwhile"] = max(0.0, process - sum(spent.values()))
    ordered = sorted(spent.items(), key=lambda item: -item[1])
    return {kind: round(seconds, 3) for kind, seconds in ordered}


@dataclass
class FireTimes:
    """When each firing's `fire` handler started and returned (time.time()), its DynamoDB
    calls, and the process's CPU time at the first start and the last return."""

    started: dict[tuple[str, str], float] = field(default_factory=dict)
    finished: dict[tuple[str, str], float] = field(default_factory=dict)
    dynamodb_seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    dynamodb_calls: dict[tuple[str, str], int] = field(default_factory=dict)
    busy: int = 0
    most_at_once: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def lateness(schedules: int = SCHEDULES, solo: int = SOLO) -> dict[str, Any]:
    """Part 1: `schedules` one-time schedules due at one second, each calling the webhook;
    before them, `solo` due one a second (each firing alone: the path without contention)."""
    from bench.units import Meter
    from chalicelib.adapters.dynamodb import connection

    webhook = Webhook()
    times = FireTimes()
    threads = RequestThreads()
    try:
        with threads.watching(), local_stack() as stack:
            call = _api(stack)  # the first request builds the app's container and clients
            registered = stack.registry._get("fire")
            concurrency = int(registered.concurrency)
            fire = registered.handler
            # Times each fire's DynamoDB calls (no request units: nothing read back).
            client = connection.root().client
            meter = Meter(client, client, before_images=False)

            def timed_fire(event: Any, context: Any) -> Any:
                key = (str(event.get("task_id")), str(event.get("scheduled_time")))
                with times.lock:
                    times.started.setdefault(key, time.time())
                    times.busy += 1
                    times.most_at_once = max(times.most_at_once, times.busy)
                try:
                    with meter.recording() as calls:
                        return fire(event, context)
                finally:
                    with times.lock:
                        times.busy -= 1
                        times.finished[key] = time.time()
                        times.dynamodb_seconds[key] = sum(c.seconds for c in calls)
                        times.dynamodb_calls[key] = len(calls)

            registered.handler = timed_fire
            # Creating a task (and its EventBridge schedule) takes ~0.1 s here; the solo
            # firings come first, one a second, then the burst.
            lead = 10 + (schedules + solo) * 0.12 + solo + 2
            due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=round(lead))
            solo_due = [due - timedelta(seconds=solo + 1 - n) for n in range(solo)]
            tasks: list[tuple[str, datetime, str]] = []  # (task id, due, webhook path)
            for number, at in [(f"solo-{n}", t) for n, t in enumerate(solo_due)] + [
                (str(n), due) for n in range(schedules)
            ]:
                task = call(
                    "POST",
                    "/tasks",
                    {
                        "title": f"Ping {number}",
                        "schedule": {"kind": "once", "at": rfc3339(at)},
                        "action": {"type": "webhook", "url": f"{webhook.url}/{number}"},
                    },
                )
                tasks.append((task["id"], at, f"/{number}"))
            first_due = solo_due[0] if solo_due else due
            spare = first_due.timestamp() - time.time()
            if spare < 1:
                raise RuntimeError(f"creating the schedules overran their time by {-spare:.1f} s")
            burst = [(task_id, path) for task_id, at, path in tasks if at == due]
            # The stack's CPU, by thread, from just before the burst until it is over.
            until_due = due.timestamp() - 0.3 - time.time()
            threading.Event().wait(max(0.0, until_due))  # the burst is scheduled then
            threads.ended.clear()
            cpu_before, process_before = thread_cpu(), time.process_time()
            deadline = time.monotonic() + 120

            def burst_over() -> bool:
                return all(
                    (task_id, rfc3339(due)) in times.finished and path in webhook.arrived
                    for task_id, path in burst
                )

            wait_for(burst_over, deadline, interval=0.02)
            process_cpu = time.process_time() - process_before
            cpu = cpu_by_kind(cpu_before, thread_cpu(), process_cpu, dict(threads.ended))
            executions = executions_of(call, [task_id for task_id, _, _ in tasks])
            meter.close()
    finally:
        webhook.close()

    def measured(group: list[tuple[str, datetime, str]]) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {
            "delivery": [],
            "lateness": [],
            "delivery_to_webhook": [],
            "fire_seconds": [],
            "fire_dynamodb_seconds": [],
            "fire_dynamodb_calls": [],
        }
        for task_id, at, path in group:
            key, due_at = (task_id, rfc3339(at)), at.timestamp()
            started, arrived = times.started.get(key), webhook.arrived.get(path)
            finished = times.finished.get(key)
            if started is not None:
                found["delivery"].append(started - due_at)
            if arrived is not None:
                found["lateness"].append(arrived - due_at)
            if started is not None and arrived is not None:
                found["delivery_to_webhook"].append(arrived - started)
            if started is not None and finished is not None:
                found["fire_seconds"].append(finished - started)
                found["fire_dynamodb_seconds"].append(times.dynamodb_seconds[key])
                found["fire_dynamodb_calls"].append(float(times.dynamodb_calls[key]))
        return found

    in_burst = [task for task in tasks if task[1] == due]
    by_task = Counter(str(e["task_id"]) for e in executions)
    return {
        "schedules": schedules,
        "due": rfc3339(due),
        "spare_seconds_before_first_due": round(spare, 1),
        "fire_concurrency": concurrency,
        "most_fires_at_once": times.most_at_once,
        "delivered": sum(
            1 for task_id, at, _ in in_burst if (task_id, rfc3339(at)) in times.started
        ),
        "webhook_requests": sum(webhook.by_path[path] for _, _, path in in_burst),
        "executions": sum(by_task[task_id] for task_id, _, _ in in_burst),
        "statuses": statuses([e for e in executions if e["task_id"] in {t[0] for t in in_burst}]),
        "burst_cpu_seconds": process_cpu,
        "burst_cpu_by_thread": cpu,
        "burst": measured(in_burst),
        "solo": measured([task for task in tasks if task[1] != due]),
    }


# ---- part 2: repeated deliveries ----------------------------------------------------------------


class DeliveryPlan:
    """What the callers deliver next: each firing twice at once (a pair, taken one after the
    other by two callers, who then start together), and a third time `LATER_SECONDS` after its
    pair started. A third delivery whose time has come goes before the next pair."""

    def __init__(self, events: list[dict[str, Any]], seed: int = 7) -> None:
        self._pairs = [(event, which) for event in events for which in (1, 2)]
        self._pairs.reverse()  # popped from the end: in order
        self._later: list[tuple[float, int, dict[str, Any]]] = []
        self._barriers: dict[int, threading.Barrier] = {}
        self._random = random.Random(seed)
        self._condition = threading.Condition()

    def take(self) -> tuple[dict[str, Any], int, threading.Barrier | None] | None:
        """The next delivery (the event, 1-3, and for a pair the barrier to start together
        at), or None when there is none left."""
        with self._condition:
            while True:
                now = time.monotonic()
                if self._later and self._later[0][0] <= now:
                    self._later.sort(key=lambda later: later[:2])
                    _, _, event = self._later.pop(0)
                    return event, 3, None
                if self._pairs:
                    event, which = self._pairs.pop()
                    key = id(event)
                    if which == 1:
                        self._barriers[key] = threading.Barrier(2)
                        delay = self._random.uniform(*LATER_SECONDS)
                        self._later.append((now + delay, len(self._later), event))
                        self._later.sort(key=lambda later: later[:2])
                        return event, 1, self._barriers[key]
                    return event, 2, self._barriers.pop(key)
                if not self._later:
                    return None
                self._condition.wait(max(0.0, self._later[0][0] - now))


def deliveries(
    stack: Any, tasks_count: int = TASKS, firings_per_task: int = FIRINGS_PER_TASK
) -> dict[str, Any]:
    """Part 2: firings x 3 deliveries through the Lambda API -> executions and requests."""
    webhook = Webhook(hold=HOLD_SECONDS)
    try:
        call = _api(stack)
        base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        schedule = {
            "kind": "rate",
            "every": 1,
            "unit": "hours",
            "overlap": "allow",
            "start_at": rfc3339(base + timedelta(days=30)),
        }
        tasks = [
            call(
                "POST",
                "/tasks",
                {
                    "title": f"Job {number}",
                    "schedule": schedule,
                    "action": {"type": "webhook", "url": f"{webhook.url}/{number}"},
                },
            )
            for number in range(tasks_count)
        ]
        events = [
            {
                "task_id": task["id"],
                "project_id": task["project_id"],
                "scheduled_time": rfc3339(base + timedelta(hours=hour)),
            }
            for task in tasks
            for hour in range(firings_per_task)
        ]
        random.Random(7).shuffle(events)
        plan = DeliveryPlan(events)
        client = _lambda_client(stack, CALLERS)
        answers: list[tuple[int, dict[str, Any]]] = []
        lock = threading.Lock()

        def caller() -> None:
            while (taken := plan.take()) is not None:
                event, which, barrier = taken
                if barrier is not None:
                    barrier.wait(timeout=60)
                delivery = {**event, "attempt": str(which), "execution_id": f"delivery-{which}"}
                answer = invoke_fire(client, delivery)
                with lock:
                    answers.append((which, answer))

        started = time.perf_counter()
        with ThreadPoolExecutor(CALLERS) as pool:
            for done in [pool.submit(caller) for _ in range(CALLERS)]:
                done.result(timeout=DEADLINE_SECONDS)
        elapsed = time.perf_counter() - started
        deadline = time.monotonic() + 60
        task_ids = [task["id"] for task in tasks]
        executions = executions_of(call, task_ids)
        while time.monotonic() < deadline and any(
            e["status"] in ("queued", "running") for e in executions
        ):
            threading.Event().wait(1)
            executions = executions_of(call, task_ids)
        machine = state_machine_executions(stack)
    finally:
        webhook.close()
    first_attempts = webhook.first_attempts()
    stored_ids = [str(e["id"]) for e in executions]
    taken = Counter(
        f"{which}: {'created' if answer['created'] else answer.get('taken') or 'none'}"
        for which, answer in answers
    )
    return {
        "firings": len(events),
        "deliveries": len(answers),
        "created": sum(1 for _, answer in answers if answer["created"]),
        "answers": dict(sorted(taken.items())),
        "stored_executions": len(executions),
        "distinct_firings_stored": len({(e["task_id"], e["scheduled_for"]) for e in executions}),
        "statuses": statuses(executions),
        "first_attempt_requests": sum(first_attempts[i] for i in stored_ids),
        "executions_without_request": sum(1 for i in stored_ids if first_attempts[i] == 0),
        "duplicate_first_attempts": sum(max(0, first_attempts[i] - 1) for i in stored_ids),
        "webhook_requests": webhook.requests,
        "state_machine_executions": len(machine),
        "deliveries_per_second": len(answers) / elapsed,
    }


# ---- part 3: a firing with 2 retries --------------------------------------------------------


def retried(stack: Any) -> dict[str, Any]:
    """Part 3: a firing whose webhook fails twice: attempt 1 by `fire`, attempts 2 and 3 on
    the state machine; its state transitions."""
    import boto3

    webhook = Webhook()
    webhook.fail_attempts("/retried", 3)  # attempts 1 and 2 answer 500
    try:
        call = _api(stack)
        at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        task = call(
            "POST",
            "/tasks",
            {
                "title": "Flaky",
                "schedule": {
                    "kind": "rate",
                    "every": 1,
                    "unit": "hours",
                    "start_at": rfc3339(at + timedelta(days=30)),
                },
                "action": {"type": "webhook", "url": f"{webhook.url}/retried"},
                "retry": RETRY_POLICY,
            },
        )
        client = _lambda_client(stack, 1)
        started = time.monotonic()
        fired = invoke_fire(
            client,
            {
                "task_id": task["id"],
                "project_id": task["project_id"],
                "scheduled_time": rfc3339(at),
                "attempt": "1",
                "execution_id": "retried-1",
            },
        )
        execution_id = str(fired["execution_id"])
        found: dict[str, Any] = {}

        def succeeded() -> bool:
            items = executions_of(call, [task["id"]])
            found.update(items[0] if items else {})
            return found.get("status") in ("succeeded", "failed", "timed_out")

        wait_for(succeeded, time.monotonic() + 60, interval=0.2)
        took = time.monotonic() - started
        machine = os.environ["TASKBEAT_STATE_MACHINE_ARN"]
        arn = f"{machine.replace(':stateMachine:', ':execution:', 1)}:{execution_id}"
        stepfunctions = boto3.client("stepfunctions", region_name=stack.region)
        status: dict[str, str] = {}

        def machine_done() -> bool:
            status["value"] = stepfunctions.describe_execution(executionArn=arn)["status"]
            return status["value"] != "RUNNING"

        wait_for(machine_done, time.monotonic() + 30, interval=0.2)
        states = _states_entered(stack, execution_id)
    finally:
        webhook.close()
    return {
        "fire_answer": fired,
        "status": found.get("status"),
        "attempts": found.get("attempts"),
        "seconds_to_succeeded": round(took, 2),
        "state_machine_status": status.get("value"),
        "webhook_requests": webhook.requests,
        "states": states,
        "transitions": len(states),
    }


def _states_entered(stack: Any, execution_id: str) -> list[str]:
    """The states one state machine execution entered, in order (each a transition, which
    Step Functions Standard bills); the execution is named after the Taskbeat execution."""
    import boto3

    machine = os.environ["TASKBEAT_STATE_MACHINE_ARN"]
    arn = f"{machine.replace(':stateMachine:', ':execution:', 1)}:{execution_id}"
    client = boto3.client("stepfunctions", region_name=stack.region)
    entered: list[str] = []
    token = None
    while True:
        page = client.get_execution_history(
            executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        entered += [
            str(next((v.get("name") for k, v in e.items() if k.endswith("EventDetails")), "?"))
            for e in page["events"]
            if e["type"].endswith("StateEntered")
        ]
        token = page.get("nextToken")
        if not token:
            return entered


# ---- figures ------------------------------------------------------------------------------------

GROUP = "firings (local stack)"


def figures_of(
    late: dict[str, Any], counted: dict[str, Any], retry: dict[str, Any]
) -> list[Figure]:
    def figure(
        key: str, label: str, value: float, unit: str, target: Target | None = None
    ) -> Figure:
        return Figure(f"firings.{key}", label, value, unit, target, GROUP)

    n = late["schedules"]

    def ms(values: list[float], share: float) -> float:
        return percentile(values, share) * SECONDS

    firings = counted["firings"]
    burst, solo = late["burst"], late["solo"]
    return [
        figure(
            "delivered",
            f"one-time schedules due at one second, delivered (of {n})",
            late["delivered"],
            "firings",
            Target(">=", n),
        ),
        figure(
            "executions",
            "executions stored for them",
            late["executions"],
            "executions",
            Target("==", n),
        ),
        figure(
            "webhook_requests",
            "webhook requests they sent",
            late["webhook_requests"],
            "requests",
            Target("==", n),
        ),
        figure(
            "delivery_to_webhook_p50_ms",
            "fire starts -> webhook receives, p50",
            ms(burst["delivery_to_webhook"], 0.5),
            "ms",
            Target("<=", 50),
        ),
        figure(
            "delivery_to_webhook_p99_ms",
            "fire starts -> webhook receives, p99",
            ms(burst["delivery_to_webhook"], 0.99),
            "ms",
        ),
        figure(
            "lateness_p50_ms",
            "lateness (webhook receives - scheduled time), p50",
            ms(burst["lateness"], 0.5),
            "ms",
        ),
        figure(
            "lateness_p99_ms",
            "lateness (webhook receives - scheduled time), p99",
            ms(burst["lateness"], 0.99),
            "ms",
            Target("<=", 1000),
        ),
        figure(
            "delivery_p50_ms",
            "delivery lateness (fire starts - scheduled time), p50",
            ms(burst["delivery"], 0.5),
            "ms",
        ),
        figure(
            "delivery_p99_ms",
            "delivery lateness (fire starts - scheduled time), p99",
            ms(burst["delivery"], 0.99),
            "ms",
        ),
        figure(
            "solo_delivery_to_webhook_p50_ms",
            f"one firing at a time ({len(solo['delivery_to_webhook'])}): fire -> webhook, p50",
            ms(solo["delivery_to_webhook"], 0.5),
            "ms",
        ),
        figure(
            "solo_lateness_p50_ms",
            "one firing at a time: lateness, p50",
            ms(solo["lateness"], 0.5),
            "ms",
        ),
        figure(
            "fire_concurrency",
            "local fire function: events it handles at once",
            late["fire_concurrency"],
            "events",
        ),
        figure(
            "most_fires_at_once",
            "fire handlers seen running at once in the burst",
            late["most_fires_at_once"],
            "events",
        ),
        figure(
            "burst_cpu_ms_per_firing",
            "stack's CPU time per firing during the burst (one process)",
            late["burst_cpu_seconds"] / max(1, late["delivered"]) * SECONDS,
            "ms",
        ),
        figure(
            "executions_per_firing",
            f"executions stored per firing ({counted['deliveries']} deliveries, {DELIVERIES} each)",
            counted["stored_executions"] / firings,
            "x",
            Target("==", 1),
        ),
        figure(
            "first_attempt_requests_per_firing",
            "first-attempt webhook requests per firing",
            counted["first_attempt_requests"] / firings,
            "x",
            Target("==", 1),
        ),
        figure(
            "duplicate_first_attempts",
            "first attempts sent more than once",
            counted["duplicate_first_attempts"],
            "requests",
            Target("==", 0),
        ),
        figure(
            "runs_succeeded",
            "runs succeeded, of the firings",
            counted["statuses"].get("succeeded", 0) / firings,
            "share",
            Target("==", 1),
        ),
        figure(
            "state_machine_executions_per_1000",
            "Step Functions executions per 1,000 first-attempt successes",
            counted["state_machine_executions"] / firings * 1000,
            "executions",
            Target("==", 0),
        ),
        figure(
            "deliveries_per_second",
            f"deliveries handled ({CALLERS} callers, Lambda API)",
            counted["deliveries_per_second"],
            "req/s",
        ),
        figure(
            "retried_attempts",
            "a firing failing twice: attempts until it succeeded",
            float(retry["attempts"] or 0) if retry["status"] == "succeeded" else float("nan"),
            "attempts",
            Target("==", 3),
        ),
        figure(
            "transitions_with_2_retries",
            "state transitions of its state machine execution",
            retry["transitions"],
            "transitions",
        ),
    ]


def measure(quick: bool = False) -> SuiteResult:
    started = time.monotonic()
    late = lateness(QUICK_SCHEDULES if quick else SCHEDULES)
    print(f"firings: lateness took {time.monotonic() - started:.0f} s", file=sys.stderr)
    started = time.monotonic()
    with local_stack() as stack:
        if quick:
            counted = deliveries(stack, QUICK_TASKS, QUICK_FIRINGS_PER_TASK)
        else:
            counted = deliveries(stack)
        print(f"firings: deliveries took {time.monotonic() - started:.0f} s", file=sys.stderr)
        started = time.monotonic()
        retry = retried(stack)  # after counting part 2's state machine executions
        print(f"firings: retries took {time.monotonic() - started:.0f} s", file=sys.stderr)
    summary = {key: value for key, value in late.items() if key not in ("burst", "solo")}
    for part in ("burst", "solo"):
        for name, values in late[part].items():
            summary[f"{part}_{name}_p50"] = percentile(values, 0.5)
            summary[f"{part}_{name}_p99"] = percentile(values, 0.99)
    data = {"lateness": summary, "deliveries": counted, "retried": retry}
    return SuiteResult(figures_of(late, counted, retry), data)


if __name__ == "__main__":
    argv = sys.argv[1:]
    main_for_suite(lambda: measure(quick="--quick" in argv), argv)
