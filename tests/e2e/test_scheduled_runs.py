"""Scheduled tasks on the running local stack, end to end: the ticker fires one-time schedules,
the fire Lambda records the firing, the run state machine (moto's interpreter) calls the
webhook through `run_step`, and the API shows the execution, the history and the notifications.

The webhooks are a small HTTP server in this process; the local stack allows loopback targets.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from local.testing import StackProcess, wait_until

RUN_TIMEOUT = 30.0  # seconds for a run to finish: a firing is due within ~2 s, retries wait 1 s


@dataclass
class Hook:
    """One webhook path: the requests it got and how it answers the n-th one."""

    answer: Callable[[int], int | None]  # attempt number -> status code (None: never answer)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


class Receiver:
    def __init__(self) -> None:
        self.hooks: dict[str, Hook] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    hook = receiver.hooks[self.path]
                    hook.requests.append((dict(self.headers), body))
                    status = hook.answer(len(hook.requests))
                if status is None:  # hold the connection past the caller's timeout
                    receiver._closing.wait(5)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hook(self, path: str, answer: Callable[[int], int | None]) -> str:
        self.hooks[path] = Hook(answer)
        return self.url + path

    def close(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


class Client:
    def __init__(self, api: str, token: str) -> None:
        self.api = api
        self.headers = {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method, self.api + path, json=body, headers=self.headers, timeout=30
        )

    def create(self, **fields: Any) -> dict[str, Any]:
        response = self("POST", "/tasks", fields)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def executions(self, task_id: str) -> list[dict[str, Any]]:
        response = self("GET", f"/tasks/{task_id}/executions")
        assert response.status_code == 200, response.text
        return response.json()["items"]  # type: ignore[no-any-return]

    def finished(self, task_id: str) -> dict[str, Any]:
        """The task's only execution, once it has finished (polled with a deadline)."""

        def done() -> dict[str, Any] | None:
            runs = self.executions(task_id)
            return runs[0] if runs and runs[0]["status"] not in ("queued", "running") else None

        return wait_until(done, RUN_TIMEOUT, interval=0.2, message=f"a run of {task_id}")


def soon(seconds: float = 2.0) -> str:
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def once(at: str) -> dict[str, Any]:
    return {"kind": "once", "at": at, "timezone": "UTC"}


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    fields = dict(part.split("=", 1) for part in headers["X-Taskbeat-Signature"].split(","))
    expected = hmac.new(
        secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


def test_one_time_webhooks_and_a_reminder_fire_on_schedule(
    stack: StackProcess, new_user: Callable[..., dict[str, Any]], receiver: Receiver
) -> None:
    user = new_user()
    api = Client(stack.api, user["access_token"])
    fast_retry = {"max_attempts": 3, "backoff_seconds": 1, "backoff_rate": 1}
    # Four tasks are made before it, each schedule by the stream consumer: a one-time schedule
    # made after its time never fires (as on AWS), so the margin covers a loaded machine.
    at = soon(5.0)

    signed = api.create(
        title="Signed",
        schedule=once(at),
        action={
            "type": "webhook",
            "url": receiver.hook("/signed", lambda n: 200),
            "body": {"n": 1},
        },
    )
    retried = api.create(
        title="Retried",
        schedule=once(at),
        action={
            "type": "webhook",
            "url": receiver.hook("/retried", lambda n: 200 if n == 3 else 503),
        },
        retry=fast_retry,
    )
    failing = api.create(
        title="Failing",
        schedule=once(at),
        action={
            "type": "webhook",
            "url": receiver.hook("/failing", lambda n: None),
            "timeout_seconds": 1,
        },
        retry={**fast_retry, "max_attempts": 2},
    )
    reminder = api.create(title="Water the plants", schedule=once(at))
    assert api("POST", f"/tasks/{reminder['id']}/complete").status_code == 200
    assert signed["next_run_at"] == at

    # Signed: fired once, at its time, signed with the project's secret.
    run = api.finished(signed["id"])
    assert (run["status"], run["attempts"], run["trigger"]) == ("succeeded", 1, "schedule")
    assert run["scheduled_for"] == at
    assert run["result"]["status_code"] == 200
    assert run["result"]["body_excerpt"] == "ok"
    secret = api("GET", f"/projects/{signed['project_id']}/webhook-secret").json()["secret"]
    ((headers, body),) = receiver.hooks["/signed"].requests
    assert json.loads(body) == {"n": 1}
    assert headers["X-Taskbeat-Delivery"] == f"{run['id']}-1"
    assert verify(secret, headers, body)
    assert not verify(secret, headers, body + b" ")
    lateness = datetime.fromisoformat(run["started_at"]) - datetime.fromisoformat(at)
    assert timedelta(0) <= lateness < timedelta(seconds=5), lateness
    task = api("GET", f"/tasks/{signed['id']}").json()
    assert task["next_run_at"] is None  # a one-time schedule has nothing left to fire

    # Retried: two 503s, then 200, on the same execution with one delivery id per attempt.
    run = api.finished(retried["id"])
    assert (run["status"], run["attempts"], run["error"]) == ("succeeded", 3, None)
    deliveries = [h["X-Taskbeat-Delivery"] for h, _ in receiver.hooks["/retried"].requests]
    assert deliveries == [f"{run['id']}-{n}" for n in (1, 2, 3)]

    # Failing: never answers; failed after max_attempts with the error, and the creator is told.
    run = api.finished(failing["id"])
    assert (run["status"], run["attempts"]) == ("failed", 2)
    assert run["error"] == "the webhook did not answer within 1 s"
    assert len(receiver.hooks["/failing"].requests) == 2
    notifications = api("GET", "/notifications").json()["items"]
    failed = [n for n in notifications if n["type"] == "execution.failed"]
    assert [n["task_id"] for n in failed] == [failing["id"]]

    # Reminder: the completed task is open again, due at the firing, and its creator is told.
    run = api.finished(reminder["id"])
    assert (run["status"], run["attempts"]) == ("succeeded", 1)
    task = api("GET", f"/tasks/{reminder['id']}").json()
    assert (task["status"], task["due_date"], task["completed_at"]) == ("pending", at, None)
    notifications = api("GET", "/notifications").json()["items"]
    assert any(
        n["type"] == "task.due_soon" and n["task_id"] == reminder["id"] for n in notifications
    )
    history = api("GET", f"/tasks/{reminder['id']}/history").json()["items"]
    assert [e["type"] for e in history][-2:] == ["task.updated", "execution.finished"]

    # Nothing fires twice: every one-time schedule is gone, each task has one execution.
    for created in (signed, retried, failing, reminder):
        assert len(api.executions(created["id"])) == 1
    assert len(receiver.hooks["/signed"].requests) == 1


def test_a_manual_run_goes_through_the_same_machine(
    stack: StackProcess, new_user: Callable[..., dict[str, Any]], receiver: Receiver
) -> None:
    api = Client(stack.api, new_user()["access_token"])
    task = api.create(
        title="On demand",
        action={"type": "webhook", "url": receiver.hook("/manual", lambda n: 204)},
    )
    response = api("POST", f"/tasks/{task['id']}/run")
    assert response.status_code == 202, response.text
    assert response.json()["trigger"] == "manual"
    run = api.finished(task["id"])
    assert (run["id"], run["status"], run["attempts"]) == (response.json()["id"], "succeeded", 1)
    assert run["result"]["status_code"] == 204
    detail = api("GET", f"/executions/{run['id']}").json()
    assert detail == run
