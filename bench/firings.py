"""Firings on the local stack: how late the scheduler delivers, and one execution per firing.

`python -m bench.firings` starts the local stack in this process (moto, the ticker, the run
state machine) and prints two figures:

1. Lateness: 200 one-time schedules (5 per second over 40 seconds), each calling a loopback
   webhook. Per firing: delivery lateness (the `fire` Lambda starts, minus the scheduled
   time) and webhook lateness (the webhook receives the signed request, minus the scheduled
   time; it includes the state machine's plan and run_step on moto's interpreter).
2. Deliveries: 1,000 firings (100 tasks x 10 scheduled times), each delivered 3 times through
   the Lambda API in shuffled order by 8 concurrent callers, as EventBridge Scheduler's
   at-least-once delivery may; then, once every run has finished, the executions are counted
   per task (the tasks are reminders: each run is one `run_step` on the state machine). The
   tasks' own schedules start in a month, so the ticker adds no firing of its own.

Bounded: everything targets 127.0.0.1, and each part stops at its deadline.

`make bench` runs it smaller (`--quick`: 60 schedules over 12 s, 10 tasks x 5 firings x 3
deliveries) to stay within its time; it also counts the state transitions of one firing's run
from its Step Functions history (the cost model's figure, bench/cost.py).
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.report import Figure, SuiteResult, Target, main_for_suite

SCHEDULES = 200
PER_SECOND = 5
TASKS, FIRINGS_PER_TASK, DELIVERIES = 100, 10, 3
CALLERS = 8
DEADLINE_SECONDS = 300


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def summary(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 0.5) * 1000:.0f} ms, p95 {percentile(values, 0.95) * 1000:.0f}"
        f" ms, p99 {percentile(values, 0.99) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
    )


@contextmanager
def local_stack() -> Iterator[Any]:
    from local.stack import LocalStack
    from local.testing import free_port

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    with LocalStack(http_port=free_port(), ws_port=free_port(), quiet=True) as stack:
        yield stack


class Webhook:
    """A loopback webhook that notes when each request arrived, by path."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's name
                hook.arrived.setdefault(self.path, time.time())
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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


