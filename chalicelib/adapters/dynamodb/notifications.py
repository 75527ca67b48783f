"""DynamoDB repository of notifications: one partition per user, ULID range keys (newest first
by a descending query), and a per-user "read up to" mark in `notification_state`.

A notification is read when its own `read` flag is set or its id is not after the mark, so
"read all" is one conditional write whatever the count. Unread ones are therefore those after
the mark (a key condition) whose flag is still false (a filter).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.adapters.dynamodb import prefetch
from chalicelib.adapters.dynamodb.models import NotificationModel, NotificationStateModel
from chalicelib.adapters.dynamodb.pagination import query_one_page
from chalicelib.adapters.dynamodb.prefetch import ItemKey
from chalicelib.adapters.dynamodb.records import notification_to_model
from chalicelib.adapters.dynamodb.transactions import condition_failed
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.activity import Notification, NotificationType
from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.projects import plausible_id

# With the unread filter, one page evaluates at most this many items (see query_one_page).
FILTERED_EVALUATION = 200
KEY_NAMES = ("user_id", "id")


def notification_from_model(row: NotificationModel, read_before: str | None) -> Notification:
    return Notification(
        id=row.id,
        user_id=row.user_id,
        type=NotificationType(row.type),
        message=row.message,
        created_at=row.created_at,
        task_id=row.task_id,
        project_id=row.project_id,
        read=bool(row.read) or (read_before is not None and row.id <= read_before),
    )


class DynamoNotificationRepository:
    @staticmethod
    def _read_before(user_id: str) -> str | None:
        """The user's mark: taken from the request's prefetch when the route named it."""
        row = prefetch.get(ItemKey(NotificationStateModel, user_id), NotificationStateModel)
        return row.read_before if row else None

    @translate_aws_failures
    def add(self, notifications: Sequence[Notification]) -> None:
        with NotificationModel.batch_write() as batch:
            for notification in notifications:
                batch.save(notification_to_model(notification))

    @translate_aws_failures
    def find(
        self, user_id: str, page: PageRequest, *, unread_only: bool = False
    ) -> Page[Notification]:
        scope = f"notifications:{user_id}:{'unread' if unread_only else 'all'}"
        start = decode_cursor(page.cursor, scope)
        mark = self._read_before(user_id)
        after_mark = NotificationModel.id > mark if unread_only and mark else None
        unread = NotificationModel.read == False if unread_only else None  # noqa: E712

        def run(evaluate: int, begin: dict[str, Any] | None) -> Any:
            return NotificationModel.query(
                user_id,
                range_key_condition=after_mark,
                filter_condition=unread,
                scan_index_forward=False,
                consistent_read=True,
                page_size=evaluate,
                last_evaluated_key=begin,
            )

        evaluate = max(page.limit + 1, FILTERED_EVALUATION if unread_only else 0)
        rows, resume = query_one_page(
            NotificationModel, run, KEY_NAMES, page.limit, evaluate, start
        )
        return Page(
            items=[notification_from_model(row, mark) for row in rows],
            next_cursor=encode_cursor(resume, scope) if resume else None,
        )

    @translate_aws_failures
    def mark_read(self, user_id: str, notification_id: str) -> bool:
        if not plausible_id(notification_id):
            return False
        try:
            NotificationModel(user_id=user_id, id=notification_id).update(
                actions=[NotificationModel.read.set(True)],
                condition=NotificationModel.id.exists(),
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    @translate_aws_failures
    def mark_all_read(self, user_id: str) -> None:
        mark = self._read_before(user_id)
        newest = next(
            iter(
                NotificationModel.query(
                    user_id, scan_index_forward=False, consistent_read=True, limit=1
                )
            ),
            None,
        )
        if newest is None or (mark is not None and newest.id <= mark):
            return
        state = NotificationStateModel.read_before
        try:
            # Never move the mark back (a concurrent "read all" may have seen a newer one).
            NotificationStateModel(user_id=user_id).update(
                actions=[state.set(newest.id)],
                condition=state.does_not_exist() | (state < newest.id),
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
