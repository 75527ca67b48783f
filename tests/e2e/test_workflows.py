"""Workflow runs on the running local stack, end to end: the run state machine (moto's
interpreter, the same definition as on AWS) plans rounds of ready steps and runs each step's
webhook through `run_step`; the webhooks are a loopback server in this process that notes when
each call began and ended."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from local.testing import ApiClient, StackProcess, wait_until

RUN_TIMEOUT = 60.0


class Hooks:
    """Webhooks by path: each answers `status` after `delay` seconds; calls are timed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []  # (path, began, ended)
        self.behaviour: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self._active = 0
        self.most_at_once = 0
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                began = time.monotonic()
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                delay, status = hooks.behaviour.get(self.path, (0.0, 200))
                with hooks._lock:
                    hooks._active += 1
                    hooks.most_at_once = max(hooks.most_at_once, hooks._active)
                time.sleep(delay)  # the webhook's own work, not the test waiting
                with hooks._lock:
                    hooks._active -= 1
                    hooks.calls.append((self.path, began, time.monotonic()))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hook(self, path: str, delay: float = 0.0, status: int = 200) -> dict[str, Any]:
        self.behaviour[path] = (delay, status)
        return {"type": "webhook", "url": self.url + path, "timeout_seconds": 30}

    def span(self, path: str) -> tuple[float, float]:
        (found,) = [(began, ended) for p, began, ended in self.calls if p == path]
        return found


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    running = Hooks()
    yield running
    running.server.shutdown()
    running.server.server_close()


class Api(ApiClient):
    """The calls these tests make, by name."""

    def task(self, title: str, action: dict[str, Any] | None = None, **fields: Any) -> str:
        body: dict[str, Any] = {"title": title, **fields}
        if action:
            body["action"] = action
        return str(self("POST", "/tasks", body, 201)["id"])

    def workflow(self, steps: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        body = {"name": "w", "steps": steps, **fields}
        return self("POST", "/workflows", body, 201)  # type: ignore[no-any-return]

    def run(self, workflow: dict[str, Any]) -> dict[str, Any]:
        return self("POST", f"/workflows/{workflow['id']}/run", None, 202)  # type: ignore[no-any-return]

    def finished(self, run: dict[str, Any]) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            current = self("GET", f"/workflow-runs/{run['id']}")
            return current if current["status"] not in ("queued", "running") else None

        return wait_until(done, RUN_TIMEOUT, interval=0.2, message=f"run {run['id']}")


@pytest.fixture
def api(stack: StackProcess, new_user: Callable[..., dict[str, Any]]) -> Api:
    return Api(stack.api, new_user()["access_token"])


def statuses(run: dict[str, Any]) -> dict[str, str]:
    return {step["key"]: step["status"] for step in run["steps"]}


def test_a_diamond_runs_its_middle_side_by_side_and_its_end_after_both(
    api: Api, hooks: Hooks
) -> None:
    tasks = {key: api.task(key, hooks.hook(f"/{key}", delay=0.5)) for key in "abcd"}
    workflow = api.workflow(
        [
            {"key": "a", "task_id": tasks["a"], "depends_on": []},
            {"key": "b", "task_id": tasks["b"], "depends_on": ["a"]},
            {"key": "c", "task_id": tasks["c"], "depends_on": ["a"]},
            {"key": "d", "task_id": tasks["d"], "depends_on": ["b", "c"]},
        ]
    )
    run = api.finished(api.run(workflow))
    assert run["status"] == "succeeded", run
    assert set(statuses(run).values()) == {"succeeded"}
    a, b, c, d = (hooks.span(f"/{key}") for key in "abcd")
    assert a[1] <= min(b[0], c[0])  # b and c start after a ended
    assert b[0] < c[1]  # b and c overlap in time
    assert c[0] < b[1]
    assert d[0] >= max(b[1], c[1])  # d starts after both ended
    assert all(step["execution_id"] for step in run["steps"])
    execution = api("GET", f"/executions/{run['steps'][3]['execution_id']}")
    assert (execution["trigger"], execution["workflow_run_id"]) == ("workflow", run["id"])
    listed = api("GET", f"/workflows/{workflow['id']}/runs")["items"]
    assert [r["id"] for r in listed] == [run["id"]]


def test_max_concurrency_is_respected(api: Api, hooks: Hooks) -> None:
    steps = [
        {"key": f"s{n}", "task_id": api.task(f"s{n}", hooks.hook(f"/s{n}", delay=0.3))}
        for n in range(5)
    ]
    run = api.finished(api.run(api.workflow(steps, max_concurrency=2)))
    assert run["status"] == "succeeded"
    assert len(hooks.calls) == 5
    assert hooks.most_at_once == 2


def test_stop_and_continue_on_failure(api: Api, hooks: Hooks) -> None:
    failing = api.task("failing", hooks.hook("/failing", status=500), retry={"max_attempts": 1})
    fine = api.task("fine", hooks.hook("/fine"))
    after = api.task("after", hooks.hook("/after"))
    graph = [
        {"key": "bad", "task_id": failing},
        {"key": "good", "task_id": fine},
        {"key": "below_bad", "task_id": after, "depends_on": ["bad"]},
        {"key": "below_good", "task_id": after, "depends_on": ["good"]},
    ]
    stopped = api.finished(api.run(api.workflow(graph, on_failure="stop")))
    assert stopped["status"] == "failed"
    assert statuses(stopped)["bad"] == "failed"
    assert statuses(stopped)["below_bad"] == "skipped"
    # good ran in the same round as bad; nothing new started after the failure.
    assert statuses(stopped)["below_good"] == "skipped"

    continued = api.finished(api.run(api.workflow(graph, on_failure="continue")))
    assert continued["status"] == "failed"
    assert statuses(continued) == {
        "bad": "failed",
        "good": "succeeded",
        "below_bad": "skipped",
        "below_good": "succeeded",
    }
    notifications = api("GET", "/notifications")["items"]
    assert [n["type"] for n in notifications].count("workflow_run.failed") == 2


def test_cancel_ends_the_run_and_every_unfinished_step(api: Api, hooks: Hooks) -> None:
    slow = api.task("slow", hooks.hook("/slow", delay=3.0))
    later = api.task("later", hooks.hook("/later"))
    workflow = api.workflow(
        [
            {"key": "slow", "task_id": slow},
            {"key": "later", "task_id": later, "depends_on": ["slow"]},
        ]
    )
    run = api.run(workflow)

    def slow_started() -> bool:
        current = api("GET", f"/workflow-runs/{run['id']}")
        return statuses(current)["slow"] == "running"

    wait_until(slow_started, RUN_TIMEOUT, interval=0.1, message="the slow step to start")
    cancelled = api("POST", f"/workflow-runs/{run['id']}/cancel", None, 202)
    assert cancelled["status"] == "cancelled"
    assert statuses(cancelled) == {"slow": "cancelled", "later": "cancelled"}
    again = api("POST", f"/workflow-runs/{run['id']}/cancel", None, 409)
    assert again["error"]["code"]
    shown = api("GET", f"/workflow-runs/{run['id']}")
    assert statuses(shown) == {"slow": "cancelled", "later": "cancelled"}
    assert [p for p, _, _ in hooks.calls if p == "/later"] == []
