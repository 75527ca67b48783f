"""The task repository contract, run on the in-memory fake and on DynamoDB (moto).

The DynamoDB side proves the index plans: each order and filter of `GET /tasks` returns what the
straightforward in-memory implementation returns, page by page.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.identity import DynamoUserRepository
from chalicelib.adapters.dynamodb.tasks import DynamoTaskRepository
from chalicelib.domain.errors import BadRequest, NotFound, StaleVersion
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.tasks import Priority, Status, Task
from chalicelib.domain.users import Role, Session, User
from chalicelib.ports import TaskQuery
from tests.fakes import InMemoryProjectRepository, InMemoryTaskRepository

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def make_project(kind: str, projects: Any) -> str:
    user_id, project_id = new_id(), new_id()
    project = Project(project_id, "P", "", user_id, NOW, NOW)
    owner = Membership(project_id, user_id, ProjectRole.OWNER, NOW)
    if kind == "memory":
        projects.create(project, owner)
    else:
        user = User(user_id, f"{user_id}@x.io", "N", Role.MEMBER, "UTC", "h", project_id, NOW, NOW)
        session = Session(new_id(), user_id, new_id(), NOW, NOW + timedelta(days=1))
        DynamoUserRepository().create_account(user, project, owner, session, first_admin=False)
    return project_id


@pytest.fixture(params=["memory", "dynamodb"])
def env(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        projects = InMemoryProjectRepository()
        repo: Any = InMemoryTaskRepository(projects)
    else:
        request.getfixturevalue("moto_aws")
        projects = None
        repo = DynamoTaskRepository()
    return {
        "kind": request.param,
        "repo": repo,
        "project": make_project(request.param, projects),
        "projects": projects,
    }


def task(project_id: str, **fields: Any) -> Task:
    fields.setdefault("title", "T")
    return Task(
        id=new_id(), project_id=project_id, created_by="u", created_at=NOW, updated_at=NOW, **fields
    )


def titles(page: Any) -> list[str]:
    return [t.title for t in page.items]


class TestWrites:
    def test_create_get_update(self, env: dict[str, Any]) -> None:
        repo = env["repo"]
        created = repo.create(task(env["project"], tags=("a", "b"), due_date=NOW), None)
        assert repo.get(created.id) == created
        changed = repo.update(
            created, created.with_changes(title="New", due_date=None, tags=()), None
        )
        assert changed.version == 2
        stored = repo.get(created.id)
        assert (stored.title, stored.due_date, stored.tags, stored.version) == ("New", None, (), 2)
        with pytest.raises(StaleVersion):
            repo.update(created, created.with_changes(title="Stale"), None)

    def test_a_task_needs_its_project(self, env: dict[str, Any]) -> None:
        with pytest.raises(NotFound):
            env["repo"].create(task("no-such-project"), None)

    def test_subtask_sets_follow_the_subtasks(self, env: dict[str, Any]) -> None:
        repo, project = env["repo"], env["project"]
        parent = repo.create(task(project, title="Parent"), None)
        child = repo.create(task(project, parent_id=parent.id), None)
        assert repo.get(parent.id).open_subtask_ids == (child.id,)
        done = repo.update(child, child.with_changes(status=Status.COMPLETED), None)
        parent_now = repo.get(parent.id)
        assert (parent_now.subtask_ids, parent_now.open_subtask_ids) == ((child.id,), ())
        repo.update(done, done.with_changes(parent_id=None), None)
        assert repo.get(parent.id).subtask_ids == ()

    def test_graph_is_versioned(self, env: dict[str, Any]) -> None:
        repo, project = env["repo"], env["project"]
        a = repo.create(task(project, title="A"), None)
        graph = repo.graph(project)
        b = repo.create(task(project, title="B", depends_on=(a.id,)), graph)
        assert repo.graph(project).edges == {b.id: [a.id]}
        with pytest.raises(StaleVersion):
            repo.create(task(project, title="C", depends_on=(a.id,)), graph)  # read before B

    def test_delete_takes_subtasks_and_dependency_edges(self, env: dict[str, Any]) -> None:
        repo, project = env["repo"], env["project"]
        parent = repo.create(task(project, title="Parent"), None)
        child = repo.create(task(project, title="Child", parent_id=parent.id), None)
        other = repo.create(
            task(project, title="Other", depends_on=(parent.id,)), repo.graph(project)
        )
        repo.delete(repo.get(parent.id), repo.graph(project))
        assert repo.get(parent.id) is None
        assert repo.get(child.id) is None
        assert repo.get(other.id).depends_on == ()
        assert repo.graph(project).edges == {}


@pytest.fixture
def seeded(env: dict[str, Any]) -> dict[str, Any]:
    repo, project = env["repo"], env["project"]
    specs = [
        ("t0", Status.PENDING, Priority.LOW, 3, "x", ("red",)),
        ("t1", Status.IN_PROGRESS, Priority.HIGH, 1, "me", ("red", "blue")),
        ("t2", Status.PENDING, Priority.URGENT, None, "me", ()),
        ("t3", Status.COMPLETED, Priority.MEDIUM, -1, None, ("blue",)),
        ("t4", Status.PENDING, Priority.HIGH, 2, None, ()),
        ("t5", Status.CANCELLED, Priority.LOW, None, "x", ()),
        ("t6", Status.PENDING, Priority.MEDIUM, 1, "me", ()),
    ]
    for title, status, priority, days, assignee, tags in specs:
        due = NOW + timedelta(days=days) if days is not None else None
        repo.create(
            task(
                project,
                title=title,
                status=status,
                priority=priority,
                due_date=due,
                assignee_id=assignee,
                tags=tags,
            ),
            None,
        )
    return env


def everything(repo: Any, query: TaskQuery, limit: int = 2) -> list[str]:
    """Walk every page; pages may be short when a filter applies."""
    seen: list[str] = []
    cursor = None
    for _ in range(50):
        page = repo.find(replace(query, page=PageRequest(limit=limit, cursor=cursor)))
        assert len(page.items) <= limit
        seen += titles(page)
        cursor = page.next_cursor
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


QUERIES = {
    "default": ({}, ["t6", "t5", "t4", "t3", "t2", "t1", "t0"]),
    "created": ({"sort": "created_at"}, ["t0", "t1", "t2", "t3", "t4", "t5", "t6"]),
    "due": ({"sort": "due_date"}, ["t3", "t1", "t6", "t4", "t0", "t2", "t5"]),
    "due desc": ({"sort": "-due_date"}, ["t0", "t4", "t6", "t1", "t3", "t5", "t2"]),
    "priority": ({"sort": "priority"}, ["t0", "t5", "t3", "t6", "t1", "t4", "t2"]),
    "-priority": ({"sort": "-priority"}, ["t2", "t4", "t1", "t6", "t3", "t5", "t0"]),
    "status": ({"sort": "status"}, ["t0", "t2", "t4", "t6", "t1", "t3", "t5"]),
    "pending by due": (
        {"sort": "due_date", "statuses": frozenset({Status.PENDING})},
        ["t6", "t4", "t0", "t2"],
    ),
    "pending or doing by due": (
        {"sort": "due_date", "statuses": frozenset({Status.PENDING, Status.IN_PROGRESS})},
        ["t1", "t6", "t4", "t0", "t2"],
    ),
    "priority filter": ({"priorities": frozenset({Priority.HIGH})}, ["t4", "t1"]),
    "assignee": ({"assignee_id": "me", "sort": "created_at"}, ["t1", "t2", "t6"]),
    "tag": ({"tag": "blue", "sort": "created_at"}, ["t1", "t3"]),
    "no due": ({"no_due_date": True, "sort": "created_at"}, ["t2", "t5"]),
    "no due by due": ({"no_due_date": True, "sort": "due_date"}, ["t2", "t5"]),
    "before by due": (
        {"due_before": NOW + timedelta(days=1, hours=1), "sort": "due_date"},
        ["t3", "t1", "t6"],
    ),
    "window": (
        {"due_after": NOW, "due_before": NOW + timedelta(days=2, hours=1), "sort": "-due_date"},
        ["t4", "t6", "t1"],
    ),
    "after by created": ({"due_after": NOW + timedelta(days=1, hours=1)}, ["t4", "t0"]),
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_every_order_and_filter(seeded: dict[str, Any], name: str) -> None:
    fields, expected = QUERIES[name]
    query = TaskQuery(project_ids=frozenset({seeded["project"]}), page=PageRequest(), **fields)
    assert everything(seeded["repo"], query) == expected


def test_a_cursor_of_another_query_is_refused(seeded: dict[str, Any]) -> None:
    project = frozenset({seeded["project"]})
    first = seeded["repo"].find(TaskQuery(project_ids=project, page=PageRequest(limit=1)))
    with pytest.raises(BadRequest):
        seeded["repo"].find(
            TaskQuery(
                project_ids=project,
                page=PageRequest(limit=1, cursor=first.next_cursor),
                sort="due_date",
            )
        )


def test_assigned_to_me_across_projects(env: dict[str, Any]) -> None:
    repo = env["repo"]
    other = make_project(env["kind"], env["projects"])
    repo.create(
        task(env["project"], title="here", assignee_id="me", due_date=NOW + timedelta(days=2)), None
    )
    repo.create(
        task(other, title="there", assignee_id="me", due_date=NOW + timedelta(days=1)), None
    )
    repo.create(task(other, title="not mine", assignee_id="you"), None)
    both = frozenset({env["project"], other})
    query = TaskQuery(
        project_ids=both, page=PageRequest(), across_projects_of_assignee="me", sort="due_date"
    )
    assert everything(repo, query) == ["there", "here"]
    # A project the user left drops out even though its tasks still name them.
    only_here = replace(query, project_ids=frozenset({env["project"]}))
    assert everything(repo, only_here) == ["here"]
