"""Workflow runs: one run of a workflow's steps, and the rules that plan it.

A run copies the workflow's steps when it starts (editing the workflow changes the next run,
never one in flight). A step that has started has an execution (trigger `workflow`), whose
status, times and error are the step's; a step that never started ends `skipped` or
`cancelled`, recorded on the step itself.

`plan_round` is the whole orchestration policy, in plain Python: given the run and the
executions of its started steps (those not recorded final on the run yet), it says which steps
start now, which will never start, and whether the run is over. The run state machine calls it
once per round (`services/runs.py`, see `docs/workflows.md`).

Failure semantics (API.md):
- a step starts only after all its dependencies succeeded; independent steps run side by side,
  at most `max_concurrency` at once (the state machine's Map);
- `on_failure: stop`: after a failure no new step starts, and the unstarted ones end `skipped`;
- `on_failure: continue`: only the steps downstream of the failure end `skipped`;
- the run is `failed` if any step failed (or timed out), `cancelled` if it was cancelled, else
  `succeeded`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from chalicelib.domain.activity import Record
from chalicelib.domain.executions import Execution, ExecutionStatus
from chalicelib.domain.ids import ScopedId
from chalicelib.domain.workflows import OnFailure, Step, Workflow

# A round starts at most this many steps: their executions and the run are one transaction
# (DynamoDB allows 100 items); the rest start in the next round.
STEPS_PER_ROUND = 90

FAILED = frozenset({ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT})
# A dependency in one of these states means its dependents can never start.
BLOCKING = FAILED | {ExecutionStatus.SKIPPED, ExecutionStatus.CANCELLED}


@dataclass(frozen=True)
class RunStep:
    """One step of a run: the workflow's step, and what became of it."""

    key: str
    task_id: str
    depends_on: tuple[str, ...] = ()
    execution_id: str | None = None  # once started
    # A step never started: `skipped` or `cancelled`. A started one: its execution's status
    # as the last round saw it (lists of runs show it without reading the executions).
    outcome: ExecutionStatus | None = None


@dataclass(frozen=True)
class WorkflowRun:
    id: str
    workflow_id: str
    project_id: str
    status: ExecutionStatus
    trigger: str  # "manual" | "schedule"
    created_by: str
    created_at: datetime
    steps: tuple[RunStep, ...]
    max_concurrency: int
    on_failure: OnFailure
    scheduled_for: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    version: int = 1

    def with_changes(self, **changes: Any) -> WorkflowRun:
        return replace(self, **changes)

    @property
    def execution_ids(self) -> list[str]:
        return [step.execution_id for step in self.steps if step.execution_id]


def new_run_id(project_id: str) -> str:
    return str(ScopedId.new(project_id))


def start_run(
    workflow: Workflow,
    *,
    trigger: str,
    created_by: str,
    at: datetime,
    scheduled_for: datetime | None = None,
) -> WorkflowRun:
    """A new, queued run of `workflow` with a copy of its steps."""
    return WorkflowRun(
        id=new_run_id(workflow.project_id),
        workflow_id=workflow.id,
        project_id=workflow.project_id,
        status=ExecutionStatus.QUEUED,
        trigger=trigger,
        created_by=created_by,
        created_at=at,
        steps=tuple(_copy(step) for step in workflow.steps),
        max_concurrency=workflow.max_concurrency,
        on_failure=workflow.on_failure,
        scheduled_for=scheduled_for,
    )


def _copy(step: Step) -> RunStep:
    return RunStep(step.key, step.task_id, tuple(step.depends_on))


def unsettled_execution_ids(run: WorkflowRun) -> list[str]:
    """The executions a round must read: started steps whose recorded outcome is not final.
    (A finished execution never changes, so a final outcome on the run is as good as it.)"""
    return [
        step.execution_id
        for step in run.steps
        if step.execution_id and not (step.outcome and step.outcome.finished)
    ]


