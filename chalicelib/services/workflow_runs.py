"""Workflow runs over HTTP: start one, list a workflow's runs, read one with its steps, cancel.

A run is planned and executed by the run state machine (`services/runs.py` plans each round);
this service only starts it, shows it and stops it. Who may do what: viewers read, members
start and cancel; a caller who is not a member of the project gets 404.

Cancel marks the run `cancelled` first (so a round planned meanwhile starts nothing), then
stops its state machine execution, then ends every unfinished step execution `cancelled`; the
steps that never started are shown `cancelled`.

`fire` is a scheduled firing of a workflow, the way `ExecutionService.fire` is one of a task:
delivery is at least once, so the firing `(workflow, scheduled time)` is claimed in the
transaction that creates its run (trigger `schedule`, `scheduled_for` the firing time); a
second delivery writes nothing and gets the first run back, and starts it again if it is still
`queued` (the runner is idempotent on the run id). Then the workflow's `next_run_at` moves on.

What a firing does when its workflow changed meanwhile:
- the workflow (or its project) is gone, or the firing names another project: nothing is
  recorded (its schedule goes with it);
- the workflow has no schedule any more, or its schedule is paused: a `skipped` run is recorded
  (idempotently, like any firing), with every step `skipped`.

Overlap: `allow` lets runs overlap. `skip` (the default) and `buffer_one` have a scheduled run
hold the workflow's active slot (`Slot.ACTIVE`, a conditional put in the firing's transaction)
until it finishes; a firing that finds the slot held by an unfinished run records a `skipped`
run. For workflows `buffer_one` behaves like `skip`: no firing waits for a running one. Manual
runs take no slot. A run releases its slot when it finishes (its last round, or cancel); a slot
whose holder finished without releasing it (it died in between) is freed by the next firing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import datetime

from chalicelib.domain import schedules
from chalicelib.domain.errors import Conflict, NotFound, StaleVersion
from chalicelib.domain.executions import (
    Execution,
    ExecutionStatus,
    SlotTaken,
    Trigger,
    firing_key,
)
from chalicelib.domain.ids import ScopedId, project_of
from chalicelib.domain.model import Page, PageRequest, utc
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import ProjectRole
from chalicelib.domain.schedules import Overlap
from chalicelib.domain.workflow_runs import (
    RunStep,
    WorkflowRun,
    start_run,
)
from chalicelib.domain.workflows import Workflow
from chalicelib.ports import (
    Clock,
    ExecutionRepository,
    ExecutionRunner,
    Prefetcher,
    PrefetchKey,
    ProjectRepository,
    WorkflowRepository,
    WorkflowRunRepository,
    reads,
)
from chalicelib.services.access import ProjectAccess, project_reads, scoped_reads
from chalicelib.services.executions import Delivery, skip_reason

READ_ROLE = ProjectRole.VIEWER
RUN_ROLE = ProjectRole.MEMBER


@dataclass(frozen=True)
class RunView:
    """A run and the executions of its started steps (what `GET /workflow-runs/{id}` shows)."""

    run: WorkflowRun
    executions: dict[str, Execution]

    def step_execution(self, step: RunStep) -> Execution | None:
        return self.executions.get(step.execution_id) if step.execution_id else None


@dataclass(frozen=True)
class RunFiring:
    """What one delivery of a workflow's firing did: the firing's run (None if nothing was
    recorded), and whether this delivery created it (False for a repeated delivery)."""

    run: WorkflowRun | None
    created: bool
    reason: str = ""


def skipped_run(run: WorkflowRun, at: datetime) -> WorkflowRun:
    """`run` recorded as a firing that ran nothing: the run and every step `skipped`."""
    return run.with_changes(
        status=ExecutionStatus.SKIPPED,
        finished_at=at,
        steps=tuple(replace(step, outcome=ExecutionStatus.SKIPPED) for step in run.steps),
    )


class WorkflowRunService:
    def __init__(
        self,
        runs: WorkflowRunRepository,
        workflows: WorkflowRepository,
        executions: ExecutionRepository,
        projects: ProjectRepository,
        clock: Clock,
        runner: ExecutionRunner | None,
        prefetcher: Prefetcher | None = None,
    ) -> None:
        self._runs = runs
        self._workflows = workflows
        self._executions = executions
        self._projects = projects
        self._access = ProjectAccess(projects)
        self._clock = clock
        self._runner = runner  # None: no state machine configured, runs stay queued
        self._prefetch = prefetcher

    # ---- the scheduler's entry ------------------------------------------------------------------

    def fire(self, workflow_id: str, scheduled_time: datetime, delivery: Delivery) -> RunFiring:
        """One delivery of a firing of the workflow's schedule (see the module's docstring)."""
        project_id = project_of(workflow_id)
        if project_id is None or (delivery.project_id and delivery.project_id != project_id):
            return RunFiring(None, False, "the firing names no workflow of its project")
        if self._prefetch is not None:  # the workflow and its project in one round trip
            self._prefetch.warm([reads.workflow(workflow_id), reads.project(project_id)])
        workflow = self._workflows.get(workflow_id)
        if workflow is None or self._projects.get(project_id) is None:
            return RunFiring(None, False, "the workflow is gone")
        fired_at = utc(scheduled_time)
        now = self._clock.now()
        run = start_run(
            workflow,
            trigger=Trigger.SCHEDULE.value,
            # Who hears about a failed scheduled run: whoever created the workflow.
            created_by=workflow.created_by,
            at=now,
            scheduled_for=fired_at,
        )
        key = firing_key(workflow.id, fired_at)
        schedule = workflow.schedule
        reason = skip_reason(schedule, "workflow")
        if reason or schedule is None:
            outcome = self._record(key, skipped_run(run, now), reason=reason or "")
        elif schedule.overlap is Overlap.ALLOW:
            outcome = self._record(key, run)
        else:
            outcome = self._record_with_slot(key, run, now)
        # On a repeated delivery too: the first may have failed after its write, before this.
        if outcome.run is not None and schedule is not None:
            following = schedules.next_run(schedule, fired_at)
            self._workflows.advance_next_run(workflow.id, fired_at, following)
        return outcome

    def _record(
        self, key: str, run: WorkflowRun, *, hold_slot: bool = False, reason: str = ""
    ) -> RunFiring:
        """Claim the firing and write its run; start it. A repeated delivery starts the stored
        run again if it is still queued (the first delivery may have died before starting it)."""
        stored, created = self._runs.create_for_firing(key, run, hold_slot=hold_slot)
        if stored.status is ExecutionStatus.QUEUED and self._runner is not None:
            self._runner.start_workflow_run(stored)
        if not created:
            reason = "a repeated delivery"
        return RunFiring(stored, created, reason)

    def _record_with_slot(self, key: str, run: WorkflowRun, now: datetime) -> RunFiring:
        """Overlap `skip` (and `buffer_one`): the firing runs if it gets the workflow's active
        slot; otherwise it is recorded skipped."""
        try:
            return self._record(key, run, hold_slot=True)
        except SlotTaken:
            pass
        if self._clear_stale(run.workflow_id):
            try:
                return self._record(key, run, hold_slot=True)
            except SlotTaken:
                pass
        reason = "the previous run is still running"
        return self._record(key, skipped_run(run, now), reason=reason)

    def _clear_stale(self, workflow_id: str) -> bool:
        """Free the active slot if its holder finished (or is gone) without releasing it:
        True if the slot is free now."""
        holder_id = self._runs.slot_owner(workflow_id)
        if holder_id is None:
            return True  # released meanwhile
        holder = self._runs.get(holder_id)
        if holder is not None and not holder.status.finished:
            return False
        return self._runs.release_slot(workflow_id, holder_id)

    # ---- first reads: what each use case reads before anything else ------------------------------
    # The route hands the same declaration to authentication, which fetches these items with the
    # caller's session; the use case warms it again: a no-op then, one round trip for any other
    # caller.

    @staticmethod
    def reads_for_workflow(principal: Principal, workflow_id: str) -> list[PrefetchKey]:
        """Starting a run of a workflow, listing its runs: the workflow, its project and the
        caller's membership (`_workflow` warms them)."""
        return scoped_reads(principal, workflow_id, reads.workflow)

    @staticmethod
    def reads_for_run(principal: Principal, run_id: str) -> list[PrefetchKey]:
        """Reading or cancelling a run: its project and the caller's membership (`_run` warms
        them; the run itself is read on its own)."""
        scoped = ScopedId.parse(run_id)
        return project_reads(principal, scoped.project_id) if scoped else []

    # ---- HTTP -----------------------------------------------------------------------------------

    def start(
        self, principal: Principal, workflow_id: str, *, trigger: str = "manual"
    ) -> WorkflowRun:
        """`POST /workflows/{id}/run`: a new run of the workflow as it is now. An automation
        rule starts runs the same way, as its author, with the trigger `rule`."""
        workflow = self._workflow(principal, workflow_id, RUN_ROLE)
        run = self._runs.create(
            start_run(workflow, trigger=trigger, created_by=principal.user_id, at=self._clock.now())
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
        release_slot(self._runs, run)
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
        if self._prefetch is not None:
            self._prefetch.warm(self.reads_for_workflow(principal, workflow_id))
        workflow = self._workflows.get(workflow_id) if project_of(workflow_id) else None
        if workflow is None:
            raise NotFound("workflow not found")
        try:
            self._access.require(principal.user_id, workflow.project_id, role)
        except NotFound:
            raise NotFound("workflow not found") from None
        return workflow

    def _run(self, principal: Principal, run_id: str, role: ProjectRole) -> WorkflowRun:
        project_id = project_of(run_id)
        if self._prefetch is not None:
            self._prefetch.warm(self.reads_for_run(principal, run_id))
        run = self._runs.get(run_id) if project_id else None
        if run is None or run.project_id != project_id:
            raise NotFound("workflow run not found")
        try:
            self._access.require(principal.user_id, run.project_id, role)
        except NotFound:
            raise NotFound("workflow run not found") from None
        return run


def release_slot(runs: WorkflowRunRepository, run: WorkflowRun) -> None:
    """After a scheduled run finished: free its workflow's active slot if it holds it."""
    if run.trigger == Trigger.SCHEDULE.value and run.status.finished:
        runs.release_slot(run.workflow_id, run.id)
