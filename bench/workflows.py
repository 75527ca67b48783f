"""A 100-step workflow on the local stack: wall time against its critical path, and Step
Functions state transitions per step counted from the execution's history.

`python -m bench.workflows` starts the local stack in this process (moto's Step Functions
interpreter runs the same definition as AWS) and runs one workflow of 10 levels of 10 steps,
each step of a level depending on two of the level before, each step's task a webhook that
answers after 100 ms, with `max_concurrency` 10. The critical path is 10 steps x 100 ms = 1 s;
the target is at most 2 x 1 s + 5 s. State transitions are the history's `*StateEntered`
events (what Step Functions Standard bills), divided by the steps.

Bounded: the webhook is on 127.0.0.1, and the run must finish within a minute.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.firings import _api, local_stack
from bench.report import Figure, SuiteResult, Target, main_for_suite

LEVELS, WIDTH = 10, 10
STEP_SECONDS = 0.1
DEADLINE_SECONDS = 60
# How often the bench reads the run, as a dashboard would: each read costs the stack a batch
# read of every step's execution, so a tighter loop measures the poller as much as the run.
POLL_SECONDS = 0.2


class SlowWebhook:
    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(STEP_SECONDS)  # the webhook's work
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/step"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def steps(task_ids: list[str]) -> list[dict[str, Any]]:
    graph = []
    for level in range(LEVELS):
        for index in range(WIDTH):
            depends = (
                []
                if level == 0
                else sorted({f"s{level - 1}-{index}", f"s{level - 1}-{(index + 1) % WIDTH}"})
            )
            graph.append(
                {
                    "key": f"s{level}-{index}",
                    "task_id": task_ids[level * WIDTH + index],
                    "depends_on": depends,
                }
            )
    return graph


def measure() -> dict[str, Any]:
    import boto3

    webhook = SlowWebhook()
    try:
        with local_stack() as stack:
            call = _api(stack)
            task_ids = [
                call(
                    "POST",
                    "/tasks",
                    {"title": f"Step {n}", "action": {"type": "webhook", "url": webhook.url}},
                )["id"]
                for n in range(LEVELS * WIDTH)
            ]
            workflow = call(
                "POST",
                "/workflows",
                {"name": "bench", "steps": steps(task_ids), "max_concurrency": 10},
            )
            started = time.monotonic()
            run = call("POST", f"/workflows/{workflow['id']}/run")
            while time.monotonic() - started < DEADLINE_SECONDS:
                run = call("GET", f"/workflow-runs/{run['id']}")
                if run["status"] not in ("queued", "running"):
                    break
                time.sleep(POLL_SECONDS)
            elapsed = time.monotonic() - started
            machine = os.environ["TASKBEAT_STATE_MACHINE_ARN"]
            client = boto3.client("stepfunctions", region_name=stack.region)
            arn = f"{machine.replace(':stateMachine:', ':execution:', 1)}:{run['id']}"
            kinds: Counter[str] = Counter()
            token = None
            while True:
                page = client.get_execution_history(
                    executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {})
                )
                kinds.update(event["type"] for event in page["events"])
                token = page.get("nextToken")
                if not token:
                    break
    finally:
        webhook.close()
    entered = sum(count for kind, count in kinds.items() if kind.endswith("StateEntered"))
    return {
        "status": run["status"],
        "steps": LEVELS * WIDTH,
        "seconds": elapsed,
        # The run's own record: from its creation to its last round (no polling in it).
        "recorded_seconds": (
            datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["created_at"])
        ).total_seconds()
        if run.get("finished_at")
        else None,
        "critical_path": LEVELS * STEP_SECONDS,
        "transitions": entered,
        "history_events": sum(kinds.values()),
    }


GROUP = "workflows (local stack)"


def figures() -> SuiteResult:
    result = measure()
    budget = 2 * result["critical_path"] + 5

    def figure(
        key: str, label: str, value: float, unit: str, target: Target | None = None
    ) -> Figure:
        return Figure(f"workflows.{key}", label, value, unit, target, GROUP)

    out = [
        figure(
            "succeeded",
            f"{result['steps']}-step workflow succeeded",
            1 if result["status"] == "succeeded" else 0,
            "bool",
            Target("==", 1),
        ),
        figure(
            "run_seconds",
            f"{result['steps']}-step run, as a client polling every {POLL_SECONDS} s sees it",
            result["seconds"],
            "s",
            Target("<=", budget),
        ),
        figure(
            "transitions_per_step",
            "state transitions per step",
            result["transitions"] / result["steps"],
            "transitions",
        ),
    ]
    if result["recorded_seconds"] is not None:
        out.insert(
            2,
            figure(
                "recorded_seconds",
                "the run, creation to finish as recorded",
                result["recorded_seconds"],
                "s",
            ),
        )
    return SuiteResult(out, dict(result))


def main() -> None:
    main_for_suite(figures, sys.argv[1:])


if __name__ == "__main__":
    main()
