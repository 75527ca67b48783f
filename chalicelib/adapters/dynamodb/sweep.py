"""DynamoDB side of the due-date sweep (`services/sweep.py`).

Open tasks with a due date carry `open_due_day` (the due date's UTC day), the hash key of the
sparse keys-only index `tasks.open_by_due_day` (range: `due_key`); completing, cancelling or
undating a task removes it (`tasks.py` derives it on every write). The sweep queries one
partition per day of its window, each narrowed to the window by `due_key`; no Scan.

A notification is written in one transaction with its claim (`claims`, condition: new, TTL),
a check that its task is still open with the same due date, and a check that its project
exists; a failed condition writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import TransactWriteError

from chalicelib.adapters.dynamodb import prefetch
from chalicelib.adapters.dynamodb.models import ClaimModel, ProjectModel, TaskModel
from chalicelib.adapters.dynamodb.prefetch import ItemKey
from chalicelib.adapters.dynamodb.records import notification_to_model
from chalicelib.adapters.dynamodb.tasks import (
    UNDATED,
    _iso,
    due_key,
    open_due_day,
    task_from_model,
)
from chalicelib.adapters.dynamodb.transactions import Transaction
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.activity import Notification
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.model import utc
from chalicelib.domain.tasks import Task
from chalicelib.ports import DueTaskRef

_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # what `due_key` starts with (tasks._iso)
MAX_BATCH_KEYS = 100  # DynamoDB's limit per BatchGetItem
# Cancellation reasons that mean "another write got there at the same time": try again later.
_TRANSIENT_REASONS = frozenset({"TransactionConflict", "ThrottlingError"})


def _due_of(key: str) -> datetime:
    return datetime.strptime(key.split("#", 1)[0], _ISO_FORMAT).replace(tzinfo=UTC)


def days_between(start: datetime, end: datetime) -> list[str]:
    """The `open_due_day` partitions that cover [start, end]."""
    day, last = utc(start).date(), utc(end).date()
    days = []
    while day <= last:
        days.append(day.isoformat())
        day += timedelta(days=1)
    return days


class DynamoDueSweepRepository:
    @translate_aws_failures
    def due_between(self, start: datetime, end: datetime) -> list[DueTaskRef]:
        # `<iso(start)>` sorts before every key of that instant, `<iso(end)>#~` after them.
        window = TaskModel.due_key.between(_iso(start), f"{_iso(end)}#{UNDATED}")
        refs = []
        for day in days_between(start, end):
            for row in TaskModel.open_by_due_day.query(day, range_key_condition=window):
                refs.append(DueTaskRef(row.id, _due_of(row.due_key)))
        return refs

    @translate_aws_failures
    def claimed(self, claims: Sequence[str]) -> set[str]:
        found: set[str] = set()
        keys = [ItemKey(ClaimModel, claim) for claim in dict.fromkeys(claims)]
        for start in range(0, len(keys), MAX_BATCH_KEYS):
            rows = prefetch.get_many(keys[start : start + MAX_BATCH_KEYS])
            found |= {key.hash_key for key, row in rows.items() if row is not None}
        return found

    @translate_aws_failures
    def tasks(self, task_ids: Sequence[str]) -> dict[str, Task]:
        found: dict[str, Task] = {}
        keys = [ItemKey(TaskModel, task_id) for task_id in dict.fromkeys(task_ids)]
        for start in range(0, len(keys), MAX_BATCH_KEYS):
            for key, row in prefetch.get_many(keys[start : start + MAX_BATCH_KEYS]).items():
                if row is not None:
                    found[key.hash_key] = task_from_model(row)
        return found

    @translate_aws_failures
    def notify_once(
        self, claim: str, task: Task, notification: Notification, expires_at: datetime
    ) -> bool:
        day = open_due_day(task)
        if day is None:  # closed, or no due date: nothing is due
            return False
        item = ClaimModel(
            key=claim,
            owner_id=notification.id,
            created_at=notification.created_at,
            expires_at=expires_at,
        )
        try:
            with Transaction() as tx:
                tx.check("project", ProjectModel, task.project_id, ProjectModel.id.exists())
                tx.check(
                    "task",
                    TaskModel,
                    task.id,
                    (TaskModel.open_due_day == day) & (TaskModel.due_key == due_key(task)),
                )
                tx.save("claim", item, ClaimModel.key.does_not_exist())
                tx.save("notification", notification_to_model(notification))
        except TransactWriteError as exc:
            if tx.failed(exc):
                return False
            reasons = {r.code for r in exc.cancellation_reasons if r is not None}
            if reasons & _TRANSIENT_REASONS:
                raise Unavailable() from exc
            raise
        return True
