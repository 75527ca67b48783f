from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from chalicelib.domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.tasks import AssignInput, Priority, Status, TaskCreate, TaskUpdate
from chalicelib.domain.users import ProfileUpdate, RegisterInput
from chalicelib.services.tasks import TaskFilters, TaskService
from tests.fakes import InMemoryTaskRepository, NoPrefetch, refuse_internal_urls
from tests.unit.conftest import World


@dataclass
class Team:
    world: World
    service: TaskService
    repo: InMemoryTaskRepository
    project: Project
    owner: Principal
    admin: Principal
    member: Principal
    viewer: Principal
    stranger: Principal


def principal(world: World, email: str) -> Principal:
    result = world.auth.register(
        RegisterInput(email=email, password="long enough pw", name=email[:3])
    )
    return world.auth.authenticate(result.access_token)


@pytest.fixture
def team(world: World) -> Team:
    projects = world.users_repo.project_repo
    repo = InMemoryTaskRepository(projects)
    service = TaskService(
        repo, projects, world.users_repo, NoPrefetch(), world.clock, refuse_internal_urls
    )
    people = {
        name: principal(world, f"{name}@example.com")
        for name in ("owner", "admin", "member", "viewer", "stranger")
    }
    now = world.clock.now()
    project = Project(new_id(), "Team", "", people["owner"].user_id, now, now)
    projects.create(
        project, Membership(project.id, people["owner"].user_id, ProjectRole.OWNER, now)
    )
    for name, role in (
        ("admin", ProjectRole.ADMIN),
        ("member", ProjectRole.MEMBER),
        ("viewer", ProjectRole.VIEWER),
    ):
        projects.add_member(Membership(project.id, people[name].user_id, role, now))
    return Team(world, service, repo, project, **people)


def create(team: Team, who: Principal | None = None, **fields: object) -> object:
    fields.setdefault("project_id", team.project.id)
    fields.setdefault("title", "A task")
    return team.service.create(who or team.member, TaskCreate.model_validate(fields))


class TestCreate:
    def test_defaults_and_personal_project(self, team: Team) -> None:
        task = team.service.create(team.member, TaskCreate(title="Mine"))
        assert task.project_id == team.world.users_repo.get(team.member.user_id).personal_project_id  # type: ignore[union-attr]
        assert (task.status, task.priority, task.created_by) == (
            Status.PENDING,
            Priority.MEDIUM,
            team.member.user_id,
        )

    def test_a_plain_date_is_the_end_of_that_day_in_the_callers_zone(self, team: Team) -> None:
        team.world.users.update_profile(team.member, ProfileUpdate(timezone="Europe/Paris"))
        task = team.service.create(
            team.member, TaskCreate(title="Due", due_date=date(2026, 12, 24))
        )
        assert task.due_date == datetime(2026, 12, 24, 22, 59, 59, tzinfo=UTC)

    def test_viewers_cannot_create_and_strangers_do_not_see_the_project(self, team: Team) -> None:
        with pytest.raises(Forbidden):
            create(team, team.viewer)
        with pytest.raises(NotFound):
            create(team, team.stranger)

    def test_the_assignee_must_be_a_member(self, team: Team) -> None:
        assert create(team, assignee_id=team.viewer.user_id).assignee_id == team.viewer.user_id  # type: ignore[attr-defined]
        with pytest.raises(ValidationFailed):
            create(team, assignee_id=team.stranger.user_id)

    def test_completed_at_is_set_for_a_task_created_completed(self, team: Team) -> None:
        assert create(team, status="completed").completed_at == team.world.clock.now()  # type: ignore[attr-defined]


