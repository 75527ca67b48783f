"""The scheduler's target (`fire`): one delivery of one firing of a task's or a workflow's
schedule, or the dispatch of a queued execution's first attempt.

EventBridge Scheduler sends the schedule's Input, `{"task_id" | "workflow_id", "project_id",
"scheduled_time", "attempt", "execution_id"}` (the last three are its context attributes
`<aws.scheduler.scheduled-time>`, `<aws.scheduler.attempt-number>` and
`<aws.scheduler.execution-id>`). Delivery is at least once; the services make a firing
`(task_id, scheduled_time)` yield one execution, and a firing `(workflow_id, scheduled_time)`
one workflow run, however often it arrives. A task's firing makes its first attempt here (the
webhook, up to 60 s: the function's timeout is `FIRE_TIMEOUT_SECONDS`); only a retry that must
wait goes on in the state machine.

The dispatch (`{"start_execution": {"execution_id", "task_id"}}`, an asynchronous invocation by
the API for `POST /tasks/{id}/run`, or by a run that freed a buffered firing's turn) makes a
queued execution's first attempt the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib import bootstrap, runs
from chalicelib.domain.executions import ExecutionStatus
from chalicelib.domain.model import utc
from chalicelib.handlers.runs import finishes_counted
from chalicelib.observability import count_by, logger, metrics
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


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _record_lateness(
    container: bootstrap.Container, scheduled_time: datetime, attempt: int
) -> None:
    """How late the scheduler delivered a firing (metric `FiringLateness`, ms). First
    deliveries only: a redelivery is late by the retry policy's design."""
    if attempt == 1:
        late = (container.clock.now() - scheduled_time).total_seconds() * 1000
        from aws_lambda_powertools.metrics import MetricUnit  # on first use, as metrics()

        metrics().add_metric(
            name="FiringLateness", unit=MetricUnit.Milliseconds, value=max(late, 0)
        )


def fire(event: dict[str, Any]) -> dict[str, Any]:
    start = event.get(runs.START_EVENT_KEY)
    if start is not None:
        return _start_dispatched(start)
    task_id, workflow_id = _text(event.get("task_id")), _text(event.get("workflow_id"))
    if task_id and workflow_id:
        raise BadFiring("a firing names a task or a workflow, not both")
    if not task_id and not workflow_id:
        raise BadFiring("task_id (or workflow_id) is missing")
    scheduled_time = _scheduled_time(event.get("scheduled_time"))
    delivery = Delivery(
        project_id=_text(event.get("project_id")),
        attempt=_attempt(event.get("attempt")),
        delivery_id=str(event["execution_id"]) if event.get("execution_id") else None,
    )
    container = bootstrap.container()
    _record_lateness(container, scheduled_time, delivery.attempt)
    if workflow_id:
        return _fire_workflow(workflow_id, scheduled_time, delivery)
    assert task_id is not None
    # A scope of its own, like a request: the task and project read in one round trip are
    # taken from it, and nothing outlives this delivery.
    with container.request_scope(), finishes_counted(container):
        outcome = container.executions.fire(task_id, scheduled_time, delivery)
    execution = outcome.execution
    if outcome.created and execution is not None and execution.status is ExecutionStatus.SKIPPED:
        # Recorded as finished at once (overlap, no longer scheduled); the others are counted
        # where the run service ends them.
        count_by("ExecutionsFinished", "status", execution.status.value)
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
            "taken": outcome.taken,
            "status": execution.status.value if execution else None,
        },
    )
    return {
        "execution_id": execution.id if execution else None,
        "status": execution.status.value if execution else None,
        "created": outcome.created,
        "reason": outcome.reason,
        "taken": outcome.taken,
    }


def _start_dispatched(start: Any) -> dict[str, Any]:
    if not isinstance(start, dict) or not _text(start.get("execution_id")):
        raise BadFiring("start_execution names no execution")
    execution_id = str(start["execution_id"])
    container = bootstrap.container()
    with container.request_scope(), finishes_counted(container):
        outcome = container.executions.start_dispatched(execution_id, _text(start.get("task_id")))
    execution = outcome.execution
    logger().info(
        "dispatched execution",
        extra={
            "execution_id": execution_id,
            "taken": outcome.taken,
            "status": execution.status.value if execution else None,
        },
    )
    return {
        "execution_id": execution_id,
        "status": execution.status.value if execution else None,
        "taken": outcome.taken,
    }


def _fire_workflow(
    workflow_id: str, scheduled_time: datetime, delivery: Delivery
) -> dict[str, Any]:
    container = bootstrap.container()
    with container.request_scope():
        outcome = container.workflow_runs.fire(workflow_id, scheduled_time, delivery)
    run = outcome.run
    logger().info(
        "firing",
        extra={
            "workflow_id": workflow_id,
            "scheduled_time": scheduled_time.isoformat(),
            "attempt": delivery.attempt,
            "delivery_id": delivery.delivery_id,
            "workflow_run_id": run.id if run else None,
            "created": outcome.created,
            "reason": outcome.reason,
        },
    )
    return {
        "workflow_run_id": run.id if run else None,
        "status": run.status.value if run else None,
        "created": outcome.created,
        "reason": outcome.reason,
    }
