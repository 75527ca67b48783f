"""Workflows: the domain's rules (step graph, cycles, request bodies) and the service with fakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain import graphs
from chalicelib.domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    StaleVersion,
    ValidationFailed,
)
from chalicelib.domain.ids import project_of
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.tasks import Task, find_cycle, new_task_id
from chalicelib.domain.users import ProfileUpdate, RegisterInput
from chalicelib.domain.workflows import (
    STEPS_MAX,
    OnFailure,
    Step,
    Workflow,
    WorkflowCreate,
    WorkflowUpdate,
    check_steps,
)
from chalicelib.services.workflows import WorkflowService
from tests.fakes import InMemoryTaskRepository, InMemoryWorkflowRepository, NoPrefetch
from tests.unit.conftest import World


def steps(*specs: tuple[str, Sequence[str]]) -> list[Step]:
    return [Step(key, "T" + key, tuple(deps)) for key, deps in specs]


def rejected(steps_: Sequence[Step]) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        check_steps(steps_)
    return caught.value


# ---- the step graph --------------------------------------------------------------------------


class TestStepGraph:
    def test_a_diamond_is_fine(self) -> None:
        check_steps(steps(("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])))

    def test_duplicate_keys_point_at_the_second_step(self) -> None:
        error = rejected(steps(("a", []), ("b", []), ("a", [])))
        assert error.details == [
            {"loc": ["body", "steps", 2, "key"], "message": "duplicate step key 'a' (also step 0)"}
        ]

    def test_unknown_and_self_dependencies_point_at_the_entry(self) -> None:
        error = rejected(steps(("a", []), ("b", ["a", "nope"]), ("c", ["c"])))
        assert error.details == [
            {"loc": ["body", "steps", 1, "depends_on", 1], "message": "no step has the key 'nope'"},
            {
                "loc": ["body", "steps", 2, "depends_on", 0],
                "message": "a step cannot depend on itself",
            },
        ]
        assert "2 problems" in error.message

    def test_a_cycle_is_named_in_the_message_and_the_details(self) -> None:
        error = rejected(steps(("a", ["c"]), ("b", ["a"]), ("c", ["b"]), ("d", [])))
        assert error.message == "steps have a dependency cycle: a -> c -> b -> a"
        (detail,) = error.details
        assert detail == {
            "loc": ["body", "steps", 0, "depends_on"],
            "message": "cycle: a -> c -> b -> a",
            "cycle": ["a", "c", "b", "a"],
        }

    def test_a_cycle_away_from_the_first_steps_is_found(self) -> None:
        error = rejected(steps(("x", []), ("y", ["x", "z"]), ("z", ["w"]), ("w", ["y"])))
        assert error.details[0]["cycle"] == ["y", "z", "w", "y"]
        assert error.details[0]["loc"] == ["body", "steps", 1, "depends_on"]

    def test_shared_dependencies_are_no_cycle(self) -> None:
        # Every step depends on all earlier ones: many paths, no cycle.
        keys = [f"s{i}" for i in range(STEPS_MAX)]
        check_steps([Step(k, "T", tuple(keys[:i])) for i, k in enumerate(keys)])


class TestFindCycle:
    def test_deep_chains_need_no_recursion(self) -> None:
        chain = {f"n{i}": [f"n{i + 1}"] for i in range(5000)}
        assert graphs.find_cycle(chain) is None
        chain["n5000"] = ["n0"]
        cycle = graphs.find_cycle(chain)
        assert cycle is not None
        assert (cycle[0], cycle[-1], len(cycle)) == ("n0", "n0", 5002)

    def test_only_from_the_given_starts(self) -> None:
        graph = {"a": ["b"], "b": [], "x": ["y"], "y": ["x"]}
        assert graphs.find_cycle(graph, ["a"]) is None
        assert graphs.find_cycle(graph) == ["x", "y", "x"]

    def test_the_task_rule_still_names_the_cycle_through_the_task(self) -> None:
        edges = {"b": ["c"], "c": ["a"]}
        assert find_cycle(edges, "a", ["b"]) == ["a", "b", "c", "a"]
        assert find_cycle(edges, "a", ["x"]) is None
        assert find_cycle({}, "a", ["a"]) == ["a", "a"]


# ---- request bodies ----------------------------------------------------------------------------


def body(**fields: Any) -> dict[str, Any]:
    fields.setdefault("name", "Deploy")
    fields.setdefault("steps", [{"key": "build", "task_id": "T1"}])
    return fields


class TestBodies:
    def test_defaults(self) -> None:
        parsed = WorkflowCreate.model_validate(body())
        assert (parsed.max_concurrency, parsed.on_failure, parsed.schedule) == (
            10,
            OnFailure.STOP,
            None,
        )
        assert parsed.steps[0].depends_on == []

    def test_dependencies_are_deduplicated(self) -> None:
        parsed = WorkflowCreate.model_validate(
            body(
                steps=[
                    {"key": "a", "task_id": "T"},
                    {"key": "b", "task_id": "T", "depends_on": ["a", "a"]},
                ]
            )
        )
        assert parsed.steps[1].to_step() == Step("b", "T", ("a",))

    @pytest.mark.parametrize(
        ("fields", "loc"),
        [
            ({"steps": []}, ("steps",)),
            (
                {"steps": [{"key": f"s{i}", "task_id": "T"} for i in range(STEPS_MAX + 1)]},
                ("steps",),
            ),
            ({"steps": [{"key": "has space", "task_id": "T"}]}, ("steps", 0, "key")),
            ({"steps": [{"key": "-dash-first", "task_id": "T"}]}, ("steps", 0, "key")),
            ({"steps": [{"key": "k" * 65, "task_id": "T"}]}, ("steps", 0, "key")),
            ({"steps": [{"key": "", "task_id": "T"}]}, ("steps", 0, "key")),
            ({"steps": [{"key": "a", "task_id": ""}]}, ("steps", 0, "task_id")),
            ({"steps": [{"key": "a", "task_id": "T", "after": []}]}, ("steps", 0, "after")),
            (
                {"steps": [{"key": "a", "task_id": "T", "depends_on": ["b c"]}]},
                ("steps", 0, "depends_on", 0),
            ),
            ({"max_concurrency": 0}, ("max_concurrency",)),
            ({"max_concurrency": 41}, ("max_concurrency",)),
            ({"max_concurrency": "10"}, ("max_concurrency",)),
            ({"max_concurrency": True}, ("max_concurrency",)),
            ({"on_failure": "retry"}, ("on_failure",)),
            ({"name": " "}, ("name",)),
            ({"name": "n" * 201}, ("name",)),
            ({"id": "mine"}, ("id",)),
            ({"version": 2}, ("version",)),
            (
                {"schedule": {"kind": "rate", "every": 0, "unit": "minutes"}},
                ("schedule", "rate", "every"),
            ),
        ],
    )
    def test_invalid_fields_are_located(self, fields: dict[str, Any], loc: tuple[Any, ...]) -> None:
        with pytest.raises(ValidationError) as caught:
            WorkflowCreate.model_validate(body(**fields))
        assert loc in [error["loc"] for error in caught.value.errors()]

    def test_the_longest_key_and_the_limits_pass(self) -> None:
        WorkflowCreate.model_validate(
            body(
                steps=[{"key": "K_9-" + "k" * 60, "task_id": "T"}],
                max_concurrency=40,
                on_failure="continue",
            )
        )
        WorkflowCreate.model_validate(
            body(steps=[{"key": f"s{i}", "task_id": "T"} for i in range(STEPS_MAX)])
        )

    def test_an_update_may_clear_only_the_schedule(self) -> None:
        assert WorkflowUpdate.model_validate({"schedule": None}).model_fields_set == {"schedule"}
        for name in ("name", "steps", "max_concurrency", "on_failure"):
            with pytest.raises(ValidationError):
                WorkflowUpdate.model_validate({name: None})


def test_a_workflow_id_names_its_project() -> None:
    project_id = new_id()
    assert project_of(new_id() + project_id) == project_id
    assert project_of("not-an-id") is None


# ---- the service -------------------------------------------------------------------------------


@dataclass
class Team:
    world: World
    service: WorkflowService
    repo: InMemoryWorkflowRepository
    tasks: InMemoryTaskRepository
    project: Project
    other_project: Project
    owner: Principal
    admin: Principal
    member: Principal
    viewer: Principal
    stranger: Principal

    def task(self, project: Project | None = None) -> str:
        now = self.world.clock.now()
        project_id = (project or self.project).id
        task = Task(new_task_id(project_id), project_id, "T", self.owner.user_id, now, now)
        self.tasks.create(task, None)
        return task.id


class CountingTasks(InMemoryTaskRepository):
    """Records which task ids the service asks for."""

    asked: list[list[str]]

    def get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        self.asked.append(list(task_ids))
        return super().get_many(task_ids)


def register(world: World, email: str) -> Principal:
    result = world.auth.register(
        RegisterInput(email=email, password="long enough pw", name=email[:3])
    )
    return world.auth.authenticate(result.access_token)


@pytest.fixture
def team(world: World) -> Team:
    projects = world.users_repo.project_repo
    tasks = CountingTasks(projects)
    tasks.asked = []
    repo = InMemoryWorkflowRepository(projects)
    service = WorkflowService(repo, tasks, projects, world.users_repo, NoPrefetch(), world.clock)
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
    other = Project(new_id(), "Other", "", people["stranger"].user_id, now, now)
    projects.create(other, Membership(other.id, people["stranger"].user_id, ProjectRole.OWNER, now))
    return Team(world, service, repo, tasks, project, other, **people)


def create(team: Team, who: Principal | None = None, **fields: Any) -> Workflow:
    fields.setdefault("project_id", team.project.id)
    fields.setdefault("name", "Deploy")
    if "steps" not in fields:
        first, second = team.task(), team.task()
        fields["steps"] = [
            {"key": "build", "task_id": first},
            {"key": "ship", "task_id": second, "depends_on": ["build"]},
        ]
    return team.service.create(who or team.member, WorkflowCreate.model_validate(fields))


def patch(
    team: Team,
    workflow: Workflow,
    who: Principal | None = None,
    version: int | None = None,
    **fields: Any,
) -> Workflow:
    return team.service.update(
        who or team.member, workflow.id, WorkflowUpdate.model_validate(fields), version
    )


class TestCreate:
    def test_defaults_and_what_is_stored(self, team: Team) -> None:
        workflow = create(team)
        assert project_of(workflow.id) == team.project.id
        assert (workflow.project_id, workflow.created_by, workflow.version) == (
            team.project.id,
            team.member.user_id,
            1,
        )
        assert (workflow.max_concurrency, workflow.on_failure) == (10, OnFailure.STOP)
        assert [(s.key, s.depends_on) for s in workflow.steps] == [
            ("build", ()),
            ("ship", ("build",)),
        ]
        assert workflow.created_at == workflow.updated_at == team.world.clock.now()
        assert (workflow.schedule, workflow.next_run_at) == (None, None)
        assert team.repo.get(workflow.id) == workflow

    def test_without_project_id_it_goes_to_the_personal_project(self, team: Team) -> None:
        personal = team.world.users_repo.get(team.member.user_id).personal_project_id  # type: ignore[union-attr]
        task = team.task(team.world.users_repo.project_repo.get(personal))
        workflow = team.service.create(
            team.member,
            WorkflowCreate.model_validate(
                {"name": "Mine", "steps": [{"key": "a", "task_id": task}]}
            ),
        )
        assert workflow.project_id == personal

    def test_a_schedule_is_stored_with_its_next_run_in_the_callers_zone(self, team: Team) -> None:
        team.world.users.update_profile(team.member, ProfileUpdate(timezone="Europe/Paris"))
        workflow = create(team, schedule={"kind": "cron", "expression": "0 9 * * ? *"})
        assert workflow.schedule is not None
        assert workflow.schedule.timezone == "Europe/Paris"
        # 2026-11-21 12:00 UTC is 13:00 in Paris: the next 9:00 there is tomorrow, 8:00 UTC.
        assert workflow.next_run_at == datetime(2026, 11, 22, 8, 0, tzinfo=UTC)

    def test_viewers_may_not_create_and_strangers_see_no_project(self, team: Team) -> None:
        with pytest.raises(Forbidden):
            create(team, team.viewer)
        with pytest.raises(NotFound):
            create(team, team.stranger)
        assert team.repo.workflows == {}

    def test_steps_must_form_a_valid_graph(self, team: Team) -> None:
        task = team.task()
        with pytest.raises(ValidationFailed) as caught:
            create(
                team,
                steps=[
                    {"key": "a", "task_id": task, "depends_on": ["b"]},
                    {"key": "b", "task_id": task, "depends_on": ["a"]},
                ],
            )
        assert caught.value.details[0]["cycle"] == ["a", "b", "a"]
        assert "a -> b -> a" in caught.value.message
        assert team.repo.workflows == {}

    def test_tasks_must_be_of_the_workflows_project(self, team: Team) -> None:
        mine, foreign = team.task(), team.task(team.other_project)
        missing = new_task_id(team.project.id)
        with pytest.raises(ValidationFailed) as caught:
            create(
                team,
                steps=[
                    {"key": "ok", "task_id": mine},
                    {"key": "foreign", "task_id": foreign},
                    {"key": "missing", "task_id": missing},
                    {"key": "junk", "task_id": "not-a-task"},
                ],
            )
        details = caught.value.details
        assert [d["loc"] for d in details] == [["body", "steps", i, "task_id"] for i in (1, 2, 3)]
        assert "'foreign', 'missing', 'junk'" in caught.value.message
        # A task of another project reads exactly like a missing one (no existence leak).
        shown = [d["message"].split(":", 1)[1] for d in details[:2]]
        assert shown[0].replace(foreign, "X") == shown[1].replace(missing, "X")
        # One batch read, of the ids that can be tasks of this project only.
        assert team.tasks.asked[-1] == [mine, missing]

    def test_the_same_task_may_serve_several_steps(self, team: Team) -> None:
        task = team.task()
        workflow = create(
            team,
            steps=[
                {"key": "a", "task_id": task},
                {"key": "b", "task_id": task, "depends_on": ["a"]},
            ],
        )
        assert workflow.task_ids == [task]
        assert team.tasks.asked[-1] == [task]

    def test_a_deleted_project_takes_no_workflow(self, team: Team) -> None:
        projects = team.world.users_repo.project_repo
        task = team.task()
        command = WorkflowCreate.model_validate(
            {"project_id": team.project.id, "name": "x", "steps": [{"key": "a", "task_id": task}]}
        )
        projects.delete(team.project)
        with pytest.raises(NotFound):
            team.service.create(team.member, command)


class TestRead:
    def test_members_and_viewers_read_strangers_get_404(self, team: Team) -> None:
        workflow = create(team)
        assert team.service.get(team.viewer, workflow.id) == workflow
        with pytest.raises(NotFound):
            team.service.get(team.stranger, workflow.id)
        with pytest.raises(NotFound):
            team.service.get(team.member, new_id() + team.project.id)

    def test_list_newest_first_in_pages(self, team: Team) -> None:
        made = [create(team, name=f"W{i}").id for i in range(3)]
        first = team.service.find(team.viewer, team.project.id, PageRequest(limit=2))
        assert [w.id for w in first.items] == made[::-1][:2]
        assert first.next_cursor
        rest = team.service.find(team.viewer, team.project.id, PageRequest(2, first.next_cursor))
        assert ([w.id for w in rest.items], rest.next_cursor) == ([made[0]], None)
        with pytest.raises(NotFound):
            team.service.find(team.stranger, team.project.id, PageRequest())

    def test_list_defaults_to_the_personal_project(self, team: Team) -> None:
        create(team)
        assert team.service.find(team.member, None, PageRequest()).items == []

    def test_a_deleted_projects_workflows_are_gone_at_once(self, team: Team) -> None:
        workflow = create(team)
        team.world.users_repo.project_repo.delete(team.project)
        with pytest.raises(NotFound):
            team.service.get(team.owner, workflow.id)


class TestUpdate:
    def test_fields_present_are_applied_and_others_kept(self, team: Team) -> None:
        workflow = create(team)
        team.world.clock.advance(minutes=1)
        changed = patch(team, workflow, name="Release", max_concurrency=3, on_failure="continue")
        assert (changed.name, changed.max_concurrency, changed.on_failure, changed.version) == (
            "Release",
            3,
            OnFailure.CONTINUE,
            2,
        )
        assert changed.steps == workflow.steps
        assert changed.updated_at == workflow.updated_at + timedelta(minutes=1)
        assert team.repo.get(workflow.id) == changed

    def test_steps_replace_the_list_and_are_checked_again(self, team: Team) -> None:
        workflow = create(team)
        task = team.task()
        changed = patch(team, workflow, steps=[{"key": "only", "task_id": task}])
        assert changed.steps == (Step("only", task),)
        with pytest.raises(ValidationFailed) as caught:
            patch(team, changed, steps=[{"key": "a", "task_id": task, "depends_on": ["a"]}])
        assert caught.value.details[0]["loc"] == ["body", "steps", 0, "depends_on", 0]
        with pytest.raises(ValidationFailed):
            patch(team, changed, steps=[{"key": "a", "task_id": team.task(team.other_project)}])
        assert team.repo.get(workflow.id) == changed

    def test_tasks_are_read_only_when_the_steps_change(self, team: Team) -> None:
        workflow = create(team)
        team.tasks.asked.clear()
        patch(team, workflow, name="Renamed")
        assert team.tasks.asked == []

    def test_the_schedule_is_set_and_cleared(self, team: Team) -> None:
        workflow = create(team)
        scheduled = patch(
            team,
            workflow,
            schedule={"kind": "rate", "every": 2, "unit": "hours", "timezone": "UTC"},
        )
        assert scheduled.next_run_at == team.world.clock.now() + timedelta(hours=2)
        cleared = patch(team, scheduled, schedule=None)
        assert (cleared.schedule, cleared.next_run_at, cleared.version) == (None, None, 3)

    def test_nothing_to_change_keeps_the_version(self, team: Team) -> None:
        workflow = create(team)
        assert patch(team, workflow, name=workflow.name) == workflow

    def test_if_match(self, team: Team) -> None:
        workflow = create(team)
        assert patch(team, workflow, version=1, name="One").version == 2
        with pytest.raises(PreconditionFailed):
            patch(team, workflow, version=1, name="Stale")
        assert team.repo.get(workflow.id).name == "One"  # type: ignore[union-attr]

    def test_a_lost_race_is_retried_without_if_match_and_412_with_it(self, team: Team) -> None:
        workflow = create(team)
        real_update = team.repo.update
        races = {"left": 1}

        def racing(before: Workflow, after: Workflow) -> Workflow:
            if races["left"]:
                races["left"] -= 1
                real_update(before, before.with_changes(max_concurrency=7))  # someone else
                raise StaleVersion(before.id)
            return real_update(before, after)

        team.repo.update = racing  # type: ignore[method-assign]
        changed = patch(team, workflow, name="Mine")
        assert (changed.name, changed.max_concurrency, changed.version) == ("Mine", 7, 3)
        races["left"] = 1
        with pytest.raises(PreconditionFailed):
            patch(team, changed, version=changed.version, name="Again")

    def test_endless_races_end_in_409(self, team: Team) -> None:
        workflow = create(team)

        def always_stale(before: Workflow, after: Workflow) -> Workflow:
            raise StaleVersion(before.id)

        team.repo.update = always_stale  # type: ignore[method-assign]
        with pytest.raises(Conflict):
            patch(team, workflow, name="Never")

    def test_who_may_change(self, team: Team) -> None:
        workflow = create(team, team.owner)
        assert patch(team, workflow, team.member, name="By a member").version == 2
        with pytest.raises(Forbidden):
            patch(team, workflow, team.viewer, name="By a viewer")
        with pytest.raises(NotFound):
            patch(team, workflow, team.stranger, name="By a stranger")


class TestDelete:
    def test_members_delete_their_own_admins_any(self, team: Team) -> None:
        mine, theirs = create(team, team.member), create(team, team.owner)
        with pytest.raises(Forbidden):
            team.service.delete(team.member, theirs.id)
        with pytest.raises(Forbidden):
            team.service.delete(team.viewer, mine.id)
        with pytest.raises(NotFound):
            team.service.delete(team.stranger, mine.id)
        team.service.delete(team.member, mine.id)
        team.service.delete(team.admin, theirs.id)
        assert team.repo.workflows == {}
        with pytest.raises(NotFound):
            team.service.delete(team.member, mine.id)

    def test_if_match(self, team: Team) -> None:
        workflow = create(team)
        patch(team, workflow, name="v2")
        with pytest.raises(PreconditionFailed):
            team.service.delete(team.member, workflow.id, 1)
        team.service.delete(team.member, workflow.id, 2)
        assert team.repo.get(workflow.id) is None
