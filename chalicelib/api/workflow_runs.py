"""/workflows/{id}/run, /workflows/{id}/runs, /workflow-runs/{id} and its cancel.

Workflow routes read the workflow, its project and the caller's membership with the session
(`chalicelib.api.workflows.the_workflow`); a run id names its project the way a task id does,
so run routes read the run, its project and the membership in that round trip too.
"""

from __future__ import annotations

from datetime import datetime

from chalice.app import Blueprint
from pydantic import BaseModel

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, route
from chalicelib.api.schemas import PageOut
from chalicelib.api.workflows import the_workflow
from chalicelib.domain.executions import ExecutionStatus
from chalicelib.domain.projects import plausible_id
from chalicelib.domain.workflow_runs import WorkflowRun, project_of_run
from chalicelib.ports import PrefetchKey
from chalicelib.services.auth import Principal
from chalicelib.services.workflow_runs import RunView

workflow_runs_api = Blueprint(__name__)
TAG = "workflow runs"


class RunStepOut(BaseModel):
    key: str
    task_id: str
    status: ExecutionStatus
    execution_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


class WorkflowRunOut(BaseModel):
    id: str
    workflow_id: str
    project_id: str
    trigger: str
    status: ExecutionStatus
    scheduled_for: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    max_concurrency: int
    on_failure: str
    steps: list[RunStepOut]

    @classmethod
    def of(cls, view: RunView, *, brief: bool = False) -> WorkflowRunOut:
        """With `brief`, the started steps show the status the run's last round recorded
        (their executions are not read); otherwise their executions' own."""
        run = view.run
        steps = []
        for step in run.steps:
            execution = view.step_execution(step)
            if execution is not None:
                status = execution.status
            elif step.outcome is not None:
                status = step.outcome
            elif step.execution_id is not None:
                status = ExecutionStatus.RUNNING if brief else ExecutionStatus.CANCELLED
            elif run.status is ExecutionStatus.CANCELLED:
                status = ExecutionStatus.CANCELLED
            else:
                status = ExecutionStatus.QUEUED
            steps.append(
                RunStepOut(
                    key=step.key,
                    task_id=step.task_id,
                    status=status,
                    execution_id=step.execution_id,
                    started_at=execution.started_at if execution else None,
                    finished_at=execution.finished_at if execution else None,
                    error=execution.error if execution else None,
                )
            )
        return cls(
            id=run.id,
            workflow_id=run.workflow_id,
            project_id=run.project_id,
            trigger=run.trigger,
            status=run.status,
            scheduled_for=run.scheduled_for,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            max_concurrency=run.max_concurrency,
            on_failure=run.on_failure.value,
            steps=steps,
        )

    @classmethod
    def brief(cls, run: WorkflowRun) -> WorkflowRunOut:
        """A run in a list: its steps without reading their executions."""
        return cls.of(RunView(run, {}), brief=True)


def the_run(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    run_id = params["run_id"]
    project_id = project_of_run(run_id)
    if not plausible_id(run_id) or project_id is None:
        return []
    return [("project", project_id), ("member", project_id, principal.user_id)]


@route(
    workflow_runs_api,
    "/workflows/{workflow_id}/run",
    "POST",
    tag=TAG,
    status=202,
    summary="Start a run of the workflow (member+)",
    response=WorkflowRunOut,
    errors=(403, 404),
    prefetch=the_workflow,
)
def run_workflow(call: Call) -> WorkflowRunOut:
    run = bootstrap.container().workflow_runs.start(call.principal, call.params["workflow_id"])
    return WorkflowRunOut.brief(run)


@route(
    workflow_runs_api,
    "/workflows/{workflow_id}/runs",
    "GET",
    tag=TAG,
    summary="The runs of a workflow, newest first",
    query=PageQuery,
    response=PageOut[WorkflowRunOut],
    errors=(400, 404),
    prefetch=the_workflow,
)
def list_workflow_runs(call: Call) -> PageOut[WorkflowRunOut]:
    page = bootstrap.container().workflow_runs.list_for_workflow(
        call.principal, call.params["workflow_id"], call.query.page()
    )
    return PageOut[WorkflowRunOut](
        items=[WorkflowRunOut.brief(r) for r in page.items], next_cursor=page.next_cursor
    )


@route(
    workflow_runs_api,
    "/workflow-runs/{run_id}",
    "GET",
    tag=TAG,
    summary="A workflow run with every step and its execution",
    response=WorkflowRunOut,
    errors=(404,),
    prefetch=the_run,
)
def get_workflow_run(call: Call) -> WorkflowRunOut:
    return WorkflowRunOut.of(
        bootstrap.container().workflow_runs.get(call.principal, call.params["run_id"])
    )


@route(
    workflow_runs_api,
    "/workflow-runs/{run_id}/cancel",
    "POST",
    tag=TAG,
    status=202,
    summary="Cancel a run: nothing new starts, unfinished steps end cancelled (member+)",
    response=WorkflowRunOut,
    errors=(403, 404, 409),
    prefetch=the_run,
)
def cancel_workflow_run(call: Call) -> WorkflowRunOut:
    return WorkflowRunOut.of(
        bootstrap.container().workflow_runs.cancel(call.principal, call.params["run_id"])
    )
