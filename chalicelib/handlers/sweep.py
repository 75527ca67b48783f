"""The due-date sweep (`sweep`): an EventBridge rule invokes it every 5 minutes on AWS (see
`infrastructure/components/sweep.py`); the local stack every TASKBEAT_LOCAL_SWEEP_SECONDS.

The event is EventBridge's "Scheduled Event"; only its `time` is logged: the sweep works from
the clock, so a late or repeated invocation looks at the window as it is now. Each run writes
the `task.due_soon` and `task.overdue` notifications nobody has had yet (once per task and due
date, see `services/sweep.py`), and reports how many as metrics.
"""

from __future__ import annotations

from typing import Any

from chalicelib import bootstrap
from chalicelib.observability import logger, metrics


def sweep(event: dict[str, Any]) -> dict[str, Any]:
    container = bootstrap.container()
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
