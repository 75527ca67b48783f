"""/workflows: create, list, read, change and delete workflows (their runs come separately).

A workflow id names its project the way a task id does, so a route about one workflow reads the
workflow, its project and the caller's membership with the session; a write also names the
tasks of the body's steps there, so checking them costs no call of its own.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, route
from chalicelib.domain.ids import ScopedId, project_of
from chalicelib.domain.principals import Principal
from chalicelib.domain.workflows import (
    StepInput,
    WorkflowCreate,
    WorkflowUpdate,
)
from chalicelib.ports import PrefetchKey, reads
from chalicelib.representations.schemas import PageOut, WorkflowOut

TAG = "workflows"
# A BatchGetItem takes 100 keys: the session and the route's own keys fit beside this many
# tasks of a body; the service reads any others (at most 10, see STEPS_MAX) in one more batch.
BODY_TASKS_PREFETCHED = 90


class WorkflowListQuery(PageQuery):
    project_id: str | None = Field(
        None, max_length=64, description="Default: your personal project."
    )


# ---- what each route reads first, fetched with the session --------------------------------------


def _steps_and_schedule(
    principal: Principal, steps: list[StepInput] | None, schedule: Any
) -> list[PrefetchKey]:
    """The steps' tasks (ids that can name a task at all), and the caller when the schedule
    takes the caller's time zone."""
    task_ids = dict.fromkeys(step.task_id for step in steps or () if project_of(step.task_id))
    keys: list[PrefetchKey] = [reads.task(task_id) for task_id in task_ids]
    keys = keys[:BODY_TASKS_PREFETCHED]
    if schedule is not None and schedule.timezone is None:
        keys.append(reads.user(principal.user_id))
    return keys


def list_scope(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    project_id = params.get("project_id") or principal.personal_project_id
    return [reads.project(project_id), reads.member(project_id, principal.user_id)]


def new_workflow_scope(principal: Principal, body: WorkflowCreate) -> list[PrefetchKey]:
    project_id = body.project_id or principal.personal_project_id
    return [
        reads.project(project_id),
        reads.member(project_id, principal.user_id),
        *_steps_and_schedule(principal, body.steps, body.schedule),
    ]


def the_workflow(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    workflow_id = ScopedId.parse(params["workflow_id"])
    if workflow_id is None:
        return []
    project_id = workflow_id.project_id
    return [
        reads.workflow(str(workflow_id)),
        reads.project(project_id),
        reads.member(project_id, principal.user_id),
    ]


def changed_workflow_scope(principal: Principal, body: WorkflowUpdate) -> list[PrefetchKey]:
    return _steps_and_schedule(principal, body.steps, body.schedule)


# ---- routes ------------------------------------------------------------------------------------


@route(
    "/workflows",
    "POST",
    tag=TAG,
    status=201,
    summary="Create a workflow (without project_id: in your personal project)",
    body=WorkflowCreate,
    response=WorkflowOut,
    errors=(403, 404, 422),
    prefetch_body=new_workflow_scope,
)
def create_workflow(call: Call) -> WorkflowOut:
    return WorkflowOut.of(bootstrap.container().workflows.create(call.principal, call.body))


@route(
    "/workflows",
    "GET",
    tag=TAG,
    summary="The workflows of a project, newest first",
    query=WorkflowListQuery,
    response=PageOut[WorkflowOut],
    errors=(400, 404, 422),
    prefetch=list_scope,
)
def list_workflows(call: Call) -> PageOut[WorkflowOut]:
    query: WorkflowListQuery = call.query
    page = bootstrap.container().workflows.find(call.principal, query.project_id, query.page())
    return PageOut[WorkflowOut](
        items=[WorkflowOut.of(w) for w in page.items], next_cursor=page.next_cursor
    )


@route(
    "/workflows/{workflow_id}",
    "GET",
    tag=TAG,
    summary="A workflow",
    response=WorkflowOut,
    errors=(404,),
    prefetch=the_workflow,
)
def get_workflow(call: Call) -> WorkflowOut:
    return WorkflowOut.of(
        bootstrap.container().workflows.get(call.principal, call.params["workflow_id"])
    )


@route(
    "/workflows/{workflow_id}",
    ["PUT", "PATCH"],
    tag=TAG,
    summary="Change a workflow (fields present are applied; steps replaces the whole list; "
    "null clears the schedule)",
    body=WorkflowUpdate,
    response=WorkflowOut,
    errors=(403, 404, 409, 412, 422),
    prefetch=the_workflow,
    prefetch_body=changed_workflow_scope,
)
def update_workflow(call: Call) -> WorkflowOut:
    workflow = bootstrap.container().workflows.update(
        call.principal, call.params["workflow_id"], call.body, call.if_match
    )
    return WorkflowOut.of(workflow)


@route(
    "/workflows/{workflow_id}",
    "DELETE",
    tag=TAG,
    status=204,
    summary="Delete a workflow (members their own, admins any)",
    errors=(403, 404, 409, 412),
    prefetch=the_workflow,
)
def delete_workflow(call: Call) -> None:
    bootstrap.container().workflows.delete(
        call.principal, call.params["workflow_id"], call.if_match
    )
