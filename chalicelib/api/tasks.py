"""/tasks: create, list, read, change, assign, complete, delete, subtasks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, from_params, route
from chalicelib.domain.model import Page
from chalicelib.domain.tasks import (
    AssignInput,
    Priority,
    Status,
    Task,
    TaskCreate,
    TaskUpdate,
)
from chalicelib.representations.schemas import Out, PageOut, TaskOut
from chalicelib.services.search import SearchService
from chalicelib.services.tasks import SORTS, DueFilter, TaskFilters, TaskService

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
    prefetch=from_params(TaskService.reads_for_create),
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
    prefetch=from_params(TaskService.reads_for_find, "project_id", "assignee_id"),
)
def list_tasks(call: Call) -> PageOut[TaskOut]:
    query: TaskListQuery = call.query
    return _page(bootstrap.container().tasks.find(call.principal, query.filters(), query.page()))


class SearchQuery(PageQuery):
    q: str = Field(..., min_length=1, max_length=500, description="Words that must all appear.")
    project_id: str | None = Field(
        None, max_length=64, description="Default: your personal project."
    )


@route(
    "/tasks/search",
    "GET",
    tag=TAG,
    summary="Tasks whose title, description or tags contain every word of q, best first",
    query=SearchQuery,
    response=PageOut[TaskOut],
    errors=(400, 404, 422),
    prefetch=from_params(SearchService.reads_for_search, "project_id", "q"),
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
    prefetch=from_params(TaskService.reads_for_task, "task_id"),
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
    prefetch=from_params(TaskService.reads_for_change, "task_id"),
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
    prefetch=from_params(TaskService.reads_for_delete, "task_id"),
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
    prefetch=from_params(TaskService.reads_for_change, "task_id"),
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
    prefetch=from_params(TaskService.reads_for_change, "task_id"),
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
    prefetch=from_params(TaskService.reads_for_task, "task_id"),
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
    prefetch=from_params(TaskService.reads_for_task, "task_id"),
)
def preview_schedule(call: Call) -> PreviewOut:
    runs = bootstrap.container().tasks.preview(
        call.principal, call.params["task_id"], call.query.count
    )
    return PreviewOut(runs=runs)
