"""Workflow runs over HTTP: start one, list a workflow's runs, read one with its steps, cancel.

A run is planned and executed by the run state machine (`services/runs.py` plans each round);
this service only starts it, shows it and stops it. Who may do what: viewers read, members
start and cancel; a caller who is not a member of the project gets 404.

Cancel marks the run `cancelled` first (so a round planned meanwhile starts nothing), then
stops its state machine execution, then ends every unfinished step execution `cancelled`; the
steps that never started are shown `cancelled`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from chalicelib.domain.errors import Conflict, NotFound, StaleVersion
from chalicelib.domain.executions import Execution, ExecutionStatus
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.projects import ProjectRole
from chalicelib.domain.workflow_runs import (
    RunStep,
    WorkflowRun,
    project_of_run,
    start_run,
)
from chalicelib.domain.workflows import Workflow, project_of_workflow
from chalicelib.ports import (
    Clock,
    ExecutionRepository,
    ExecutionRunner,
    ProjectRepository,
    WorkflowRepository,
    WorkflowRunRepository,
)
from chalicelib.services.access import ProjectAccess
from chalicelib.services.auth import Principal

READ_ROLE = ProjectRole.VIEWER
RUN_ROLE = ProjectRole.MEMBER


@dataclass(frozen=True)
class RunView:
    """A run and the executions of its started steps (what `GET /workflow-runs/{id}` shows)."""

    run: WorkflowRun
    executions: dict[str, Execution]

    def step_execution(self, step: RunStep) -> Execution | None:
        return self.executions.get(step.execution_id) if step.execution_id else None


class WorkflowRunService:
    def __init__(
        self,
        runs: WorkflowRunRepository,
        workflows: WorkflowRepository,
        executions: ExecutionRepository,
        projects: ProjectRepository,
        clock: Clock,
        runner: ExecutionRunner | None,
    ) -> None:
        self._runs = runs
        self._workflows = workflows
        self._executions = executions
        self._access = ProjectAccess(projects)
        self._clock = clock
        self._runner = runner  # None: no state machine configured, runs stay queued

    def start(self, principal: Principal, workflow_id: str) -> WorkflowRun:
        """`POST /workflows/{id}/run`: a new run of the workflow as it is now."""
        workflow = self._workflow(principal, workflow_id, RUN_ROLE)
        run = self._runs.create(
            start_run(
                workflow, trigger="manual", created_by=principal.user_id, at=self._clock.now()
            )
        )
        if self._runner is not None:
            self._runner.start_workflow_run(run)
        return run

    def list_for_workflow(
        self, principal: Principal, workflow_id: str, page: PageRequest
    ) -> Page[WorkflowRun]:
        self._workflow(principal, workflow_id, READ_ROLE)
        return self._runs.find_for_workflow(workflow_id, page)

    def get(self, principal: Principal, run_id: str) -> RunView:
        run = self._run(principal, run_id, READ_ROLE)
        return RunView(run, self._executions.get_many(run.execution_ids))

    def cancel(self, principal: Principal, run_id: str) -> RunView:
        """`POST /workflow-runs/{id}/cancel`: 409 if the run has finished already."""
        run = self._run(principal, run_id, RUN_ROLE)
        now = self._clock.now()
        while True:
            if run.status.finished:
                raise Conflict(f"the run is {run.status.value} already")
            after = run.with_changes(
                status=ExecutionStatus.CANCELLED, started_at=run.started_at or now, finished_at=now
            )
            try:
                run = self._runs.advance(run, after)
                break
            except StaleVersion:
                fresh = self._runs.get(run_id)
                if fresh is None:
                    raise NotFound("workflow run not found") from None
                run = fresh
        if self._runner is not None:
            self._runner.stop_workflow_run(run)
        executions = self._executions.get_many(run.execution_ids)
        for execution in executions.values():
            if not execution.status.finished:
                with contextlib.suppress(StaleVersion):  # it finished meanwhile
                    cancelled = execution.moved_to(
                        ExecutionStatus.CANCELLED, now, error="the workflow run was cancelled"
                    )
                    executions[execution.id] = self._executions.update(execution, cancelled)
        return RunView(run, executions)

    # ---- helpers -------------------------------------------------------------------------------

    def _workflow(self, principal: Principal, workflow_id: str, role: ProjectRole) -> Workflow:
        workflow = self._workflows.get(workflow_id) if project_of_workflow(workflow_id) else None
        if workflow is None:
            raise NotFound("workflow not found")
        try:
            self._access.require(principal.user_id, workflow.project_id, role)
        except NotFound:
            raise NotFound("workflow not found") from None
        return workflow

    def _run(self, principal: Principal, run_id: str, role: ProjectRole) -> WorkflowRun:
        project_id = project_of_run(run_id)
        run = self._runs.get(run_id) if project_id else None
        if run is None or run.project_id != project_id:
            raise NotFound("workflow run not found")
        try:
            self._access.require(principal.user_id, run.project_id, role)
        except NotFound:
            raise NotFound("workflow run not found") from None
        return run
