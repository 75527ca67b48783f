"""`python -m local`: the whole Taskbeat stack on loopback, in memory, until Ctrl-C.

Environment: TASKBEAT_HTTP_PORT (8000), TASKBEAT_WS_PORT (8001), 0 for any free port;
TASKBEAT_TARGET=aws serves the API against the AWS account of the ambient credentials.
TASKBEAT_LOCAL_SWEEP_SECONDS (5): how often the due-date sweep runs (0: never).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

READY_LINE = "Taskbeat local stack ready"


def _port(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        port = int(value)
    except ValueError:
        raise SystemExit(f"{name} must be a port number, not {value!r}") from None
    if not 0 <= port <= 65535:
        raise SystemExit(f"{name} must be between 0 and 65535, not {port}")
    return port


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise SystemExit(f"{name} must be a number of seconds, not {value!r}") from None
    if not 0 <= seconds <= 24 * 3600:
        raise SystemExit(f"{name} must be between 0 and 86400, not {value}")
    return seconds


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for chatty in ("botocore", "boto3", "pynamodb", "websockets"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    # Installed first, so a Ctrl-C during start-up also ends in a clean stop.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    from local.stack import LocalStack

    stack = LocalStack(
        http_port=_port("TASKBEAT_HTTP_PORT", 8000),
        ws_port=_port("TASKBEAT_WS_PORT", 8001),
        target=os.environ.get("TASKBEAT_TARGET", "local").strip().lower() or "local",
        sweep_interval_seconds=_seconds("TASKBEAT_LOCAL_SWEEP_SECONDS", 5.0),
    )
    try:
        stack.start()
    except OSError as exc:
        print(f"Taskbeat local stack could not start: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        print(f"API: {stack.api_url}", flush=True)
        print(f"Docs: {stack.docs_url}", flush=True)
        print(f"Dashboard: {stack.dashboard_url}", flush=True)
        print(f"WebSocket: {stack.ws_url}", flush=True)
        if stack.target == "local":
            print("Data is kept in memory and is gone when the stack stops.", flush=True)
        print(READY_LINE, flush=True)
        while not stop_requested.wait(0.5):
            pass
        print("Stopping...", flush=True)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
