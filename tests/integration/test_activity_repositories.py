"""The comment, history, notification and email-directory contract, on the in-memory fakes and
on DynamoDB (moto): the fakes the service tests use behave like the real adapters."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ulid import ULID

from chalicelib.adapters.dynamodb.comments import (
    DynamoCommentRepository,
    DynamoEmailDirectory,
    DynamoHistoryRepository,
)
from chalicelib.adapters.dynamodb.identity import DynamoUserRepository
from chalicelib.adapters.dynamodb.notifications import DynamoNotificationRepository
from chalicelib.adapters.dynamodb.projects import DynamoProjectRepository
from chalicelib.adapters.dynamodb.tasks import DynamoTaskRepository
from chalicelib.domain.activity import EventType, HistoryEvent, Notification, NotificationType
from chalicelib.domain.comments import Comment
from chalicelib.domain.errors import BadRequest, NotFound
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.tasks import Task
from chalicelib.domain.users import Role, Session, User
from tests.fakes import (
    InMemoryCommentRepository,
    InMemoryEmailDirectory,
    InMemoryHistoryRepository,
    InMemoryNotificationRepository,
    InMemoryProjectRepository,
    InMemorySessionRepository,
    InMemoryTaskRepository,
    InMemoryUserRepository,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@dataclass
class Env:
    kind: str
    users: Any
    projects: Any
    tasks: Any
    comments: Any
    history: Any
    notifications: Any
    directory: Any

    def account(self, email: str) -> tuple[str, str]:
        """A registered user (with the email's claim) and their personal project."""
        user_id, project_id = new_id(), new_id()
        user = User(user_id, email, "N", Role.MEMBER, "UTC", "h", project_id, NOW, NOW)
        project = Project(project_id, "Personal", "", user_id, NOW, NOW, personal=True)
        owner = Membership(project_id, user_id, ProjectRole.OWNER, NOW)
        session = Session(new_id(), user_id, new_id(), NOW, NOW + timedelta(days=1))
        self.users.create_account(user, project, owner, session, first_admin=False)
        return user_id, project_id

    def task(self, project_id: str, title: str = "T") -> Task:
        task = Task(new_id() + project_id, project_id, title, "u", NOW, NOW)
        return self.tasks.create(task, None)  # type: ignore[no-any-return]


@pytest.fixture(params=["memory", "dynamodb"])
def env(request: pytest.FixtureRequest) -> Env:
    if request.param == "memory":
        projects = InMemoryProjectRepository()
        users = InMemoryUserRepository(InMemorySessionRepository(), projects)
        tasks = InMemoryTaskRepository(projects)
        return Env(
            "memory",
            users,
            projects,
            tasks,
            InMemoryCommentRepository(tasks),
            InMemoryHistoryRepository(tasks.records),
            InMemoryNotificationRepository(tasks.records),
            InMemoryEmailDirectory(users),
        )
    request.getfixturevalue("moto_aws")
    return Env(
        "dynamodb",
        DynamoUserRepository(),
        DynamoProjectRepository(),
        DynamoTaskRepository(),
        DynamoCommentRepository(),
        DynamoHistoryRepository(),
        DynamoNotificationRepository(),
        DynamoEmailDirectory(),
    )


def comment(task: Task, body: str = "hello", author: str = "u") -> Comment:
    return Comment(new_id(), task.id, task.project_id, author, body, NOW)


def note(user_id: str, millis: int, **fields: Any) -> Notification:
    """A notification whose id (and so its place in the order) is fixed by `millis`."""
    fields.setdefault("type", NotificationType.TASK_OVERDUE)
    fields.setdefault("message", f"m{millis}")
    return Notification(
        id=str(ULID.from_timestamp(millis)), user_id=user_id, created_at=NOW, **fields
    )


def messages(page: Any) -> list[str]:
    return [n.message for n in page.items]


class TestComments:
    def test_add_get_delete(self, env: Env) -> None:
        _, project = env.account("ada@example.com")
        task = env.task(project)
        written = comment(task, "first")
        assert env.comments.add(written) == written
        assert env.comments.get(task.id, written.id) == written
        assert env.comments.get(task.id, "01NOSUCHCOMMENT") is None
        assert env.comments.get("other-task", written.id) is None
        env.comments.delete(written)
        assert env.comments.get(task.id, written.id) is None
        with pytest.raises(NotFound):
            env.comments.delete(written)

    def test_a_comment_needs_its_task_and_project(self, env: Env) -> None:
        _, project = env.account("ada@example.com")
        ghost = Task(new_id() + project, project, "never written", "u", NOW, NOW)
        with pytest.raises(NotFound):
            env.comments.add(comment(ghost))
        gone = env.task(project)
        stored = env.projects.get(project)
        env.projects.delete(stored)
        with pytest.raises(NotFound):
            env.comments.add(comment(gone))
        assert env.comments.find(gone.id, PageRequest()).items == []

    def test_pages_oldest_first_per_task(self, env: Env) -> None:
        _, project = env.account("ada@example.com")
        task, other = env.task(project), env.task(project)
        for index in range(5):
            env.comments.add(comment(task, f"c{index}"))
        env.comments.add(comment(other, "elsewhere"))
        first = env.comments.find(task.id, PageRequest(limit=2))
        assert [c.body for c in first.items] == ["c0", "c1"]
        second = env.comments.find(task.id, PageRequest(limit=2, cursor=first.next_cursor))
        third = env.comments.find(task.id, PageRequest(limit=2, cursor=second.next_cursor))
        assert [c.body for c in second.items + third.items] == ["c2", "c3", "c4"]
        assert third.next_cursor is None
        exact = env.comments.find(task.id, PageRequest(limit=5))
        assert (len(exact.items), exact.next_cursor) == (5, None)
        with pytest.raises(BadRequest):
            env.comments.find(other.id, PageRequest(cursor=first.next_cursor))

    def test_records_are_written_with_the_comment(self, env: Env) -> None:
        user, project = env.account("ada@example.com")
        task = env.task(project)
        written = comment(task)
        event = HistoryEvent(
            new_id(),
            task.id,
            EventType.COMMENT_CREATED,
            "u",
            NOW,
            {"comment_id": (None, written.id)},
        )
        mention = Notification(
            new_id(), user, NotificationType.COMMENT_MENTION, "m", NOW, task.id, project
        )
        env.comments.add(written, [event, mention])
        assert env.history.find(task.id, PageRequest()).items == [event]
        assert env.notifications.find(user, PageRequest()).items == [mention]


class TestHistory:
    def test_events_of_one_task_oldest_first_with_their_changes(self, env: Env) -> None:
        _, project = env.account("ada@example.com")
        task = env.task(project)
        events = [
            HistoryEvent(
                new_id(), task.id, EventType.TASK_UPDATED, "u", NOW, {"title": (str(i), str(i + 1))}
            )
            for i in range(3)
        ]
        env.tasks.update(task, task.with_changes(title="x"), None, [events[0]])
        env.comments.add(comment(task), events[1:])
        other = env.task(project)
        env.comments.add(
            comment(other),
            [HistoryEvent(new_id(), other.id, EventType.COMMENT_CREATED, "u", NOW, {})],
        )
        first = env.history.find(task.id, PageRequest(limit=2))
        rest = env.history.find(task.id, PageRequest(limit=2, cursor=first.next_cursor))
        assert first.items + rest.items == events
        assert rest.next_cursor is None
        assert rest.items[0].changes == {"title": ("2", "3")}
        with pytest.raises(BadRequest):
            env.history.find(other.id, PageRequest(cursor=first.next_cursor))

    def test_values_of_any_json_type_come_back(self, env: Env) -> None:
        _, project = env.account("ada@example.com")
        task = env.task(project)
        changes = {"tags": (None, ["a", "b"]), "due_date": ("2026-12-01T00:00:00.000Z", None)}
        event = HistoryEvent(new_id(), task.id, EventType.TASK_UPDATED, "u", NOW, changes)
        env.comments.add(comment(task), [event])
        (back,) = env.history.find(task.id, PageRequest()).items
        assert back.changes == changes


class TestNotifications:
    def test_each_user_newest_first(self, env: Env) -> None:
        env.notifications.add([note("me", 1_000), note("you", 2_000), note("me", 3_000)])
        assert messages(env.notifications.find("me", PageRequest())) == ["m3000", "m1000"]
        assert messages(env.notifications.find("you", PageRequest())) == ["m2000"]
        assert env.notifications.find("nobody", PageRequest()).items == []

    def test_fields_come_back(self, env: Env) -> None:
        written = note(
            "me", 1_000, type=NotificationType.TASK_ASSIGNED, task_id="t", project_id="p"
        )
        env.notifications.add([written])
        assert env.notifications.find("me", PageRequest()).items == [written]

    def test_mark_one_read(self, env: Env) -> None:
        mine, theirs = note("me", 1_000), note("you", 2_000)
        env.notifications.add([mine, theirs])
        assert env.notifications.mark_read("me", theirs.id) is False
        assert env.notifications.mark_read("me", "01NOSUCHNOTIFICATION") is False
        assert env.notifications.find("you", PageRequest()).items == [theirs]
        assert env.notifications.mark_read("me", mine.id) is True
        assert env.notifications.find("me", PageRequest()).items == [replace(mine, read=True)]
        assert env.notifications.find("me", PageRequest(), unread_only=True).items == []

    def test_read_all_reads_what_is_there_and_nothing_later(self, env: Env) -> None:
        env.notifications.add([note("me", m) for m in (1_000, 2_000, 3_000)] + [note("you", 500)])
        env.notifications.mark_all_read("me")
        assert all(n.read for n in env.notifications.find("me", PageRequest()).items)
        assert env.notifications.find("me", PageRequest(), unread_only=True).items == []
        assert [n.read for n in env.notifications.find("you", PageRequest()).items] == [False]
        env.notifications.add([note("me", 4_000)])
        env.notifications.mark_all_read("nobody")
        unread = env.notifications.find("me", PageRequest(), unread_only=True)
        assert messages(unread) == ["m4000"]
        assert [n.read for n in env.notifications.find("me", PageRequest()).items] == [
            False,
            True,
            True,
            True,
        ]
        env.notifications.mark_all_read("me")
        assert env.notifications.find("me", PageRequest(), unread_only=True).items == []

    def test_unread_pages_skip_what_was_read_one_by_one(self, env: Env) -> None:
        notes = [note("me", m * 1_000) for m in range(1, 8)]
        env.notifications.add(notes)
        env.notifications.mark_all_read("me")
        later = [note("me", m * 1_000) for m in range(8, 14)]
        env.notifications.add(later)
        for read in later[1::2]:
            env.notifications.mark_read("me", read.id)
        collected, cursor = [], None
        for _ in range(10):
            page = env.notifications.find(
                "me", PageRequest(limit=2, cursor=cursor), unread_only=True
            )
            collected += messages(page)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert collected == ["m12000", "m10000", "m8000"]
        everything = env.notifications.find("me", PageRequest(limit=100))
        assert len(everything.items) == 13
        first = env.notifications.find("me", PageRequest(limit=1), unread_only=True)
        with pytest.raises(BadRequest):  # a cursor of the unread list is not one of the full list
            env.notifications.find("me", PageRequest(cursor=first.next_cursor))

    def test_a_cursor_of_another_user_is_refused(self, env: Env) -> None:
        env.notifications.add([note("me", 1_000), note("me", 2_000)])
        page = env.notifications.find("me", PageRequest(limit=1))
        assert page.next_cursor
        with pytest.raises(BadRequest):
            env.notifications.find("you", PageRequest(cursor=page.next_cursor))


class TestEmailDirectory:
    def test_owners_of_known_addresses_only(self, env: Env) -> None:
        ada, _ = env.account("ada@example.com")
        bob, _ = env.account("bob@example.com")
        found = env.directory.user_ids(["bob@example.com", "nobody@example.com", "ada@example.com"])
        assert found == {"bob@example.com": bob, "ada@example.com": ada}
        assert env.directory.user_ids([]) == {}
