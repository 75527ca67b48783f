"""The run state machine's functions: `plan` (which steps are ready) and `run_step` (one
attempt of one step). Their payloads are the ones `chalicelib/runs.py` builds; an event that
does not fit raises `BadStep`, which fails the state machine execution (no retry can help).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from chalicelib import bootstrap
from chalicelib.observability import count_by, logger


class BadStep(ValueError):
    """The state machine's payload is not one this code understands."""


def _text(event: dict[str, Any], name: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value:
        raise BadStep(f"{name} is missing")
    return value


def _number(event: dict[str, Any], name: str, minimum: int) -> int:
    value = event.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BadStep(f"{name} must be an integer of at least {minimum}")
    return value


@contextlib.contextmanager
def finishes_counted(container: bootstrap.Container) -> Iterator[None]:
    """Afterwards (even after an error), count the executions the run service ended: metric
    `ExecutionsFinished` by status."""
    try:
        yield
    finally:
        for status in container.runs.drain_finished():
            count_by("ExecutionsFinished", "status", status.value)


def plan(event: dict[str, Any]) -> dict[str, Any]:
    run = event.get("run")
    if not isinstance(run, dict):
        raise BadStep("run is missing")
    round_ = _number(event, "round", 0)
    container = bootstrap.container()
    with container.request_scope(), finishes_counted(container):
        planned = container.runs.plan(_text(run, "kind"), _text(run, "id"), round_)
    return {
        "round": planned.round,
        "done": planned.done,
        "max_concurrency": planned.max_concurrency,
        "steps": [
            {"execution_id": step.execution_id, "task_id": step.task_id, "attempt": step.attempt}
            for step in planned.steps
        ],
    }


def run_step(event: dict[str, Any]) -> dict[str, Any]:
    execution_id = _text(event, "execution_id")
    attempt = _number(event, "attempt", 1)
    container = bootstrap.container()
    error = event.get("error")
    with container.request_scope(), finishes_counted(container):
        if isinstance(error, dict):  # the state machine's Catch: the attempt itself failed
            name = str(error.get("Error") or "error")
            # The Cause may hold a stack trace: it is logged, never stored.
            logger().warning(
                "attempt abandoned",
                extra={"execution_id": execution_id, "attempt": attempt, "error": name},
            )
            container.runs.abandon(execution_id, attempt, name)
            return {}
        task_id = event.get("task_id")
        outcome = container.runs.attempt(
            execution_id, attempt, task_id if isinstance(task_id, str) and task_id else None
        )
    logger().info(
        "attempt",
        extra={
            "execution_id": execution_id,
            "attempt": attempt,
            "outcome": outcome.outcome,
            "delay_seconds": outcome.delay_seconds,
        },
    )
    return {
        "outcome": outcome.outcome,
        "attempt": outcome.attempt,
        "delay_seconds": outcome.delay_seconds,
    }
