"""Task templates: placeholders, the service's rules and roles, and making tasks from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.errors import Forbidden, NotFound, PreconditionFailed, ValidationFailed
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.tasks import Priority
from chalicelib.domain.templates import (
    FromTemplate,
    TaskBlueprint,
    Template,
    TemplateCreate,
    TemplateUpdate,
    fill,
    instantiate,
    placeholders_in,
)
from chalicelib.domain.users import RegisterInput
from chalicelib.services.tasks import TaskService
from chalicelib.services.templates import TemplateService
from tests.fakes import (
    InMemoryTaskRepository,
    InMemoryTemplateRepository,
    NoPrefetch,
    refuse_internal_urls,
)
from tests.unit.conftest import World

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def bare(task: TaskBlueprint, *subtasks: TaskBlueprint) -> Template:
    return Template("t", "p", "T", task, "u", NOW, NOW, subtasks=subtasks)


class TestPlaceholders:
    def test_names_and_spaces_inside_braces(self) -> None:
        text = "Hi {{name}}, {{ team_2 }} and {{name}} again; {{bad-name}} {x} {{ }} {{1a}}"
        assert placeholders_in(text) == ["name", "team_2"]
        assert fill(text, {"name": "Ada", "team_2": "ops"}) == (
            "Hi Ada, ops and Ada again; {{bad-name}} {x} {{ }} {{1a}}"
        )

    def test_a_value_is_not_filled_again(self) -> None:
        assert fill("{{a}}", {"a": "{{b}}", "b": "no"}) == "{{b}}"

    def test_missing_values_are_named_one_by_one(self) -> None:
        template = bare(TaskBlueprint("{{a}} {{b}}", tags=("{{c}}",)))
        with pytest.raises(ValidationFailed) as caught:
            instantiate(template, {"b": "x"}, "p")
        assert [d["loc"] for d in caught.value.details] == [
            ["body", "values", "a"],
            ["body", "values", "c"],
        ]
        assert "{{a}}" in caught.value.message
        assert "{{c}}" in caught.value.message

    def test_a_filled_field_is_checked_like_a_task(self) -> None:
        template = bare(TaskBlueprint("{{a}}"), TaskBlueprint("ok", tags=("{{a}}",)))
        with pytest.raises(ValidationFailed) as caught:
            instantiate(template, {"a": "x" * 201}, "p")
        locs = [d["loc"] for d in caught.value.details]
        assert locs == [["template", "task", "title"]]
        with pytest.raises(ValidationFailed) as caught:
            instantiate(template, {"a": "  "}, "p")
        assert caught.value.details[0]["loc"] == ["template", "task", "title"]
        made = instantiate(template, {"a": "Fine"}, "p")
        assert (made.task.title, made.subtasks[0].tags) == ("Fine", ["Fine"])

    def test_bodies(self) -> None:
        with pytest.raises(ValidationError):
            TemplateCreate.model_validate({"name": "x", "task": {"title": "t", "status": "done"}})
        with pytest.raises(ValidationError):
            TemplateCreate.model_validate(
                {"name": "x", "task": {"title": "t"}, "subtasks": [{"title": "s"}] * 21}
            )
        with pytest.raises(ValidationError):
            TemplateUpdate.model_validate({"name": None})
        with pytest.raises(ValidationError):
            FromTemplate.model_validate({"template_id": "t", "values": {"bad-name": "x"}})


@dataclass
class Team:
    world: World
    service: TemplateService
    repo: InMemoryTemplateRepository
    tasks: InMemoryTaskRepository
    project: Project
    owner: Principal
    admin: Principal
    member: Principal
    viewer: Principal
    stranger: Principal


def register(world: World, email: str) -> Principal:
    result = world.auth.register(
        RegisterInput(email=email, password="long enough pw", name=email[:3])
    )
    return world.auth.authenticate(result.access_token)


def make_team(world: World) -> Team:
    projects = world.users_repo.project_repo
    tasks = InMemoryTaskRepository(projects)
    repo = InMemoryTemplateRepository(projects)
    task_service = TaskService(
        tasks, projects, world.users_repo, NoPrefetch(), world.clock, refuse_internal_urls
    )
    service = TemplateService(repo, task_service, projects, NoPrefetch(), world.clock)
    people = {
        name: register(world, f"{name}@example.com")
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
    return Team(world, service, repo, tasks, project, **people)


@pytest.fixture
def team(world: World) -> Team:
    return make_team(world)


def body(**fields: Any) -> TemplateCreate:
    fields.setdefault("name", "Onboarding")
    fields.setdefault(
        "task",
        {"title": "Onboard {{name}}", "description": "Team {{team}}", "tags": ["{{team}}"]},
    )
    fields.setdefault("subtasks", [{"title": "Laptop for {{name}}"}, {"title": "Badge"}])
    return TemplateCreate.model_validate(fields)


class TestTemplates:
    def test_create_read_list(self, team: Team) -> None:
        made = team.service.create(team.member, team.project.id, body())
        assert (made.project_id, made.created_by, made.version) == (
            team.project.id,
            team.member.user_id,
            1,
        )
        assert made.id.endswith(team.project.id)
        assert made.placeholders == ["name", "team"]
        assert team.service.get(team.viewer, made.id) == made
        page = team.service.find(team.viewer, team.project.id, PageRequest())
        assert [t.id for t in page.items] == [made.id]

    def test_roles(self, team: Team) -> None:
        with pytest.raises(Forbidden):
            team.service.create(team.viewer, team.project.id, body())
        with pytest.raises(NotFound):
            team.service.create(team.stranger, team.project.id, body())
        made = team.service.create(team.member, team.project.id, body())
        with pytest.raises(NotFound):
            team.service.get(team.stranger, made.id)
        with pytest.raises(NotFound):
            team.service.find(team.stranger, team.project.id, PageRequest())
        with pytest.raises(Forbidden):
            team.service.update(team.viewer, made.id, TemplateUpdate(name="x"))
        other = team.service.create(team.admin, team.project.id, body())
        with pytest.raises(Forbidden):
            team.service.delete(team.member, other.id)  # members delete their own only
        team.service.delete(team.member, made.id)
        team.service.delete(team.admin, other.id)
        with pytest.raises(NotFound):
            team.service.get(team.member, made.id)

    def test_assignees_must_be_members(self, team: Team) -> None:
        with pytest.raises(ValidationFailed) as caught:
            team.service.create(
                team.member,
                team.project.id,
                body(subtasks=[{"title": "a", "assignee_id": team.stranger.user_id}]),
            )
        assert caught.value.details[0]["loc"] == ["body", "subtasks", 0, "assignee_id"]

    def test_update_applies_fields_present_with_if_match(self, team: Team) -> None:
        made = team.service.create(team.member, team.project.id, body())
        changed = team.service.update(
            team.member, made.id, TemplateUpdate(name="New", subtasks=[]), expected_version=1
        )
        assert (changed.name, changed.subtasks, changed.task, changed.version) == (
            "New",
            (),
            made.task,
            2,
        )
        with pytest.raises(PreconditionFailed):
            team.service.update(team.member, made.id, TemplateUpdate(name="x"), 1)
        with pytest.raises(PreconditionFailed):
            team.service.delete(team.member, made.id, 1)
        same = team.service.update(team.member, made.id, TemplateUpdate(name="New"))
        assert same.version == 2


class TestFromTemplate:
    def test_makes_the_task_and_its_subtasks(self, team: Team) -> None:
        template = team.service.create(
            team.member,
            team.project.id,
            body(task={"title": "Onboard {{name}}", "priority": "high", "tags": ["{{team}}"]}),
        )
        made = team.service.instantiate(
            team.member,
            FromTemplate(template_id=template.id, values={"name": "Ada", "team": "ops", "x": "y"}),
        )
        task = made.task
        assert (task.title, task.priority, task.tags, task.project_id) == (
            "Onboard Ada",
            Priority.HIGH,
            ("ops",),
            team.project.id,
        )
        assert [s.title for s in made.subtasks] == ["Laptop for Ada", "Badge"]
        assert all(s.parent_id == task.id for s in made.subtasks)
        assert set(team.tasks.tasks[task.id].subtask_ids) == {s.id for s in made.subtasks}

    def test_missing_values_write_nothing(self, team: Team) -> None:
        template = team.service.create(team.member, team.project.id, body())
        with pytest.raises(ValidationFailed) as caught:
            team.service.instantiate(
                team.member, FromTemplate(template_id=template.id, values={"name": "Ada"})
            )
        assert caught.value.details[0]["loc"] == ["body", "values", "team"]
        assert team.tasks.tasks == {}

    def test_viewers_may_not_and_strangers_see_nothing(self, team: Team) -> None:
        template = team.service.create(team.member, team.project.id, body())
        values = {"name": "a", "team": "b"}
        with pytest.raises(Forbidden):
            team.service.instantiate(
                team.viewer, FromTemplate(template_id=template.id, values=values)
            )
        with pytest.raises(NotFound):
            team.service.instantiate(
                team.stranger, FromTemplate(template_id=template.id, values=values)
            )
        assert team.tasks.tasks == {}

    def test_a_failure_half_way_takes_the_task_back(self, team: Team) -> None:
        template = team.service.create(team.member, team.project.id, body())
        calls = {"n": 0}
        create = team.tasks.create

        def failing(task: Any, graph: Any, records: Any = ()) -> Any:
            calls["n"] += 1
            if calls["n"] == 3:
                raise NotFound("project not found")
            return create(task, graph, records)

        team.tasks.create = failing  # type: ignore[method-assign]
        with pytest.raises(NotFound):
            team.service.instantiate(
                team.member,
                FromTemplate(template_id=template.id, values={"name": "a", "team": "b"}),
            )
        assert team.tasks.tasks == {}
