"""Executions of tasks and what runs them: the state machine, the first-attempt
dispatch, webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

# The domain's types are for annotations only (see the package's docstring).
if TYPE_CHECKING:
    from chalicelib.domain.activity import Record
    from chalicelib.domain.executions import Execution, Slot
    from chalicelib.domain.model import Page, PageRequest
    from chalicelib.domain.webhooks import WebhookRequest, WebhookResult
    from chalicelib.domain.workflow_runs import WorkflowRun


class WebhookClient(Protocol):
    def deliver(self, request: WebhookRequest) -> WebhookResult:
        """Send one request; never raises for network trouble (the result's `error` says)."""
        ...


class ExecutionRepository(Protocol):
    """Executions of tasks; a firing `(task, scheduled time)` yields at most one of them."""

    def create(self, execution: Execution, records: Sequence[Record] = ()) -> Execution:
        """Write a new execution (and its history event) in one transaction."""
        ...

    def create_for_firing(
        self,
        execution: Execution,
        records: Sequence[Record] = (),
        slot: Slot | None = None,
        *,
        waiting_first: bool = True,
    ) -> tuple[Execution, bool]:
        """Claim the firing `execution.id` names (`firing_execution_id`) by writing it, after
        taking `slot` of the task if given: `(execution, True)`.

        If the execution exists already (a repeated delivery), nothing new is written and the
        answer is the stored one: `(existing, False)`. If the slot is held by another execution
        (or, for the active slot with `waiting_first`, an execution waits in the buffered one),
        nothing is written and `SlotTaken` is raised. A slot taken without its execution (the
        writer died between the two) is the execution's still: a repeated delivery finds it
        its own; the others see a holder that does not exist (`OverlapSlots.clear_stale`).
        """
        ...

    def slot_owner(self, task_id: str, slot: Slot) -> str | None:
        """The id of the execution holding the task's `slot`, or None (a consistent read)."""
        ...

    def slot_holder(self, task_id: str, slot: Slot) -> tuple[str, datetime] | None:
        """The execution holding the task's `slot` and when it took it, or None."""
        ...

    def release_slot(self, task_id: str, execution_id: str) -> bool:
        """Free the task's active slot if `execution_id` holds it; True if it did."""
        ...

    def promote_buffered(self, task_id: str) -> str | None:
        """Move the buffered execution (if any) into the free active slot, in one transaction;
        its id, or None if nothing waits or the active slot is held."""
        ...

    def get(self, execution_id: str) -> Execution | None: ...

    def get_many(self, execution_ids: Sequence[str]) -> dict[str, Execution]:
        """The executions that exist among `execution_ids`, by id (consistent reads)."""
        ...

    def find_for_task(self, task_id: str, page: PageRequest) -> Page[Execution]:
        """One page of a task's executions, newest first."""
        ...

    def find_expired_leases(self, before: datetime, limit: int) -> list[Execution]:
        """Up to `limit` executions whose lease ended before `before` (their holder is gone)."""
        ...

    def update(
        self, before: Execution, after: Execution, records: Sequence[Record] = ()
    ) -> Execution:
        """Write `after` if the stored execution is still `before` (its version and status);
        returns it with version + 1. `StaleVersion` otherwise (a finished one never changes)."""
        ...


class ExecutionRunner(Protocol):
    """The run state machine: workflow runs, and the attempts of an execution that must wait."""

    def start(self, execution: Execution, delay_seconds: int = 0) -> None:
        """Hand an execution over to the state machine, which makes its next attempt
        (`attempts + 1`) after `delay_seconds`. Idempotent on `execution.run_name`: handing
        the same execution over twice runs it once."""
        ...

    def start_workflow_run(self, run: WorkflowRun) -> None:
        """Start running a workflow run; idempotent on the run's id."""
        ...

    def stop_workflow_run(self, run: WorkflowRun) -> None:
        """Stop a workflow run's state machine execution (gone or finished already: fine)."""
        ...


class AttemptDispatcher(Protocol):
    """Makes the first attempt of a queued execution soon, elsewhere: an asynchronous
    invocation of the `fire` function, so the caller (an HTTP request) need not wait for the
    webhook. Delivery is at least once; the receiver takes the execution's lease."""

    def dispatch(self, execution: Execution) -> None: ...
