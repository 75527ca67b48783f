"""The scheduler's target (`fire`): one delivery of one firing of a task's schedule.

EventBridge Scheduler sends the schedule's Input, `{"task_id", "project_id", "scheduled_time",
"attempt", "execution_id"}` (the last three are its context attributes
`<aws.scheduler.scheduled-time>`, `<aws.scheduler.attempt-number>` and
`<aws.scheduler.execution-id>`). Delivery is at least once; the service makes a firing
`(task_id, scheduled_time)` yield one execution however often it arrives.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib import bootstrap
from chalicelib.domain.model import utc
from chalicelib.observability import logger
from chalicelib.services.executions import Delivery


class BadFiring(ValueError):
    """The event is not a firing: retrying cannot help (it ends in the dead-letter queue)."""


def _scheduled_time(value: Any) -> datetime:
    if not isinstance(value, str) or not value:
        raise BadFiring("scheduled_time is missing")
    try:
        return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise BadFiring(f"scheduled_time {value!r} is not a date-time") from None


def _attempt(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1


def fire(event: dict[str, Any]) -> dict[str, Any]:
    task_id = event.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        raise BadFiring("task_id is missing")
    scheduled_time = _scheduled_time(event.get("scheduled_time"))
    project_id = event.get("project_id")
    delivery = Delivery(
        project_id=project_id if isinstance(project_id, str) and project_id else None,
        attempt=_attempt(event.get("attempt")),
        delivery_id=str(event["execution_id"]) if event.get("execution_id") else None,
    )
    container = bootstrap.container()
    # A scope of its own, like a request: the task and project read in one round trip are
    # taken from it, and nothing outlives this delivery.
    with container.request_scope():
        outcome = container.executions.fire(task_id, scheduled_time, delivery)
    execution = outcome.execution
    logger().info(
        "firing",
        extra={
            "task_id": task_id,
            "scheduled_time": scheduled_time.isoformat(),
            "attempt": delivery.attempt,
            "delivery_id": delivery.delivery_id,
            "execution_id": execution.id if execution else None,
            "created": outcome.created,
            "reason": outcome.reason,
        },
    )
    return {
        "execution_id": execution.id if execution else None,
        "status": execution.status.value if execution else None,
        "created": outcome.created,
        "reason": outcome.reason,
    }
