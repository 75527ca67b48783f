"""Executions: the scheduler's firings (`fire`), manual runs, and reading them back.

`fire` is the entry of every EventBridge Scheduler delivery. Delivery is at least once, so a
firing `(task, scheduled time)` is claimed by writing its execution, whose id the firing
determines (`firing_execution_id`): a second delivery writes nothing and gets the execution of
the first. The execution is written
`running` and leased to this delivery, which then makes the first attempt itself
(`RunService.first_attempt`): the common case ends there, with no state machine. A repeated
delivery leaves a leased execution alone (its request may still be in flight) and finishes one
whose lease expired (`RunService.take_over`).

What a firing does when its task changed meanwhile:
- the task (or its project) is gone, or the firing names another project: nothing is recorded
  (there is no task to hang an execution on; the schedule itself is removed with the task);
- the task is still there but has no schedule any more, or its schedule is paused: a `skipped`
  execution is recorded (idempotently, like any firing), so the task's history shows the
  delivery and why it did nothing.

The schedule's `overlap` policy decides what a firing does while an earlier scheduled run of
the task has not finished: `allow` runs it anyway; `skip` records it `skipped`; `buffer_one`
keeps it `queued` until the running one finishes (one at most: a further firing is skipped).
The running and the waiting execution each hold a slot of the task (a conditional put, see
`Slot`), released when they finish; the waiting one is then leased and dispatched. Manual runs
(`POST /tasks/{id}/run`) take no slot: they are written `queued` and leased, and dispatched to
an asynchronous invocation of `fire` (`AttemptDispatcher`), so the 202 does not wait for the
webhook; if the dispatch is lost, the sweep dispatches it again once the lease expired.

A firing does not write the task: its `next_run_at` is shown as the next firing still to come
(`schedules.upcoming`), since moving it on would cost more than the rest of the firing (the
task's every index holds it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from chalicelib.domain.activity import EventType, HistoryEvent
from chalicelib.domain.errors import NotFound, StaleVersion, Unavailable
from chalicelib.domain.executions import (
    ATTEMPT_LEASE,
    Execution,
    ExecutionStatus,
    Slot,
    SlotTaken,
    Trigger,
    firing_execution_id,
    new_execution_id,
)
from chalicelib.domain.ids import project_of
from chalicelib.domain.model import Page, PageRequest, new_id, utc
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import ProjectRole
from chalicelib.domain.schedules import Overlap, Schedule
from chalicelib.domain.tasks import Task
from chalicelib.ports import (
    AttemptDispatcher,
    Clock,
    ExecutionRepository,
    Prefetcher,
    PrefetchKey,
    ProjectRepository,
    TaskRepository,
    reads,
)
from chalicelib.services.access import ProjectAccess, TaskReach, scoped_reads

RUN_ROLE = ProjectRole.MEMBER  # POST /tasks/{id}/run
READ_ROLE = ProjectRole.VIEWER
SCHEDULER_ACTOR = "scheduler"  # the actor of history events of scheduled firings


@dataclass(frozen=True)
class Delivery:
    """One delivery of a firing by the scheduler (the target input of the schedule)."""

    project_id: str | None = None
    attempt: int = 1
    delivery_id: str | None = None  # the scheduler's id of this delivery, for the logs


@dataclass(frozen=True)
class FireOutcome:
    """What a delivery did: the firing's execution (None if nothing was recorded), whether
    this delivery created it (False for a repeated delivery), and for a repeated one what it
    did with the execution (`RunService.take_over`'s action)."""

    execution: Execution | None
    created: bool
    reason: str = ""
    taken: str = ""


class Attempts(Protocol):
    """What firings need of `RunService`: the first attempt, and taking an execution over."""

    def first_attempt(self, execution: Execution, task: Task) -> Execution: ...

    def take_over(
        self,
        execution: Execution,
        task: Task | None = None,
        *,
        dispatched: bool = False,
        inline: bool = True,
    ) -> _TakeOver: ...


class _TakeOver(Protocol):
    @property
    def action(self) -> str: ...

    @property
    def execution(self) -> Execution | None: ...


def skip_reason(schedule: object, subject: str = "task") -> str | None:
    """Why a firing of a task (or workflow) with this schedule does nothing, or None if it
    runs."""
    if schedule is None:
        return f"the {subject} is no longer scheduled"
    paused = (
        schedule.get("paused")
        if isinstance(schedule, Mapping)
        else getattr(schedule, "paused", False)
    )
    return "the schedule is paused" if paused else None


def _skipped(execution: Execution, reason: str, at: datetime) -> Execution:
    return replace(
        execution,
        status=ExecutionStatus.SKIPPED,
        started_at=None,
        finished_at=at,
        error=reason,
        lease_expires_at=None,
    )


class OverlapSlots:
    """The overlap policy's bookkeeping around the repository's slots (see `Slot`)."""

    def __init__(
        self,
        executions: ExecutionRepository,
        dispatcher: AttemptDispatcher | None,
        clock: Clock,
    ) -> None:
        self._executions = executions
        self._dispatcher = dispatcher
        self._clock = clock

    def is_buffered(self, execution: Execution) -> bool:
        return self._executions.slot_owner(execution.task_id, Slot.BUFFERED) == execution.id

    def release(self, execution: Execution, schedule: object = None) -> None:
        """After a scheduled execution finished: free its task's active slot if it held it,
        and start the buffered execution, if one waits (under `skip` too: one left from a
        policy since changed). With the task's `schedule` at hand, a policy that takes no slot
        (`allow`) writes nothing."""
        if execution.trigger is not Trigger.SCHEDULE:
            return
        overlap = schedule.overlap if isinstance(schedule, Schedule) else None
        if overlap is Overlap.ALLOW:
            return
        if self._executions.release_slot(execution.task_id, execution.id):
            self._promote(execution.task_id)

    def clear_stale(self, task_id: str) -> bool:
        """Free the active slot if its holder finished without releasing it (it died between
        its last write and the release), or never came to be (its delivery died between the
        slot and the execution): True if the slot was freed."""
        held = self._executions.slot_holder(task_id, Slot.ACTIVE)
        if held is None:  # released meanwhile; a waiting execution still goes first
            return self._promote(task_id) is None
        holder_id, taken_at = held
        holder = self._executions.get(holder_id)
        if holder is not None and not holder.status.finished:
            return False
        if holder is None and taken_at > self._clock.now() - ATTEMPT_LEASE:
            # Its delivery may be writing the execution now (the slot is put first); one
            # that died is gone once a lease has passed.
            return False
        if not self._executions.release_slot(task_id, holder_id):
            return False
        # A waiting execution goes first: the firing at hand then finds the slot held.
        return self._promote(task_id) is None

    def _promote(self, task_id: str) -> str | None:
        waiting_id = self._executions.promote_buffered(task_id)
        if waiting_id is None:
            return None
        waiting = self._executions.get(waiting_id)
        if waiting is not None and waiting.status is ExecutionStatus.QUEUED and self._dispatcher:
            # Leased first, so the sweep dispatches it again if this dispatch is lost.
            lease = self._clock.now() + ATTEMPT_LEASE
            try:
                leased = self._executions.update(waiting, replace(waiting, lease_expires_at=lease))
            except StaleVersion:
                return waiting_id  # cancelled or started meanwhile
            self._dispatcher.dispatch(leased)
        return waiting_id


def _history(execution: Execution, actor_id: str, at: datetime) -> HistoryEvent:
    kind = EventType.EXECUTION_FINISHED if execution.status.finished else EventType.EXECUTION_QUEUED
    changes: dict[str, tuple[object, object]] = {
        "execution_id": (None, execution.id),
        "trigger": (None, execution.trigger.value),
        "status": (None, execution.status.value),
    }
    return HistoryEvent(new_id(), execution.task_id, kind, actor_id, at, changes)


class ExecutionService:
    def __init__(
        self,
        executions: ExecutionRepository,
        tasks: TaskRepository,
        projects: ProjectRepository,
        prefetcher: Prefetcher,
        clock: Clock,
        dispatcher: AttemptDispatcher | None = None,
        *,
        attempts: Attempts | None = None,
        slots: OverlapSlots | None = None,
    ) -> None:
        self._executions = executions
        self._tasks = tasks
        self._projects = projects
        self._reach = TaskReach(tasks, projects, prefetcher)
        self._access = ProjectAccess(projects)
        self._prefetch = prefetcher
        self._clock = clock
        # None (no fire function configured): manual runs stay `queued` until a sweep.
        self._dispatcher = dispatcher
        # None: firings are recorded but not attempted (tests of the claim alone).
        self._attempts = attempts
        self.slots = self._slots = slots or OverlapSlots(executions, dispatcher, clock)

    # ---- the scheduler's entry ------------------------------------------------------------------

    def fire(self, task_id: str, scheduled_time: datetime, delivery: Delivery) -> FireOutcome:
        project_id = project_of(task_id)
        if project_id is None or (delivery.project_id and delivery.project_id != project_id):
            return FireOutcome(None, False, "the firing names no task of its project")
        # The task and its project in one round trip.
        self._prefetch.warm([reads.task(task_id), reads.project(project_id)])
        task = self._tasks.get(task_id)
        if task is None or self._projects.get(project_id) is None:
            return FireOutcome(None, False, "the task is gone")
        now = self._clock.now()
        # Written running and leased to this delivery, which makes the first attempt itself.
        execution = Execution(
            id=firing_execution_id(task.project_id, task.id, scheduled_time),
            task_id=task.id,
            project_id=task.project_id,
            trigger=Trigger.SCHEDULE,
            status=ExecutionStatus.RUNNING,
            created_at=now,
            scheduled_for=utc(scheduled_time),
            started_at=now,
            lease_expires_at=now + ATTEMPT_LEASE,
        )
        reason = skip_reason(task.schedule)
        if reason:
            outcome = self._record(_skipped(execution, reason, now))
        elif not isinstance(task.schedule, Schedule) or task.schedule.overlap is Overlap.ALLOW:
            outcome = self._record(execution)
        else:
            outcome = self._record_with_slot(execution, task.schedule.overlap, now)
        return self._attempt(outcome, task)

    def _attempt(self, outcome: FireOutcome, task: Task) -> FireOutcome:
        """The first attempt of a firing this delivery created and holds; for a repeated
        delivery, whatever the stored execution still needs (`RunService.take_over`)."""
        stored = outcome.execution
        if self._attempts is None or stored is None:
            return outcome
        if outcome.created:
            if stored.status is ExecutionStatus.RUNNING:  # not a buffered one: it waits
                return replace(outcome, execution=self._attempts.first_attempt(stored, task))
            return outcome
        taken = self._attempts.take_over(stored, task)
        return replace(outcome, execution=taken.execution or stored, taken=taken.action)

    def _record(
        self,
        execution: Execution,
        slot: Slot | None = None,
        overlap: Overlap | None = None,
    ) -> FireOutcome:
        """Claim the firing by writing its execution (a buffered one waits `queued`). Only
        `buffer_one` makes a firing wait behind a buffered one: under `skip` the claim does not
        check for one (a transaction's check is a write's price). A skipped firing is recorded
        with its `execution.finished` history event; one that runs gets it when it ends (no
        `execution.queued` event: it would cost a transaction at every firing)."""
        if slot is Slot.BUFFERED:
            execution = replace(
                execution, status=ExecutionStatus.QUEUED, started_at=None, lease_expires_at=None
            )
        records = []
        if execution.status.finished:
            records.append(_history(execution, SCHEDULER_ACTOR, execution.created_at))
        stored, created = self._executions.create_for_firing(
            execution, records, slot, waiting_first=overlap is not Overlap.SKIP
        )
        skipped = stored.status is ExecutionStatus.SKIPPED
        return FireOutcome(stored, created, (stored.error or "") if skipped else "")

    def start_dispatched(self, execution_id: str, task_id: str | None) -> FireOutcome:
        """The dispatch of a queued execution (`AttemptDispatcher`): its first attempt."""
        if task_id is not None and project_of(task_id) is not None:
            self._prefetch.warm([reads.execution(execution_id), reads.task(task_id)])
        execution = self._executions.get(execution_id)
        if execution is None or self._attempts is None:
            return FireOutcome(execution, False, "no such execution")
        taken = self._attempts.take_over(execution, dispatched=True)
        return FireOutcome(taken.execution or execution, False, taken=taken.action)

    def _record_with_slot(
        self, execution: Execution, overlap: Overlap, now: datetime
    ) -> FireOutcome:
        """Overlap `skip` and `buffer_one`: the firing runs if it gets the task's active slot;
        with `buffer_one` it may wait in the buffered slot instead; otherwise it is skipped."""
        try:
            return self._record(execution, Slot.ACTIVE, overlap)
        except SlotTaken:
            pass
        if self._slots.clear_stale(execution.task_id):
            try:
                return self._record(execution, Slot.ACTIVE, overlap)
            except SlotTaken:
                pass
        if overlap is Overlap.BUFFER_ONE:
            try:
                return self._record(execution, Slot.BUFFERED)
            except SlotTaken:
                reason = "a run is running and another one waits already"
        else:
            reason = "the previous run is still running"
        return self._record(_skipped(execution, reason, now))

    # ---- HTTP -----------------------------------------------------------------------------------

    # ---- first reads: what each use case reads before anything else ------------------------------
    # The route hands the same declaration to authentication, which fetches these items with the
    # caller's session; the use case warms it again: a no-op then, one round trip for any other
    # caller.

    # Running a task now, listing its executions: the task's (TaskReach.require warms them).
    reads_for_task = staticmethod(TaskReach.reads)

    @staticmethod
    def reads_for_get(principal: Principal, execution_id: str) -> list[PrefetchKey]:
        """Reading an execution: it, its project and the caller's membership."""
        return scoped_reads(principal, execution_id, reads.execution)

    def run_now(self, principal: Principal, task_id: str) -> Execution:
        """A manual run of the task's action, outside its schedule (member+)."""
        task, _ = self._reach.require(principal, task_id, RUN_ROLE)
        now = self._clock.now()
        execution = Execution(
            id=new_execution_id(task.project_id),
            task_id=task.id,
            project_id=task.project_id,
            trigger=Trigger.MANUAL,
            status=ExecutionStatus.QUEUED,
            created_at=now,
            lease_expires_at=now + ATTEMPT_LEASE,
        )
        stored = self._executions.create(execution, [_history(execution, principal.user_id, now)])
        if self._dispatcher is not None:
            # Accepted all the same if the dispatch fails: the lease expires and the sweep
            # dispatches it again (a 503 would invite a retry, and a second run).
            with contextlib.suppress(Unavailable):
                self._dispatcher.dispatch(stored)
        return stored

    def list_for_task(
        self, principal: Principal, task_id: str, page: PageRequest
    ) -> Page[Execution]:
        self._reach.require(principal, task_id, READ_ROLE)
        return self._executions.find_for_task(task_id, page)

    def get(self, principal: Principal, execution_id: str) -> Execution:
        project_id = project_of(execution_id)
        if project_id is None:
            raise NotFound("execution not found")
        self._prefetch.warm(self.reads_for_get(principal, execution_id))
        execution = self._executions.get(execution_id)
        if execution is None or execution.project_id != project_id:
            raise NotFound("execution not found")
        try:
            self._access.require(principal.user_id, project_id, READ_ROLE)
        except NotFound:
            raise NotFound("execution not found") from None
        return execution
