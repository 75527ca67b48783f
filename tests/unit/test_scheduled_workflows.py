"""Scheduled workflows on fakes: the scheduler schedule kept in step with each workflow
(`ScheduleSync` with `ScheduleTarget.WORKFLOW`), and `WorkflowRunService.fire`: one run per
firing however often it is delivered, deleted and paused workflows, the overlap policies."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.activity import Notification, NotificationType
from chalicelib.domain.executions import ExecutionStatus
from chalicelib.domain.model import new_id
from chalicelib.domain.schedules import (
    Overlap,
    RateUnit,
    Schedule,
    ScheduleKind,
    ScheduleTarget,
    next_run,
)
from chalicelib.domain.tasks import Task
from chalicelib.domain.workflow_runs import WorkflowRun
from chalicelib.domain.workflows import Workflow
from chalicelib.services.executions import Delivery
from chalicelib.services.schedules import ScheduleSync
from chalicelib.services.workflow_runs import RunFiring
from tests.fakes import FakeScheduler
from tests.unit.test_workflow_run_service import AT, World, world

__all__ = ["world"]  # the fixture, shared with the workflow run service's tests

EVERY_5_MINUTES = Schedule(
    kind=ScheduleKind.RATE, timezone="UTC", every=5, unit=RateUnit.MINUTES, origin=AT
)
FIRST = AT + timedelta(minutes=5)
SECOND = AT + timedelta(minutes=10)
THIRD = AT + timedelta(minutes=15)


def scheduled(
    world: World, schedule: Schedule | None = EVERY_5_MINUTES, **fields: object
) -> Workflow:
    workflow = world.workflow({"a": [], "b": ["a"]}, **fields)
    workflow = workflow.with_changes(
        schedule=schedule, next_run_at=next_run(schedule, AT) if schedule else None
    )
    world.workflows.workflows[workflow.id] = workflow
    return workflow


def fire(world: World, workflow: Workflow, at: datetime = FIRST, attempt: int = 1) -> RunFiring:
    delivery = Delivery(project_id=workflow.project_id, attempt=attempt)
    return world.service.fire(workflow.id, at, delivery)


def stored(world: World, outcome: RunFiring) -> WorkflowRun:
    assert outcome.run is not None
    run = world.runs.get(outcome.run.id)
    assert run is not None
    return run


def starts(world: World, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every run the service asks the runner to start (the runner itself runs each once)."""
    asked: list[str] = []
    start = world.runner.start_workflow_run

    def recording(run: WorkflowRun) -> None:
        asked.append(run.id)
        start(run)

    monkeypatch.setattr(world.runner, "start_workflow_run", recording)
    return asked


# ---- one run per firing -------------------------------------------------------------------------


def test_three_deliveries_of_one_firing_make_one_scheduled_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = starts(world, monkeypatch)
    workflow = scheduled(world)
    outcomes = [fire(world, workflow, attempt=n) for n in (1, 2, 3)]
    assert [o.created for o in outcomes] == [True, False, False]
    run = stored(world, outcomes[0])
    assert {o.run.id for o in outcomes if o.run} == {run.id}
    assert (run.trigger, run.scheduled_for, run.status) == (
        "schedule",
        FIRST,
        ExecutionStatus.QUEUED,
    )
    assert run.created_by == workflow.created_by  # who hears of a failed scheduled run
    assert [s.key for s in run.steps] == ["a", "b"]
    assert [r.id for r in world.runs.runs.values()] == [run.id]
    # Still queued: each delivery asks the runner again, which runs it once.
    assert asked == [run.id] * 3
    assert world.runner.runs_started == [run.id]
    # The next firing time moved on, once.
    moved = world.workflows.get(workflow.id)
    assert moved is not None
    assert (moved.next_run_at, moved.version) == (SECOND, workflow.version)


