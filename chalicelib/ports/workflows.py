"""Workflows and their runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

# The domain's types are for annotations only (see the package's docstring).
if TYPE_CHECKING:
    from chalicelib.domain.activity import Record
    from chalicelib.domain.executions import Execution
    from chalicelib.domain.model import Page, PageRequest
    from chalicelib.domain.workflow_runs import WorkflowRun
    from chalicelib.domain.workflows import Workflow


class WorkflowRepository(Protocol):
    """Workflows, one item each; every write is conditional (new id, or the version read)."""

    def get(self, workflow_id: str) -> Workflow | None: ...

    def create(self, workflow: Workflow) -> Workflow:
        """Write a new workflow. `NotFound` if its project is gone (checked in the same write)."""
        ...

    def update(self, before: Workflow, after: Workflow) -> Workflow:
        """Write the changed fields of `after` if the workflow is still at `before.version`;
        returns `after` with version + 1. `StaleVersion` on a lost race (or if it is gone),
        `NotFound` if its project is gone."""
        ...

    def delete(self, workflow: Workflow) -> None:
        """Delete it if it is still at `workflow.version`; `StaleVersion` otherwise."""
        ...

    def find(self, project_id: str, page: PageRequest) -> Page[Workflow]:
        """One page of a project's workflows, newest first."""
        ...

    def advance_next_run(
        self, workflow_id: str, fired_at: datetime, next_run_at: datetime | None
    ) -> bool:
        """After a firing at `fired_at`: set the workflow's `next_run_at` if it is still at or
        before `fired_at`, to the second (an edit meanwhile computed a newer one). A derived
        field: no new version. True if it was written."""
        ...


class WorkflowRunRepository(Protocol):
    """Runs of workflows, one item each (its steps inside); every write is conditional on the
    version read. A run's step executions live in the executions table."""

    def create(self, run: WorkflowRun) -> WorkflowRun:
        """Write a new run (condition: new id)."""
        ...

    def create_for_firing(
        self, firing_key: str, run: WorkflowRun, *, hold_slot: bool = False
    ) -> tuple[WorkflowRun, bool]:
        """Claim the firing (and, with `hold_slot`, the workflow's active slot) and write `run`
        in one transaction: `(run, True)`.

        If the firing is claimed already, nothing is written and the answer is the run the
        claim names: `(existing, False)`. If only the slot is held, nothing is written and
        `SlotTaken` is raised."""
        ...

    def slot_owner(self, workflow_id: str) -> str | None:
        """The id of the run holding the workflow's active slot, or None (a consistent read)."""
        ...

    def release_slot(self, workflow_id: str, run_id: str) -> bool:
        """Free the workflow's active slot if `run_id` holds it; True if it did."""
        ...

    def get(self, run_id: str) -> WorkflowRun | None:
        """A consistent read (a run's plan reads what the previous round wrote)."""
        ...

    def find_for_workflow(self, workflow_id: str, page: PageRequest) -> Page[WorkflowRun]:
        """One page of a workflow's runs, newest first."""
        ...

    def advance(
        self,
        before: WorkflowRun,
        after: WorkflowRun,
        executions: Sequence[Execution] = (),
        records: Sequence[Record] = (),
    ) -> WorkflowRun:
        """In one transaction: `after` if the run is still at `before.version` (returned with
        version + 1), the new step `executions` (condition: new) and `records`. `StaleVersion`
        on a lost race; at most 100 items in all."""
        ...
