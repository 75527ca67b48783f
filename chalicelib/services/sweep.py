"""The due-date sweep: `task.due_soon` and `task.overdue` notifications, once per task and due
date.

A scheduled function runs `DueSweepService.sweep` every few minutes. It reads the open tasks
whose due date lies in the window [now - lookback, now + 24 h] (one index, no Scan), and for
each one tells its assignee (or its creator, when it has none):
- `task.due_soon` when the due date is within the next 24 hours (now included);
- `task.overdue` once the due date has passed.

Once per task and due date: each notification is written in one transaction with a claim,
`due_soon#<task_id>#<due>` or `overdue#<task_id>#<due>` (condition: new), so a repeated sweep
(or two sweeps at once) writes nothing more, and a postponed task is told again about its new
date. Claims already there are filtered out first with one batch read, so a sweep that finds
nothing new makes no write at all.

The lookback bounds what a sweep reads: a task that became overdue more than `lookback` ago
while no sweep ran (the function was down or failing for that long) is never told.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chalicelib.domain.activity import Notification, NotificationType
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.model import new_id, rfc3339, utc
from chalicelib.domain.tasks import Task
from chalicelib.ports import Clock, DueSweepRepository, DueTaskRef

DUE_SOON_WINDOW = timedelta(hours=24)  # API.md: `task.due_soon` means due within 24 h
DEFAULT_LOOKBACK = timedelta(days=2)
# A claim outlives the window in which a sweep could find its task again by far; then
# DynamoDB's TTL removes it.
CLAIM_LIFETIME = timedelta(days=30)
# A bound on one sweep's writes (one transaction each), so a sweep ends well within its
# Lambda timeout even after a long outage; the rest wait for the next sweep.
DEFAULT_MAX_NOTIFICATIONS = 500
_BATCH = 100  # keys per batch read


class DueKind(enum.StrEnum):
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"

    @property
    def notification_type(self) -> NotificationType:
        if self is DueKind.DUE_SOON:
            return NotificationType.TASK_DUE_SOON
        return NotificationType.TASK_OVERDUE


def due_kind(due_date: datetime, now: datetime) -> DueKind | None:
    """What a task due at `due_date` is owed at `now`: overdue once the date has passed,
    due soon within the next 24 hours, nothing before."""
    if due_date < now:
        return DueKind.OVERDUE
    if due_date <= now + DUE_SOON_WINDOW:
        return DueKind.DUE_SOON
    return None


def due_claim(kind: DueKind, task_id: str, due_date: datetime) -> str:
    """`due_soon#<task_id>#<due>` / `overdue#<task_id>#<due>`: one per task, due date and
    kind (the due date to the millisecond, UTC)."""
    return f"{kind.value}#{task_id}#{rfc3339(due_date)}"


def recipient(task: Task) -> str:
    """Who hears about a task's due date: its assignee, or its creator when it has none."""
    return task.assignee_id or task.created_by


def message(kind: DueKind, task: Task) -> str:
    due = rfc3339(task.due_date)
    if kind is DueKind.DUE_SOON:
        return f'"{task.title}" is due soon, at {due}'
    return f'"{task.title}" is overdue: it was due at {due}'


@dataclass
class SweepOutcome:
    """What one sweep did, for logs and metrics."""

    examined: int = 0  # open tasks with a due date in the window
    due_soon: int = 0  # notifications written
    overdue: int = 0
    already: int = 0  # told before (their claim exists)
    skipped: int = 0  # changed, completed or gone since the index was read
    failed: int = 0  # writes DynamoDB refused for now (the next sweep tries again)
    deferred: int = 0  # left for the next sweep (over the per-sweep bound)
    notified: list[str] = field(default_factory=list)  # the claims written

    @property
    def written(self) -> int:
        return self.due_soon + self.overdue


class DueSweepService:
    def __init__(
        self,
        repository: DueSweepRepository,
        clock: Clock,
        *,
        lookback: timedelta = DEFAULT_LOOKBACK,
        max_notifications: int = DEFAULT_MAX_NOTIFICATIONS,
        new_notification_id: Callable[[], str] = new_id,
    ) -> None:
        if lookback < timedelta(0):
            raise ValueError("lookback must not be negative")
        self._repository = repository
        self._clock = clock
        self._lookback = lookback
        self._max = max_notifications
        self._new_id = new_notification_id

    def sweep(self) -> SweepOutcome:
        now = utc(self._clock.now())
        outcome = SweepOutcome()
        refs = self._repository.due_between(now - self._lookback, now + DUE_SOON_WINDOW)
        outcome.examined = len(refs)
        candidates: dict[str, tuple[DueKind, DueTaskRef]] = {}
        for ref in refs:
            ref = DueTaskRef(ref.task_id, utc(ref.due_date))
            kind = due_kind(ref.due_date, now)
            if kind is not None:
                candidates[due_claim(kind, ref.task_id, ref.due_date)] = (kind, ref)
        keys = list(candidates)
        claimed: set[str] = set()
        for start in range(0, len(keys), _BATCH):
            claimed |= self._repository.claimed(keys[start : start + _BATCH])
        outcome.already = len(claimed)
        pending = [(claim, *candidates[claim]) for claim in keys if claim not in claimed]
        if len(pending) > self._max:
            outcome.deferred = len(pending) - self._max
            pending = pending[: self._max]
        for start in range(0, len(pending), _BATCH):
            self._notify(pending[start : start + _BATCH], now, outcome)
        return outcome

    def _notify(
        self,
        batch: Sequence[tuple[str, DueKind, DueTaskRef]],
        now: datetime,
        outcome: SweepOutcome,
    ) -> None:
        tasks = self._repository.tasks([ref.task_id for _, _, ref in batch])
        for claim, kind, ref in batch:
            task = tasks.get(ref.task_id)
            # The index follows the table a moment behind: act only on the task as it is.
            if (
                task is None
                or task.status.closed
                or task.due_date is None
                or utc(task.due_date) != ref.due_date
            ):
                outcome.skipped += 1
                continue
            notification = Notification(
                self._new_id(),
                recipient(task),
                kind.notification_type,
                message(kind, task),
                now,
                task.id,
                task.project_id,
            )
            expires_at = max(now, ref.due_date) + CLAIM_LIFETIME
            try:
                written = self._repository.notify_once(claim, task, notification, expires_at)
            except Unavailable:
                outcome.failed += 1
                continue
            if not written:
                outcome.skipped += 1
            elif kind is DueKind.DUE_SOON:
                outcome.due_soon += 1
                outcome.notified.append(claim)
            else:
                outcome.overdue += 1
                outcome.notified.append(claim)
