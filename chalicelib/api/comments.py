"""/tasks/{task_id}/comments and /tasks/{task_id}/history.

Every route reads the task, its project and the caller's membership with the session (what its
use case declares, see `chalicelib.services.comments`); posting also reads the author and the
claims of the mentioned addresses in that round trip.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, from_params, route
from chalicelib.domain.activity import EventType, HistoryEvent
from chalicelib.domain.comments import CommentCreate
from chalicelib.representations.schemas import CommentOut, Out, PageOut
from chalicelib.services.comments import CommentService, HistoryService

TAG = "comments"


class HistoryEventOut(Out):
    id: str
    type: EventType
    actor_id: str
    at: datetime
    changes: dict[str, list[Any]] = Field(description="{field: [old, new]}")

    @classmethod
    def of(cls, event: HistoryEvent) -> HistoryEventOut:
        return cls(
            id=event.id,
            type=event.type,
            actor_id=event.actor_id,
            at=event.at,
            changes={name: list(pair) for name, pair in event.changes.items()},
        )


# ---- routes ------------------------------------------------------------------------------------


@route(
    "/tasks/{task_id}/comments",
    "GET",
    tag=TAG,
    summary="The comments of a task, oldest first",
    query=PageQuery,
    response=PageOut[CommentOut],
    errors=(400, 404),
    prefetch=from_params(CommentService.reads_for_find, "task_id"),
)
def list_comments(call: Call) -> PageOut[CommentOut]:
    page = bootstrap.container().comments.find(
        call.principal, call.params["task_id"], call.query.page()
    )
    return PageOut[CommentOut](
        items=[CommentOut.of(c) for c in page.items], next_cursor=page.next_cursor
    )


@route(
    "/tasks/{task_id}/comments",
    "POST",
    tag=TAG,
    status=201,
    summary="Comment on a task (member+); `@email` mentions of project members notify them",
    body=CommentCreate,
    response=CommentOut,
    errors=(403, 404, 422),
    prefetch=from_params(CommentService.reads_for_post, "task_id"),
    prefetch_body=CommentService.reads_for_mentions,
)
def post_comment(call: Call) -> CommentOut:
    comment = bootstrap.container().comments.post(call.principal, call.params["task_id"], call.body)
    return CommentOut.of(comment)


@route(
    "/tasks/{task_id}/comments/{comment_id}",
    "DELETE",
    tag=TAG,
    status=204,
    summary="Delete a comment (its author, or an admin of the project)",
    errors=(403, 404),
    prefetch=from_params(CommentService.reads_for_delete, "task_id", "comment_id"),
)
def delete_comment(call: Call) -> None:
    bootstrap.container().comments.delete(
        call.principal, call.params["task_id"], call.params["comment_id"]
    )


@route(
    "/tasks/{task_id}/history",
    "GET",
    tag=TAG,
    summary="What happened to a task, oldest first",
    query=PageQuery,
    response=PageOut[HistoryEventOut],
    errors=(400, 404),
    prefetch=from_params(HistoryService.reads_for_find, "task_id"),
)
def task_history(call: Call) -> PageOut[HistoryEventOut]:
    page = bootstrap.container().history.find(
        call.principal, call.params["task_id"], call.query.page()
    )
    return PageOut[HistoryEventOut](
        items=[HistoryEventOut.of(e) for e in page.items], next_cursor=page.next_cursor
    )
