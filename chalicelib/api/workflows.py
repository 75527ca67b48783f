"""/workflows: create, list, read, change and delete workflows (their runs come separately).

A workflow id names its project the way a task id does, so a route about one workflow reads the
workflow, its project and the caller's membership with the session; a write also names the
tasks of the body's steps there, so checking them costs no call of its own.
"""

from __future__ import annotations

from pydantic import Field

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, from_params, route
from chalicelib.domain.workflows import (
    WorkflowCreate,
    WorkflowUpdate,
)
from chalicelib.representations.schemas import PageOut, WorkflowOut
from chalicelib.services.workflows import WorkflowService

TAG = "workflows"


class WorkflowListQuery(PageQuery):
    project_id: str | None = Field(
        None, max_length=64, description="Default: your personal project."
    )


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
    prefetch_body=WorkflowService.reads_for_create,
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
    prefetch=from_params(WorkflowService.reads_for_find, "project_id"),
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
    prefetch=from_params(WorkflowService.reads_for_workflow, "workflow_id"),
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
    prefetch=from_params(WorkflowService.reads_for_workflow, "workflow_id"),
    prefetch_body=WorkflowService.reads_for_changes,
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
    prefetch=from_params(WorkflowService.reads_for_workflow, "workflow_id"),
)
def delete_workflow(call: Call) -> None:
    bootstrap.container().workflows.delete(
        call.principal, call.params["workflow_id"], call.if_match
    )
