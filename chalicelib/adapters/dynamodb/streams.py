"""Decoding DynamoDB stream records into domain changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from chalicelib.adapters.dynamodb.models import ProjectModel, TaskModel, WorkflowModel
from chalicelib.adapters.dynamodb.tasks import task_from_model
from chalicelib.adapters.dynamodb.workflows import workflow_from_model
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