class TestSubtasksAndDependencies:
    def test_parent_tracks_open_subtasks_and_blocks_completion(self, team: Team) -> None:
        parent = create(team, title="Parent")
        child = create(team, title="Child", parent_id=parent.id)  # type: ignore[attr-defined]
        with pytest.raises(Conflict) as blocked:
            team.service.complete(team.member, parent.id)  # type: ignore[attr-defined]
        assert {"loc": ["subtasks", child.id], "message": "not completed"} in blocked.value.details  # type: ignore[attr-defined]
        team.service.complete(team.member, child.id)  # type: ignore[attr-defined]
        assert team.service.complete(team.member, parent.id).status == Status.COMPLETED  # type: ignore[attr-defined]

    def test_subtasks_are_one_level_and_in_the_same_project(self, team: Team) -> None:
        parent = create(team)
        child = create(team, parent_id=parent.id)  # type: ignore[attr-defined]
        with pytest.raises(ValidationFailed):
            create(team, parent_id=child.id)  # type: ignore[attr-defined]
        elsewhere = team.service.create(team.member, TaskCreate(title="Personal"))
        with pytest.raises(ValidationFailed):
            create(team, parent_id=elsewhere.id)

    def test_dependencies_block_in_progress_until_completed(self, team: Team) -> None:
        first = create(team, title="First")
        second = create(team, title="Second", depends_on=[first.id])  # type: ignore[attr-defined]
        with pytest.raises(Conflict) as blocked:
            team.service.update(team.member, second.id, TaskUpdate(status=Status.IN_PROGRESS))  # type: ignore[attr-defined]
        assert blocked.value.details[0]["loc"] == ["depends_on", first.id]  # type: ignore[attr-defined]
        team.service.complete(team.member, first.id)  # type: ignore[attr-defined]
        assert (
            team.service.update(
                team.member, second.id, TaskUpdate(status=Status.IN_PROGRESS)
            ).status
            == Status.IN_PROGRESS
        )  # type: ignore[attr-defined]

    def test_a_cycle_is_422_naming_it(self, team: Team) -> None:
        a = create(team, title="A")
        b = create(team, title="B", depends_on=[a.id])  # type: ignore[attr-defined]
        c = create(team, title="C", depends_on=[b.id])  # type: ignore[attr-defined]
        with pytest.raises(ValidationFailed) as cycle:
            team.service.update(team.member, a.id, TaskUpdate(depends_on=[c.id]))  # type: ignore[attr-defined]
        assert cycle.value.details[0]["cycle"] == [a.id, c.id, b.id, a.id]  # type: ignore[attr-defined]
        with pytest.raises(ValidationFailed):
            team.service.update(team.member, a.id, TaskUpdate(depends_on=[a.id]))  # type: ignore[attr-defined]

    def test_dependencies_must_be_in_the_project(self, team: Team) -> None:
        elsewhere = team.service.create(team.member, TaskCreate(title="Personal"))
        with pytest.raises(ValidationFailed):
            create(team, depends_on=[elsewhere.id])
        with pytest.raises(ValidationFailed):
            create(team, depends_on=["01NOSUCHTASK"])


class TestUpdateAndDelete:
    def test_if_match_and_null_clears(self, team: Team) -> None:
        task = create(team, due_date="2026-12-01T10:00:00Z")
        with pytest.raises(PreconditionFailed):
            team.service.update(
                team.member, task.id, TaskUpdate(title="x"), expected_version=task.version + 1
            )  # type: ignore[attr-defined]
        cleared = team.service.update(
            team.member, task.id, TaskUpdate.model_validate({"due_date": None}), task.version
        )  # type: ignore[attr-defined]
        assert cleared.due_date is None
        assert cleared.version == task.version + 1  # type: ignore[attr-defined]

    def test_viewers_cannot_change_and_strangers_get_404(self, team: Team) -> None:
        task = create(team)
        with pytest.raises(Forbidden):
            team.service.update(team.viewer, task.id, TaskUpdate(title="x"))  # type: ignore[attr-defined]
        with pytest.raises(NotFound):
            team.service.get(team.stranger, task.id)  # type: ignore[attr-defined]
        assert team.service.get(team.viewer, task.id).id == task.id  # type: ignore[attr-defined]

    def test_assign_and_unassign(self, team: Team) -> None:
        task = create(team)
        assigned = team.service.assign(
            team.member, task.id, AssignInput(assignee_id=team.admin.user_id)
        )  # type: ignore[attr-defined]
        assert assigned.assignee_id == team.admin.user_id
        assert (
            team.service.assign(team.member, task.id, AssignInput(assignee_id=None)).assignee_id
            is None
        )  # type: ignore[attr-defined]

    def test_delete_cascades_to_subtasks_and_dependents(self, team: Team) -> None:
        parent = create(team)
        child = create(team, parent_id=parent.id)  # type: ignore[attr-defined]
        dependent = create(team, depends_on=[parent.id])  # type: ignore[attr-defined]
        team.service.delete(team.member, parent.id)  # type: ignore[attr-defined]
        assert team.repo.get(child.id) is None  # type: ignore[attr-defined]
        assert team.repo.get(dependent.id).depends_on == ()  # type: ignore[attr-defined, union-attr]

    def test_members_delete_their_own_tasks_admins_any(self, team: Team) -> None:
        task = create(team, team.owner)
        with pytest.raises(Forbidden):
            team.service.delete(team.member, task.id)  # type: ignore[attr-defined]
        team.service.delete(team.admin, task.id)  # type: ignore[attr-defined]
        with pytest.raises(NotFound):
            team.service.get(team.owner, task.id)  # type: ignore[attr-defined]


