"""A loopback webhook for the benchmarks that fire tasks (bench/mix.py, bench/firings.py).

It answers every POST with 204 (or 500 for the attempts a path is told to fail), optionally
after holding the request a random time in `hold` (a webhook that takes a while, so repeated
deliveries of a firing arrive while its first attempt is in flight), and notes when each path
was first called and how many requests each delivery (`X-Taskbeat-Delivery`:
`<execution id>-<attempt>`) and each path received. Loopback only: 127.0.0.1, a free port.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DELIVERY_HEADER = "X-Taskbeat-Delivery"


def attempt_of(delivery: str) -> int:
    """The attempt number a delivery id ends with (0 if it has none)."""
    tail = delivery.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class Webhook:
    def __init__(self, hold: tuple[float, float] = (0.0, 0.0), seed: int = 7) -> None:
        self.hold = hold
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._failing: dict[str, int] = {}  # path -> attempts below this number answer 500
        self.arrived: dict[str, float] = {}  # path -> time.time() of its first request
        self.by_path: Counter[str] = Counter()
        self.by_delivery: Counter[str] = Counter()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's name
                arrived = time.time()
                threading.current_thread().name = "webhook"  # its CPU time, told apart
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                delivery = self.headers.get(DELIVERY_HEADER, "")
                status, pause = hook._note(self.path, delivery, arrived)
                if pause > 0:
                    threading.Event().wait(pause)  # the webhook's own response time
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def fail_attempts(self, path: str, below: int) -> None:
        """Requests to `path` of attempts below `below` answer 500 (e.g. 3: attempts 1 and 2)."""
        with self._lock:
            self._failing[path] = below

    def _note(self, path: str, delivery: str, arrived: float) -> tuple[int, float]:
        with self._lock:
            self.arrived.setdefault(path, arrived)
            self.by_path[path] += 1
            self.by_delivery[delivery] += 1
            failing = attempt_of(delivery) < self._failing.get(path, 0)
            low, high = self.hold
            pause = self._random.uniform(low, high) if high > 0 else 0.0
        return (500 if failing else 204), pause

    @property
    def requests(self) -> int:
        with self._lock:
            return sum(self.by_path.values())

    def first_attempts(self) -> Counter[str]:
        """Requests of each execution's first attempt (deliveries ending in `-1`), by
        execution id."""
        with self._lock:
            return Counter(
                {d.rsplit("-", 1)[0]: n for d, n in self.by_delivery.items() if attempt_of(d) == 1}
            )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
