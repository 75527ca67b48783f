"""DynamoDB repositories of comments, task history and the email directory used by mentions.

A comment is written in one transaction with its history event and its mentions'
notifications, conditional on its task and project still existing. Lists are single Queries on
the task's partition (ULID range keys: oldest first), consistent so a reader sees its own write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pynamodb.exceptions import DeleteError, TransactWriteError

from chalicelib.adapters.dynamodb import prefetch
from chalicelib.adapters.dynamodb.identity import email_claim
from chalicelib.adapters.dynamodb.models import (
    ClaimModel,
    CommentModel,
    ProjectModel,
    TaskHistoryModel,
    TaskModel,
)
from chalicelib.adapters.dynamodb.pagination import key_of, paginate
from chalicelib.adapters.dynamodb.prefetch import ItemKey
from chalicelib.adapters.dynamodb.records import write_records
from chalicelib.adapters.dynamodb.transactions import Transaction, condition_failed
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.activity import EventType, HistoryEvent, Record
from chalicelib.domain.comments import Comment
from chalicelib.domain.errors import NotFound
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.projects import plausible_id


def comment_to_model(comment: Comment) -> CommentModel:
    return CommentModel(
        task_id=comment.task_id,
        id=comment.id,
        project_id=comment.project_id,
        author_id=comment.author_id,
        body=comment.body,
        created_at=comment.created_at,
    )


def comment_from_model(row: CommentModel) -> Comment:
    return Comment(
        id=row.id,
        task_id=row.task_id,
        project_id=row.project_id,
        author_id=row.author_id,
        body=row.body,
        created_at=row.created_at,
    )


def history_from_model(row: TaskHistoryModel) -> HistoryEvent:
    raw: dict[str, Any] = json.loads(row.changes or "{}")
    return HistoryEvent(
        id=row.id,
        task_id=row.task_id,
        type=EventType(row.type),
        actor_id=row.actor_id,
        at=row.at,
        changes={name: (pair[0], pair[1]) for name, pair in raw.items()},
    )


class DynamoCommentRepository:
    @translate_aws_failures
    def add(self, comment: Comment, records: Sequence[Record] = ()) -> Comment:
        try:
            with Transaction() as tx:
                tx.check("project", ProjectModel, comment.project_id, ProjectModel.id.exists())
                tx.check("task", TaskModel, comment.task_id, TaskModel.id.exists())
                tx.save("comment", comment_to_model(comment), CommentModel.id.does_not_exist())
                write_records(tx, records)
        except TransactWriteError as exc:
            if tx.failed(exc) & {"project", "task"}:
                raise NotFound("task not found") from exc
            raise
        return comment

    @translate_aws_failures
    def get(self, task_id: str, comment_id: str) -> Comment | None:
        if not (plausible_id(task_id) and plausible_id(comment_id)):
            return None
        row = prefetch.get(ItemKey(CommentModel, task_id, comment_id), CommentModel)
        return comment_from_model(row) if row else None

    @translate_aws_failures
    def find(self, task_id: str, page: PageRequest) -> Page[Comment]:
        return paginate(
            lambda limit, start: CommentModel.query(
                task_id,
                consistent_read=True,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start,
            ),
            lambda row: key_of(row, "task_id", "id"),
            comment_from_model,
            page,
            scope=f"comments:{task_id}",
        )

    @translate_aws_failures
    def delete(self, comment: Comment) -> None:
        try:
            CommentModel(task_id=comment.task_id, id=comment.id).delete(
                condition=CommentModel.id.exists()
            )
        except DeleteError as exc:
            if condition_failed(exc):
                raise NotFound("comment not found") from exc
            raise


class DynamoHistoryRepository:
    @translate_aws_failures
    def find(self, task_id: str, page: PageRequest) -> Page[HistoryEvent]:
        return paginate(
            lambda limit, start: TaskHistoryModel.query(
                task_id,
                consistent_read=True,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start,
            ),
            lambda row: key_of(row, "task_id", "id"),
            history_from_model,
            page,
            scope=f"history:{task_id}",
        )


class DynamoEmailDirectory:
    """Who owns an address, from the email claims (no user item is read)."""

    @translate_aws_failures
    def user_ids(self, emails: Sequence[str]) -> dict[str, str]:
        keys = {ItemKey(ClaimModel, email_claim(email)): email for email in dict.fromkeys(emails)}
        rows = {key: prefetch.take(key) for key in keys}
        missing = [key for key, row in rows.items() if row is prefetch.MISSING]
        if missing:
            rows.update(prefetch.get_many(missing))
            for key in missing:
                prefetch.take(key)
        return {keys[key]: row.owner_id for key, row in rows.items() if row}
