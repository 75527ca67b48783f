"""Executions: one run of a task's action (a firing of its schedule, a manual run, a workflow step).

Ids: an execution id is a scoped id (`chalicelib.domain.ids`: its own ULID followed by its
project's), like a task id, so `GET /executions/{id}` reads the execution, its project and the
caller's membership with the session.

One firing yields one execution: the execution of the firing `(task, scheduled time)` has an id
derived from it (`firing_execution_id`: a ULID whose time is the scheduled time and whose random
part hashes the firing key, then the project's ULID), so writing it on condition that the id is
new claims the firing; a second delivery fails the condition and reads the execution. A separate
claim item would cost a transaction at every firing. Manual runs and workflow steps get random
ULIDs; a task's executions sort by when they were due or made. Step Functions execution names
are the execution id (`run_name`), so a runner started twice for one firing starts one state
machine execution.

Leases: whoever makes an execution's first attempt outside the state machine (the `fire`
function, for a firing, a manual run or a promoted buffered firing) holds the execution until
`lease_expires_at`. Nobody else starts an attempt of a leased execution before then, so a
repeated delivery never sends a second request while the first may still answer. The lease
outlives the `fire` function's timeout (`ATTEMPT_LEASE`), so once it has expired its holder is
surely gone and the execution may be taken over (`RunService.take_over`). An execution without a
lease that is still running belongs to the state machine.
"""

from __future__ import annotations

import enum
import hashlib
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.errors import Conflict
from chalicelib.domain.ids import ScopedId
from chalicelib.domain.model import utc
from chalicelib.domain.webhooks import MAX_TIMEOUT_SECONDS, RetryPolicy, WebhookResult

BODY_EXCERPT_MAX = 1024
ERROR_MAX = 2000
# A task's backoff grows by its rate (up to 5) per attempt; no wait between two attempts is
# longer than a day.
MAX_BACKOFF_SECONDS = 24 * 3600
# The `fire` function's Lambda timeout (.chalice/config.json; tests/infra holds them equal): the
# longest webhook and the reads and writes around it, throttled writes retried included.
FIRE_TIMEOUT_SECONDS = MAX_TIMEOUT_SECONDS + 30
# How long a first attempt (or a dispatch on its way to one) holds its execution: longer than
# the function that makes it may live, so an expired lease means its holder is gone.
ATTEMPT_LEASE = timedelta(seconds=FIRE_TIMEOUT_SECONDS + 30)


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
    # Set while an attempt outside the state machine holds the execution (see the module's
    # docstring); never shown by the API.
    lease_expires_at: datetime | None = None

    def leased(self, now: datetime) -> bool:
        """Held by an attempt (or a dispatch) that may still be alive."""
        return self.lease_expires_at is not None and self.lease_expires_at > now

    @property
    def run_name(self) -> str:
        """The Step Functions execution name: one per execution, hence one per firing."""
        return self.id

    def moved_to(self, status: ExecutionStatus, at: datetime, **changes: Any) -> Execution:
        """This execution in `status` (Conflict if the move is not allowed); stamps the times.
        The lease ends with the move unless `changes` set it: whoever writes holds it no more."""
        if not can_move(self.status, status):
            raise Conflict(f"an execution that is {self.status.value} cannot become {status.value}")
        stamps: dict[str, Any] = {"lease_expires_at": None}
        if status is ExecutionStatus.RUNNING and self.started_at is None:
            stamps["started_at"] = at
        if status.finished:
            stamps["finished_at"] = at
        return replace(self, status=status, **{**stamps, **changes})


class Slot(enum.StrEnum):
    """A task's overlap slots (the schedule's `overlap` policy), each held by one execution.

    `active`: the scheduled execution that runs now (policies `skip` and `buffer_one`);
    `buffered`: the one firing that waits for it (`buffer_one`). A slot is a conditional put,
    so two firings racing for it cannot both win."""

    ACTIVE = "active"
    BUFFERED = "buffered"


class SlotTaken(Exception):
    """The slot a firing asked for is held by another execution."""

    def __init__(self, slot: Slot) -> None:
        super().__init__(f"the {slot.value} slot is taken")
        self.slot = slot


def new_execution_id(project_id: str) -> str:
    return str(ScopedId.new(project_id))


def firing_execution_id(project_id: str, task_id: str, scheduled_time: datetime) -> str:
    """The id of the execution of the firing `(task, scheduled time)`, the same at every
    delivery: a ULID whose time is the scheduled time (a task's executions sort by when they
    were due) and whose random part is a hash of the firing key, then the project's ULID. Its
    conditional put is the firing's claim (no claim item of its own)."""
    from ulid import ULID  # as new_id: on first use

    moment = utc(scheduled_time).replace(microsecond=0)
    millis = int(moment.timestamp()) * 1000
    digest = hashlib.sha256(firing_key(task_id, moment).encode()).digest()
    item = str(ULID.from_bytes(millis.to_bytes(6, "big") + digest[:10]))
    return str(ScopedId(item, project_id))


def firing_key(task_id: str, scheduled_time: datetime) -> str:
    """The idempotency key of one firing: the task and the scheduled time (UTC, to the second)."""
    return f"{task_id}#{utc(scheduled_time).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def excerpt(body: str) -> str:
    return body[:BODY_EXCERPT_MAX]


def backoff_seconds(policy: RetryPolicy, next_attempt: int) -> int:
    """Whole seconds to wait before `next_attempt` (a Step Functions `Wait` takes integers)."""
    return min(MAX_BACKOFF_SECONDS, math.ceil(policy.delay_before(next_attempt)))


_FAILURES = {
    "timeout": "the webhook did not answer within {timeout} s",
    "dns": "the webhook's host name did not resolve",
    "refused": "the webhook refused the connection",
    "blocked: private address": "the webhook's host resolves to a private address",
    "invalid url": "the webhook URL is not valid",
    "tls: certificate": "the webhook's TLS certificate is not valid",
    "tls": "the TLS handshake with the webhook failed",
    "closed": "the webhook closed the connection without answering",
    "reset": "the webhook reset the connection",
    "protocol": "the webhook's answer is not valid HTTP",
    "unreachable": "the webhook could not be reached",
}


def failure_of(result: WebhookResult, timeout_seconds: int) -> str:
    """What went wrong with one attempt, in words (never a stack trace)."""
    if result.error is None:
        return f"the webhook answered {result.status_code}"
    template = _FAILURES.get(result.error, "the request to the webhook failed ({error})")
    return template.format(timeout=timeout_seconds, error=result.error)[:ERROR_MAX]


def status_after(result: WebhookResult) -> ExecutionStatus:
    """The status of an execution whose last attempt ended with `result`. A webhook that never
    answers fails like one that answers 500 (the error says which); `timed_out` is for a run
    whose step itself ran out of time (see `RunService.abandon`)."""
    return ExecutionStatus.SUCCEEDED if result.succeeded else ExecutionStatus.FAILED
