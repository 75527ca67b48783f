"""Decoding DynamoDB stream records into domain changes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pynamodb.models import Model

from chalicelib.adapters.dynamodb.comments import comment_from_model
from chalicelib.adapters.dynamodb.executions import execution_from_model
from chalicelib.adapters.dynamodb.models import (
    CommentModel,
    ExecutionModel,
    NotificationModel,
    ProjectModel,
    TaskModel,
    WorkflowModel,
    WorkflowRunModel,
)
from chalicelib.adapters.dynamodb.notifications import notification_from_model
from chalicelib.adapters.dynamodb.tasks import task_from_model
from chalicelib.adapters.dynamodb.workflow_runs import run_from_model
from chalicelib.adapters.dynamodb.workflows import workflow_from_model
from chalicelib.domain.realtime import StreamChange
from chalicelib.domain.tasks import Task
from chalicelib.domain.workflows import Workflow

T = TypeVar("T")


def _table_of(record: dict[str, Any]) -> str:
    # arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>
    return str(record.get("eventSourceARN", "")).split(":table/", 1)[-1].split("/", 1)[0]


def _changes(
    event: dict[str, Any], table_name: str, decode: Callable[[dict[str, Any]], T]
) -> list[tuple[T | None, T | None]]:
    """(before, after) of every record of one table in a stream batch, in stream order."""
    return [
        (
            decode(old) if (old := change.get("OldImage")) else None,
            decode(new) if (new := change.get("NewImage")) else None,
        )
        for record in event.get("Records", [])
        if _table_of(record) == table_name
        for change in [record.get("dynamodb", {})]
    ]


def task_changes(event: dict[str, Any]) -> list[tuple[Task | None, Task | None]]:
    """(before, after) of every task record in a stream batch, in stream order."""
    return _changes(
        event,
        TaskModel.Meta.table_name,
        lambda image: task_from_model(TaskModel.from_raw_data(image)),
    )


def workflow_changes(event: dict[str, Any]) -> list[tuple[Workflow | None, Workflow | None]]:
    """(before, after) of every workflow record in a stream batch, in stream order."""
    return _changes(
        event,
        WorkflowModel.Meta.table_name,
        lambda image: workflow_from_model(WorkflowModel.from_raw_data(image)),
    )


def removed_projects(event: dict[str, Any]) -> list[str]:
    """Ids of the projects a stream batch deletes."""
    return [
        str(record["dynamodb"]["Keys"]["id"]["S"])
        for record in event.get("Records", [])
        if _table_of(record) == ProjectModel.Meta.table_name and record.get("eventName") == "REMOVE"
    ]


_REALTIME_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "tasks": lambda image: task_from_model(TaskModel.from_raw_data(image)),
    "comments": lambda image: comment_from_model(CommentModel.from_raw_data(image)),
    "executions": lambda image: execution_from_model(ExecutionModel.from_raw_data(image)),
    "workflow_runs": lambda image: run_from_model(WorkflowRunModel.from_raw_data(image)),
    "notifications": lambda image: notification_from_model(
        NotificationModel.from_raw_data(image), None
    ),
}
_REALTIME_MODELS: dict[str, type[Model]] = {
    "tasks": TaskModel,
    "comments": CommentModel,
    "executions": ExecutionModel,
    "workflow_runs": WorkflowRunModel,
    "notifications": NotificationModel,
}


def _when(stamp: Any) -> datetime:
    """A record's ApproximateCreationDateTime: epoch seconds from Lambda's event source
    mapping (a datetime when boto3 parsed it, as moto's in-process mappings hand it over)."""
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    if isinstance(stamp, int | float | str) and str(stamp):
        return datetime.fromtimestamp(float(stamp), UTC)
    return datetime.now(UTC)


def realtime_changes(event: dict[str, Any]) -> list[StreamChange]:
    """The records of a stream batch that clients hear about (tasks, comments, executions,
    workflow runs, notifications), decoded to domain objects, in stream order."""
    tables = {str(model.Meta.table_name): kind for kind, model in _REALTIME_MODELS.items()}
    changes = []
    for record in event.get("Records", []):
        kind = tables.get(_table_of(record))
        if kind is None:
            continue
        decode = _REALTIME_DECODERS[kind]
        change = record.get("dynamodb", {})
        stamp = change.get("ApproximateCreationDateTime")
        changes.append(
            StreamChange(
                record_id=str(record.get("eventID") or ""),
                at=_when(stamp),
                operation=str(record.get("eventName") or ""),
                before=decode(old) if (old := change.get("OldImage")) else None,
                after=decode(new) if (new := change.get("NewImage")) else None,
            )
        )
    return changes


def rule_events(event: dict[str, Any]) -> list[Any]:
    """The events of a stream batch that automation rules act on (`domain.rules.RuleEvent`), in
    stream order: a task written (`task.created`), a task whose status changed
    (`task.status_changed`), an execution that became failed or timed out (`execution.failed`),
    and a new `task.overdue` notification (the due-date sweep's: `task.overdue` of its task).
    A task written by a rule carries `changed_by_rule`: its events say so (`by_rule`)."""
    # Imported here: the rest of this module does not need them.
    from chalicelib.adapters.dynamodb import models
    from chalicelib.adapters.dynamodb.executions import execution_from_model as execution_of
    from chalicelib.domain.executions import ExecutionStatus
    from chalicelib.domain.ids import project_of
    from chalicelib.domain.rules import RuleEvent, TriggerEvent

    failed = {ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT}
    tasks = str(models.TaskModel.Meta.table_name)
    executions = str(models.ExecutionModel.Meta.table_name)
    notifications = str(models.NotificationModel.Meta.table_name)
    found: list[Any] = []
    for record in event.get("Records", []):
        table = _table_of(record)
        change = record.get("dynamodb", {})
        old, new = change.get("OldImage"), change.get("NewImage")
        if not new:
            continue
        if table == tasks:
            after = task_from_model(models.TaskModel.from_raw_data(new))
            by_rule = bool(new.get("changed_by_rule", {}).get("S"))
            if not old:
                found.append(
                    RuleEvent(
                        TriggerEvent.TASK_CREATED,
                        after.id,
                        after.project_id,
                        after.id,
                        task=after,
                        by_rule=by_rule,
                    )
                )
                continue
            before = task_from_model(models.TaskModel.from_raw_data(old))
            if before.status != after.status:
                found.append(
                    RuleEvent(
                        TriggerEvent.TASK_STATUS_CHANGED,
                        f"{after.id}#v{after.version}",
                        after.project_id,
                        after.id,
                        task=after,
                        before=before,
                        by_rule=by_rule,
                    )
                )
        elif table == executions:
            execution = execution_of(models.ExecutionModel.from_raw_data(new))
            was = str(old.get("status", {}).get("S", "")) if old else ""
            if execution.status in failed and was not in {s.value for s in failed}:
                found.append(
                    RuleEvent(
                        TriggerEvent.EXECUTION_FAILED,
                        execution.id,
                        execution.project_id,
                        execution.task_id,
                        execution=execution,
                    )
                )
        elif table == notifications and not old:
            kind = str(new.get("type", {}).get("S", ""))
            task_id = str(new.get("task_id", {}).get("S", ""))
            project_id = str(new.get("project_id", {}).get("S", "")) or project_of(task_id)
            if kind == TriggerEvent.TASK_OVERDUE.value and task_id and project_id:
                # The key is completed with the task's due date when the task is read.
                found.append(RuleEvent(TriggerEvent.TASK_OVERDUE, task_id, project_id, task_id))
    return found