def test_a_repeated_delivery_of_a_started_run_starts_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = starts(world, monkeypatch)
    workflow = scheduled(world)
    run = stored(world, fire(world, workflow))
    world.play(run.id)
    again = fire(world, workflow, attempt=2)
    assert (again.created, again.run and again.run.status) == (False, ExecutionStatus.SUCCEEDED)
    assert asked == [run.id]
    # The same instant in another zone is the same firing.
    local = FIRST.astimezone(ZoneInfo("Asia/Tokyo"))
    assert fire(world, workflow, at=local).run == again.run


def test_a_run_of_the_firing_plays_its_steps(world: World) -> None:
    workflow = scheduled(world)
    run = stored(world, fire(world, workflow))
    world.play(run.id)
    assert stored(world, RunFiring(run, True)).status is ExecutionStatus.SUCCEEDED
    assert world.webhooks.called == ["a", "b"]


def test_a_failed_scheduled_run_tells_the_workflows_creator(world: World) -> None:
    workflow = scheduled(world)
    world.webhooks.failing.add("a")
    run = stored(world, fire(world, workflow))
    world.play(run.id)
    failed = [
        r.user_id
        for r in world.executions.records
        if isinstance(r, Notification) and r.type is NotificationType.WORKFLOW_RUN_FAILED
    ]
    assert failed == [workflow.created_by]


# ---- what changed since the schedule was set --------------------------------------------------


def test_firings_of_a_deleted_workflow_or_project_record_nothing(world: World) -> None:
    workflow = scheduled(world)
    del world.workflows.workflows[workflow.id]
    assert fire(world, workflow) == RunFiring(None, False, "the workflow is gone")

    kept = scheduled(world)
    wrong = world.service.fire(kept.id, FIRST, Delivery(project_id=new_id()))
    assert (wrong.run, wrong.created) == (None, False)
    assert world.service.fire("no-project-in-it", FIRST, Delivery()).run is None
    del world.workflows.projects.projects[kept.project_id]
    assert fire(world, kept).run is None
    assert world.runs.runs == {}
    assert world.runner.runs_started == []


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        (replace(EVERY_5_MINUTES, paused=True), "the schedule is paused"),
        (None, "the workflow is no longer scheduled"),
    ],
)
def test_a_paused_or_removed_schedule_records_a_skipped_run_once(
    world: World, schedule: Schedule | None, reason: str
) -> None:
    workflow = scheduled(world, schedule)
    first = fire(world, workflow)
    assert (first.created, first.reason) == (True, reason)
    run = stored(world, first)
    assert run.status is ExecutionStatus.SKIPPED
    assert run.finished_at == world.clock.now()
    assert {s.outcome for s in run.steps} == {ExecutionStatus.SKIPPED}
    again = fire(world, workflow, attempt=2)
    assert (again.created, again.run) == (False, run)
    assert world.runner.runs_started == []


# ---- overlap ----------------------------------------------------------------------------------


@pytest.mark.parametrize("overlap", [Overlap.SKIP, Overlap.BUFFER_ONE])
def test_a_firing_while_a_scheduled_run_is_unfinished_is_skipped(
    world: World, overlap: Overlap
) -> None:
    workflow = scheduled(world, replace(EVERY_5_MINUTES, overlap=overlap))
    first = stored(world, fire(world, workflow))
    manual = world.service.start(world.people["member"], workflow.id)  # takes no slot
    second = fire(world, workflow, at=SECOND)
    assert (second.created, second.reason) == (True, "the previous run is still running")
    assert stored(world, second).status is ExecutionStatus.SKIPPED
    assert world.runner.runs_started == [first.id, manual.id]
    # A repeat of the skipped firing is the same skipped run, even once the slot is free.
    world.play(first.id)
    assert world.runs.slot_owner(workflow.id) is None  # the finished run let go of it
    assert fire(world, workflow, at=SECOND, attempt=2).run == second.run
    third = stored(world, fire(world, workflow, at=THIRD))
    assert third.status is ExecutionStatus.QUEUED
    assert world.runs.slot_owner(workflow.id) == third.id


