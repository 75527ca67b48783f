"""Calendar feeds on DynamoDB: token lookups in `claims`, dated tasks from the tasks' indexes.

A token's lookup item is `claims[calendar#<SHA-256 of the token>]`, owned by its user: a feed
request costs one GetItem to find its user, never a Scan. The tasks come from the indexes the
task list already keeps, `by_assignee_due` and `by_project_due` (`due_key` = due date, fixed
width, `#` task id; undated tasks sort after every date under `~`), read from the window's
start onwards in as few Query pages as DynamoDB's 1 MB pages allow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError

from chalicelib.adapters.dynamodb import prefetch
from chalicelib.adapters.dynamodb.identity import calendar_claim
from chalicelib.adapters.dynamodb.models import ClaimModel, TaskModel, UserModel
from chalicelib.adapters.dynamodb.prefetch import ItemKey
from chalicelib.adapters.dynamodb.tasks import UNDATED, task_from_model
from chalicelib.adapters.dynamodb.transactions import Transaction
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.errors import StaleVersion
from chalicelib.domain.model import utc
from chalicelib.domain.tasks import Task
from chalicelib.domain.users import User


def _due_bound(moment: datetime) -> str:
    """The smallest `due_key` of a task due at `moment` (the format of tasks.due_key)."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dated(index: Any, hash_value: str, due_from: datetime, limit: int) -> list[Task]:
    # Dated keys sort below "~" (UNDATED), undated ones ("~#<id>") above it.
    rows = index.query(
        hash_value,
        range_key_condition=TaskModel.due_key.between(_due_bound(due_from), UNDATED),
        limit=limit,
        page_size=limit,
    )
    return [task_from_model(row) for row in rows]


class DynamoCalendarRepository:
    @translate_aws_failures
    def owner_of(self, lookup: str) -> str | None:
        # Consistent: a rotation ends the old token at once.
        row = prefetch.get(ItemKey(ClaimModel, calendar_claim(lookup)), ClaimModel)
        return row.owner_id if row else None

    @translate_aws_failures
    def set_key(self, before: User, after: User, lookup: str, previous: str | None) -> User:
        assert after.calendar_nonce is not None, "a key is set, never removed"
        tx = Transaction()
        try:
            with tx:
                tx.update(
                    "user",
                    UserModel(id=before.id),
                    [
                        UserModel.calendar_nonce.set(after.calendar_nonce),
                        UserModel.updated_at.set(after.updated_at),
                        UserModel.version.set(before.version + 1),
                    ],
                    UserModel.version == before.version,
                )
                if previous is not None:
                    tx.delete("previous", ClaimModel(key=calendar_claim(previous)))
                tx.save(
                    "lookup",
                    ClaimModel(
                        key=calendar_claim(lookup), owner_id=before.id, created_at=after.updated_at
                    ),
                    ClaimModel.key.does_not_exist(),
                )
        except TransactWriteError as exc:
            if tx.failed(exc):  # the user moved on (or, never seen, the lookup is taken)
                raise StaleVersion(before.id) from exc
            raise
        return after.with_changes(version=before.version + 1)

    @translate_aws_failures
    def assigned_with_due_date(self, user_id: str, due_from: datetime, limit: int) -> list[Task]:
        return _dated(TaskModel.by_assignee_due, user_id, due_from, limit)

    @translate_aws_failures
    def project_with_due_date(self, project_id: str, due_from: datetime, limit: int) -> list[Task]:
        return _dated(TaskModel.by_project_due, project_id, due_from, limit)
