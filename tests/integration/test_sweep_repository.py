"""The due-date sweep's repository contract, on the in-memory fake and on DynamoDB (moto).

The DynamoDB side proves the sparse index `tasks.open_by_due_day`: every task write keeps
`open_due_day` in step (set while the task is open with a due date, removed otherwise), the
sweep's window is read by day partitions without a Scan, and a notification is written with its
claim once, only while its task is still open with the date it was found with.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.identity import DynamoUserRepository
from chalicelib.adapters.dynamodb.models import ClaimModel, ProjectModel, TaskModel
from chalicelib.adapters.dynamodb.notifications import DynamoNotificationRepository
from chalicelib.adapters.dynamodb.sweep import DynamoDueSweepRepository, days_between
from chalicelib.adapters.dynamodb.tasks import DynamoTaskRepository
from chalicelib.domain.activity import Notification, NotificationType
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.tasks import Status, Task, new_task_id
from chalicelib.domain.users import Role, Session, User
from chalicelib.services.sweep import DueKind, DueSweepService, due_claim
from tests.fakes import (
    FakeClock,
    InMemoryDueSweepRepository,
    InMemoryNotificationRepository,
    InMemoryProjectRepository,
    InMemoryTaskRepository,
)

# Close to midnight UTC, so the window spans several day partitions either way.
NOW = datetime(2026, 11, 21, 23, 30, tzinfo=UTC)


class Env:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "memory":
            self.projects: Any = InMemoryProjectRepository()
            self.tasks: Any = InMemoryTaskRepository(self.projects)
            self.repo: Any = InMemoryDueSweepRepository(self.tasks)
            self.inbox: Any = InMemoryNotificationRepository(self.repo.records)
        else:
            self.projects = None
            self.tasks = DynamoTaskRepository()
            self.repo = DynamoDueSweepRepository()
            self.inbox = DynamoNotificationRepository()
        self.project_id = self.project()

    def project(self) -> str:
        user_id, project_id = new_id(), new_id()
        project = Project(project_id, "P", "", user_id, NOW, NOW)
        owner = Membership(project_id, user_id, ProjectRole.OWNER, NOW)
        if self.kind == "memory":
            self.projects.create(project, owner)
        else:
            user = User(
                user_id, f"{user_id}@x.io", "N", Role.MEMBER, "UTC", "h", project_id, NOW, NOW
            )
            session = Session(new_id(), user_id, new_id(), NOW, NOW + timedelta(days=1))
            DynamoUserRepository().create_account(user, project, owner, session, first_admin=False)
        return project_id

    def task(self, due: datetime | None, project_id: str | None = None, **fields: Any) -> Task:
        project_id = project_id or self.project_id
        fields.setdefault("title", "T")
        task = Task(
            id=new_task_id(project_id),
            project_id=project_id,
            created_by="creator",
            created_at=NOW,
            updated_at=NOW,
            due_date=due,
            **fields,
        )
        return self.tasks.create(task, None)  # type: ignore[no-any-return]

    def change(self, task: Task, **changes: Any) -> Task:
        current = self.tasks.get(task.id)
        return self.tasks.update(current, current.with_changes(**changes), None)  # type: ignore[no-any-return]

    def due(self, start: datetime, end: datetime) -> list[str]:
        return [ref.task_id for ref in self.repo.due_between(start, end)]

    def inbox_of(self, user_id: str) -> list[Notification]:
        return list(self.inbox.find(user_id, PageRequest(limit=100)).items)

    def notification(self, task: Task, user_id: str = "creator") -> Notification:
        return Notification(
            new_id(), user_id, NotificationType.TASK_OVERDUE, "late", NOW, task.id, task.project_id
        )


@pytest.fixture(params=["memory", "dynamodb"])
def env(request: pytest.FixtureRequest) -> Env:
    if request.param == "dynamodb":
        request.getfixturevalue("moto_aws")
    return Env(request.param)


WINDOW = (NOW - timedelta(days=2), NOW + timedelta(hours=24))


class TestTheIndex:
    def test_open_dated_tasks_in_the_window_earliest_first_across_projects(self, env: Env) -> None:
        other_project = env.project()
        late = env.task(NOW - timedelta(days=1, hours=3))
        soon = env.task(NOW + timedelta(hours=1), other_project)  # tomorrow, UTC
        now = env.task(NOW)
        env.task(None)
        env.task(NOW + timedelta(hours=24, microseconds=1))  # just after the window
        env.task(NOW - timedelta(days=2, microseconds=1))  # just before it
        start = env.task(WINDOW[0])
        end = env.task(WINDOW[1])
        assert env.due(*WINDOW) == [start.id, late.id, now.id, soon.id, end.id]
        refs = env.repo.due_between(*WINDOW)
        assert [ref.due_date for ref in refs] == [
            WINDOW[0],
            late.due_date,
            NOW,
            soon.due_date,
            WINDOW[1],
        ]

    def test_closing_a_task_takes_it_out_and_reopening_puts_it_back(self, env: Env) -> None:
        done = env.task(NOW - timedelta(hours=1))
        cancelled = env.task(NOW + timedelta(hours=1), status=Status.CANCELLED)
        assert env.due(*WINDOW) == [done.id]
        done = env.change(done, status=Status.COMPLETED, completed_at=NOW)
        assert env.due(*WINDOW) == []
        env.change(done, status=Status.PENDING, completed_at=None)
        env.change(cancelled, status=Status.IN_PROGRESS)
        assert env.due(*WINDOW) == [done.id, cancelled.id]

    def test_a_due_date_removed_or_moved_follows_the_task(self, env: Env) -> None:
        task = env.task(NOW + timedelta(hours=1))
        task = env.change(task, due_date=None)
        assert env.due(*WINDOW) == []
        task = env.change(task, due_date=NOW + timedelta(days=5))
        assert env.due(*WINDOW) == []
        env.change(task, due_date=NOW - timedelta(days=1))
        assert [r.due_date for r in env.repo.due_between(*WINDOW)] == [NOW - timedelta(days=1)]

    def test_other_writes_keep_the_entry(self, env: Env) -> None:
        task = env.task(NOW + timedelta(hours=1))
        env.change(task, title="Renamed", assignee_id="someone")
        assert env.due(*WINDOW) == [task.id]

    def test_a_deleted_task_leaves_it(self, env: Env) -> None:
        task = env.task(NOW + timedelta(hours=1))
        env.tasks.delete(env.tasks.get(task.id), env.tasks.graph(env.project_id))
        assert env.due(*WINDOW) == []

    def test_tasks_reads_them_as_they_are(self, env: Env) -> None:
        task = env.task(NOW)
        changed = env.change(task, title="Now")
        assert env.repo.tasks([task.id, new_task_id(env.project_id)]) == {task.id: changed}


class TestNotifyOnce:
    def test_the_claim_and_the_notification_are_written_once(self, env: Env) -> None:
        task = env.task(NOW - timedelta(minutes=1))
        claim = due_claim(DueKind.OVERDUE, task.id, NOW - timedelta(minutes=1))
        assert env.repo.claimed([claim]) == set()
        first = env.notification(task)
        expires = NOW + timedelta(days=30)
        assert env.repo.notify_once(claim, task, first, expires) is True
        assert env.repo.notify_once(claim, task, env.notification(task), expires) is False
        assert env.repo.claimed([claim, "overdue#other"]) == {claim}
        assert [n.id for n in env.inbox_of("creator")] == [first.id]
        if env.kind == "dynamodb":
            stored = ClaimModel.get(claim)
            assert (stored.owner_id, stored.expires_at) == (first.id, expires)

    def test_nothing_is_written_for_a_task_closed_moved_or_gone(self, env: Env) -> None:
        done = env.task(NOW - timedelta(minutes=1))
        env.change(done, status=Status.COMPLETED)
        moved = env.task(NOW - timedelta(minutes=1))
        env.change(moved, due_date=NOW + timedelta(days=1))
        gone = env.task(NOW - timedelta(minutes=1))
        env.tasks.delete(env.tasks.get(gone.id), env.tasks.graph(env.project_id))
        for task in (done, moved, gone):
            claim = due_claim(DueKind.OVERDUE, task.id, NOW - timedelta(minutes=1))
            written = env.repo.notify_once(claim, task, env.notification(task), NOW)
            assert written is False
            assert env.repo.claimed([claim]) == set()
        assert env.inbox_of("creator") == []

    def test_nothing_is_written_once_the_project_is_deleted(self, env: Env) -> None:
        task = env.task(NOW - timedelta(minutes=1))
        if env.kind == "memory":
            del env.projects.projects[env.project_id]
        else:
            ProjectModel(id=env.project_id).delete()
        claim = due_claim(DueKind.OVERDUE, task.id, NOW - timedelta(minutes=1))
        assert env.repo.notify_once(claim, task, env.notification(task), NOW) is False
        assert env.repo.claimed([claim]) == set()
        assert env.inbox_of("creator") == []


def test_the_sweep_on_the_repository_tells_each_task_once(env: Env) -> None:
    clock = FakeClock(NOW)
    service = DueSweepService(env.repo, clock)
    soon = env.task(NOW + timedelta(hours=1), assignee_id="assignee")
    late = env.task(NOW - timedelta(minutes=1))
    done = env.task(NOW - timedelta(minutes=1))
    env.change(done, status=Status.COMPLETED)
    for _ in range(3):
        service.sweep()
        clock.advance(minutes=5)
    assert [(n.type, n.task_id) for n in env.inbox_of("assignee")] == [
        (NotificationType.TASK_DUE_SOON, soon.id)
    ]
    assert [(n.type, n.task_id) for n in env.inbox_of("creator")] == [
        (NotificationType.TASK_OVERDUE, late.id)
    ]


def test_the_window_covers_each_utc_day_it_touches() -> None:
    assert days_between(NOW - timedelta(days=2), NOW + timedelta(hours=24)) == [
        "2026-11-19",
        "2026-11-20",
        "2026-11-21",
        "2026-11-22",
    ]
    assert days_between(NOW, NOW) == ["2026-11-21"]


def test_the_index_holds_only_open_dated_tasks(moto_aws: None) -> None:
    env = Env("dynamodb")
    open_task = env.task(NOW)
    env.task(None)
    env.task(NOW, status=Status.COMPLETED)
    indexed = [row.id for row in TaskModel.open_by_due_day.query("2026-11-21")]
    assert indexed == [open_task.id]
    stored = TaskModel.get(open_task.id)
    assert stored.open_due_day == "2026-11-21"