def step_status(step: RunStep, executions: Mapping[str, Execution]) -> ExecutionStatus:
    """A step's status: its execution's (read, or final as recorded on the run), its
    recorded outcome if it never started, or `queued` (not started)."""
    if step.execution_id is not None:
        execution = executions.get(step.execution_id)
        if execution is not None:
            return execution.status
        if step.outcome is not None and step.outcome.finished:
            return step.outcome
        # An execution that cannot be read (deleted with its task) counts as cancelled.
        return ExecutionStatus.CANCELLED
    return step.outcome or ExecutionStatus.QUEUED


@dataclass(frozen=True)
class Round:
    """What one round decides."""

    start: tuple[str, ...] = ()  # step keys to start now
    ends: Mapping[str, ExecutionStatus] = field(default_factory=dict)  # never-started steps
    status: ExecutionStatus = ExecutionStatus.RUNNING  # the run's status after this round

    @property
    def done(self) -> bool:
        return self.status.finished


def plan_round(run: WorkflowRun, executions: Mapping[str, Execution]) -> Round:
    """The next round of `run`, given the executions of its unsettled steps."""
    status = {step.key: step_status(step, executions) for step in run.steps}
    not_started = [s for s in run.steps if s.execution_id is None and s.outcome is None]
    # (`outcome` of a started step is only a copy: `step_status` reads its execution.)
    ends: dict[str, ExecutionStatus] = {}
    if run.status is ExecutionStatus.CANCELLED:
        ends = {s.key: ExecutionStatus.CANCELLED for s in not_started}
    elif run.on_failure is OnFailure.STOP and any(v in FAILED for v in status.values()):
        ends = {s.key: ExecutionStatus.SKIPPED for s in not_started}
    else:
        # Downstream of a failure (or of a step that can never run): skipped, transitively,
        # walking the steps in dependency order.
        changed = True
        while changed:
            changed = False
            for step in not_started:
                if step.key in ends:
                    continue
                if any(status[d] in BLOCKING for d in step.depends_on):
                    ends[step.key] = status[step.key] = ExecutionStatus.SKIPPED
                    changed = True
    status.update(ends)
    ready = tuple(
        s.key
        for s in not_started
        if s.key not in ends and all(status[d] is ExecutionStatus.SUCCEEDED for d in s.depends_on)
    )[:STEPS_PER_ROUND]
    running = any(s.execution_id and not status[s.key].finished for s in run.steps)
    if ready or running:
        return Round(ready, ends, ExecutionStatus.RUNNING)
    # Nothing runs and nothing can start: the run is over. (An unstarted step left here would
    # wait on a dependency that never succeeds; the rules above skip those, this is a guard.)
    leftover = {k: ExecutionStatus.SKIPPED for k, v in status.items() if not v.finished}
    ends.update(leftover)
    status.update(leftover)
    return Round((), ends, _final_status(run, status))


def _final_status(run: WorkflowRun, status: Mapping[str, ExecutionStatus]) -> ExecutionStatus:
    if run.status is ExecutionStatus.CANCELLED:
        return ExecutionStatus.CANCELLED
    if any(value in FAILED for value in status.values()):
        return ExecutionStatus.FAILED
    return ExecutionStatus.SUCCEEDED


# A round's writes (the run, its new executions, its records) are one transaction, and
# DynamoDB takes at most this many items in one.
MAX_ROUND_ITEMS = 100


def check_advance(
    before: WorkflowRun,
    after: WorkflowRun,
    executions: Sequence[Execution],
    records: Sequence[Record],
) -> None:
    """What a repository's `advance` refuses before writing anything (a caller's bug, not a
    race)."""
    if after.id != before.id:
        raise ValueError(f"advance of run {before.id} given run {after.id}")
    items = 1 + len(executions) + len(records)
    if items > MAX_ROUND_ITEMS:
        raise ValueError(
            f"a round writes {items} items; a transaction takes at most {MAX_ROUND_ITEMS}"
        )
