"""The workflow repository contract, run on the in-memory fake and on DynamoDB (moto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.janitor import DynamoJanitor
from chalicelib.adapters.dynamodb.projects import DynamoProjectRepository
from chalicelib.adapters.dynamodb.workflows import DynamoWorkflowRepository
from chalicelib.domain import schedules
from chalicelib.domain.errors import BadRequest, NotFound, StaleVersion
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.schedules import CronScheduleInput
from chalicelib.domain.tasks import new_task_id
from chalicelib.domain.workflows import OnFailure, Step, Workflow, new_workflow_id
from tests.fakes import InMemoryProjectRepository, InMemoryWorkflowRepository
from tests.integration.test_task_repositories import make_project

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "dynamodb"])
def env(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        projects: Any = InMemoryProjectRepository()
        repo: Any = InMemoryWorkflowRepository(projects)
        project_id = make_project("memory", projects)
    else:
        request.getfixturevalue("moto_aws")
        projects = DynamoProjectRepository()
        repo = DynamoWorkflowRepository()
        project_id = make_project("dynamodb", None)
    return {"kind": request.param, "repo": repo, "projects": projects, "project": project_id}


def workflow(project_id: str, **fields: Any) -> Workflow:
    first, second = new_task_id(project_id), new_task_id(project_id)
    fields.setdefault("name", "W")
    fields.setdefault(
        "steps", (Step("build", first), Step("ship", second, ("build",)), Step("tell", first))
    )
    return Workflow(
        id=new_workflow_id(project_id),
        project_id=project_id,
        created_by="u",
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )


def scheduled() -> schedules.Schedule:
    data = CronScheduleInput(kind="cron", expression="0 9 * * ? *", timezone="Europe/Paris")
    return schedules.build_schedule(data, default_timezone="UTC", now=NOW)


class TestWrites:
    def test_create_and_get_round_trip_every_field(self, env: dict[str, Any]) -> None:
        repo = env["repo"]
        schedule = scheduled()
        created = repo.create(
            workflow(
                env["project"],
                max_concurrency=3,
                on_failure=OnFailure.CONTINUE,
                schedule=schedule,
                next_run_at=schedules.next_run(schedule, NOW),
            )
        )
        stored = repo.get(created.id)
        assert stored == created
        assert stored.steps[1] == Step("ship", created.steps[1].task_id, ("build",))
        assert repo.get(new_workflow_id(env["project"])) is None
        assert repo.get("") is None
        assert repo.get("x" * 300) is None

    def test_a_workflow_needs_its_project(self, env: dict[str, Any]) -> None:
        with pytest.raises(NotFound):
            env["repo"].create(workflow(new_id()))

    def test_update_writes_the_changes_and_a_new_version(self, env: dict[str, Any]) -> None:
        repo = env["repo"]
        created = repo.create(workflow(env["project"], schedule=scheduled(), next_run_at=NOW))
        after = created.with_changes(
            name="New",
            steps=(Step("only", new_task_id(env["project"])),),
            max_concurrency=40,
            on_failure=OnFailure.CONTINUE,
            schedule=None,
            next_run_at=None,
            updated_at=NOW + timedelta(minutes=1),
        )
        saved = repo.update(created, after)
        assert saved == after.with_changes(version=2)
        assert repo.get(created.id) == saved
        with pytest.raises(StaleVersion):
            repo.update(created, created.with_changes(name="Stale"))
        assert repo.get(created.id) == saved

    def test_update_of_a_deleted_workflow_or_project(self, env: dict[str, Any]) -> None:
        repo = env["repo"]
        gone = repo.create(workflow(env["project"]))
        repo.delete(gone)
        with pytest.raises(StaleVersion):
            repo.update(gone, gone.with_changes(name="Ghost"))
        assert repo.get(gone.id) is None
        kept = repo.create(workflow(env["project"]))
        env["projects"].delete(env["projects"].get(env["project"]))
        with pytest.raises(NotFound):
            repo.update(kept, kept.with_changes(name="Orphan"))

    def test_delete_is_conditional_on_the_version(self, env: dict[str, Any]) -> None:
        repo = env["repo"]
        created = repo.create(workflow(env["project"]))
        changed = repo.update(created, created.with_changes(name="v2"))
        with pytest.raises(StaleVersion):
            repo.delete(created)
        assert repo.get(created.id) == changed
        repo.delete(changed)
        assert repo.get(created.id) is None
        with pytest.raises(StaleVersion):
            repo.delete(changed)


class TestNextRun:
    def test_a_firing_moves_next_run_at_on_without_a_new_version(self, env: dict[str, Any]) -> None:
        repo = env["repo"]
        fired = NOW + timedelta(minutes=5)
        created = repo.create(workflow(env["project"], schedule=scheduled(), next_run_at=fired))
        later = fired + timedelta(days=1)
        assert repo.advance_next_run(created.id, fired, later) is True
        stored = repo.get(created.id)
        assert (stored.next_run_at, stored.version) == (later, created.version)
        # A late or repeated firing never moves it back.
        assert repo.advance_next_run(created.id, fired, fired + timedelta(minutes=1)) is False
        assert repo.get(created.id).next_run_at == later
        assert repo.advance_next_run(created.id, later, None) is True
        assert repo.get(created.id).next_run_at is None
        assert repo.advance_next_run(created.id, later, later) is False  # no next run: stays
        assert repo.advance_next_run(new_workflow_id(env["project"]), later, later) is False
        assert repo.get(created.id) == stored.with_changes(next_run_at=None)

    def test_a_value_stored_with_a_fraction_of_a_second_moves_on(self, env: dict[str, Any]) -> None:
        """Stored before schedules were kept to whole seconds: the firing (on the whole second,
        as the scheduler fires) still moves it on; a newer value from an edit stays."""
        repo = env["repo"]
        fired = NOW + timedelta(minutes=5)
        fraction = fired + timedelta(microseconds=345_678)
        created = repo.create(workflow(env["project"], schedule=scheduled(), next_run_at=fraction))
        later = fired + timedelta(minutes=1)
        assert repo.advance_next_run(created.id, fired, later) is True
        assert repo.get(created.id).next_run_at == later
        edited = repo.create(
            workflow(env["project"], schedule=scheduled(), next_run_at=fired + timedelta(seconds=1))
        )
        assert repo.advance_next_run(edited.id, fired, later) is False
        assert repo.get(edited.id).next_run_at == fired + timedelta(seconds=1)


class TestFind:
    def test_newest_first_in_pages_of_one_project(self, env: dict[str, Any]) -> None:
        repo = env["repo"]
        made = [repo.create(workflow(env["project"], name=f"W{i}")) for i in range(5)]
        other_project = make_project(env["kind"], env["projects"])
        repo.create(workflow(other_project, name="elsewhere"))
        seen: list[str] = []
        cursor = None
        for _ in range(5):
            page = repo.find(env["project"], PageRequest(limit=2, cursor=cursor))
            assert len(page.items) <= 2
            seen += [w.name for w in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == ["W4", "W3", "W2", "W1", "W0"]
        first = repo.find(env["project"], PageRequest(limit=1)).items[0]
        assert first == made[-1]

    def test_a_cursor_of_another_project_is_refused(self, env: dict[str, Any]) -> None:
        repo = env["repo"]
        for _ in range(2):
            repo.create(workflow(env["project"]))
        cursor = repo.find(env["project"], PageRequest(limit=1)).next_cursor
        assert cursor
        with pytest.raises(BadRequest):
            repo.find(new_id(), PageRequest(limit=1, cursor=cursor))

    def test_an_empty_project(self, env: dict[str, Any]) -> None:
        page = env["repo"].find(env["project"], PageRequest())
        assert (page.items, page.next_cursor) == ([], None)


def test_the_janitor_purges_a_deleted_projects_workflows(moto_aws: None) -> None:
    repo = DynamoWorkflowRepository()
    project_id, other = make_project("dynamodb", None), make_project("dynamodb", None)
    doomed = [repo.create(workflow(project_id)) for _ in range(30)]
    kept = repo.create(workflow(other))
    projects = DynamoProjectRepository()
    projects.delete(projects.get(project_id))  # type: ignore[arg-type]
    assert DynamoJanitor().purge_project(project_id) >= 30
    assert all(repo.get(w.id) is None for w in doomed)
    assert repo.get(kept.id) == kept
    assert DynamoJanitor().purge_project(project_id) == 0
