"""The fast path on the fakes: a firing's own delivery makes its first attempt, the state
machine only takes the retries that must wait, and every way a delivery can die or repeat still
ends in exactly one execution with no request sent twice while one may be in flight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import pytest

from chalicelib import runs
from chalicelib.domain.activity import EventType, Record
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.executions import (
    ATTEMPT_LEASE,
    Execution,
    ExecutionStatus,
    Trigger,
    backoff_seconds,
)
from chalicelib.domain.principals import Principal
from chalicelib.domain.schedules import RateUnit, Schedule, ScheduleKind
from chalicelib.domain.tasks import Task
from chalicelib.domain.webhooks import RetryPolicy
from chalicelib.services.executions import Delivery, FireOutcome
from chalicelib.services.runs import (
    EXECUTION_RUN,
    RECORD_RETRY_DELAYS,
    TAKEN_DISPATCHED,
    TAKEN_HANDED_OVER,
    TAKEN_IN_FLIGHT,
    TAKEN_LOST_ATTEMPT,
    TAKEN_NOTHING,
    TAKEN_RAN,
)
from tests.fakes import InMemoryExecutionRepository
from tests.unit.test_run_service import AT, ERROR_500, OK, World, make_world

EVERY_FIVE = Schedule(kind=ScheduleKind.RATE, timezone="UTC", every=5, unit=RateUnit.MINUTES)
POLICY = RetryPolicy(max_attempts=3, backoff_seconds=2, backoff_rate=2)


class Died(BaseException):
    """The function's process ending mid-way (a crash, its timeout): nothing catches it."""


@pytest.fixture
def world() -> World:
    return make_world()


def fire(world: World, task: Task, attempt: int = 1) -> FireOutcome:
    return world.service.fire(task.id, AT, Delivery(project_id=task.project_id, attempt=attempt))


def scheduled(world: World, **fields: object) -> Task:
    fields.setdefault("retry", POLICY)
    return world.task(schedule=EVERY_FIVE, **fields)


def only_execution(world: World) -> Execution:
    (execution,) = world.executions.executions.values()
    return execution


class ThrottledWrites(InMemoryExecutionRepository):
    """Execution updates answer `Unavailable` (DynamoDB throttling) `times` times, then work."""

    def __init__(self, base: InMemoryExecutionRepository, times: int) -> None:
        self.__dict__.update(base.__dict__)  # the same stored executions, claims and records
        self.times = times

    def update(
        self, before: Execution, after: Execution, records: Sequence[Record] = ()
    ) -> Execution:
        if self.times > 0:
            self.times -= 1
            raise Unavailable("throttled")
        return super().update(before, after, records)


def throttle_updates(world: World, times: int) -> ThrottledWrites:
    throttled = ThrottledWrites(world.executions, times)
    world.run._executions = throttled
    return throttled


class TestTheFastPath:
    def test_a_first_attempt_success_is_one_request_and_no_state_machine(
        self, world: World
    ) -> None:
        task = scheduled(world)
        world.webhooks.script(OK)

        outcome = fire(world, task)

        assert outcome.created
        execution = only_execution(world)
        assert (execution.status, execution.attempts, execution.lease_expires_at) == (
            ExecutionStatus.SUCCEEDED,
            1,
            None,
        )
        assert outcome.execution == execution
        assert len(world.webhooks.requests) == 1
        assert world.webhooks.requests[0].headers["X-Taskbeat-Delivery"] == f"{execution.id}-1"
        assert world.runner.started == []
        assert world.runner.dispatched == []
        kinds = [event.type for event in world.history()]
        assert kinds == [EventType.EXECUTION_FINISHED]

    def test_a_failure_with_no_retry_left_ends_there(self, world: World) -> None:
        task = scheduled(world, retry=RetryPolicy(max_attempts=1))
        world.webhooks.script(ERROR_500)
        fire(world, task)
        execution = only_execution(world)
        assert (execution.status, execution.attempts) == (ExecutionStatus.FAILED, 1)
        assert execution.error == "the webhook answered 500"
        assert world.runner.started == []

    def test_a_failure_with_retries_left_is_handed_over_with_its_backoff(
        self, world: World
    ) -> None:
        task = scheduled(world)
        world.webhooks.script(ERROR_500)
        fire(world, task)

        execution = only_execution(world)
        delay = backoff_seconds(POLICY, 2)
        assert (execution.status, execution.attempts) == (ExecutionStatus.RUNNING, 1)
        assert world.runner.started == [execution.run_name]
        assert world.runner.delays[execution.run_name] == delay
        # Held until the retry is due (and a lease after it), should the hand-over be lost.
        assert (
            execution.lease_expires_at
            == world.clock.now() + timedelta(seconds=delay) + ATTEMPT_LEASE
        )

        # The state machine waits, then plans the execution at its second attempt.
        world.clock.advance(seconds=delay)
        plan = world.run.plan(EXECUTION_RUN, execution.id, 0)
        assert [(step.execution_id, step.attempt) for step in plan.steps] == [(execution.id, 2)]
        world.webhooks.script(OK)
        assert world.drive(execution, first=2)[-1].outcome == runs.SUCCEEDED
        done = world.stored(execution)
        assert (done.status, done.attempts, done.lease_expires_at) == (
            ExecutionStatus.SUCCEEDED,
            2,
            None,
        )
        assert [r.headers["X-Taskbeat-Delivery"] for r in world.webhooks.requests] == [
            f"{execution.id}-1",
            f"{execution.id}-2",
        ]

    def test_a_reminder_ends_at_its_first_attempt(self, world: World) -> None:
        task = scheduled(world, action=None)
        fire(world, task)
        assert only_execution(world).status is ExecutionStatus.SUCCEEDED
        assert world.webhooks.requests == []
        assert world.runner.started == []


