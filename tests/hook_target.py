"""A hook target for tests: an HTTP server on 127.0.0.1 (a free port) that keeps every request
and answers with the statuses it is told, in order (then `then`), optionally after a delay.
Loopback only; stopped by the context manager."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived


class HookTarget:
    def __init__(self, *statuses: int, then: int = 204, delay_seconds: float = 0.0) -> None:
        self.statuses = list(statuses)
        self.then = then
        self.delay_seconds = delay_seconds
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with target._lock:
                    target.received.append(
                        Received(self.path, dict(self.headers.items()), body, time.monotonic())
                    )
                    status = target.statuses.pop(0) if target.statuses else target.then
                    target._arrived.notify_all()
                if target.delay_seconds:
                    time.sleep(target.delay_seconds)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def __enter__(self) -> HookTarget:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        """The requests once `count` have arrived (AssertionError after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} of {count} requests arrived")
                self._arrived.wait(left)
            return list(self.received)


def signature_ok(secret: str, received: Received) -> bool:
    """Whether `X-Taskbeat-Signature` is `t=<unix>,v1=<HMAC-SHA256 of "<t>.<body>">`."""
    header = received.headers.get("X-Taskbeat-Signature", "")
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if set(parts) != {"t", "v1"}:
        return False
    expected = hmac.new(
        secret.encode(), parts["t"].encode() + b"." + received.body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])