def due_at(first: datetime, number: int) -> datetime:
    return first + timedelta(seconds=number // PER_SECOND)


def lateness(schedules: int = SCHEDULES, lead_seconds: float = 45) -> dict[str, Any]:
    """Part 1: deliveries and webhook calls of one-time schedules (5 a second), against their
    times; the first is due `lead_seconds` after the stack is up (creating them takes a while)."""
    webhook = Webhook()
    delivered: dict[tuple[str, str], float] = {}
    try:
        with local_stack() as stack:
            fire = stack.registry._get("fire").handler

            def timed_fire(event: Any, context: Any) -> Any:
                if isinstance(event, dict):
                    key = (str(event.get("task_id")), str(event.get("scheduled_time")))
                    delivered.setdefault(key, time.time())
                return fire(event, context)

            stack.registry._get("fire").handler = timed_fire
            call = _api(stack)
            # Creating 200 tasks takes a few seconds; the first firing is due after that.
            first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lead_seconds)
            due: dict[str, datetime] = {}
            for number in range(schedules):
                at = due_at(first, number)
                task = call(
                    "POST",
                    "/tasks",
                    {
                        "title": f"Ping {number}",
                        "schedule": {"kind": "once", "at": at.strftime("%Y-%m-%dT%H:%M:%SZ")},
                        "action": {"type": "webhook", "url": f"{webhook.url}/{number}"},
                    },
                )
                due[task["id"]] = at
            created = time.time()
            spare = first.timestamp() - created
            last = first + timedelta(seconds=(schedules - 1) // PER_SECOND)
            deadline = last.timestamp() + 60
            while len(webhook.arrived) < schedules and time.time() < deadline:
                time.sleep(0.2)
            delivery = [
                delivered[(task_id, at.strftime("%Y-%m-%dT%H:%M:%SZ"))] - at.timestamp()
                for task_id, at in due.items()
                if (task_id, at.strftime("%Y-%m-%dT%H:%M:%SZ")) in delivered
            ]
            webhook_lateness = [
                webhook.arrived[f"/{number}"] - due_at(first, number).timestamp()
                for number in range(schedules)
                if f"/{number}" in webhook.arrived
            ]
    finally:
        webhook.close()
    return {
        "schedules": schedules,
        "spare_seconds_before_first": round(spare, 1),
        "delivered": len(delivery),
        "webhooks_called": len(webhook_lateness),
        "delivery": delivery,
        "webhook": webhook_lateness,
    }


def deliveries(
    tasks_count: int = TASKS, firings_per_task: int = FIRINGS_PER_TASK
) -> dict[str, Any]:
    """Part 2: firings x 3 deliveries through the Lambda API -> executions per task; and the
    state transitions of one run, from its Step Functions history."""
    import boto3
    from botocore.config import Config

    with local_stack() as stack:
        call = _api(stack)
        base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1)
        later = (base + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        schedule = {
            "kind": "rate",
            "every": 1,
            "unit": "hours",
            "overlap": "allow",
            "start_at": later,
        }
        tasks = [
            call("POST", "/tasks", {"title": f"Job {number}", "schedule": schedule})
            for number in range(tasks_count)
        ]
        events = [
            {
                "task_id": task["id"],
                "project_id": task["project_id"],
                "scheduled_time": (base + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "attempt": str(attempt),
                "execution_id": f"delivery-{task['id']}-{hour}-{attempt}",
            }
            for task in tasks
            for hour in range(firings_per_task)
            for attempt in range(1, DELIVERIES + 1)
        ]
        random.Random(7).shuffle(events)
        client = boto3.client(
            "lambda",
            region_name=stack.region,
            config=Config(retries={"total_max_attempts": 1}, max_pool_connections=CALLERS),
        )

        def deliver(event: dict[str, Any]) -> dict[str, Any]:
            answer = client.invoke(FunctionName="fire", Payload=json.dumps(event).encode())
            payload: dict[str, Any] = json.loads(answer["Payload"].read())
            if answer.get("FunctionError"):
                raise AssertionError(f"fire failed: {payload}")
            return payload

        started = time.perf_counter()
        with ThreadPoolExecutor(CALLERS) as pool:
            answers = list(pool.map(deliver, events))
        elapsed = time.perf_counter() - started
        created = sum(1 for a in answers if a["created"])
        distinct = {a["execution_id"] for a in answers}

        def stored() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            for task in tasks:
                cursor = None
                while True:
                    query = f"/tasks/{task['id']}/executions?limit=100"
                    page = call("GET", query + (f"&cursor={cursor}" if cursor else ""))
                    found += page["items"]
                    cursor = page.get("next_cursor")
                    if not cursor:
                        break
            return found

        deadline = time.monotonic() + DEADLINE_SECONDS
        executions = stored()
        while time.monotonic() < deadline and any(
            e["status"] in ("queued", "running") for e in executions
        ):
            time.sleep(2)
            executions = stored()
        finished = [e for e in executions if e["status"] == "succeeded"]
        transitions = _transitions(stack, finished[0]["id"]) if finished else 0
    statuses: dict[str, int] = {}
    for execution in executions:
        statuses[execution["status"]] = statuses.get(execution["status"], 0) + 1
    return {
        "transitions_per_run": transitions,
        "firings": tasks_count * firings_per_task,
        "deliveries": len(events),
        "created": created,
        "distinct_execution_ids": len(distinct),
        "stored_executions": len(executions),
        "distinct_firings_stored": len({(e["task_id"], e["scheduled_for"]) for e in executions}),
        "statuses": statuses,
        "deliveries_per_second": round(len(events) / elapsed),
    }


def _transitions(stack: Any, execution_id: str) -> int:
    """States entered by one execution's run (what Step Functions Standard bills)."""
    import boto3

    machine = os.environ["TASKBEAT_STATE_MACHINE_ARN"]
    arn = f"{machine.replace(':stateMachine:', ':execution:', 1)}:{execution_id}"
    client = boto3.client("stepfunctions", region_name=stack.region)
    entered, token = 0, None
    while True:
        page = client.get_execution_history(
            executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        entered += sum(1 for e in page["events"] if e["type"].endswith("StateEntered"))
        token = page.get("nextToken")
        if not token:
            return entered


GROUP = "firings (local stack)"


def measure(quick: bool = False) -> SuiteResult:
    started = time.monotonic()
    late = lateness(schedules=60, lead_seconds=20) if quick else lateness()
    print(f"firings: lateness took {time.monotonic() - started:.0f} s", file=sys.stderr)
    started = time.monotonic()
    counted = deliveries(tasks_count=10, firings_per_task=5) if quick else deliveries()
    print(f"firings: deliveries took {time.monotonic() - started:.0f} s", file=sys.stderr)
    seconds = 1000.0

    def figure(
        key: str, label: str, value: float, unit: str, target: Target | None = None
    ) -> Figure:
        return Figure(f"firings.{key}", label, value, unit, target, GROUP)

    figures = [
        figure(
            "delivered",
            f"one-time schedules delivered, of {late['schedules']}",
            late["delivered"],
            "firings",
            Target(">=", late["schedules"]),
        ),
    ]
    if late["delivery"]:
        figures += [
            figure(
                "delivery_p50_ms",
                "delivery lateness p50",
                percentile(late["delivery"], 0.5) * seconds,
                "ms",
            ),
            figure(
                "delivery_p99_ms",
                "delivery lateness p99",
                percentile(late["delivery"], 0.99) * seconds,
                "ms",
            ),
        ]
    if late["webhook"]:
        figures += [
            figure(
                "webhook_p50_ms",
                "webhook lateness p50",
                percentile(late["webhook"], 0.5) * seconds,
                "ms",
            ),
            figure(
                "webhook_p99_ms",
                "webhook lateness p99",
                percentile(late["webhook"], 0.99) * seconds,
                "ms",
            ),
        ]
    figures += [
        figure(
            "executions_per_firing",
            f"executions stored per firing ({counted['deliveries']} deliveries, {DELIVERIES} each)",
            counted["stored_executions"] / counted["firings"],
            "x",
            Target("==", 1),
        ),
        figure(
            "runs_succeeded",
            "runs succeeded, of the firings",
            counted["statuses"].get("succeeded", 0) / counted["firings"],
            "share",
            Target("==", 1),
        ),
        figure(
            "deliveries_per_second",
            f"deliveries handled ({CALLERS} callers)",
            counted["deliveries_per_second"],
            "req/s",
        ),
        figure(
            "transitions_per_run",
            "state transitions of one run",
            counted["transitions_per_run"],
            "transitions",
        ),
    ]
    return SuiteResult(figures, {"lateness": late, "deliveries": counted})


if __name__ == "__main__":
    argv = sys.argv[1:]
    main_for_suite(lambda: measure(quick="--quick" in argv), argv)
