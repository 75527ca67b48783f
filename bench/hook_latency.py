"""Project hook delivery latency on the local stack: from a task's write to its hook.

`python -m bench.hook_latency` starts the local stack in this process, makes a project with one
hook (`task.created`) on a loopback server that answers 204 at once, and creates `TASKS` tasks
over HTTP, one every `GAP` seconds. Per task: the time from the `POST /tasks` answer (the write
is done) to the signed delivery's arrival at the hook. The path is the deployed one: the table's
stream -> `on_change` (the delivery record and its SQS message) -> the SQS poller (the local
event source mapping, 1-second long polls) -> `deliver_hooks` -> the POST. Reported: p50, p99,
and deliveries received (one per task). `--quick` makes fewer tasks.

Bounded: everything targets 127.0.0.1; every wait has a deadline.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.firings import local_stack, percentile
from bench.report import Figure, SuiteResult, Target, main_for_suite

TASKS, QUICK_TASKS = 100, 40
GAP = 0.1  # seconds between task writes
DEADLINE = 60.0  # seconds for every delivery to arrive after the last write
GROUP = "project hooks (local stack)"


class Arrivals:
    """A loopback hook: the monotonic arrival time of each task's delivery, by task id."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.lock = threading.Lock()
        arrivals = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.monotonic()
                task_id = json.loads(body)["data"]["id"]
                with arrivals.lock:
                    arrivals.at.setdefault(task_id, now)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def measure(quick: bool = False) -> SuiteResult:
    import requests

    from local.testing import register_user

    count = QUICK_TASKS if quick else TASKS
    hook = Arrivals()
    written: dict[str, float] = {}
    try:
        with local_stack() as stack:
            token = register_user(stack.api_url)["access_token"]
            headers = {"Authorization": f"Bearer {token}"}

            def call(method: str, path: str, body: Any) -> Any:
                answer = requests.request(
                    method, stack.api_url + path, json=body, headers=headers, timeout=30
                )
                answer.raise_for_status()
                return answer.json()

            project = call("POST", "/projects", {"name": "Bench hooks"})
            call(
                "POST",
                f"/projects/{project['id']}/hooks",
                {"url": hook.url, "events": ["task.created"]},
            )
            for n in range(count):
                task = call("POST", "/tasks", {"title": f"T{n}", "project_id": project["id"]})
                written[task["id"]] = time.monotonic()
                time.sleep(GAP)
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline:
                with hook.lock:
                    if len(hook.at) >= count:
                        break
                time.sleep(0.1)
    finally:
        hook.close()
    latencies = [(hook.at[t] - w) * 1000 for t, w in written.items() if t in hook.at]
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"hook_latency: {len(latencies)} of {count}, p50 {p50:.0f} ms", file=sys.stderr)
    figures = [
        Figure(
            "hook_latency.delivered",
            f"task.created deliveries received (of {count})",
            len(latencies),
            "deliveries",
            Target("==", count),
            GROUP,
        ),
        Figure(
            "hook_latency.p50_ms",
            "write to hook, p50 (stream, on_change, SQS, deliver_hooks, POST)",
            p50,
            "ms",
            Target("<=", 1500),
            GROUP,
        ),
        Figure("hook_latency.p99_ms", "write to hook, p99", p99, "ms", Target("<=", 3000), GROUP),
    ]
    return SuiteResult(figures, {"latencies_ms": sorted(latencies)})


if __name__ == "__main__":
    argv = sys.argv[1:]
    main_for_suite(lambda: measure(quick="--quick" in argv), argv)
