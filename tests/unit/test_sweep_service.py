"""The due-date sweep on fakes: who is told what, once per task and due date."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib.domain.activity import Notification, NotificationType
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.model import new_id
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.tasks import Status, Task, new_task_id
from chalicelib.services.sweep import (
    CLAIM_LIFETIME,
    DEFAULT_LOOKBACK,
    DueKind,
    DueSweepService,
    due_claim,
    due_kind,
)
from tests.fakes import (
    FakeClock,
    InMemoryDueSweepRepository,
    InMemoryProjectRepository,
    InMemoryTaskRepository,
)

CREATOR = "creator"
ASSIGNEE = "assignee"


class World:
    def __init__(self, **service_options: Any) -> None:
        self.clock = FakeClock()
        self.projects = InMemoryProjectRepository()
        self.project_id = new_id()
        now = self.clock.now()
        self.projects.create(
            Project(self.project_id, "P", "", CREATOR, now, now),
            Membership(self.project_id, CREATOR, ProjectRole.OWNER, now),
        )
        self.tasks = InMemoryTaskRepository(self.projects)
        self.repo = InMemoryDueSweepRepository(self.tasks)
        self.service = DueSweepService(self.repo, self.clock, **service_options)

    def task(self, due_in: timedelta | None, **fields: Any) -> Task:
        now = self.clock.now()
        fields.setdefault("title", "Ship it")
        task = Task(
            id=new_task_id(self.project_id),
            project_id=self.project_id,
            created_by=CREATOR,
            created_at=now,
            updated_at=now,
            due_date=now + due_in if due_in is not None else None,
            **fields,
        )
        return self.tasks.create(task, None)

    def change(self, task: Task, **changes: Any) -> Task:
        return self.tasks.update(self.tasks.tasks[task.id], task.with_changes(**changes), None)

    def notifications(self, user_id: str | None = None) -> list[Notification]:
        return [
            r
            for r in self.repo.records
            if isinstance(r, Notification) and (user_id is None or r.user_id == user_id)
        ]

    def kinds(self, task: Task) -> list[NotificationType]:
        return [n.type for n in self.notifications() if n.task_id == task.id]


@pytest.fixture
def world() -> World:
    return World()


def test_a_task_due_within_a_day_tells_its_assignee_once(world: World) -> None:
    task = world.task(timedelta(hours=1), assignee_id=ASSIGNEE)
    outcome = world.service.sweep()
    assert (outcome.due_soon, outcome.overdue, outcome.examined) == (1, 0, 1)
    (notification,) = world.notifications()
    assert notification.user_id == ASSIGNEE
    assert notification.type is NotificationType.TASK_DUE_SOON
    assert (notification.task_id, notification.project_id) == (task.id, world.project_id)
    assert '"Ship it" is due soon' in notification.message
    assert notification.created_at == world.clock.now()
    assert not notification.read
    for _ in range(3):
        world.clock.advance(minutes=5)
        again = world.service.sweep()
        assert (again.written, again.already, world.repo.writes) == (0, 1, 1)
    assert len(world.notifications()) == 1


def test_without_an_assignee_the_creator_is_told(world: World) -> None:
    world.task(timedelta(hours=3))
    world.service.sweep()
    assert [n.user_id for n in world.notifications()] == [CREATOR]


def test_a_task_past_its_due_date_is_overdue_once(world: World) -> None:
    task = world.task(timedelta(minutes=-1), assignee_id=ASSIGNEE)
    assert world.service.sweep().overdue == 1
    world.clock.advance(hours=1)
    assert world.service.sweep().written == 0
    assert world.kinds(task) == [NotificationType.TASK_OVERDUE]
    (notification,) = world.notifications(ASSIGNEE)
    assert "overdue" in notification.message


def test_a_task_is_due_soon_then_overdue(world: World) -> None:
    task = world.task(timedelta(hours=2))
    world.service.sweep()
    world.clock.advance(hours=1, minutes=59)
    world.service.sweep()
    world.clock.advance(minutes=2)
    world.service.sweep()
    world.service.sweep()
    assert world.kinds(task) == [NotificationType.TASK_DUE_SOON, NotificationType.TASK_OVERDUE]


def test_tasks_due_later_than_a_day_are_not_told_yet(world: World) -> None:
    task = world.task(timedelta(hours=24, minutes=1))
    undated = world.task(None)
    assert world.service.sweep().examined == 0
    world.clock.advance(minutes=1)
    assert world.service.sweep().due_soon == 1
    assert world.kinds(task) == [NotificationType.TASK_DUE_SOON]
    assert world.kinds(undated) == []


def test_a_completed_or_cancelled_task_is_never_overdue(world: World) -> None:
    done = world.task(timedelta(hours=1))
    cancelled = world.task(timedelta(hours=1))
    world.change(done, status=Status.COMPLETED, completed_at=world.clock.now())
    world.change(cancelled, status=Status.CANCELLED)
    world.clock.advance(hours=2)
    assert world.service.sweep().examined == 0
    assert world.notifications() == []


def test_a_postponed_task_is_told_again_for_its_new_date(world: World) -> None:
    task = world.task(timedelta(hours=1))
    world.service.sweep()
    world.change(task, due_date=task.due_date + timedelta(hours=5))  # type: ignore[operator]
    world.service.sweep()
    world.service.sweep()
    assert world.kinds(task) == [NotificationType.TASK_DUE_SOON] * 2
    first, second = (n for n in world.notifications())
    assert first.message != second.message  # each names its own date


def test_subtasks_count_like_any_task(world: World) -> None:
    parent = world.task(None)
    child = world.task(timedelta(minutes=-5), parent_id=parent.id)
    world.service.sweep()
    assert world.kinds(child) == [NotificationType.TASK_OVERDUE]


def test_a_task_overdue_for_longer_than_the_lookback_is_not_told(world: World) -> None:
    old = world.task(-DEFAULT_LOOKBACK - timedelta(minutes=1))
    recent = world.task(-DEFAULT_LOOKBACK + timedelta(minutes=1))
    world.service.sweep()
    assert world.kinds(old) == []
    assert world.kinds(recent) == [NotificationType.TASK_OVERDUE]


def test_the_lookback_is_configurable() -> None:
    world = World(lookback=timedelta(hours=1))
    world.task(timedelta(hours=-2))
    assert world.service.sweep().examined == 0


def test_claims_name_the_kind_task_and_due_date_and_expire_after_it(world: World) -> None:
    task = world.task(timedelta(hours=1))
    world.service.sweep()
    assert task.due_date is not None
    claim = due_claim(DueKind.DUE_SOON, task.id, task.due_date)
    assert claim == f"due_soon#{task.id}#2026-11-21T13:00:00.000Z"
    assert claim in world.repo.claims
    owner, expires_at = world.repo.claims[claim]
    assert owner == world.notifications()[0].id
    assert expires_at == task.due_date + CLAIM_LIFETIME


def test_due_kind_boundaries(world: World) -> None:
    now = world.clock.now()
    assert due_kind(now - timedelta(microseconds=1), now) is DueKind.OVERDUE
    assert due_kind(now, now) is DueKind.DUE_SOON
    assert due_kind(now + timedelta(hours=24), now) is DueKind.DUE_SOON
    assert due_kind(now + timedelta(hours=24, microseconds=1), now) is None


class _StaleIndex(InMemoryDueSweepRepository):
    """An index a moment behind the table: it still lists tasks as they were."""

    def __init__(self, tasks: InMemoryTaskRepository, stale: list[Any]) -> None:
        super().__init__(tasks)
        self.stale = stale

    def due_between(self, start: Any, end: Any) -> list[Any]:
        return list(self.stale)


def test_a_task_completed_after_the_index_was_read_is_not_told(world: World) -> None:
    task = world.task(timedelta(minutes=-1))
    stale = world.repo.due_between(world.clock.now() - timedelta(days=1), world.clock.now())
    world.change(task, status=Status.COMPLETED)
    moved = world.task(timedelta(minutes=-1))
    stale += world.repo.due_between(world.clock.now() - timedelta(days=1), world.clock.now())
    world.change(moved, due_date=world.clock.now() + timedelta(days=3))
    deleted = world.task(timedelta(minutes=-1))
    stale += world.repo.due_between(world.clock.now() - timedelta(days=1), world.clock.now())
    world.tasks.delete(deleted, world.tasks.graph(world.project_id))
    repo = _StaleIndex(world.tasks, stale)
    outcome = DueSweepService(repo, world.clock).sweep()
    assert (outcome.written, outcome.skipped) == (0, 3)
    assert repo.records == []


def test_a_bounded_sweep_leaves_the_rest_for_the_next() -> None:
    world = World(max_notifications=2)
    for _ in range(5):
        world.task(timedelta(hours=1))
    first = world.service.sweep()
    assert (first.written, first.deferred) == (2, 3)
    second = world.service.sweep()
    assert (second.written, second.already, second.deferred) == (2, 2, 1)
    assert world.service.sweep().written == 1
    assert world.service.sweep().written == 0
    assert len(world.notifications()) == 5


class _Flaky(InMemoryDueSweepRepository):
    def __init__(self, tasks: InMemoryTaskRepository) -> None:
        super().__init__(tasks)
        self.refuse = 1

    def notify_once(self, *args: Any) -> bool:
        if self.refuse:
            self.refuse -= 1
            raise Unavailable()
        return super().notify_once(*args)


def test_a_refused_write_is_counted_and_retried_by_the_next_sweep(world: World) -> None:
    repo = _Flaky(world.tasks)
    service = DueSweepService(repo, world.clock)
    world.task(timedelta(hours=1))
    world.task(timedelta(hours=2))
    first = service.sweep()
    assert (first.failed, first.written) == (1, 1)
    second = service.sweep()
    assert (second.failed, second.written, second.already) == (0, 1, 1)
    assert len(repo.records) == 2


def test_many_tasks_are_read_in_batches_dynamodb_accepts(world: World) -> None:
    for _ in range(230):
        world.task(timedelta(hours=1))
    assert world.service.sweep().due_soon == 230  # the fake refuses batches over 100 keys
    assert world.service.sweep().already == 230
