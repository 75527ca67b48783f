"""/tasks/{task_id}/comments and /tasks/{task_id}/history.

Every route reads the task, its project and the caller's membership with the session (see
`chalicelib.api.tasks.the_task`); posting also reads the author and the claims of the mentioned
addresses in that round trip.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, route
from chalicelib.api.tasks import the_task, the_task_and_caller
from chalicelib.domain.activity import EventType, HistoryEvent
from chalicelib.domain.comments import CommentCreate, mentioned_emails
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import plausible_id
from chalicelib.ports import PrefetchKey, reads
from chalicelib.representations.schemas import CommentOut, Out, PageOut

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


# ---- what each route reads first, fetched with the session --------------------------------------


def mentioned_claims(principal: Principal, body: CommentCreate) -> list[PrefetchKey]:
    return [reads.user_email(email) for email in mentioned_emails(body.body)]


def the_task_and_comment(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    keys = the_task(principal, params)
    if plausible_id(params["task_id"]) and plausible_id(params["comment_id"]):
        keys.append(reads.comment(params["task_id"], params["comment_id"]))
    return keys


# ---- routes ------------------------------------------------------------------------------------


@route(
    "/tasks/{task_id}/comments",
    "GET",
    tag=TAG,
    summary="The comments of a task, oldest first",
    query=PageQuery,
    response=PageOut[CommentOut],
    errors=(400, 404),
    prefetch=the_task,
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
    prefetch=the_task_and_caller,
    prefetch_body=mentioned_claims,
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
    prefetch=the_task_and_comment,
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
    prefetch=the_task,
)
def task_history(call: Call) -> PageOut[HistoryEventOut]:
    page = bootstrap.container().history.find(
        call.principal, call.params["task_id"], call.query.page()
    )
    return PageOut[HistoryEventOut](
        items=[HistoryEventOut.of(e) for e in page.items], next_cursor=page.next_cursor
    )
