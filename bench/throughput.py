"""Throughput of the local stack under a bounded load from a second process, on loopback.

`python -m bench.throughput` starts `python -m local` as a subprocess (local/testing.py:
StackProcess, as the e2e tests do), registers a user, makes a project with 50 tasks, and then
this process sends a mix of requests from `CONCURRENCY` threads, each with its own kept-alive
connection: 70% `GET /tasks/{id}`, 20% `GET /tasks?project_id&status&sort` (25 a page), 10%
`PATCH /tasks/{id}` (each thread on tasks of its own, so no write races another). The load
stops at `MAX_REQUESTS` requests or after `MAX_SECONDS`, whichever comes first.

Figures: requests per second, p50 and p99 latency as the client sees it, and errors (any
status other than the expected one, or a failed connection; the target is none).

Bounded: 127.0.0.1 only, at most MAX_REQUESTS requests and MAX_SECONDS seconds of load. The
stack runs moto in the same process as the app, so this is the local stack's throughput on this
machine, not Lambda's.
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import Figure, SuiteResult, Target, main_for_suite

CONCURRENCY = 8
MAX_REQUESTS = 2000
MAX_SECONDS = 30.0
TASKS = 50
GROUP = f"throughput of the local stack ({CONCURRENCY} concurrent clients, loopback)"


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0

    def claim(self) -> bool:
        with self.lock:
            if self.sent >= MAX_REQUESTS:
                return False
            self.sent += 1
            return True


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _worker(
    api: str,
    token: str,
    project: str,
    mine: list[str],
    everyone: list[str],
    tally: Tally,
    deadline: float,
    seed: int,
) -> None:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    pick = random.Random(seed)
    while time.monotonic() < deadline and tally.claim():
        roll = pick.random()
        if roll < 0.7:
            method, url, body = "GET", f"{api}/tasks/{pick.choice(everyone)}", None
        elif roll < 0.9:
            method = "GET"
            url = f"{api}/tasks?project_id={project}&status=pending&sort=due_date&limit=25"
            body = None
        else:
            method, url = "PATCH", f"{api}/tasks/{pick.choice(mine)}"
            body = {"description": f"load {pick.random()}"}
        started = time.perf_counter()
        try:
            response = session.request(method, url, json=body, timeout=30)
            ok = response.status_code == 200
            problem = f"{method} {url}: {response.status_code} {response.text[:200]}"
        except requests.RequestException as exc:
            ok, problem = False, f"{method} {url}: {exc}"
        elapsed = time.perf_counter() - started
        with tally.lock:
            if ok:
                tally.latencies.append(elapsed)
            else:
                tally.errors.append(problem)


def measure() -> SuiteResult:
    from local.testing import ApiClient, StackProcess, free_port, register_user

    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as scratch:
        stack = StackProcess(
            Path(scratch) / "stack.log",
            http_port=free_port(),
            ws_port=free_port(),
            sweep_seconds=60,
        )
        stack.start()
        try:
            if not stack.api.startswith("http://127.0.0.1:"):
                raise AssertionError(f"the stack is not on loopback: {stack.api}")
            token = register_user(stack.api)["access_token"]
            api = ApiClient(stack.api, token)
            project = api("POST", "/projects", {"name": "Load"}, 201)["id"]
            tasks = [
                api("POST", "/tasks", {"title": f"Load {n}", "project_id": project}, 201)["id"]
                for n in range(TASKS)
            ]
            tally = Tally()
            deadline = time.monotonic() + MAX_SECONDS
            share = len(tasks) // CONCURRENCY
            threads = [
                threading.Thread(
                    target=_worker,
                    args=(
                        stack.api,
                        token,
                        project,
                        tasks[n * share : (n + 1) * share],
                        tasks,
                        tally,
                        deadline,
                        n,
                    ),
                )
                for n in range(CONCURRENCY)
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(MAX_SECONDS + 60)
            elapsed = time.perf_counter() - started
        finally:
            code = stack.stop()
        if code != 0:
            raise AssertionError(f"the local stack exited with {code}:\n{stack.output()[-2000:]}")
    done = len(tally.latencies) + len(tally.errors)
    seconds_to_ms = 1000.0
    latencies = tally.latencies or [float("nan")]
    figures = [
        Figure("throughput.requests", "requests sent", done, "requests", None, GROUP),
        Figure("throughput.rps", "throughput", done / elapsed, "req/s", None, GROUP),
        Figure(
            "throughput.p50_ms",
            "latency p50",
            percentile(latencies, 0.5) * seconds_to_ms,
            "ms",
            None,
            GROUP,
        ),
        Figure(
            "throughput.p99_ms",
            "latency p99",
            percentile(latencies, 0.99) * seconds_to_ms,
            "ms",
            None,
            GROUP,
        ),
        Figure(
            "throughput.errors", "errors", len(tally.errors), "requests", Target("==", 0), GROUP
        ),
    ]
    return SuiteResult(figures, {"seconds": elapsed, "first_errors": tally.errors[:5]})


if __name__ == "__main__":
    main_for_suite(measure, sys.argv[1:])
