"""The due-date sweep, locally: invokes the `sweep` function every few seconds.

On AWS an EventBridge rule invokes it every 5 minutes (`infrastructure/components/sweep.py`);
locally a thread of its own does, every TASKBEAT_LOCAL_SWEEP_SECONDS (5 by default), with the
event such a rule sends, so a task due soon or overdue is told about within seconds. One sweep
at a time (the next waits for the previous one to end); a failing sweep is logged and the next
one comes as usual. `sweep_now()` runs one at once (tests).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from local.lambdas import ACCOUNT_ID, FunctionRegistry

log = logging.getLogger("taskbeat.local.sweep")

SWEEP_FUNCTION = "sweep"
DEFAULT_INTERVAL_SECONDS = 5.0
RULE_NAME = "taskbeat-local-sweep"


def scheduled_event(region: str, at: datetime) -> dict[str, Any]:
    """What an EventBridge schedule rule sends its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{RULE_NAME}"],
        "detail": {},
    }


class SweepTicker:
    def __init__(
        self,
        registry: FunctionRegistry,
        region: str,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        function_name: str = SWEEP_FUNCTION,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("the sweep interval must be positive")
        self._registry = registry
        self._region = region
        self._interval = interval_seconds
        self._function = function_name
        self._stopped = threading.Event()
        self._running = threading.Lock()  # one sweep at a time
        self._thread: threading.Thread | None = None
        self.sweeps = 0  # finished sweeps, failed ones included
        self.last_result: Any = None

    @property
    def interval_seconds(self) -> float:
        return self._interval

    def start(self) -> None:
        self._stopped.clear()
        self._thread = threading.Thread(target=self._loop, name="due-date-sweep", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval):
            self.sweep_now()

    def sweep_now(self) -> Any:
        """Run one sweep in this thread; its answer (None if it failed)."""
        with self._running:
            event = scheduled_event(self._region, datetime.now(UTC))
            payload, errored, _ = self._registry.invoke_as_lambda(self._function, event)
            self.sweeps += 1
            if errored:
                log.error("the due-date sweep failed: %s", payload)
                self.last_result = None
            else:
                self.last_result = json.loads(payload)
            return self.last_result