class TestRepeatedDeliveries:
    def test_a_delivery_repeated_while_the_first_attempt_is_in_flight_sends_nothing(
        self, world: World
    ) -> None:
        task = scheduled(world)
        repeated: list[FireOutcome] = []
        world.webhooks.during.append(lambda: repeated.append(fire(world, task, attempt=2)))
        world.webhooks.script(OK)

        fire(world, task)

        (again,) = repeated
        assert (again.created, again.taken) == (False, TAKEN_IN_FLIGHT)
        assert len(world.webhooks.requests) == 1
        assert len(world.executions.executions) == 1
        assert only_execution(world).status is ExecutionStatus.SUCCEEDED

    def test_a_delivery_after_the_end_changes_nothing(self, world: World) -> None:
        task = scheduled(world)
        world.webhooks.script(OK)
        first = fire(world, task)
        again = fire(world, task, attempt=2)
        assert (again.created, again.taken, again.execution) == (
            False,
            TAKEN_NOTHING,
            first.execution,
        )
        assert len(world.webhooks.requests) == 1


class TestAFireThatDies:
    def died_during_the_attempt(self, world: World, task: Task) -> Execution:
        def die() -> None:
            raise Died

        world.webhooks.during.append(die)
        world.webhooks.script(OK)
        with pytest.raises(Died):
            fire(world, task)
        world.webhooks.during.clear()
        execution = only_execution(world)
        assert (execution.status, execution.attempts) == (ExecutionStatus.RUNNING, 0)
        return execution

    def test_while_its_lease_holds_a_later_delivery_waits_for_it(self, world: World) -> None:
        task = scheduled(world)
        self.died_during_the_attempt(world, task)
        world.clock.advance(seconds=60)  # Lambda's first retry of the event
        assert fire(world, task, attempt=2).taken == TAKEN_IN_FLIGHT
        assert world.run.recover_expired() == []
        assert len(world.webhooks.requests) == 1

    @pytest.mark.parametrize("by", ["a later delivery", "the sweep"])
    def test_after_its_lease_the_lost_attempt_counts_and_the_retries_go_on(
        self, world: World, by: str
    ) -> None:
        task = scheduled(world)
        lost = self.died_during_the_attempt(world, task)
        assert lost.lease_expires_at is not None
        world.clock.current = lost.lease_expires_at + timedelta(seconds=1)

        if by == "the sweep":
            (taken,) = world.run.recover_expired()
            assert taken.action == TAKEN_LOST_ATTEMPT
        else:
            assert fire(world, task, attempt=3).taken == TAKEN_LOST_ATTEMPT

        execution = world.stored(lost)
        assert (execution.status, execution.attempts) == (ExecutionStatus.RUNNING, 1)
        assert execution.error is not None
        assert "did not finish" in execution.error
        assert world.runner.started == [execution.run_name]
        assert world.runner.delays[execution.run_name] == backoff_seconds(POLICY, 2)
        assert len(world.webhooks.requests) == 1  # nothing is sent from here
        # Taken over once: the sweep and another delivery find it handed over.
        assert world.run.recover_expired() == []
        assert fire(world, task, attempt=4).taken == TAKEN_IN_FLIGHT

    def test_with_no_retry_left_it_times_out(self, world: World) -> None:
        task = scheduled(world, retry=RetryPolicy(max_attempts=1))
        lost = self.died_during_the_attempt(world, task)
        assert lost.lease_expires_at is not None
        world.clock.current = lost.lease_expires_at + timedelta(seconds=1)
        (taken,) = world.run.recover_expired()
        assert taken.execution is not None
        assert (taken.execution.status, taken.execution.attempts) == (
            ExecutionStatus.TIMED_OUT,
            1,
        )
        assert world.runner.started == []
        kinds = [n.type.value for n in world.notifications()]
        assert kinds == ["execution.failed"]

    def test_one_that_died_before_the_attempt_is_finished_too(self, world: World) -> None:
        # The claim was written (running, leased) and the function died before sending.
        task = scheduled(world, retry=RetryPolicy(max_attempts=1))
        world.service._attempts = None
        fire(world, task)
        world.service._attempts = world.run
        execution = only_execution(world)
        assert execution.lease_expires_at is not None
        world.clock.current = execution.lease_expires_at + timedelta(seconds=1)
        assert fire(world, task, attempt=2).taken == TAKEN_LOST_ATTEMPT
        assert world.stored(execution).status is ExecutionStatus.TIMED_OUT

    def test_a_lost_hand_over_is_made_again_after_the_lease(self, world: World) -> None:
        task = scheduled(world)

        class LostStart:
            def start(self, execution: Execution, delay_seconds: int = 0) -> None:
                raise Died

        world.run._runner = LostStart()  # type: ignore[assignment]
        world.webhooks.script(ERROR_500)
        with pytest.raises(Died):
            fire(world, task)
        world.run._runner = world.runner
        recorded = only_execution(world)
        assert (recorded.status, recorded.attempts) == (ExecutionStatus.RUNNING, 1)
        assert world.run.recover_expired() == []  # its lease holds until the retry is due

        assert recorded.lease_expires_at is not None
        world.clock.current = recorded.lease_expires_at + timedelta(seconds=1)
        (taken,) = world.run.recover_expired()

        assert taken.action == TAKEN_HANDED_OVER
        assert world.runner.started == [recorded.run_name]
        assert world.stored(recorded).lease_expires_at is None  # the state machine's now
        assert len(world.webhooks.requests) == 1