class TestFind:
    def test_filters_sorts_and_pages(self, team: Team) -> None:
        now = team.world.clock.now()
        due = [now + timedelta(days=d) for d in (3, 1, 2)]
        for index, when in enumerate(due):
            create(
                team,
                title=f"T{index}",
                due_date=when.isoformat(),
                priority=["low", "high", "urgent"][index],
            )
        create(team, title="Undated")
        service = team.service
        by_due = service.find(
            team.viewer, TaskFilters(project_id=team.project.id, sort="due_date"), PageRequest()
        )
        assert [t.title for t in by_due.items] == ["T1", "T2", "T0", "Undated"]
        by_due_desc = service.find(
            team.viewer, TaskFilters(project_id=team.project.id, sort="-due_date"), PageRequest()
        )
        assert [t.title for t in by_due_desc.items] == ["T0", "T2", "T1", "Undated"]
        urgent = service.find(
            team.viewer,
            TaskFilters(project_id=team.project.id, priorities=frozenset({Priority.URGENT})),
            PageRequest(),
        )
        assert [t.title for t in urgent.items] == ["T2"]
        first = service.find(
            team.viewer, TaskFilters(project_id=team.project.id), PageRequest(limit=3)
        )
        rest = service.find(
            team.viewer,
            TaskFilters(project_id=team.project.id),
            PageRequest(limit=3, cursor=first.next_cursor),
        )
        assert [t.title for t in first.items + rest.items] == ["Undated", "T2", "T1", "T0"]
        assert rest.next_cursor is None

    def test_overdue_and_none(self, team: Team) -> None:
        now = team.world.clock.now()
        create(team, title="Late", due_date=(now - timedelta(hours=1)).isoformat())
        create(
            team,
            title="Late but done",
            due_date=(now - timedelta(hours=1)).isoformat(),
            status="completed",
        )
        create(team, title="Later", due_date=(now + timedelta(hours=1)).isoformat())
        create(team, title="Whenever")
        find = team.service.find
        overdue = find(
            team.member, TaskFilters(project_id=team.project.id, due="overdue"), PageRequest()
        )
        assert [t.title for t in overdue.items] == ["Late"]
        undated = find(
            team.member, TaskFilters(project_id=team.project.id, due="none"), PageRequest()
        )
        assert [t.title for t in undated.items] == ["Whenever"]

    def test_assignee_me_spans_my_projects(self, team: Team) -> None:
        create(team, title="Team task", assignee_id=team.member.user_id)
        team.service.create(
            team.member, TaskCreate(title="Own task", assignee_id=team.member.user_id)
        )
        create(team, title="Someone else's", assignee_id=team.admin.user_id)
        mine = team.service.find(team.member, TaskFilters(assignee_id="me"), PageRequest())
        assert sorted(t.title for t in mine.items) == ["Own task", "Team task"]

    def test_strangers_cannot_list_a_project(self, team: Team) -> None:
        with pytest.raises(NotFound):
            team.service.find(team.stranger, TaskFilters(project_id=team.project.id), PageRequest())

    def test_unknown_sort_is_422(self, team: Team) -> None:
        with pytest.raises(ValidationFailed):
            team.service.find(team.member, TaskFilters(sort="title"), PageRequest())


class TestActivity:
    def test_history_and_notifications_come_with_each_change(self, team: Team) -> None:
        from chalicelib.domain.activity import HistoryEvent, Notification

        task = create(team, team.owner, title="Plan")
        created = [r for r in team.repo.records if isinstance(r, HistoryEvent)]
        assert [e.type.value for e in created] == ["task.created"]
        assert created[0].changes["title"] == (None, "Plan")
        team.repo.records.clear()

        team.service.assign(team.owner, task.id, AssignInput(assignee_id=team.member.user_id))  # type: ignore[attr-defined]
        event, notice = team.repo.records
        assert isinstance(event, HistoryEvent)
        assert event.type.value == "task.assigned"
        assert event.changes == {"assignee_id": (None, team.member.user_id)}
        assert isinstance(notice, Notification)
        assert (notice.user_id, notice.type.value) == (team.member.user_id, "task.assigned")
        team.repo.records.clear()

        team.service.complete(team.member, task.id)  # type: ignore[attr-defined]
        events = [r for r in team.repo.records if isinstance(r, HistoryEvent)]
        notices = [r for r in team.repo.records if isinstance(r, Notification)]
        assert [e.type.value for e in events] == ["task.completed"]
        assert events[0].changes["status"] == ("pending", "completed")
        # The creator hears of it; the assignee made the change, so is not told.
        assert [(n.user_id, n.type.value) for n in notices] == [
            (team.owner.user_id, "task.status_changed")
        ]

    def test_assigning_yourself_notifies_nobody(self, team: Team) -> None:
        from chalicelib.domain.activity import Notification

        create(team, assignee_id=team.member.user_id)
        assert not [r for r in team.repo.records if isinstance(r, Notification)]
