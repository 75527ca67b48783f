"""The template repository contract, run on the in-memory fake and on DynamoDB (moto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.projects import DynamoProjectRepository
from chalicelib.adapters.dynamodb.templates import DynamoTemplateRepository
from chalicelib.domain.errors import BadRequest, NotFound, StaleVersion
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.tasks import Priority
from chalicelib.domain.templates import TaskBlueprint, Template, new_template_id
from tests.fakes import InMemoryProjectRepository, InMemoryTemplateRepository
from tests.integration.test_task_repositories import make_project

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "dynamodb"])
def env(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        projects: Any = InMemoryProjectRepository()
        repo: Any = InMemoryTemplateRepository(projects)
        project_id = make_project("memory", projects)
    else:
        request.getfixturevalue("moto_aws")
        projects = DynamoProjectRepository()
        repo = DynamoTemplateRepository()
        project_id = make_project("dynamodb", None)
    return {"kind": request.param, "repo": repo, "projects": projects, "project": project_id}


def template(project_id: str, **fields: Any) -> Template:
    fields.setdefault("name", "Onboarding")
    fields.setdefault(
        "task",
        TaskBlueprint(
            "Onboard {{name}}", "Welcome {{ name }}", Priority.HIGH, ("hr", "{{team}}"), "u1"
        ),
    )
    fields.setdefault("subtasks", (TaskBlueprint("Laptop for {{name}}"), TaskBlueprint("Badge")))
    return Template(
        id=new_template_id(project_id),
        project_id=project_id,
        created_by="u",
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )


def test_create_and_get_round_trip_every_field(env: dict[str, Any]) -> None:
    repo = env["repo"]
    created = repo.create(template(env["project"]))
    stored = repo.get(created.id)
    assert stored == created
    assert stored.placeholders == ["name", "team"]
    assert repo.get(new_template_id(env["project"])) is None
    assert repo.get("") is None


def test_a_template_needs_its_project(env: dict[str, Any]) -> None:
    with pytest.raises(NotFound):
        env["repo"].create(template(new_id()))


def test_update_and_delete_are_conditional_on_the_version(env: dict[str, Any]) -> None:
    repo = env["repo"]
    created = repo.create(template(env["project"]))
    after = created.with_changes(name="New", subtasks=(), updated_at=NOW + timedelta(minutes=1))
    saved = repo.update(created, after)
    assert saved == after.with_changes(version=2)
    assert repo.get(created.id) == saved
    with pytest.raises(StaleVersion):
        repo.update(created, created.with_changes(name="Stale"))
    with pytest.raises(StaleVersion):
        repo.delete(created)
    repo.delete(saved)
    assert repo.get(created.id) is None
    with pytest.raises(StaleVersion):
        repo.update(saved, saved.with_changes(name="Ghost"))


def test_newest_first_in_pages_of_one_project(env: dict[str, Any]) -> None:
    repo = env["repo"]
    for i in range(5):
        repo.create(template(env["project"], name=f"T{i}"))
    repo.create(template(make_project(env["kind"], env["projects"]), name="elsewhere"))
    seen: list[str] = []
    cursor = None
    while True:
        page = repo.find(env["project"], PageRequest(limit=2, cursor=cursor))
        seen += [t.name for t in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["T4", "T3", "T2", "T1", "T0"]
    cursor = repo.find(env["project"], PageRequest(limit=1)).next_cursor
    with pytest.raises(BadRequest):
        repo.find(new_id(), PageRequest(limit=1, cursor=cursor))


def test_purging_a_project_removes_its_templates(env: dict[str, Any]) -> None:
    repo = env["repo"]
    doomed = [repo.create(template(env["project"])) for _ in range(30)]
    kept = repo.create(template(make_project(env["kind"], env["projects"])))
    assert repo.purge_project(env["project"]) == 30
    assert all(repo.get(t.id) is None for t in doomed)
    assert repo.get(kept.id) == kept
    assert repo.purge_project(env["project"]) == 0
