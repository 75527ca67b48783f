"""Executions: the service on the in-memory fakes (firings, manual runs, who may see what)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.activity import EventType, HistoryEvent
from chalicelib.domain.errors import Conflict, Forbidden, NotFound, StaleVersion
from chalicelib.domain.executions import (
    ATTEMPT_LEASE,
    Execution,
    ExecutionStatus,
    Trigger,
    can_move,
    firing_execution_id,
    firing_key,
)
from chalicelib.domain.ids import project_of
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.schedules import RateUnit, Schedule, ScheduleKind
from chalicelib.domain.tasks import Task, new_task_id
from chalicelib.services.executions import Delivery, ExecutionService
from tests.fakes import (
    FakeClock,
    InMemoryExecutionRepository,
    InMemoryProjectRepository,
    InMemoryTaskRepository,
    InProcessRunner,
    NoPrefetch,
)

AT = datetime(2026, 11, 21, 12, 5, tzinfo=UTC)
ROLES = {
    "owner": ProjectRole.OWNER,
    "member": ProjectRole.MEMBER,
    "viewer": ProjectRole.VIEWER,
}


def every_five_minutes(**fields: Any) -> Any:
    return cast(
        Any,
        Schedule(kind=ScheduleKind.RATE, timezone="UTC", every=5, unit=RateUnit.MINUTES, **fields),
    )


@dataclass
class World:
    clock: FakeClock
    projects: InMemoryProjectRepository
    tasks: InMemoryTaskRepository
    executions: InMemoryExecutionRepository
    runner: InProcessRunner
    service: ExecutionService
    project: Project
    people: dict[str, Principal]

    def task(self, **fields: Any) -> Task:
        fields.setdefault("schedule", every_five_minutes())
        now = self.clock.now()
        task = Task(
            id=new_task_id(self.project.id),
            project_id=self.project.id,
            title="Ping",
            created_by=self.people["owner"].user_id,
            created_at=now,
            updated_at=now,
            **fields,
        )
        self.tasks.tasks[task.id] = task
        return task

    def fire(self, task: Task, at: datetime = AT, **delivery: Any) -> Any:
        delivery.setdefault("project_id", task.project_id)
        return self.service.fire(task.id, at, Delivery(**delivery))


def make_world() -> World:
    clock = FakeClock()
    projects = InMemoryProjectRepository()
    tasks = InMemoryTaskRepository(projects)
    executions = InMemoryExecutionRepository(tasks.records)
    runner = InProcessRunner()
    service = ExecutionService(executions, tasks, projects, NoPrefetch(), clock, runner)
    now = clock.now()
    people = {name: Principal(new_id(), new_id()) for name in (*ROLES, "stranger")}
    project = Project(new_id(), "Team", "", people["owner"].user_id, now, now)
    projects.create(project, Membership(project.id, people["owner"].user_id, ROLES["owner"], now))
    for name in ("member", "viewer"):
        projects.add_member(Membership(project.id, people[name].user_id, ROLES[name], now))
    return World(clock, projects, tasks, executions, runner, service, project, people)


@pytest.fixture
def world() -> World:
    return make_world()


class TestStatusRules:
    def test_finished_statuses_go_nowhere(self) -> None:
        for before in ExecutionStatus:
            if before.finished:
                assert not any(can_move(before, after) for after in ExecutionStatus)

    def test_queued_runs_and_running_finishes(self) -> None:
        assert can_move(ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)
        assert can_move(ExecutionStatus.RUNNING, ExecutionStatus.SUCCEEDED)
        assert can_move(ExecutionStatus.RUNNING, ExecutionStatus.TIMED_OUT)
        assert not can_move(ExecutionStatus.RUNNING, ExecutionStatus.QUEUED)
        assert not can_move(ExecutionStatus.QUEUED, ExecutionStatus.TIMED_OUT)

    def test_moving_stamps_the_times_and_refuses_leaving_a_finished_state(self) -> None:
        queued = Execution(new_id(), "t", "p", Trigger.MANUAL, ExecutionStatus.QUEUED, AT)
        running = queued.moved_to(ExecutionStatus.RUNNING, AT, attempts=1)
        assert (running.started_at, running.finished_at, running.attempts) == (AT, None, 1)
        later = AT + timedelta(seconds=3)
        done = running.moved_to(ExecutionStatus.FAILED, later, error="boom")
        assert (done.started_at, done.finished_at, done.error) == (AT, later, "boom")
        with pytest.raises(Conflict):
            done.moved_to(ExecutionStatus.RUNNING, later)

    def test_the_firing_key_is_the_task_and_the_utc_second(self) -> None:
        local = AT.astimezone(ZoneInfo("Europe/Paris"))
        assert firing_key("T", local) == firing_key("T", AT) == "T#2026-11-21T12:05:00Z"
        assert firing_key("T", AT + timedelta(minutes=5)) != firing_key("T", AT)


class TestFire:
    def test_three_deliveries_of_one_firing_make_one_execution(self, world: World) -> None:
        task = world.task()
        outcomes = [world.fire(task, attempt=n) for n in (1, 2, 3)]
        assert [o.created for o in outcomes] == [True, False, False]
        assert {o.execution.id for o in outcomes} == {outcomes[0].execution.id}
        assert len(world.executions.executions) == 1
        execution = outcomes[0].execution
        # Written running and leased to the first delivery, which makes the first attempt.
        assert (execution.trigger, execution.status, execution.scheduled_for) == (
            Trigger.SCHEDULE,
            ExecutionStatus.RUNNING,
            AT,
        )
        assert execution.lease_expires_at == world.clock.now() + ATTEMPT_LEASE
        assert project_of(execution.id) == task.project_id
        assert world.runner.started == []  # no state machine
        # Its id names the firing (the claim), and the history hears of it when it ends.
        assert execution.id == firing_execution_id(task.project_id, task.id, AT)
        assert [r for r in world.tasks.records if isinstance(r, HistoryEvent)] == []

    def test_each_scheduled_time_is_its_own_firing(self, world: World) -> None:
        task = world.task()
        first = world.fire(task, AT)
        second = world.fire(task, AT + timedelta(minutes=5))
        assert first.execution.id != second.execution.id
        assert len(world.executions.executions) == 2

    def test_a_repeated_delivery_of_a_finished_execution_changes_nothing(
        self, world: World
    ) -> None:
        task = world.task()
        first = world.fire(task)
        done = world.executions.update(
            first.execution, first.execution.moved_to(ExecutionStatus.SUCCEEDED, AT, attempts=1)
        )
        again = world.fire(task)
        assert (again.created, again.execution) == (False, done)
        assert world.runner.started == world.runner.dispatched == []

    def test_a_deleted_task_records_nothing(self, world: World) -> None:
        task = world.task()
        del world.tasks.tasks[task.id]
        outcome = world.fire(task)
        assert (outcome.execution, outcome.created) == (None, False)
        assert world.executions.executions == {}
        assert world.runner.started == []

    def test_a_deleted_project_records_nothing(self, world: World) -> None:
        task = world.task()
        del world.projects.projects[task.project_id]
        assert world.fire(task).execution is None
        assert world.executions.executions == {}

    def test_a_firing_naming_another_project_or_no_task_records_nothing(self, world: World) -> None:
        task = world.task()
        assert world.fire(task, project_id=new_id()).execution is None
        assert world.service.fire("not-a-task", AT, Delivery()).execution is None
        assert world.executions.executions == {}

    def test_an_unscheduled_or_paused_task_records_one_skipped_execution(
        self, world: World
    ) -> None:
        for task, reason in (
            (world.task(schedule=None), "no longer scheduled"),
            (world.task(schedule=every_five_minutes(paused=True)), "paused"),
        ):
            outcomes = [world.fire(task) for _ in range(2)]
            execution = outcomes[0].execution
            assert execution.status is ExecutionStatus.SKIPPED
            assert reason in (execution.error or "")
            assert execution.finished_at == world.clock.now()
            assert outcomes[1].execution.id == execution.id
            assert not outcomes[1].created
        assert len(world.executions.executions) == 2
        assert world.runner.started == []
        kinds = {r.type for r in world.tasks.records if isinstance(r, HistoryEvent)}
        assert kinds == {EventType.EXECUTION_FINISHED}


class TestManualRuns:
    def test_a_member_runs_a_task_now(self, world: World) -> None:
        task = world.task(schedule=None)
        execution = world.service.run_now(world.people["member"], task.id)
        assert (execution.trigger, execution.status, execution.scheduled_for) == (
            Trigger.MANUAL,
            ExecutionStatus.QUEUED,
            None,
        )
        # Leased, and dispatched to an asynchronous invocation of `fire` (not a state machine).
        assert execution.lease_expires_at == world.clock.now() + ATTEMPT_LEASE
        assert (world.runner.dispatched, world.runner.started) == ([execution.id], [])
        assert world.executions.get(execution.id) == execution
        event = world.tasks.records[-1]
        assert isinstance(event, HistoryEvent)
        assert event.actor_id == world.people["member"].user_id

    def test_every_run_is_a_new_execution(self, world: World) -> None:
        task = world.task()
        ids = {world.service.run_now(world.people["owner"], task.id).id for _ in range(3)}
        assert len(ids) == 3

    def test_a_viewer_may_not_run_and_a_stranger_sees_nothing(self, world: World) -> None:
        task = world.task()
        with pytest.raises(Forbidden):
            world.service.run_now(world.people["viewer"], task.id)
        with pytest.raises(NotFound):
            world.service.run_now(world.people["stranger"], task.id)
        with pytest.raises(NotFound):
            world.service.run_now(world.people["member"], new_task_id(world.project.id))
        assert world.executions.executions == {}


class TestReading:
    def test_a_tasks_executions_newest_first_in_pages(self, world: World) -> None:
        task = world.task()
        other = world.task()
        made = [world.fire(task, AT + timedelta(minutes=5 * n)).execution.id for n in range(5)]
        made.sort()  # ids are ULIDs: newest last (ids made in one millisecond sort at random)
        world.fire(other)
        viewer = world.people["viewer"]
        first = world.service.list_for_task(viewer, task.id, PageRequest(limit=3))
        assert [e.id for e in first.items] == made[::-1][:3]
        assert first.next_cursor
        rest = world.service.list_for_task(
            viewer, task.id, PageRequest(limit=3, cursor=first.next_cursor)
        )
        assert [e.id for e in rest.items] == made[::-1][3:]
        assert rest.next_cursor is None
        with pytest.raises(NotFound):
            world.service.list_for_task(world.people["stranger"], task.id, PageRequest())

    def test_get_is_for_members_only(self, world: World) -> None:
        task = world.task()
        execution = world.fire(task).execution
        assert world.service.get(world.people["viewer"], execution.id) == execution
        for who, execution_id in (
            ("stranger", execution.id),
            ("member", "nonsense"),
            ("member", new_id() + new_id()),
            ("member", execution.id[:26] + new_id()),  # names another project
        ):
            with pytest.raises(NotFound):
                world.service.get(world.people[who], execution_id)

    def test_a_member_removed_from_the_project_loses_sight(self, world: World) -> None:
        execution = world.fire(world.task()).execution
        world.projects.remove_member(world.project.id, world.people["member"].user_id)
        with pytest.raises(NotFound):
            world.service.get(world.people["member"], execution.id)


class TestFakeUpdates:
    def test_updates_are_conditional_on_the_version_and_status(self, world: World) -> None:
        execution = world.fire(world.task()).execution
        repo = world.executions
        running = repo.update(execution, execution.moved_to(ExecutionStatus.RUNNING, AT))
        assert running.version == 2
        with pytest.raises(StaleVersion):
            repo.update(execution, replace(execution, attempts=9))