class TestThrottling:
    def test_a_throttled_record_is_written_again_by_the_same_delivery(self, world: World) -> None:
        task = scheduled(world)
        throttled = throttle_updates(world, len(RECORD_RETRY_DELAYS))
        world.webhooks.script(OK)

        fire(world, task)

        assert throttled.times == 0
        execution = only_execution(world)
        assert (execution.status, execution.attempts) == (ExecutionStatus.SUCCEEDED, 1)
        assert len(world.webhooks.requests) == 1

    def test_throttled_to_the_end_the_sweep_finishes_the_run(self, world: World) -> None:
        task = scheduled(world)
        throttle_updates(world, len(RECORD_RETRY_DELAYS) + 1)
        world.webhooks.script(OK)
        with pytest.raises(Unavailable):
            fire(world, task)
        # Nothing half-written: still the claim's running execution, leased.
        execution = only_execution(world)
        assert (execution.status, execution.attempts) == (ExecutionStatus.RUNNING, 0)
        assert execution.lease_expires_at is not None

        world.clock.current = execution.lease_expires_at + timedelta(seconds=1)
        (taken,) = world.run.recover_expired()
        assert taken.action == TAKEN_LOST_ATTEMPT
        assert world.runner.started == [execution.run_name]


class TestManualRuns:
    def owner(self, world: World) -> Principal:
        return Principal(user_id=world.owner, session_id="s")

    def test_a_manual_run_is_dispatched_and_its_dispatch_makes_the_attempt(
        self, world: World
    ) -> None:
        task = world.task(retry=POLICY)
        queued = world.service.run_now(self.owner(world), task.id)
        assert (queued.status, world.runner.dispatched) == (ExecutionStatus.QUEUED, [queued.id])
        world.webhooks.script(OK)

        outcome = world.service.start_dispatched(queued.id, task.id)
        duplicate = world.service.start_dispatched(queued.id, task.id)

        assert outcome.taken == TAKEN_RAN
        assert duplicate.taken == TAKEN_NOTHING
        done = world.stored(queued)
        assert (done.trigger, done.status, done.attempts) == (
            Trigger.MANUAL,
            ExecutionStatus.SUCCEEDED,
            1,
        )
        assert len(world.webhooks.requests) == 1
        assert world.runner.started == []

    def test_a_failed_dispatch_still_answers_and_the_sweep_dispatches_again(
        self, world: World
    ) -> None:
        task = world.task(retry=POLICY)

        class Throttled:
            def dispatch(self, execution: Execution) -> None:
                raise Unavailable("throttled")

        world.service._dispatcher = Throttled()
        queued = world.service.run_now(self.owner(world), task.id)
        assert queued.status is ExecutionStatus.QUEUED
        assert world.run.recover_expired() == []  # its dispatch may still arrive

        assert queued.lease_expires_at is not None
        world.clock.current = queued.lease_expires_at + timedelta(seconds=1)
        (taken,) = world.run.recover_expired()

        assert taken.action == TAKEN_DISPATCHED
        assert world.runner.dispatched == [queued.id]
        assert world.stored(queued).leased(world.clock.now())

    def test_a_workflow_step_is_never_taken_over(self, world: World) -> None:
        task = world.task()
        step = world.execution(task, Trigger.WORKFLOW, workflow_run_id="run")
        assert world.run.take_over(step).action == TAKEN_NOTHING
        stale = replace(step, lease_expires_at=AT)
        assert world.run.take_over(stale, dispatched=True).action == TAKEN_NOTHING
