"""What WebSocket clients see of a stored change: the events of API.md, their `data` being the
resource as the HTTP API returns it (the same schemas). Free of Chalice, like `schemas`: the
stream consumer builds events with it.

- tasks: `task.created`, `task.updated`, `task.deleted` (data: the task as it was);
- comments: `comment.created`;
- executions: `execution.updated` on every write, the first included;
- workflow runs: `workflow_run.updated` (the run as lists show it: each step's last planned
  status, no execution reads);
- notifications: `notification`, to its user only, when it is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chalicelib.domain.activity import Notification
from chalicelib.domain.comments import Comment
from chalicelib.domain.executions import Execution
from chalicelib.domain.realtime import Event, EventType, StreamChange
from chalicelib.domain.tasks import Task
from chalicelib.domain.workflow_runs import WorkflowRun
from chalicelib.representations.schemas import (
    CommentOut,
    ExecutionOut,
    NotificationOut,
    TaskOut,
    WorkflowRunOut,
    dump,
)


def events_of(changes: Iterable[StreamChange]) -> list[Event]:
    events = []
    for change in changes:
        event = _event_of(change)
        if event is not None:
            events.append(event)
    return events


def _event_of(change: StreamChange) -> Event | None:
    current = change.after if change.after is not None else change.before
    if isinstance(current, Task):
        kind = {
            "INSERT": EventType.TASK_CREATED,
            "MODIFY": EventType.TASK_UPDATED,
            "REMOVE": EventType.TASK_DELETED,
        }.get(change.operation)
        if kind is None:
            return None
        return _to_project(change, kind, dump(TaskOut.of(current)), current.project_id)
    if isinstance(current, Comment):
        if change.operation != "INSERT":
            return None
        data = dump(CommentOut.of(current))
        return _to_project(change, EventType.COMMENT_CREATED, data, current.project_id)
    if isinstance(current, Execution):
        if change.after is None:  # gone with its task: the task's own event says so
            return None
        data = dump(ExecutionOut.of(current))
        return _to_project(change, EventType.EXECUTION_UPDATED, data, current.project_id)
    if isinstance(current, WorkflowRun):
        if change.after is None:
            return None
        data = dump(WorkflowRunOut.brief(current))
        return _to_project(change, EventType.WORKFLOW_RUN_UPDATED, data, current.project_id)
    if isinstance(current, Notification):
        if change.operation != "INSERT":  # marked read: nothing new for the user
            return None
        return Event(
            change.record_id,
            EventType.NOTIFICATION,
            change.at,
            dump(NotificationOut.of(current)),
            user_id=current.user_id,
        )
    return None


def _to_project(
    change: StreamChange, kind: EventType, data: dict[str, Any], project_id: str
) -> Event:
    return Event(change.record_id, kind, change.at, data, project_id=project_id)
