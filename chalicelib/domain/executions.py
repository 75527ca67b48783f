"""Executions: one run of a task's action (a firing of its schedule, a manual run, a workflow step).

Ids: an execution id is its own ULID followed by its project's ULID, like a task id
(`chalicelib.domain.tasks.new_task_id`), so `GET /executions/{id}` reads the execution, its
project and the caller's membership with the session.

One firing yields one execution: the firing `(task, scheduled time)` is claimed by a conditional
put in the transaction that creates the execution (`firing_key`); a second delivery fails the
condition and gets the execution the claim names. Execution ids stay random (not derived from
the firing): the claim already makes the firing unique, and random ids keep the newest-first
order of a task's executions (the ULID) and the project suffix without a second scheme. Step
Functions execution names are the execution id (`run_name`), so a runner started twice for one
firing starts one state machine execution.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chalicelib.domain.errors import Conflict
from chalicelib.domain.model import new_id, utc
from chalicelib.domain.tasks import project_of

BODY_EXCERPT_MAX = 1024
ERROR_MAX = 2000


class Trigger(enum.StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    WORKFLOW = "workflow"


class ExecutionStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self not in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)


# Where each status may go next. A finished execution never changes again; `running` may stay
# `running` (a retry counts one more attempt).
TRANSITIONS: dict[ExecutionStatus, frozenset[ExecutionStatus]] = {
    ExecutionStatus.QUEUED: frozenset(
        {
            ExecutionStatus.RUNNING,
            ExecutionStatus.SUCCEEDED,  # a reminder (no action) finishes at once
            ExecutionStatus.FAILED,
            ExecutionStatus.SKIPPED,
            ExecutionStatus.CANCELLED,
        }
    ),
    ExecutionStatus.RUNNING: frozenset(
        {
            ExecutionStatus.RUNNING,
            ExecutionStatus.SUCCEEDED,
            ExecutionStatus.FAILED,
            ExecutionStatus.TIMED_OUT,
            ExecutionStatus.CANCELLED,
        }
    ),
    **{status: frozenset() for status in ExecutionStatus if status.finished},
}


def can_move(before: ExecutionStatus, after: ExecutionStatus) -> bool:
    return after in TRANSITIONS[before]


@dataclass(frozen=True)
class ExecutionResult:
    """What the webhook answered."""

    status_code: int
    duration_ms: int
    body_excerpt: str = ""


@dataclass(frozen=True)
class Execution:
    id: str
    task_id: str
    project_id: str
    trigger: Trigger
    status: ExecutionStatus
    created_at: datetime
    scheduled_for: datetime | None = None
    workflow_run_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    result: ExecutionResult | None = None
    error: str | None = None
    version: int = 1

    @property
    def run_name(self) -> str:
        """The Step Functions execution name: one per execution, hence one per firing."""
        return self.id

    def moved_to(self, status: ExecutionStatus, at: datetime, **changes: Any) -> Execution:
        """This execution in `status` (Conflict if the move is not allowed); stamps the times."""
        if not can_move(self.status, status):
            raise Conflict(f"an execution that is {self.status.value} cannot become {status.value}")
        stamps: dict[str, Any] = {}
        if status is ExecutionStatus.RUNNING and self.started_at is None:
            stamps["started_at"] = at
        if status.finished:
            stamps["finished_at"] = at
        return replace(self, status=status, **{**stamps, **changes})


def new_execution_id(project_id: str) -> str:
    return new_id() + project_id


def project_of_execution(execution_id: str) -> str | None:
    """The project an execution id names, or None if it is not an execution id."""
    return project_of(execution_id)


def firing_key(task_id: str, scheduled_time: datetime) -> str:
    """The idempotency key of one firing: the task and the scheduled time (UTC, to the second)."""
    return f"{task_id}#{utc(scheduled_time).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def excerpt(body: str) -> str:
    return body[:BODY_EXCERPT_MAX]
