"""The sweep (`sweep`): an EventBridge rule invokes it every 5 minutes on AWS (see
`infrastructure/components/sweep.py`); the local stack every TASKBEAT_LOCAL_SWEEP_SECONDS.

First it takes over executions whose lease expired: a first attempt whose function died (a
crash, its timeout, DynamoDB throttling its record to the end) is recorded as lost and the
retry policy goes on; a lost dispatch or hand-over is made again (`RunService.take_over`). So
no execution stays `running` (or `queued`) for good. Then the due dates:

The event is EventBridge's "Scheduled Event"; only its `time` is logged: the sweep works from
the clock, so a late or repeated invocation looks at the window as it is now. Each run writes
the `task.due_soon` and `task.overdue` notifications nobody has had yet (once per task and due
date, see `services/sweep.py`), and reports how many as metrics.
"""

from __future__ import annotations

from typing import Any

from chalicelib import bootstrap
from chalicelib.handlers.runs import finishes_counted
from chalicelib.observability import count_by, logger, metrics

# Executions taken over per sweep, at most: each is a few reads and writes and perhaps a state
# machine start, well within the function's timeout; the rest wait for the next sweep.
MAX_TAKEN_OVER = 200


def sweep(event: dict[str, Any]) -> dict[str, Any]:
    container = bootstrap.container()
    with finishes_counted(container):
        taken = container.runs.recover_expired(MAX_TAKEN_OVER)
    for item in taken:
        count_by("ExecutionsTakenOver", "action", item.action)
    if taken:
        logger().warning(
            "took over executions whose lease expired",
            extra={
                "taken_over": [[t.execution.id if t.execution else None, t.action] for t in taken]
            },
        )
    outcome = container.due_sweep.sweep()
    from aws_lambda_powertools.metrics import MetricUnit  # on first use, as metrics()

    recorder = metrics()
    for name, value in (
        ("DueSoonNotifications", outcome.due_soon),
        ("OverdueNotifications", outcome.overdue),
        ("SweepFailedNotifications", outcome.failed),
        ("SweepDeferredNotifications", outcome.deferred),
    ):
        recorder.add_metric(name=name, unit=MetricUnit.Count, value=value)
    summary = {
        "taken_over": len(taken),
        "examined": outcome.examined,
        "due_soon": outcome.due_soon,
        "overdue": outcome.overdue,
        "already": outcome.already,
        "skipped": outcome.skipped,
        "failed": outcome.failed,
        "deferred": outcome.deferred,
    }
    log = logger()
    extra = {**summary, "scheduled_time": event.get("time") if isinstance(event, dict) else None}
    if outcome.failed or outcome.deferred:
        log.warning("due-date sweep left notifications for the next run", extra=extra)
    else:
        log.info("due-date sweep", extra=extra)
    return summary