def test_allow_lets_scheduled_runs_overlap(world: World) -> None:
    workflow = scheduled(world, replace(EVERY_5_MINUTES, overlap=Overlap.ALLOW))
    runs = [stored(world, fire(world, workflow, at=at)) for at in (FIRST, SECOND)]
    assert [r.status for r in runs] == [ExecutionStatus.QUEUED] * 2
    assert world.runner.runs_started == [r.id for r in runs]
    assert world.runs.slot_owner(workflow.id) is None


def test_a_slot_whose_holder_finished_without_letting_go_is_freed(world: World) -> None:
    workflow = scheduled(world)
    first = stored(world, fire(world, workflow))
    # It ended without releasing the slot (it died between its last write and the release).
    world.runs.runs[first.id] = first.with_changes(status=ExecutionStatus.SUCCEEDED)
    second = stored(world, fire(world, workflow, at=SECOND))
    assert second.status is ExecutionStatus.QUEUED
    assert world.runs.slot_owner(workflow.id) == second.id


def test_cancelling_a_scheduled_run_frees_the_slot(world: World) -> None:
    workflow = scheduled(world)
    first = stored(world, fire(world, workflow))
    world.service.cancel(world.people["member"], first.id)
    assert world.runs.slot_owner(workflow.id) is None
    assert stored(world, fire(world, workflow, at=SECOND)).status is ExecutionStatus.QUEUED


# ---- the scheduler schedule of a workflow -----------------------------------------------------


@pytest.fixture
def scheduler() -> FakeScheduler:
    return FakeScheduler()


def test_the_schedule_follows_the_workflow(world: World, scheduler: FakeScheduler) -> None:
    sync = ScheduleSync(scheduler)
    kind = ScheduleTarget.WORKFLOW
    plain = scheduled(world, None)
    assert sync.apply(None, plain, kind) == 0
    workflow = scheduled(world)
    assert sync.apply(None, workflow, kind) == 1
    assert scheduler.schedules[workflow.id] == (
        EVERY_5_MINUTES,
        {"workflow_id": workflow.id, "project_id": workflow.project_id},
    )
    assert scheduler.kinds[workflow.id] is kind

    renamed = workflow.with_changes(name="renamed", version=2)
    assert sync.apply(workflow, renamed, kind) == 0  # other fields leave it alone
    moved_on = renamed.with_changes(next_run_at=SECOND)  # what a firing changes
    assert sync.apply(renamed, moved_on, kind) == 0
    paused = moved_on.with_changes(schedule=replace(EVERY_5_MINUTES, paused=True))
    assert sync.apply(moved_on, paused, kind) == 1
    assert scheduler.schedules[workflow.id][0].paused
    cleared = paused.with_changes(schedule=None)
    assert sync.apply(paused, cleared, kind) == 1
    assert workflow.id not in scheduler.schedules
    assert sync.apply(cleared, None, kind) == 0  # deleted without a schedule: nothing to do
    assert sync.apply(workflow, None, kind) == 1  # deleted (alone or with its project)
    assert scheduler.calls == [
        ("put", workflow.id),
        ("put", workflow.id),
        ("delete", workflow.id),
        ("delete", workflow.id),
    ]


def test_tasks_and_workflows_keep_their_own_kind_of_schedule(scheduler: FakeScheduler) -> None:
    sync = ScheduleSync(scheduler)
    task = Task(
        id="T1",
        project_id="P1",
        title="t",
        created_by="u",
        created_at=AT,
        updated_at=AT,
        schedule=EVERY_5_MINUTES,
    )
    assert sync.apply(None, task) == 1
    assert scheduler.kinds["T1"] is ScheduleTarget.TASK
    assert scheduler.schedules["T1"][1] == {"task_id": "T1", "project_id": "P1"}
