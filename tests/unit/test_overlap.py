"""The schedule's overlap policy (skip / allow / buffer_one) through `ExecutionService.fire`,
with runs finished by `RunService` on the same repositories, and `next_run_at` after a firing.

`fire` here records the firing only (no `attempts`), so a run stays in flight until the test
finishes it: `World.started` lists, in order, the executions that got their turn (written
running and leased by a firing, or dispatched when a slot was freed)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.executions import (
    ATTEMPT_LEASE,
    Execution,
    ExecutionStatus,
    Slot,
    Trigger,
)
from chalicelib.domain.model import new_id
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.schedules import Overlap, RateUnit, Schedule, ScheduleKind, upcoming
from chalicelib.domain.tasks import Task, new_task_id
from chalicelib.domain.webhooks import RetryPolicy, WebhookAction, WebhookRequest, WebhookResult
from chalicelib.services.executions import Delivery, ExecutionService, FireOutcome
from chalicelib.services.runs import TAKEN_RAN, RunService
from tests.fakes import (
    FakeClock,
    InMemoryExecutionRepository,
    InMemoryProjectRepository,
    InMemoryTaskRepository,
    NoPrefetch,
)

AT = datetime(2026, 11, 21, 12, 5, tzinfo=UTC)
STILL_RUNNING = "the previous run is still running"
BOTH_TAKEN = "a run is running and another one waits already"


def every_five_minutes(**fields: Any) -> Schedule:
    return Schedule(
        kind=ScheduleKind.RATE, timezone="UTC", every=5, unit=RateUnit.MINUTES, **fields
    )


def minutes(n: int) -> datetime:
    return AT + timedelta(minutes=n)


class Starts:
    """The dispatcher port (and the state machine's): notes what it was given."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.handed_over: list[str] = []

    def dispatch(self, execution: Execution) -> None:
        self.started.append(execution.id)

    def start(self, execution: Execution, delay_seconds: int = 0) -> None:
        self.handed_over.append(execution.id)


class AlwaysOk:
    def __init__(self) -> None:
        self.requests: list[WebhookRequest] = []

    def deliver(self, request: WebhookRequest) -> WebhookResult:
        self.requests.append(request)
        return WebhookResult(200, 5, "ok")


@dataclass
class World:
    clock: FakeClock
    tasks: InMemoryTaskRepository
    executions: InMemoryExecutionRepository
    starts: Starts
    service: ExecutionService
    run: RunService
    webhooks: AlwaysOk
    project: Project
    owner: Principal

    def task(self, overlap: Overlap | None = None, **fields: Any) -> Task:
        if "schedule" not in fields:
            fields["schedule"] = (
                every_five_minutes() if overlap is None else every_five_minutes(overlap=overlap)
            )
        fields.setdefault(
            "action", WebhookAction.model_validate({"type": "webhook", "url": "https://x.test/"})
        )
        fields.setdefault("retry", RetryPolicy(max_attempts=1))
        now = self.clock.now()
        task = Task(
            id=new_task_id(self.project.id),
            project_id=self.project.id,
            title="Ping",
            created_by=self.owner.user_id,
            created_at=now,
            updated_at=now,
            **fields,
        )
        self.tasks.tasks[task.id] = task
        return task

    @property
    def started(self) -> list[str]:
        return self.starts.started

    def fire(self, task: Task, at: datetime, attempt: int = 1) -> FireOutcome:
        outcome = self.service.fire(
            task.id, at, Delivery(project_id=task.project_id, attempt=attempt)
        )
        execution = outcome.execution
        if outcome.created and execution and execution.status is ExecutionStatus.RUNNING:
            self.started.append(execution.id)  # leased to this delivery: its turn came
        return outcome

    def fired(self, task: Task, at: datetime) -> Execution:
        execution = self.fire(task, at).execution
        assert execution is not None
        return execution

    def stored(self, execution: Execution) -> Execution:
        found = self.executions.get(execution.id)
        assert found is not None
        return found

    def finish(self, execution: Execution) -> Execution:
        """Its first attempt (a success), as the delivery that holds it (or the dispatch of a
        queued one) makes it."""
        stored = self.stored(execution)
        if stored.status is ExecutionStatus.QUEUED:
            assert self.run.take_over(stored, dispatched=True).action == TAKEN_RAN
        else:
            self.run.first_attempt(stored, self.tasks.tasks[stored.task_id])
        return self.stored(execution)

    def slot(self, task: Task, slot: Slot) -> str | None:
        return self.executions.slot_owner(task.id, slot)


@pytest.fixture
def world() -> World:
    clock = FakeClock()
    projects = InMemoryProjectRepository()
    tasks = InMemoryTaskRepository(projects)
    executions = InMemoryExecutionRepository(tasks.records)
    starts = Starts()
    service = ExecutionService(executions, tasks, projects, NoPrefetch(), clock, starts)
    webhooks = AlwaysOk()
    run = RunService(
        executions,
        tasks,
        webhooks,
        lambda _: "secret",
        clock,
        service.slots,
        runner=starts,
        dispatcher=starts,
    )
    now = clock.now()
    owner = Principal(new_id(), new_id())
    project = Project(new_id(), "Team", "", owner.user_id, now, now)
    projects.create(project, Membership(project.id, owner.user_id, ProjectRole.OWNER, now))
    return World(clock, tasks, executions, starts, service, run, webhooks, project, owner)


class TestSkip:
    def test_skip_is_the_default(self) -> None:
        assert every_five_minutes().overlap is Overlap.SKIP

    @pytest.mark.parametrize("first_running", [False, True])
    def test_a_firing_while_the_previous_run_is_unfinished_is_skipped(
        self, world: World, first_running: bool
    ) -> None:
        task = world.task()
        first = world.fired(task, AT)
        assert world.started == [first.id]
        if first_running:
            world.executions.update(
                first, first.moved_to(ExecutionStatus.RUNNING, world.clock.now())
            )

        second = world.fire(task, minutes(5))

        assert second.created
        assert second.execution is not None
        assert second.execution.status is ExecutionStatus.SKIPPED
        assert second.execution.error == STILL_RUNNING
        assert second.reason == STILL_RUNNING
        assert world.started == [first.id]
        assert world.slot(task, Slot.ACTIVE) == first.id
        assert world.slot(task, Slot.BUFFERED) is None
        # A repeated delivery of the skipped firing stays skipped.
        again = world.fire(task, minutes(5), attempt=2)
        assert (again.created, again.execution) == (False, second.execution)

    def test_after_the_run_finished_the_next_firing_runs(self, world: World) -> None:
        task = world.task()
        first = world.fired(task, AT)
        assert world.finish(first).status is ExecutionStatus.SUCCEEDED
        assert world.slot(task, Slot.ACTIVE) is None
        second = world.fired(task, minutes(5))
        assert second.status is ExecutionStatus.RUNNING
        assert world.started == [first.id, second.id]
        assert world.slot(task, Slot.ACTIVE) == second.id


class TestAllow:
    def test_overlapping_firings_all_run(self, world: World) -> None:
        task = world.task(Overlap.ALLOW)
        first = world.fired(task, AT)
        second = world.fired(task, minutes(5))
        assert first.id != second.id
        assert (first.status, second.status) == (ExecutionStatus.RUNNING, ExecutionStatus.RUNNING)
        assert world.started == [first.id, second.id]
        assert world.executions.slots == {}
        world.finish(second)
        world.finish(first)
        assert world.started == [first.id, second.id]


class TestBufferOne:
    def test_one_firing_waits_and_a_further_one_is_skipped(self, world: World) -> None:
        task = world.task(Overlap.BUFFER_ONE)
        first = world.fired(task, AT)
        second = world.fired(task, minutes(5))
        third = world.fire(task, minutes(10))

        assert second.status is ExecutionStatus.QUEUED
        assert world.started == [first.id]  # the second waits
        assert world.slot(task, Slot.ACTIVE) == first.id
        assert world.slot(task, Slot.BUFFERED) == second.id
        assert third.execution is not None
        assert third.execution.status is ExecutionStatus.SKIPPED
        assert third.execution.error == BOTH_TAKEN

    def test_the_waiting_run_starts_when_the_running_one_finishes(self, world: World) -> None:
        task = world.task(Overlap.BUFFER_ONE)
        first = world.fired(task, AT)
        second = world.fired(task, minutes(5))

        world.finish(first)

        assert world.started == [first.id, second.id]
        assert world.slot(task, Slot.ACTIVE) == second.id
        assert world.slot(task, Slot.BUFFERED) is None
        assert world.stored(second).status is ExecutionStatus.QUEUED  # started, not yet run

        # While the promoted one runs, a new firing waits in its turn ...
        third = world.fired(task, minutes(10))
        assert third.status is ExecutionStatus.QUEUED
        assert world.slot(task, Slot.BUFFERED) == third.id
        assert world.started == [first.id, second.id]
        # ... and starts when it finishes.
        assert world.finish(second).status is ExecutionStatus.SUCCEEDED
        assert world.started == [first.id, second.id, third.id]
        world.finish(third)
        assert world.executions.slots == {}

        # With nothing running or waiting, a new firing gets the slot and starts at once.
        fourth = world.fired(task, minutes(15))
        assert world.started[-1] == fourth.id
        assert world.slot(task, Slot.ACTIVE) == fourth.id
        assert world.slot(task, Slot.BUFFERED) is None

    def test_a_failed_run_frees_the_slot_too(self, world: World) -> None:
        task = world.task(Overlap.BUFFER_ONE)
        first = world.fired(task, AT)
        second = world.fired(task, minutes(5))
        world.run.abandon(first.id, 1, "States.Timeout")
        assert world.stored(first).status.finished
        assert world.started == [first.id, second.id]
        assert world.slot(task, Slot.ACTIVE) == second.id

    def test_a_repeated_delivery_of_the_waiting_firing_does_not_start_it(
        self, world: World
    ) -> None:
        task = world.task(Overlap.BUFFER_ONE)
        first = world.fired(task, AT)
        second = world.fired(task, minutes(5))
        for attempt in (2, 3):
            again = world.fire(task, minutes(5), attempt=attempt)
            assert (again.created, again.execution) == (False, second)
        assert world.started == [first.id]
        assert len(world.executions.executions) == 2
        # Once promoted, a repeated delivery may ask again: the runner starts it once.
        world.finish(first)
        world.fire(task, minutes(5), attempt=4)
        assert world.started == [first.id, second.id]


class TestPolicyChanges:
    def test_a_firing_left_waiting_by_buffer_one_runs_after_the_next_skip_run(
        self, world: World
    ) -> None:
        task = world.task(Overlap.BUFFER_ONE)
        first = world.fired(task, AT)
        waiting = world.fired(task, minutes(5))
        assert waiting.status is ExecutionStatus.QUEUED
        # The policy becomes skip while one waits; the running one ends without promoting it
        # (it died after releasing its slot).
        world.tasks.tasks[task.id] = replace(
            world.tasks.tasks[task.id], schedule=every_five_minutes(overlap=Overlap.SKIP)
        )
        world.executions.executions[first.id] = replace(
            first, status=ExecutionStatus.SUCCEEDED, finished_at=AT
        )
        assert world.executions.release_slot(task.id, first.id)

        third = world.fired(task, minutes(10))  # skip does not wait behind a buffered one

        assert third.status is ExecutionStatus.RUNNING
        world.finish(third)  # ... and its end lets the one left waiting go
        assert world.started[-1] == waiting.id
        assert world.slot(task, Slot.ACTIVE) == waiting.id


class TestStaleSlots:
    def stale(self, world: World, task: Task, status: ExecutionStatus) -> Execution:
        """A scheduled execution that finished but died before releasing its slot."""
        holder = world.fired(task, minutes(-5))
        world.executions.executions[holder.id] = replace(
            holder, status=status, finished_at=world.clock.now()
        )
        assert world.slot(task, Slot.ACTIVE) == holder.id
        world.started.clear()
        return holder

    @pytest.mark.parametrize("overlap", [Overlap.SKIP, Overlap.BUFFER_ONE])
    def test_a_slot_held_by_a_finished_execution_is_cleared(
        self, world: World, overlap: Overlap
    ) -> None:
        task = world.task(overlap)
        self.stale(world, task, ExecutionStatus.FAILED)

        outcome = world.fire(task, AT)

        assert outcome.execution is not None
        assert outcome.execution.status is ExecutionStatus.RUNNING
        assert world.started == [outcome.execution.id]
        assert world.slot(task, Slot.ACTIVE) == outcome.execution.id

    def test_a_slot_written_directly_for_a_finished_execution_is_cleared(
        self, world: World
    ) -> None:
        task = world.task()
        gone = Execution(
            new_id() + world.project.id,
            task.id,
            task.project_id,
            Trigger.SCHEDULE,
            ExecutionStatus.SUCCEEDED,
            AT,
            finished_at=AT,
        )
        world.executions.executions[gone.id] = gone
        world.executions.slots[(task.id, Slot.ACTIVE)] = gone.id
        outcome = world.fire(task, AT)
        assert outcome.execution is not None
        assert outcome.execution.status is ExecutionStatus.RUNNING
        assert world.started == [outcome.execution.id]

    def test_a_slot_held_by_a_missing_execution_is_cleared(self, world: World) -> None:
        task = world.task()
        world.executions.slots[(task.id, Slot.ACTIVE)] = new_id() + world.project.id
        world.executions.slot_times[(task.id, Slot.ACTIVE)] = world.clock.now() - ATTEMPT_LEASE
        outcome = world.fire(task, AT)
        assert outcome.execution is not None
        assert world.started == [outcome.execution.id]

    def test_a_slot_taken_a_moment_ago_waits_for_its_execution(self, world: World) -> None:
        """The slot is put before the execution: another firing meanwhile sees a holder that
        does not exist yet, and must not take its place (until a lease has passed)."""
        task = world.task()
        coming = new_id() + world.project.id
        world.executions.slots[(task.id, Slot.ACTIVE)] = coming
        world.executions.slot_times[(task.id, Slot.ACTIVE)] = world.clock.now()
        outcome = world.fire(task, AT)
        assert outcome.execution is not None
        assert outcome.execution.status is ExecutionStatus.SKIPPED
        assert world.slot(task, Slot.ACTIVE) == coming

    def test_a_slot_held_by_an_unfinished_execution_is_not_stale(self, world: World) -> None:
        task = world.task()
        self.stale(world, task, ExecutionStatus.RUNNING)
        outcome = world.fire(task, AT)
        assert outcome.execution is not None
        assert outcome.execution.status is ExecutionStatus.SKIPPED
        assert world.started == []

    def test_a_waiting_firing_goes_before_the_one_at_hand(self, world: World) -> None:
        task = world.task(Overlap.BUFFER_ONE)
        holder = world.fired(task, minutes(-10))
        waiting = world.fired(task, minutes(-5))
        world.executions.executions[holder.id] = replace(
            holder, status=ExecutionStatus.SUCCEEDED, finished_at=AT
        )
        world.started.clear()

        outcome = world.fire(task, AT)

        assert world.started == [waiting.id]
        assert world.slot(task, Slot.ACTIVE) == waiting.id
        assert outcome.execution is not None
        assert world.slot(task, Slot.BUFFERED) == outcome.execution.id
        assert outcome.execution.status is ExecutionStatus.QUEUED

    def test_a_waiting_firing_left_behind_by_a_lost_promotion_goes_first(
        self, world: World
    ) -> None:
        task = world.task(Overlap.BUFFER_ONE)
        holder = world.fired(task, minutes(-10))
        waiting = world.fired(task, minutes(-5))
        # The holder finished and released its slot, then died before moving the waiting up.
        world.executions.executions[holder.id] = replace(
            holder, status=ExecutionStatus.SUCCEEDED, finished_at=AT
        )
        assert world.executions.release_slot(task.id, holder.id)
        world.started.clear()

        outcome = world.fire(task, AT)

        assert world.started == [waiting.id]
        assert world.slot(task, Slot.ACTIVE) == waiting.id
        assert outcome.execution is not None
        assert world.slot(task, Slot.BUFFERED) == outcome.execution.id


class TestManualRuns:
    def test_a_manual_run_takes_no_slot_and_is_never_skipped(self, world: World) -> None:
        task = world.task()
        scheduled = world.fired(task, AT)
        manual = world.service.run_now(world.owner, task.id)
        assert manual.trigger is Trigger.MANUAL
        assert world.started == [scheduled.id, manual.id]
        assert world.slot(task, Slot.ACTIVE) == scheduled.id

    def test_a_manual_run_does_not_block_a_firing(self, world: World) -> None:
        task = world.task()
        manual = world.service.run_now(world.owner, task.id)
        scheduled = world.fired(task, AT)
        assert scheduled.status is ExecutionStatus.RUNNING
        assert world.started == [manual.id, scheduled.id]
        assert world.slot(task, Slot.ACTIVE) == scheduled.id

    def test_a_finished_manual_run_releases_nothing(self, world: World) -> None:
        task = world.task(Overlap.BUFFER_ONE)
        first = world.fired(task, AT)
        second = world.fired(task, minutes(5))
        manual = world.service.run_now(world.owner, task.id)
        world.finish(manual)
        assert world.slot(task, Slot.ACTIVE) == first.id
        assert world.slot(task, Slot.BUFFERED) == second.id
        assert world.started == [first.id, manual.id]


class TestNextRunAt:
    """A firing does not write its task; `next_run_at` is shown as the next firing still to
    come (`schedules.upcoming`)."""

    def test_a_firing_writes_nothing_to_its_task(self, world: World) -> None:
        task = world.task(next_run_at=AT)
        world.fire(task, AT)
        world.fire(task, minutes(5))
        assert world.tasks.get(task.id) == task

    def test_the_stored_value_is_shown_while_it_lies_ahead(self) -> None:
        schedule = every_five_minutes(origin=AT)
        assert upcoming(schedule, minutes(5), AT) == minutes(5)

    def test_once_passed_the_next_firing_after_now_is_shown(self) -> None:
        schedule = every_five_minutes(origin=AT)
        assert upcoming(schedule, AT, AT) == minutes(5)  # the firing at AT is the past
        late = minutes(12) + timedelta(seconds=30)
        assert upcoming(schedule, AT, late) == minutes(15)
        assert upcoming(schedule, minutes(5), late) == minutes(15)

    def test_none_stays_none(self) -> None:
        schedule = every_five_minutes(origin=AT)
        assert upcoming(schedule, None, AT) is None  # paused, or ended
        assert upcoming(None, AT, AT) is None

    def test_a_one_time_schedule_done_shows_none(self) -> None:
        once = Schedule(kind=ScheduleKind.ONCE, timezone="UTC", at=AT.replace(tzinfo=None))
        assert upcoming(once, AT, AT - timedelta(seconds=1)) == AT
        assert upcoming(once, AT, AT) is None
