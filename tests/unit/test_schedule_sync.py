"""ScheduleSync: which task changes write or remove the task's scheduler schedule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from chalicelib.domain.schedules import RateUnit, Schedule, ScheduleKind
from chalicelib.domain.tasks import Task
from chalicelib.services.schedules import ScheduleSync, schedule_of
from tests.fakes import FakeScheduler

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOURLY = Schedule(kind=ScheduleKind.RATE, timezone="UTC", every=1, unit=RateUnit.HOURS, origin=NOW)
DAILY_CRON = Schedule(kind=ScheduleKind.CRON, timezone="Europe/Paris", expression="0 9 * * ? *")


def task(**fields: object) -> Task:
    base = Task(id="T1", project_id="P1", title="t", created_by="u", created_at=NOW, updated_at=NOW)
    return replace(base, **fields)  # type: ignore[arg-type]


@pytest.fixture
def scheduler() -> FakeScheduler:
    return FakeScheduler()


@pytest.fixture
def sync(scheduler: FakeScheduler) -> ScheduleSync:
    return ScheduleSync(scheduler)


def test_a_new_scheduled_task_gets_its_schedule(
    sync: ScheduleSync, scheduler: FakeScheduler
) -> None:
    assert sync.apply(None, task(schedule=HOURLY)) == 1
    assert scheduler.schedules == {"T1": (HOURLY, {"task_id": "T1", "project_id": "P1"})}


def test_a_new_unscheduled_task_costs_nothing(sync: ScheduleSync, scheduler: FakeScheduler) -> None:
    assert sync.apply(None, task()) == 0
    assert scheduler.calls == []


def test_changing_the_schedule_updates_it(sync: ScheduleSync, scheduler: FakeScheduler) -> None:
    assert sync.apply(task(schedule=HOURLY), task(schedule=DAILY_CRON, version=2)) == 1
    assert scheduler.schedules["T1"][0] == DAILY_CRON


def test_pausing_is_a_change(sync: ScheduleSync, scheduler: FakeScheduler) -> None:
    paused = replace(HOURLY, paused=True)
    assert sync.apply(task(schedule=HOURLY), task(schedule=paused)) == 1
    assert scheduler.schedules["T1"][0].paused


def test_other_changes_leave_the_schedule_alone(
    sync: ScheduleSync, scheduler: FakeScheduler
) -> None:
    before = task(schedule=HOURLY)
    assert sync.apply(before, replace(before, title="renamed", version=2)) == 0
    assert sync.apply(task(), task(title="renamed")) == 0
    assert scheduler.calls == []


def test_losing_the_schedule_deletes_it(sync: ScheduleSync, scheduler: FakeScheduler) -> None:
    sync.apply(None, task(schedule=HOURLY))
    assert sync.apply(task(schedule=HOURLY), task(schedule=None)) == 1
    assert scheduler.schedules == {}
    assert scheduler.calls[-1] == ("delete", "T1")


def test_deleting_a_scheduled_task_deletes_its_schedule(
    sync: ScheduleSync, scheduler: FakeScheduler
) -> None:
    assert sync.apply(task(schedule=HOURLY), None) == 1
    assert scheduler.calls == [("delete", "T1")]
    assert sync.apply(task(), None) == 0  # had none: nothing to do
    assert sync.apply(None, None) == 0
    assert scheduler.calls == [("delete", "T1")]


def test_a_replayed_change_makes_the_same_idempotent_call(
    sync: ScheduleSync, scheduler: FakeScheduler
) -> None:
    change = (task(schedule=HOURLY), task(schedule=DAILY_CRON))
    sync.apply(*change)
    sync.apply(*change)
    assert scheduler.calls == [("put", "T1"), ("put", "T1")]
    assert scheduler.schedules["T1"][0] == DAILY_CRON


def test_schedule_of_wants_a_schedule_value() -> None:
    assert schedule_of(task(schedule=HOURLY)) == HOURLY
    assert schedule_of(task()) is None
    assert schedule_of(None) is None
    with pytest.raises(TypeError):
        schedule_of(task(schedule={"kind": "rate"}))
