"""Comments, task history and notifications: the services on the in-memory fakes.

The task fake's `records` stands for the history and notification tables, so what TaskService
writes on a change (history events, notifications) is what these services read back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from ulid import ULID

from chalicelib.domain.activity import EventType, HistoryEvent, Notification, NotificationType
from chalicelib.domain.comments import (
    BODY_MAX,
    MAX_MENTIONS,
    Comment,
    CommentCreate,
    mentioned_emails,
)
from chalicelib.domain.errors import BadRequest, Forbidden, NotFound
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.tasks import AssignInput, Status, Task, TaskCreate, TaskUpdate
from chalicelib.domain.users import RegisterInput
from chalicelib.services.comments import CommentService, HistoryService
from chalicelib.services.notifications import NotificationService
from chalicelib.services.tasks import TaskService
from tests.fakes import (
    InMemoryCommentRepository,
    InMemoryEmailDirectory,
    InMemoryHistoryRepository,
    InMemoryNotificationRepository,
    InMemoryTaskRepository,
    NoPrefetch,
    refuse_internal_urls,
)
from tests.unit.conftest import World

ROLES = {
    "admin": ProjectRole.ADMIN,
    "member": ProjectRole.MEMBER,
    "other": ProjectRole.MEMBER,
    "viewer": ProjectRole.VIEWER,
}


@dataclass
class Team:
    world: World
    tasks: TaskService
    task_repo: InMemoryTaskRepository
    comments: CommentService
    comment_repo: InMemoryCommentRepository
    history: HistoryService
    notifications: NotificationService
    notification_repo: InMemoryNotificationRepository
    project: Project
    people: dict[str, Principal]

    def __getitem__(self, name: str) -> Principal:
        return self.people[name]

    def task(self, who: str = "member", **fields: object) -> Task:
        fields.setdefault("project_id", self.project.id)
        fields.setdefault("title", "Ship it")
        return self.tasks.create(self[who], TaskCreate.model_validate(fields))

    def say(self, who: str, task: Task, body: str) -> object:
        return self.comments.post(self[who], task.id, CommentCreate(body=body))

    def inbox(self, who: str, *, unread_only: bool = False) -> list[Notification]:
        page = self.notifications.find(self[who], PageRequest(limit=100), unread_only=unread_only)
        return page.items


@pytest.fixture
def team(world: World) -> Team:
    projects = world.users_repo.project_repo
    task_repo = InMemoryTaskRepository(projects)
    comment_repo = InMemoryCommentRepository(task_repo)
    notification_repo = InMemoryNotificationRepository(task_repo.records)
    prefetch = NoPrefetch()
    people = {}
    for name in ("owner", *ROLES, "stranger"):
        result = world.auth.register(
            RegisterInput(email=f"{name}@example.com", password="long enough pw", name=name.title())
        )
        people[name] = world.auth.authenticate(result.access_token)
    now = world.clock.now()
    project = Project(new_id(), "Team", "", people["owner"].user_id, now, now)
    projects.create(
        project, Membership(project.id, people["owner"].user_id, ProjectRole.OWNER, now)
    )
    for name, role in ROLES.items():
        projects.add_member(Membership(project.id, people[name].user_id, role, now))
    return Team(
        world=world,
        tasks=TaskService(
            task_repo, projects, world.users_repo, prefetch, world.clock, refuse_internal_urls
        ),
        task_repo=task_repo,
        comments=CommentService(
            comment_repo,
            task_repo,
            projects,
            world.users_repo,
            InMemoryEmailDirectory(world.users_repo),
            prefetch,
            world.clock,
        ),
        comment_repo=comment_repo,
        history=HistoryService(
            InMemoryHistoryRepository(task_repo.records), task_repo, projects, prefetch
        ),
        notifications=NotificationService(notification_repo),
        notification_repo=notification_repo,
        project=project,
        people=people,
    )


class TestMentionParsing:
    def test_addresses_after_an_at_sign_each_once_lowercased_in_order(self) -> None:
        body = "@Bob@Example.com, see (@eve@x.io). Again @bob@example.com and @carol@x.co.uk!"
        assert mentioned_emails(body) == ["bob@example.com", "eve@x.io", "carol@x.co.uk"]

    def test_plain_addresses_and_malformed_ones_are_no_mentions(self) -> None:
        assert mentioned_emails("mail ada@example.com or x@@y.io or @nobody or @a@b") == []

    def test_at_most_max_mentions_are_looked_at(self) -> None:
        body = " ".join(f"@u{i}@example.com" for i in range(MAX_MENTIONS + 5))
        emails = mentioned_emails(body)
        assert len(emails) == MAX_MENTIONS
        assert emails[-1] == f"u{MAX_MENTIONS - 1}@example.com"

    @pytest.mark.parametrize("body", ["", "   \n", "x" * (BODY_MAX + 1)])
    def test_a_body_is_1_to_10000_characters_not_only_blanks(self, body: str) -> None:
        with pytest.raises(ValidationError):
            CommentCreate(body=body)

    def test_unknown_fields_are_rejected(self) -> None:
        with pytest.raises(ValidationError):
            CommentCreate.model_validate({"body": "hi", "author_id": "me"})
        assert CommentCreate(body="x" * BODY_MAX).body == "x" * BODY_MAX


class TestComments:
    def test_posting_stores_the_comment_and_records_history(self, team: Team) -> None:
        task = team.task()
        comment = team.say("member", task, "Looks good")
        assert (comment.task_id, comment.author_id, comment.body) == (  # type: ignore[attr-defined]
            task.id,
            team["member"].user_id,
            "Looks good",
        )
        assert comment.created_at == team.world.clock.now()  # type: ignore[attr-defined]
        events = team.history.find(team["viewer"], task.id, PageRequest()).items
        assert [e.type for e in events] == [EventType.TASK_CREATED, EventType.COMMENT_CREATED]
        assert events[-1].actor_id == team["member"].user_id
        assert events[-1].changes == {"comment_id": (None, comment.id)}  # type: ignore[attr-defined]

    def test_comments_list_oldest_first_page_by_page(self, team: Team) -> None:
        task = team.task()
        for index in range(5):
            team.say("member", task, f"#{index}")
        first = team.comments.find(team["viewer"], task.id, PageRequest(limit=2))
        assert [c.body for c in first.items] == ["#0", "#1"]
        rest = team.comments.find(
            team["viewer"], task.id, PageRequest(limit=10, cursor=first.next_cursor)
        )
        assert [c.body for c in rest.items] == ["#2", "#3", "#4"]
        assert rest.next_cursor is None
        other = team.task(title="Other")
        with pytest.raises(BadRequest):
            team.comments.find(team["member"], other.id, PageRequest(cursor=first.next_cursor))

    def test_mentions_notify_members_once_and_nobody_else(self, team: Team) -> None:
        task = team.task(title="Release")
        team.say(
            "member",
            task,
            "@admin@example.com @VIEWER@example.com @admin@example.com "
            "@stranger@example.com @nobody@example.com @member@example.com",
        )
        for name in ("admin", "viewer"):
            (note,) = team.inbox(name)
            assert note.type == NotificationType.COMMENT_MENTION
            assert (note.task_id, note.project_id, note.read) == (task.id, team.project.id, False)
            assert note.message == 'Member mentioned you on "Release"'
        for name in ("member", "stranger", "owner", "other"):
            assert team.inbox(name) == [], name

    def test_viewers_read_but_cannot_comment_and_strangers_see_nothing(self, team: Team) -> None:
        task = team.task()
        team.say("member", task, "hello")
        assert len(team.comments.find(team["viewer"], task.id, PageRequest()).items) == 1
        with pytest.raises(Forbidden):
            team.say("viewer", task, "me too")
        for attempt in (
            lambda: team.comments.find(team["stranger"], task.id, PageRequest()),
            lambda: team.say("stranger", task, "hi"),
            lambda: team.comments.delete(team["stranger"], task.id, "01ANYTHING"),
            lambda: team.history.find(team["stranger"], task.id, PageRequest()),
            lambda: team.say("member", team.task(who="stranger", project_id=None), "hi"),
            lambda: team.say("member", task.with_changes(id="no-such-task"), "hi"),
        ):
            with pytest.raises(NotFound):
                attempt()

    def test_author_or_admin_may_delete(self, team: Team) -> None:
        task = team.task()
        mine = team.say("member", task, "mine")
        theirs = team.say("other", task, "theirs")
        with pytest.raises(Forbidden):
            team.comments.delete(team["other"], task.id, mine.id)  # type: ignore[attr-defined]
        with pytest.raises(Forbidden):
            team.comments.delete(team["viewer"], task.id, mine.id)  # type: ignore[attr-defined]
        team.comments.delete(team["member"], task.id, mine.id)  # type: ignore[attr-defined]
        team.comments.delete(team["admin"], task.id, theirs.id)  # type: ignore[attr-defined]
        assert team.comments.find(team["member"], task.id, PageRequest()).items == []
        with pytest.raises(NotFound):
            team.comments.delete(team["admin"], task.id, mine.id)  # type: ignore[attr-defined]

    def test_an_author_demoted_to_viewer_cannot_delete(self, team: Team) -> None:
        task = team.task()
        mine = team.say("other", task, "mine")
        repo = team.world.users_repo.project_repo
        repo.set_member_role(
            Membership(
                team.project.id, team["other"].user_id, ProjectRole.VIEWER, team.world.clock.now()
            )
        )
        with pytest.raises(Forbidden):
            team.comments.delete(team["other"], task.id, mine.id)  # type: ignore[attr-defined]

    def test_a_task_deleted_meanwhile_takes_no_comment(self, team: Team) -> None:
        task = team.task()
        comment = Comment(new_id(), task.id, task.project_id, "u", "b", team.world.clock.now())
        del team.task_repo.tasks[task.id]
        with pytest.raises(NotFound):
            team.comment_repo.add(comment)
        assert team.comment_repo.comments == {}


class TestHistory:
    def test_every_change_is_an_event_with_old_and_new_values_oldest_first(
        self, team: Team
    ) -> None:
        task = team.task(title="Draft")
        team.world.clock.advance(minutes=1)
        team.tasks.update(team["member"], task.id, TaskUpdate(title="Final"))
        team.tasks.assign(team["member"], task.id, AssignInput(assignee_id=team["viewer"].user_id))
        team.tasks.complete(team["admin"], task.id)
        team.say("other", task, "done!")
        events = team.history.find(team["viewer"], task.id, PageRequest()).items
        assert [e.type for e in events] == [
            EventType.TASK_CREATED,
            EventType.TASK_UPDATED,
            EventType.TASK_ASSIGNED,
            EventType.TASK_COMPLETED,
            EventType.COMMENT_CREATED,
        ]
        assert events[0].changes["title"] == (None, "Draft")
        assert events[1].changes == {"title": ("Draft", "Final")}
        assert events[2].changes == {"assignee_id": (None, team["viewer"].user_id)}
        assert events[3].changes["status"] == ("pending", "completed")
        assert [e.actor_id for e in events] == [
            team[n].user_id for n in ("member", "member", "member", "admin", "other")
        ]
        page = team.history.find(team["viewer"], task.id, PageRequest(limit=3))
        rest = team.history.find(team["viewer"], task.id, PageRequest(cursor=page.next_cursor))
        assert [e.id for e in page.items + rest.items] == [e.id for e in events]
        assert all(isinstance(e, HistoryEvent) for e in events)


def notification(user_id: str, millis: int, **fields: object) -> Notification:
    fields.setdefault("type", NotificationType.TASK_DUE_SOON)
    fields.setdefault("message", f"n{millis}")
    return Notification(
        id=str(ULID.from_timestamp(millis)),
        user_id=user_id,
        created_at=datetime(2026, 11, 21, tzinfo=UTC),
        **fields,  # type: ignore[arg-type]
    )


class TestNotifications:
    def test_task_changes_notify_assignee_and_creator_not_the_actor(self, team: Team) -> None:
        task = team.task(title="Report")
        team.tasks.update(team["admin"], task.id, TaskUpdate(assignee_id=team["viewer"].user_id))
        (assigned,) = team.inbox("viewer")
        assert (assigned.type, assigned.task_id, assigned.message) == (
            NotificationType.TASK_ASSIGNED,
            task.id,
            'Admin assigned you "Report"',
        )
        team.tasks.update(team["admin"], task.id, TaskUpdate(status=Status.IN_PROGRESS))
        creator = team.inbox("member")
        assert [n.type for n in creator] == [NotificationType.TASK_STATUS_CHANGED]
        assert [n.type for n in team.inbox("viewer")] == [
            NotificationType.TASK_STATUS_CHANGED,
            NotificationType.TASK_ASSIGNED,
        ]
        assert team.inbox("admin") == []

    def test_each_user_sees_only_their_own_newest_first(self, team: Team) -> None:
        me, other = team["member"].user_id, team["other"].user_id
        team.notification_repo.add(
            [notification(me, 1_000), notification(other, 2_000), notification(me, 3_000)]
        )
        assert [n.message for n in team.inbox("member")] == ["n3000", "n1000"]
        assert [n.message for n in team.inbox("other")] == ["n2000"]

    def test_mark_one_read_only_if_it_is_mine(self, team: Team) -> None:
        mine = notification(team["member"].user_id, 1_000)
        team.notification_repo.add([mine])
        with pytest.raises(NotFound):
            team.notifications.mark_read(team["other"], mine.id)
        with pytest.raises(NotFound):
            team.notifications.mark_read(team["member"], "no-such-id")
        assert team.inbox("member", unread_only=True) == [mine]
        team.notifications.mark_read(team["member"], mine.id)
        assert team.inbox("member", unread_only=True) == []
        assert [n.read for n in team.inbox("member")] == [True]

    def test_read_all_marks_what_exists_and_not_what_comes_later(self, team: Team) -> None:
        me = team["member"].user_id
        team.notification_repo.add([notification(me, m) for m in (1_000, 2_000, 3_000)])
        team.notifications.mark_read(team["member"], team.inbox("member")[1].id)
        team.notifications.mark_all_read(team["member"])
        assert team.inbox("member", unread_only=True) == []
        assert all(n.read for n in team.inbox("member"))
        team.notification_repo.add([notification(me, 4_000)])
        assert [n.message for n in team.inbox("member", unread_only=True)] == ["n4000"]
        team.notifications.mark_all_read(team["other"])  # nothing to read: no error
        assert [n.read for n in team.inbox("member")] == [False, True, True, True]

    def test_pages_of_unread_notifications(self, team: Team) -> None:
        me = team["member"].user_id
        team.notification_repo.add([notification(me, m * 1_000) for m in range(1, 6)])
        first = team.notifications.find(team["member"], PageRequest(limit=2), unread_only=True)
        assert [n.message for n in first.items] == ["n5000", "n4000"]
        rest = team.notifications.find(
            team["member"], PageRequest(limit=5, cursor=first.next_cursor), unread_only=True
        )
        assert [n.message for n in rest.items] == ["n3000", "n2000", "n1000"]
        assert rest.next_cursor is None
        with pytest.raises(BadRequest):
            team.notifications.find(team["member"], PageRequest(cursor=first.next_cursor))
