"""Decoding DynamoDB stream records into domain changes."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.dynamodb.models import ProjectModel, TaskModel
from chalicelib.adapters.dynamodb.tasks import task_from_model
from chalicelib.domain.tasks import Task


def _table_of(record: dict[str, Any]) -> str:
    # arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>
    return str(record.get("eventSourceARN", "")).split(":table/", 1)[-1].split("/", 1)[0]


def _task(image: dict[str, Any] | None) -> Task | None:
    return task_from_model(TaskModel.from_raw_data(image)) if image else None


def task_changes(event: dict[str, Any]) -> list[tuple[Task | None, Task | None]]:
    """(before, after) of every task record in a stream batch, in stream order."""
    return [
        (_task(change.get("OldImage")), _task(change.get("NewImage")))
        for record in event.get("Records", [])
        if _table_of(record) == TaskModel.Meta.table_name
        for change in [record.get("dynamodb", {})]
    ]


def removed_projects(event: dict[str, Any]) -> list[str]:
    """Ids of the projects a stream batch deletes."""
    return [
        str(record["dynamodb"]["Keys"]["id"]["S"])
        for record in event.get("Records", [])
        if _table_of(record) == ProjectModel.Meta.table_name and record.get("eventName") == "REMOVE"
    ]
