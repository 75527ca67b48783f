"""Helpers for tests of the local stack: probe functions, polling with a deadline, free ports,
and registering a user over HTTP. Never used by the stack itself."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from local.__main__ import READY_LINE
from local.lambdas import LambdaContext
from local.stack import LocalStack

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULT_PASSWORD = "correct horse battery staple"


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now (another process may still take it before it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_until(
    condition: Callable[[], T | None],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {message}")
        time.sleep(interval)


class Probe:
    """A Lambda handler that records every event (and its context) it gets, then answers with
    `reply(event)`, or raises what `reply` raises."""

    def __init__(self, reply: Callable[[Any], Any] | None = None) -> None:
        self._reply = reply
        self._lock = threading.Lock()
        self.events: list[Any] = []
        self.contexts: list[LambdaContext] = []
        self.threads: list[str] = []

    def __call__(self, event: Any, context: LambdaContext) -> Any:
        with self._lock:
            self.events.append(event)
            self.contexts.append(context)
            self.threads.append(threading.current_thread().name)
        if self._reply is None:
            return {"received": event}
        return self._reply(event)

    def received(self) -> list[Any]:
        with self._lock:
            return list(self.events)

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Any]:
        """The events once at least `count` have arrived."""
        return wait_until(
            lambda: self.received() if len(self.received()) >= count else None,
            timeout,
            message=f"{count} event(s) at the probe",
        )


def deploy_probe(stack: LocalStack, probe: Probe, name: str | None = None) -> str:
    """Register `probe` in the stack's Lambda registry and create its moto function; the ARN."""
    return stack.register_function(name or f"probe-{uuid.uuid4().hex[:12]}", probe)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def register_user(
    api_url: str,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    name: str = "Test User",
) -> dict[str, Any]:
    """`POST /auth/register`; the 201 body (`user`, `access_token`, `refresh_token`, ...)."""
    import requests

    response = requests.post(
        f"{api_url}/auth/register",
        json={"email": email or unique_email(), "password": password, "name": name},
        timeout=30,
    )
    if response.status_code != 201:
        raise AssertionError(f"register: {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


class StackProcess:
    """`python -m local` as a subprocess (what `make run` starts), its output in a file."""

    def __init__(
        self, log_path: Path, http_port: int = 0, ws_port: int = 0, sweep_seconds: float = 1.0
    ) -> None:
        self.log_path = log_path
        self.http_port = http_port
        self.ws_port = ws_port
        # Tests sweep for due dates every second (TASKBEAT_LOCAL_SWEEP_SECONDS, 5 by default),
        # so due-soon and overdue notifications show up quickly.
        self.sweep_seconds = sweep_seconds
        self.process: subprocess.Popen[bytes] | None = None
        self.api = ""
        self.docs = ""
        self.ws = ""

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait until it serves (health 200, or its ready line, printed once every
        server listens); the URLs are read from what it prints."""
        env = dict(os.environ)
        # The child makes its own moto and management API; nothing of a parent's may leak in.
        for name in ("AWS_ENDPOINT_URL", "MOTO_PORT", "TASKBEAT_WS_MANAGEMENT_URL", "AWS_PROFILE"):
            env.pop(name, None)
        # A failed hook delivery is retried after 2 s here (10 s by default): tests that watch
        # a retry wait less. A test may set its own.
        env.setdefault("TASKBEAT_HOOK_RETRY_BASE_SECONDS", "2")
        env.update(
            TASKBEAT_HTTP_PORT=str(self.http_port),
            TASKBEAT_WS_PORT=str(self.ws_port),
            TASKBEAT_LOCAL_SWEEP_SECONDS=str(self.sweep_seconds),
            PYTHONUNBUFFERED="1",
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "local"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._serving, timeout, interval=0.1, message="the local stack to serve")

    def _serving(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"the local stack exited with {self.process.returncode}:\n{self.output()}"
            )
        printed = self.output()
        for line in printed.splitlines():
            label, _, url = line.partition(": ")
            if label in ("API", "Docs", "WebSocket") and url.startswith(("http", "ws")):
                setattr(self, {"API": "api", "Docs": "docs", "WebSocket": "ws"}[label], url)
        if not self.api:
            return False
        if READY_LINE in printed:
            return True
        import requests

        try:
            return requests.get(f"{self.api}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, signal_number: int = signal.SIGINT, timeout: float = 30.0) -> int:
        """Send `signal_number` and wait for the exit code (killed after `timeout`)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal_number)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"the local stack did not stop:\n{self.output()}") from None
        return int(self.process.returncode)


@contextmanager
def running_stack(log_dir: Path) -> Iterator[StackProcess]:
    """A stack on free ports for the `with` block; stopped with SIGINT, it must exit with 0."""
    running = StackProcess(log_dir / "stack.log", http_port=free_port(), ws_port=free_port())
    try:
        running.start(timeout=60)
        yield running
    finally:
        if running.process is not None:
            exit_code = running.stop(signal.SIGINT)
            assert exit_code == 0, running.output()


class ApiClient:
    """One user's calls to the stack's REST API: `api("POST", "/tasks", body, 201)` checks the
    status and answers the JSON body (None when empty)."""

    def __init__(self, api_url: str, token: str) -> None:
        self.base = api_url
        self.headers = {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        import requests

        response = requests.request(
            method, self.base + path, json=body, headers=self.headers, timeout=30
        )
        assert response.status_code == expect, response.text
        return response.json() if response.content else None
