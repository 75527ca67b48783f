"""/tasks: create, list, read, change, assign, complete, delete, subtasks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, route
from chalicelib.domain.ids import ScopedId
from chalicelib.domain.model import Page
from chalicelib.domain.principals import Principal
from chalicelib.domain.search import query_words
from chalicelib.domain.tasks import (
    AssignInput,
    Priority,
    Status,
    Task,
    TaskCreate,
    TaskUpdate,
)
from chalicelib.ports import PrefetchKey, reads
from chalicelib.representations.schemas import Out, PageOut, TaskOut
from chalicelib.services.tasks import SORTS, DueFilter, TaskFilters

TAG = "tasks"


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class TaskListQuery(PageQuery):
    project_id: str | None = Field(
        None, max_length=64, description="Default: your personal project."
    )
    status: Annotated[list[Status], BeforeValidator(_comma_list)] = Field(
        default_factory=list, description="Comma list, e.g. pending,in_progress."
    )
    priority: Annotated[list[Priority], BeforeValidator(_comma_list)] = Field(
        default_factory=list, description="Comma list."
    )
    assignee_id: str | None = Field(
        None,
        max_length=64,
        description="A user id, or `me` (without project_id: all your projects).",
    )
    due: DueFilter | None = None
    tag: str | None = Field(None, max_length=40)
    parent_id: str | None = Field(None, max_length=64)
    sort: str = Field(
        "-created_at", description=" | ".join(SORTS), json_schema_extra={"enum": list(SORTS)}
    )

    def filters(self) -> TaskFilters:
        return TaskFilters(
            project_id=self.project_id,
            statuses=frozenset(self.status),
            priorities=frozenset(self.priority),
            assignee_id=self.assignee_id,
            due=self.due,
            tag=self.tag,
            parent_id=self.parent_id,
            sort=self.sort,
        )


def _page(page: Page[Task]) -> PageOut[TaskOut]:
    return PageOut[TaskOut](items=[TaskOut.of(t) for t in page.items], next_cursor=page.next_cursor)


# ---- what each route reads first, fetched with the session --------------------------------------


def caller(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    return [reads.user(principal.user_id)]


def list_scope(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    keys: list[PrefetchKey] = [reads.user(principal.user_id)]
    if params.get("assignee_id") == "me" and not params.get("project_id"):
        return [*keys, reads.user_projects(principal.user_id)]
    project_id = params.get("project_id") or principal.personal_project_id
    return [*keys, reads.project(project_id), reads.member(project_id, principal.user_id)]


def the_task(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    task_id = ScopedId.parse(params["task_id"])
    if task_id is None:
        return []
    project_id = task_id.project_id
    return [
        reads.task(str(task_id)),
        reads.project(project_id),
        reads.member(project_id, principal.user_id),
    ]


def the_task_and_caller(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    return [*the_task(principal, params), reads.user(principal.user_id)]


def the_task_and_graph(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    task_id = ScopedId.parse(params["task_id"])
    return [*the_task(principal, params), *([reads.graph(task_id.project_id)] if task_id else [])]


# ---- routes ------------------------------------------------------------------------------------


@route(
    "/tasks",
    "POST",
    tag=TAG,
    status=201,
    summary="Create a task (without project_id: in your personal project)",
    body=TaskCreate,
    response=TaskOut,
    errors=(404, 409, 422),
    prefetch=caller,
)
def create_task(call: Call) -> TaskOut:
    return TaskOut.of(bootstrap.container().tasks.create(call.principal, call.body))


@route(
    "/tasks",
    "GET",
    tag=TAG,
    summary="List tasks with filters and sorting",
    query=TaskListQuery,
    response=PageOut[TaskOut],
    errors=(400, 404, 422),
    prefetch=list_scope,
)
def list_tasks(call: Call) -> PageOut[TaskOut]:
    query: TaskListQuery = call.query
    return _page(bootstrap.container().tasks.find(call.principal, query.filters(), query.page()))


class SearchQuery(PageQuery):
    q: str = Field(..., min_length=1, max_length=500, description="Words that must all appear.")
    project_id: str | None = Field(
        None, max_length=64, description="Default: your personal project."
    )


def search_scope(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    project_id = params.get("project_id") or principal.personal_project_id
    keys: list[PrefetchKey] = [
        reads.project(project_id),
        reads.member(project_id, principal.user_id),
    ]
    return keys + [reads.search_term(project_id, word) for word in query_words(params.get("q", ""))]


@route(
    "/tasks/search",
    "GET",
    tag=TAG,
    summary="Tasks whose title, description or tags contain every word of q, best first",
    query=SearchQuery,
    response=PageOut[TaskOut],
    errors=(400, 404, 422),
    prefetch=search_scope,
)
def search_tasks(call: Call) -> PageOut[TaskOut]:
    query: SearchQuery = call.query
    page = bootstrap.container().search.search(
        call.principal, query.q, query.project_id, query.page()
    )
    return _page(page)


@route(
    "/tasks/{task_id}",
    "GET",
    tag=TAG,
    summary="A task",
    response=TaskOut,
    errors=(404,),
    prefetch=the_task,
)
def get_task(call: Call) -> TaskOut:
    return TaskOut.of(bootstrap.container().tasks.get(call.principal, call.params["task_id"]))


@route(
    "/tasks/{task_id}",
    ["PUT", "PATCH"],
    tag=TAG,
    summary="Change a task (fields present are applied; null clears an optional field)",
    body=TaskUpdate,
    response=TaskOut,
    errors=(403, 404, 409, 412, 422),
    prefetch=the_task_and_caller,
)
def update_task(call: Call) -> TaskOut:
    task = bootstrap.container().tasks.update(
        call.principal, call.params["task_id"], call.body, call.if_match
    )
    return TaskOut.of(task)


@route(
    "/tasks/{task_id}",
    "DELETE",
    tag=TAG,
    status=204,
    summary="Delete a task, its subtasks, and its place in other tasks' depends_on",
    errors=(403, 404, 409, 412),
    prefetch=the_task_and_graph,
)
def delete_task(call: Call) -> None:
    bootstrap.container().tasks.delete(call.principal, call.params["task_id"], call.if_match)


@route(
    "/tasks/{task_id}/assign",
    "POST",
    tag=TAG,
    summary="Assign (or unassign with null)",
    body=AssignInput,
    response=TaskOut,
    errors=(403, 404, 412, 422),
    prefetch=the_task_and_caller,
)
def assign_task(call: Call) -> TaskOut:
    task = bootstrap.container().tasks.assign(
        call.principal, call.params["task_id"], call.body, call.if_match
    )
    return TaskOut.of(task)


@route(
    "/tasks/{task_id}/complete",
    "POST",
    tag=TAG,
    summary="Complete a task (its dependencies and subtasks must be completed)",
    response=TaskOut,
    errors=(403, 404, 409, 412),
    prefetch=the_task_and_caller,
)
def complete_task(call: Call) -> TaskOut:
    task = bootstrap.container().tasks.complete(
        call.principal, call.params["task_id"], call.if_match
    )
    return TaskOut.of(task)


@route(
    "/tasks/{task_id}/subtasks",
    "GET",
    tag=TAG,
    summary="The subtasks of a task",
    query=PageQuery,
    response=PageOut[TaskOut],
    errors=(400, 404),
    prefetch=the_task,
)
def list_subtasks(call: Call) -> PageOut[TaskOut]:
    page = bootstrap.container().tasks.subtasks(
        call.principal, call.params["task_id"], call.query.page()
    )
    return _page(page)


class PreviewQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    count: int = Field(5, ge=1, le=50, description="How many firings.")


class PreviewOut(Out):
    runs: list[datetime]


@route(
    "/tasks/{task_id}/schedule/preview",
    "GET",
    tag=TAG,
    summary="The next firings of the task's schedule",
    query=PreviewQuery,
    response=PreviewOut,
    errors=(400, 404, 422),
    prefetch=the_task,
)
def preview_schedule(call: Call) -> PreviewOut:
    runs = bootstrap.container().tasks.preview(
        call.principal, call.params["task_id"], call.query.count
    )
    return PreviewOut(runs=runs)
