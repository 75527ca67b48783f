"""What happened to tasks (history events) and what users are told (notifications).

Both are written in the same transaction as the change they record, so none is lost and none
describes a change that did not happen.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class EventType(enum.StrEnum):
    TASK_CREATED = "task.created"
    TASK_UPDATED = "task.updated"
    TASK_ASSIGNED = "task.assigned"
    TASK_COMPLETED = "task.completed"
    COMMENT_CREATED = "comment.created"
    EXECUTION_QUEUED = "execution.queued"
    EXECUTION_FINISHED = "execution.finished"


class NotificationType(enum.StrEnum):
    TASK_ASSIGNED = "task.assigned"
    COMMENT_MENTION = "comment.mention"
    TASK_DUE_SOON = "task.due_soon"
    TASK_OVERDUE = "task.overdue"
    EXECUTION_FAILED = "execution.failed"
    WORKFLOW_RUN_FAILED = "workflow_run.failed"
    TASK_STATUS_CHANGED = "task.status_changed"
    RULE_NOTIFY = "rule.notify"  # an automation rule's `notify` action
    HOOK_DISABLED = "hook.disabled"  # a project hook turned off after failing deliveries


@dataclass(frozen=True)
class HistoryEvent:
    id: str
    task_id: str
    type: EventType
    actor_id: str
    at: datetime
    changes: Mapping[str, tuple[Any, Any]]  # field -> (old, new), JSON-ready values


@dataclass(frozen=True)
class Notification:
    id: str
    user_id: str
    type: NotificationType
    message: str
    created_at: datetime
    task_id: str | None = None
    project_id: str | None = None
    read: bool = False


Record = HistoryEvent | Notification
