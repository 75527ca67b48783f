"""Helpers for tests of the local stack: probe functions, polling with a deadline, free ports,
and registering a user over HTTP. Never used by the stack itself."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from local.lambdas import LambdaContext
from local.provision import create_function
from local.stack import LocalStack

T = TypeVar("T")

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
    assert stack.provisioned is not None, "the stack runs without moto"
    function_name = name or f"probe-{uuid.uuid4().hex[:12]}"
    return create_function(stack.registry, function_name, probe, stack.provisioned.role_arn)


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
