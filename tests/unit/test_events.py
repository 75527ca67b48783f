"""Which stored changes become which WebSocket events (`representations/events.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.activity import Notification, NotificationType
from chalicelib.domain.comments import Comment
from chalicelib.domain.executions import Execution, ExecutionStatus, Trigger
from chalicelib.domain.model import new_id
from chalicelib.domain.realtime import EventType, StreamChange
from chalicelib.domain.tasks import Task, new_task_id
from chalicelib.representations.events import events_of
from chalicelib.representations.schemas import TaskOut, dump

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PROJECT = new_id()


def task(title: str = "T") -> Task:
    return Task(
        id=new_task_id(PROJECT),
        project_id=PROJECT,
        title=title,
        created_by="u",
        created_at=AT,
        updated_at=AT,
    )


def change(operation: str, before: Any, after: Any) -> StreamChange:
    return StreamChange(new_id(), AT, operation, before, after)


def test_task_writes_become_created_updated_deleted_to_the_project() -> None:
    old, new = task("old"), task("new")
    events = events_of(
        [change("INSERT", None, old), change("MODIFY", old, new), change("REMOVE", new, None)]
    )
    assert [e.type for e in events] == [
        EventType.TASK_CREATED,
        EventType.TASK_UPDATED,
        EventType.TASK_DELETED,
    ]
    assert {e.project_id for e in events} == {PROJECT}
    assert events[1].data == dump(TaskOut.of(new))
    assert events[2].data == dump(TaskOut.of(new))  # what was deleted


def test_comments_only_when_created() -> None:
    comment = Comment(new_id(), new_task_id(PROJECT), PROJECT, "u", "hi", AT)
    events = events_of([change("INSERT", None, comment), change("REMOVE", comment, None)])
    assert [(e.type, e.project_id, e.data["body"]) for e in events] == [
        (EventType.COMMENT_CREATED, PROJECT, "hi")
    ]


def test_executions_on_every_write_but_their_removal() -> None:
    execution = Execution(
        new_id(), new_task_id(PROJECT), PROJECT, Trigger.MANUAL, ExecutionStatus.QUEUED, AT
    )
    events = events_of(
        [
            change("INSERT", None, execution),
            change("MODIFY", execution, execution),
            change("REMOVE", execution, None),
        ]
    )
    assert [e.type for e in events] == [EventType.EXECUTION_UPDATED] * 2


@pytest.mark.parametrize(("operation", "expected"), [("INSERT", 1), ("MODIFY", 0)])
def test_notifications_to_their_user_when_written(operation: str, expected: int) -> None:
    notification = Notification(new_id(), "user-1", NotificationType.TASK_ASSIGNED, "m", AT)
    events = events_of([change(operation, None, notification)])
    assert len(events) == expected
    for event in events:
        assert (event.type, event.user_id, event.project_id) == (
            EventType.NOTIFICATION,
            "user-1",
            None,
        )
        assert event.data["type"] == "task.assigned"
