"""Webhook targets that are slow, down, hang up or fail, on the running local stack: each run
records every attempt, retries as the task's retry policy says, ends with the right status and
error, tells the task's people, and finishes within a deadline derived from that policy (no
attempt hangs past its timeout, no backoff is longer than asked). A workflow step whose
webhook fails ends the run the way its `on_failure` says and tells whoever started it.

The targets are a loopback HTTP server in this process (the local stack allows loopback
webhooks); "down" is a loopback port nobody listens on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from local.testing import (
    ApiClient,
    StackProcess,
    free_port,
    register_user,
    unique_email,
    wait_until,
)

# What a target does with its n-th request (1-based): answer a status, take `seconds` before
# answering (past the caller's timeout), stall `seconds` in the middle of its answer's body, or
# close the connection without a word.
Behaviour = Callable[[int], "Answer | Hang | Stall | HangUp"]


@dataclass(frozen=True)
class Answer:
    status: int


@dataclass(frozen=True)
class Hang:
    seconds: float
    then: int = 200


@dataclass(frozen=True)
class Stall:
    seconds: float


@dataclass(frozen=True)
class HangUp:
    pass


@dataclass
class Hits:
    behaviour: Behaviour
    at: list[float] = field(default_factory=list)  # monotonic time each request arrived
    deliveries: list[str] = field(default_factory=list)  # X-Taskbeat-Delivery of each


class Targets:
    def __init__(self) -> None:
        self.paths: dict[str, Hits] = {}
        self._lock = threading.Lock()
        self.closing = threading.Event()
        targets = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with targets._lock:
                    hits = targets.paths[self.path]
                    hits.at.append(time.monotonic())
                    hits.deliveries.append(self.headers.get("X-Taskbeat-Delivery", ""))
                    what = hits.behaviour(len(hits.at))
                if isinstance(what, HangUp):
                    self.close_connection = True  # not a byte of an answer
                    return
                if isinstance(what, Stall):
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b"partial...")
                    self.wfile.flush()
                    targets.closing.wait(what.seconds)
                    return
                status = what.status if isinstance(what, Answer) else what.then
                if isinstance(what, Hang):
                    targets.closing.wait(what.seconds)
                self.send_response(status)
                self.send_header("Content-Length", "4")
                self.end_headers()
                self.wfile.write(b"nope" if status >= 400 else b"done")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def action(self, path: str, behaviour: Behaviour, timeout: int = 1) -> dict[str, Any]:
        self.paths[path] = Hits(behaviour)
        return {"type": "webhook", "url": self.url + path, "timeout_seconds": timeout}

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def targets() -> Iterator[Targets]:
    running = Targets()
    yield running
    running.close()


class Api(ApiClient):
    def task(self, title: str, **fields: Any) -> dict[str, Any]:
        return self("POST", "/tasks", {"title": title, **fields}, 201)  # type: ignore[no-any-return]

    def finished_execution(self, execution_id: str, deadline: float) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            current = self("GET", f"/executions/{execution_id}")
            return current if current["status"] not in ("queued", "running") else None

        return wait_until(done, deadline, interval=0.1, message=f"execution {execution_id}")


def retry(max_attempts: int) -> dict[str, Any]:
    return {"max_attempts": max_attempts, "backoff_seconds": 1, "backoff_rate": 1}


def bound(max_attempts: int, timeout: int) -> float:
    """How long a run may take at most: every attempt's timeout, every 1 s backoff, and a
    margin for the state machine and the polling."""
    return max_attempts * timeout + (max_attempts - 1) * 1 + 6.0


def seconds_between(first: str, last: str) -> float:
    return (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()


def test_slow_down_hanging_up_and_failing_targets_are_retried_recorded_and_bounded(
    stack: StackProcess, targets: Targets
) -> None:
    person = register_user(stack.api, unique_email("hooks"))
    api = Api(stack.api, person["access_token"])
    nobody_listens = f"http://127.0.0.1:{free_port()}/down"
    cases: dict[str, dict[str, Any]] = {
        # name: the task's action and retry, and what the run must come to
        "slow once": {
            "action": targets.action("/slow-once", lambda n: Hang(3) if n == 1 else Answer(200)),
            "retry": retry(3),
            "expect": ("succeeded", 2, None, 200),
        },
        "always slow": {
            "action": targets.action("/slow", lambda n: Hang(3)),
            "retry": retry(2),
            "expect": ("failed", 2, "the webhook did not answer within 1 s", None),
        },
        "stalls mid-answer": {
            "action": targets.action("/stall", lambda n: Stall(3)),
            "retry": retry(2),
            "expect": ("failed", 2, "the webhook did not answer within 1 s", 200),
        },
        "down": {
            "action": {"type": "webhook", "url": nobody_listens, "timeout_seconds": 1},
            "retry": retry(3),
            "expect": ("failed", 3, "the webhook refused the connection", None),
        },
        "hangs up": {
            "action": targets.action("/hang-up", lambda n: HangUp()),
            "retry": retry(2),
            "expect": ("failed", 2, "the webhook closed the connection without answering", None),
        },
        "answers 500": {
            "action": targets.action("/fails", lambda n: Answer(500)),
            "retry": retry(3),
            "expect": ("failed", 3, "the webhook answered 500", 500),
        },
    }
    started = time.monotonic()
    runs = {}
    for name, case in cases.items():
        task = api.task(name, action=case["action"], retry=case["retry"])
        case["task"] = task
        runs[name] = api("POST", f"/tasks/{task['id']}/run", None, 202)
    longest = max(bound(c["retry"]["max_attempts"], 1) for c in cases.values())
    finished = {name: api.finished_execution(run["id"], longest) for name, run in runs.items()}
    # They ran side by side: together they took about as long as the longest one alone.
    assert time.monotonic() - started < 2 * longest

    for name, case in cases.items():
        run, task = finished[name], case["task"]
        status, attempts, error, code = case["expect"]
        assert (run["status"], run["attempts"], run["error"]) == (status, attempts, error), name
        assert (run["result"] or {}).get("status_code") == code, (name, run["result"])
        took = seconds_between(run["started_at"], run["finished_at"])
        assert took <= bound(case["retry"]["max_attempts"], 1), (name, took)
        path = case["action"]["url"].removeprefix(targets.url)
        if path in targets.paths:  # the target saw each attempt once, with its number
            hits = targets.paths[path]
            assert hits.deliveries == [f"{run['id']}-{n}" for n in range(1, attempts + 1)], name
            gaps = [later - earlier for earlier, later in zip(hits.at, hits.at[1:], strict=False)]
            assert all(gap >= 0.9 for gap in gaps), (name, gaps)  # the backoff, never skipped
        history = api("GET", f"/tasks/{task['id']}/history")["items"]
        ends = [e for e in history if e["type"] == "execution.finished"]
        assert [e["changes"]["status"][1] for e in ends] == [status], name
        assert ends[0]["changes"]["attempts"][1] == attempts, name

    # Each failed run told the task's creator once; the one that recovered told nobody.
    notifications = api("GET", "/notifications?limit=100")["items"]
    failed = sorted(n["task_id"] for n in notifications if n["type"] == "execution.failed")
    assert failed == sorted(c["task"]["id"] for c in cases.values() if c["expect"][0] == "failed")


def test_a_scheduled_run_against_a_target_that_is_down_fails_after_its_retries(
    stack: StackProcess,
) -> None:
    person = register_user(stack.api, unique_email("down"))
    api = Api(stack.api, person["access_token"])
    at = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    task = api.task(
        "Down at night",
        schedule={"kind": "once", "at": at, "timezone": "UTC"},
        action={"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/", "timeout_seconds": 1},
        retry=retry(2),
    )

    def one_run() -> dict[str, Any] | None:
        items = api("GET", f"/tasks/{task['id']}/executions")["items"]
        done = [e for e in items if e["status"] not in ("queued", "running")]
        return done[0] if done else None

    run = wait_until(one_run, 2 + bound(2, 1) + 5, interval=0.2, message="the scheduled run")
    assert (run["trigger"], run["status"], run["attempts"]) == ("schedule", "failed", 2)
    assert run["error"] == "the webhook refused the connection"
    assert len(api("GET", f"/tasks/{task['id']}/executions")["items"]) == 1


def test_a_failing_workflow_step_skips_its_dependants_and_tells_the_starter(
    stack: StackProcess, targets: Targets
) -> None:
    owner = register_user(stack.api, unique_email("wf-owner"))
    starter = register_user(stack.api, unique_email("wf-starter"))
    api = Api(stack.api, owner["access_token"])
    project = api("POST", "/projects", {"name": "Pipeline"}, 201)
    member = {"user_id": starter["user"]["id"], "role": "member"}
    api("POST", f"/projects/{project['id']}/members", member, 201)

    def step_task(key: str, behaviour: Behaviour, attempts: int = 1) -> str:
        action = targets.action(f"/{key}", behaviour, timeout=5)
        fields = {"project_id": project["id"], "action": action, "retry": retry(attempts)}
        return str(api.task(key, **fields)["id"])

    # extract -> transform (500, twice) -> load -> report; audit -> archive -> publish.
    ids = {
        "extract": step_task("extract", lambda n: Answer(200)),
        "transform": step_task("transform", lambda n: Answer(500), attempts=2),
        "load": step_task("load", lambda n: Answer(200)),
        "report": step_task("report", lambda n: Answer(200)),
        "audit": step_task("audit", lambda n: Answer(204)),
        "archive": step_task("archive", lambda n: Answer(200)),
        "publish": step_task("publish", lambda n: Answer(200)),
    }
    after = {"transform": ["extract"], "load": ["transform"], "report": ["load"]}
    after |= {"archive": ["audit"], "publish": ["archive"]}
    steps = [{"key": k, "task_id": v, "depends_on": after.get(k, [])} for k, v in ids.items()]
    runner = Api(stack.api, starter["access_token"])
    started = {}
    for policy in ("continue", "stop"):  # both runs side by side, started by the member
        body = {"name": policy, "project_id": project["id"], "steps": steps, "on_failure": policy}
        workflow = api("POST", "/workflows", body, 201)
        started[policy] = runner("POST", f"/workflows/{workflow['id']}/run", None, 202)

    def finished(run_id: str) -> Callable[[], dict[str, Any] | None]:
        def done() -> dict[str, Any] | None:
            current = runner("GET", f"/workflow-runs/{run_id}")
            return current if current["status"] not in ("queued", "running") else None

        return done

    runs = {
        policy: wait_until(finished(run["id"]), 40, interval=0.2, message=f"the {policy} run")
        for policy, run in started.items()
    }
    # The failed step's dependants are skipped, never started; the rest goes on with
    # `continue`, and with `stop` nothing starts after the round of the failure.
    common = {
        "extract": "succeeded",
        "transform": "failed",
        "load": "skipped",
        "report": "skipped",
        "audit": "succeeded",
        "archive": "succeeded",  # ran in the same round as the failing step
    }
    expected = {
        "continue": {**common, "publish": "succeeded"},
        "stop": {**common, "publish": "skipped"},
    }
    for policy, run in runs.items():
        by_key = {step["key"]: step for step in run["steps"]}
        assert run["status"] == "failed", policy
        assert {key: step["status"] for key, step in by_key.items()} == expected[policy], policy
        assert by_key["transform"]["error"] == "the webhook answered 500"
        assert by_key["load"]["execution_id"] is None  # never started
        failed = runner("GET", f"/executions/{by_key['transform']['execution_id']}")
        assert (failed["attempts"], failed["trigger"], failed["workflow_run_id"]) == (
            2,
            "workflow",
            run["id"],
        )
    assert len(targets.paths["/transform"].at) == 4  # two attempts in each run
    assert targets.paths["/load"].at == targets.paths["/report"].at == []
    assert len(targets.paths["/publish"].at) == 1  # in the `continue` run only

    def kinds(person: dict[str, Any]) -> list[str]:
        items = Api(stack.api, person["access_token"])("GET", "/notifications?limit=100")["items"]
        return [n["type"] for n in items]

    assert kinds(starter).count("workflow_run.failed") == 2  # whoever started the runs
    assert "workflow_run.failed" not in kinds(owner)
    assert kinds(owner).count("execution.failed") == 2  # the failed step's task's creator
