"""/workflows/{id}/run, /workflows/{id}/runs, /workflow-runs/{id} and its cancel.

Every route reads what its use case declares (see `chalicelib.services.workflow_runs`) with the
session: workflow routes the workflow, its project and the caller's membership; a run id names its
project the way a task id does, so run routes read its project and the membership in that round
trip too.
"""

from __future__ import annotations

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, from_params, route
from chalicelib.representations.schemas import PageOut, WorkflowRunOut
from chalicelib.services.workflow_runs import WorkflowRunService

TAG = "workflow runs"


@route(
    "/workflows/{workflow_id}/run",
    "POST",
    scope="run",
    tag=TAG,
    status=202,
    summary="Start a run of the workflow (member+)",
    response=WorkflowRunOut,
    errors=(403, 404),
    prefetch=from_params(WorkflowRunService.reads_for_workflow, "workflow_id"),
)
def run_workflow(call: Call) -> WorkflowRunOut:
    run = bootstrap.container().workflow_runs.start(call.principal, call.params["workflow_id"])
    return WorkflowRunOut.brief(run)


@route(
    "/workflows/{workflow_id}/runs",
    "GET",
    tag=TAG,
    summary="The runs of a workflow, newest first",
    query=PageQuery,
    response=PageOut[WorkflowRunOut],
    errors=(400, 404),
    prefetch=from_params(WorkflowRunService.reads_for_workflow, "workflow_id"),
)
def list_workflow_runs(call: Call) -> PageOut[WorkflowRunOut]:
    page = bootstrap.container().workflow_runs.list_for_workflow(
        call.principal, call.params["workflow_id"], call.query.page()
    )
    return PageOut[WorkflowRunOut](
        items=[WorkflowRunOut.brief(r) for r in page.items], next_cursor=page.next_cursor
    )


@route(
    "/workflow-runs/{run_id}",
    "GET",
    tag=TAG,
    summary="A workflow run with every step and its execution",
    response=WorkflowRunOut,
    errors=(404,),
    prefetch=from_params(WorkflowRunService.reads_for_run, "run_id"),
)
def get_workflow_run(call: Call) -> WorkflowRunOut:
    return WorkflowRunOut.of(
        bootstrap.container().workflow_runs.get(call.principal, call.params["run_id"])
    )


@route(
    "/workflow-runs/{run_id}/cancel",
    "POST",
    scope="run",
    tag=TAG,
    status=202,
    summary="Cancel a run: nothing new starts, unfinished steps end cancelled (member+)",
    response=WorkflowRunOut,
    errors=(403, 404, 409),
    prefetch=from_params(WorkflowRunService.reads_for_run, "run_id"),
)
def cancel_workflow_run(call: Call) -> WorkflowRunOut:
    return WorkflowRunOut.of(
        bootstrap.container().workflow_runs.cancel(call.principal, call.params["run_id"])
    )
