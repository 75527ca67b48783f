"""History events and notifications as items, written in the transaction of their change."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from chalicelib.adapters.dynamodb.models import NotificationModel, TaskHistoryModel
from chalicelib.domain.activity import HistoryEvent, Notification, Record

NOTIFICATION_LIFETIME = timedelta(days=180)


def history_to_model(event: HistoryEvent) -> TaskHistoryModel:
    return TaskHistoryModel(
        task_id=event.task_id,
        id=event.id,
        type=event.type.value,
        actor_id=event.actor_id,
        at=event.at,
        # UTF-8 as is: \u escapes would triple wide characters and overflow the 400 KB item.
        changes=json.dumps(
            {k: list(v) for k, v in event.changes.items()}, default=str, ensure_ascii=False
        ),
    )


def notification_to_model(notification: Notification) -> NotificationModel:
    return NotificationModel(
        user_id=notification.user_id,
        id=notification.id,
        type=notification.type.value,
        message=notification.message,
        task_id=notification.task_id,
        project_id=notification.project_id,
        read=notification.read,
        created_at=notification.created_at,
        expires_at=notification.created_at + NOTIFICATION_LIFETIME,
    )


def write_records(tx: Any, records: Sequence[Record]) -> None:
    """History events and notifications, in the transaction of the change they record."""
    for record in records:
        if isinstance(record, HistoryEvent):
            tx.save("history", history_to_model(record))
        else:
            tx.save("notification", notification_to_model(record))
