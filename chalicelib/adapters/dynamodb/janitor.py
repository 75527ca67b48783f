"""Clean-up after deletions, run by the stream consumer (outside any request)."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.dynamodb.executions import purge_task_executions
from chalicelib.adapters.dynamodb.models import CommentModel, TaskHistoryModel
from chalicelib.adapters.dynamodb.projects import purge_project
from chalicelib.adapters.dynamodb.tasks import BATCH_WRITE_SIZE, purge_project_tasks
from chalicelib.adapters.dynamodb.workflows import purge_project_workflows
from chalicelib.adapters.errors import translate_aws_failures


def delete_partition(model: Any, hash_value: str) -> int:
    """Delete every item under one partition key (a page at a time). Idempotent."""
    keys = [model._hash_keyname, model._range_keyname]
    deleted = 0
    while True:
        rows = list(model.query(hash_value, limit=BATCH_WRITE_SIZE, attributes_to_get=keys))
        if not rows:
            return deleted
        with model.batch_write() as batch:
            for row in rows:
                batch.delete(row)
        deleted += len(rows)


class DynamoJanitor:
    @translate_aws_failures
    def purge_project(self, project_id: str) -> int:
        """Memberships, index entries, tasks, workflows and their runs of a deleted project; how
        many items went."""
        return (
            purge_project(project_id)
            + purge_project_tasks(project_id)
            + purge_project_workflows(project_id)
        )

    @translate_aws_failures
    def purge_task(self, task_id: str) -> int:
        """What belonged to a deleted task: its history, comments and executions."""
        return (
            delete_partition(TaskHistoryModel, task_id)
            + delete_partition(CommentModel, task_id)
            + purge_task_executions(task_id)
        )
