"""DynamoDB throttles a quarter of the app's calls during a mixed run of API requests.

Every answer must be the request's normal status or a 503 with `Retry-After` and the contract's
error body, never a 500. Each request's write is one transaction, so a 503 must have written
nothing: the test keeps a model of what the successful answers said (`World`) and, during the
run and with throttling off afterwards, holds the API and the tables to it, then checks the
data model's invariants on the tables themselves (`tables_are_consistent`).

The run is seeded (`SEED`): a failure replays with the same requests and the same throttled
calls.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.dynamodb import connection
from chalicelib.adapters.dynamodb.models import (
    ClaimModel,
    CommentModel,
    ExecutionModel,
    MembershipModel,
    NotificationModel,
    ProjectModel,
    SessionModel,
    TaskGraphModel,
    TaskHistoryModel,
    TaskModel,
    UserModel,
    UserProjectsModel,
)
from chalicelib.adapters.dynamodb.tasks import due_key, open_due_day, task_from_model
from chalicelib.handlers import streams
from tests.faults.throttling import THROTTLED_ITEM, Throttle
from tests.integration.helpers import PASSWORD, Api, assert_error
from tests.integration.test_search import stream_event

SEED = 8
SHARE = 0.25  # of the DynamoDB calls, throttled
REQUESTS = 240  # in the throttled run
# History events that come with a new version of the task (each write of the task is one).
VERSIONED_EVENTS = {"task.created", "task.updated", "task.assigned", "task.completed"}
WRITE_ROLES = {"owner", "admin", "member"}


@dataclass
class Person:
    email: str
    user_id: str
    token: str


@dataclass
class ModelTask:
    id: str
    project_id: str
    created_by: str
    title: str
    parent_id: str | None = None
    depends_on: list[str] = field(default_factory=list)
    assignee_id: str | None = None
    status: str = "pending"
    priority: str = "medium"
    version: int = 1
    history: list[str] = field(default_factory=lambda: ["task.created"])
    comments: dict[str, str] = field(default_factory=dict)  # comment id -> author id
    executions: list[str] = field(default_factory=list)


class World:
    """What the successful answers say the state is; every request goes through `call`."""

    def __init__(self, api: Api, throttle: Throttle, rng: random.Random) -> None:
        self.api = api
        self.throttle = throttle
        self.rng = rng
        self.people: list[Person] = []
        self.projects: dict[str, dict[str, str]] = {}  # project id -> {user id: role}
        self.personal: set[str] = set()  # personal projects (learned from their tasks)
        self.tasks: dict[str, ModelTask] = {}
        self.answers: dict[str, list[int]] = {}  # operation -> statuses
        self.counter = 0

    def call(
        self,
        label: str,
        expect: int,
        method: str,
        path: str,
        person: Person | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The answer's JSON (or {}) when it is the `expect`ed status; None for a 503."""
        token = person.token if person else None
        response = self.api.call(method, path, body, token=token, headers=headers)
        self.answers.setdefault(label, []).append(response.status_code)
        if response.status_code == 503:
            assert_error(response, 503, "unavailable")
            assert int(response.headers["Retry-After"]) >= 1, response.headers
            return None
        assert response.status_code == expect, (label, method, path, response.body)
        return json.loads(response.body) if response.body else {}

    def requests(self) -> int:
        return sum(len(statuses) for statuses in self.answers.values())

    def unique(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    # ---- what the model knows ------------------------------------------------------------------

    def role(self, person: Person, project_id: str) -> str | None:
        return self.projects.get(project_id, {}).get(person.user_id)

    def writable(self, person: Person) -> list[str]:
        return sorted(p for p, members in self.projects.items() if members.get(person.user_id))

    def tasks_of(self, project_id: str) -> list[ModelTask]:
        return sorted(
            (t for t in self.tasks.values() if t.project_id == project_id), key=lambda t: t.id
        )

    def subtasks_of(self, task: ModelTask) -> list[ModelTask]:
        return [t for t in self.tasks.values() if t.parent_id == task.id]

    def ready(self, task: ModelTask) -> bool:
        """May it become in_progress or completed (its dependencies and subtasks completed)?"""
        return all(self.tasks[d].status == "completed" for d in task.depends_on) and all(
            s.status == "completed" for s in self.subtasks_of(task)
        )

    def reaches(self, start: str, target: str) -> bool:
        """Does `start` depend on `target`, directly or through others?"""
        seen, todo = set(), [start]
        while todo:
            current = todo.pop()
            if current == target:
                return True
            if current not in seen:
                seen.add(current)
                todo += self.tasks[current].depends_on
        return False

    def pick_person(self) -> Person:
        return self.rng.choice(self.people)

    def pick_task(self, person: Person, *roles: str) -> ModelTask | None:
        allowed = set(roles or WRITE_ROLES)
        choices = [
            t for t in sorted(self.tasks.values(), key=lambda t: t.id)
            if self.role(person, t.project_id) in allowed
        ]  # fmt: skip
        return self.rng.choice(choices) if choices else None

    def forget_task(self, task: ModelTask) -> None:
        for doomed in [task, *self.subtasks_of(task)]:
            del self.tasks[doomed.id]
            for other in self.tasks.values():
                if doomed.id in other.depends_on:
                    other.depends_on.remove(doomed.id)  # no new version, no history

    def changed(self, task: ModelTask, answer: dict[str, Any], event: str) -> None:
        task.version += 1
        task.history.append(event)
        assert answer["version"] == task.version, (answer, task)


# ---- the operations of the mixed run ---------------------------------------------------------


def register(world: World) -> None:
    email = world.unique("person") + "@example.com"
    body = {"email": email, "password": PASSWORD, "name": email[:8]}
    answer = world.call("register", 201, "POST", "/auth/register", None, body)
    if answer is not None:
        world.people.append(Person(email, answer["user"]["id"], answer["access_token"]))


def login(world: World) -> None:
    person = world.pick_person()
    body = {"email": person.email, "password": PASSWORD}
    answer = world.call("login", 200, "POST", "/auth/login", None, body)
    if answer is not None:
        person.token = answer["access_token"]


def create_project(world: World) -> None:
    person = world.pick_person()
    body = {"name": world.unique("project ")}
    answer = world.call("create project", 201, "POST", "/projects", person, body)
    if answer is not None:
        world.projects[answer["id"]] = {person.user_id: "owner"}


def add_member(world: World) -> None:
    person = world.pick_person()
    owned = [
        p for p in world.writable(person)
        if world.role(person, p) in ("owner", "admin") and p not in world.personal
    ]  # fmt: skip
    if not owned:
        return
    project_id = world.rng.choice(owned)
    outsiders = [p for p in world.people if world.role(p, project_id) is None]
    if not outsiders:
        return
    member = world.rng.choice(outsiders)
    role = world.rng.choice(["member", "admin", "viewer"])
    body = {"user_id": member.user_id, "role": role}
    path = f"/projects/{project_id}/members"
    if world.call("add member", 201, "POST", path, person, body) is not None:
        world.projects[project_id][member.user_id] = role


def remove_member(world: World) -> None:
    person = world.pick_person()
    owned = [p for p in world.writable(person) if world.role(person, p) == "owner"]
    candidates = [
        (p, user) for p in owned for user, role in world.projects[p].items() if role != "owner"
    ]
    if not candidates:
        return
    project_id, user_id = world.rng.choice(candidates)
    path = f"/projects/{project_id}/members/{user_id}"
    if world.call("remove member", 204, "DELETE", path, person) is not None:
        del world.projects[project_id][user_id]  # tasks assigned to them keep the assignee


def delete_project(world: World) -> None:
    person = world.pick_person()
    owned = [
        p for p in world.writable(person)
        if world.role(person, p) == "owner" and p not in world.personal
    ]  # fmt: skip
    if not owned:
        return
    project_id = world.rng.choice(owned)
    if world.call("delete project", 204, "DELETE", f"/projects/{project_id}", person) is not None:
        del world.projects[project_id]
        for task in world.tasks_of(project_id):
            world.tasks.pop(task.id, None)


def create_task(world: World) -> None:
    person = world.pick_person()
    projects = [p for p in world.writable(person) if world.role(person, p) in WRITE_ROLES]
    if not projects or world.rng.random() < 0.15:
        # Without project_id: the caller's personal project, learned from the answer.
        body = {"title": world.unique("task ")}
        answer = world.call("create task", 201, "POST", "/tasks", person, body)
        if answer is not None:
            world.projects[answer["project_id"]] = {person.user_id: "owner"}
            world.personal.add(answer["project_id"])
            world.tasks[answer["id"]] = ModelTask(
                answer["id"], answer["project_id"], person.user_id, body["title"]
            )
        return
    project_id = world.rng.choice(projects)
    siblings = world.tasks_of(project_id)
    body: dict[str, Any] = {"title": world.unique("task "), "project_id": project_id}
    top_level = [t for t in siblings if t.parent_id is None]
    if top_level and world.rng.random() < 0.3:
        body["parent_id"] = world.rng.choice(top_level).id
    if siblings and world.rng.random() < 0.4:
        body["depends_on"] = [t.id for t in world.rng.sample(siblings, min(2, len(siblings)))]
    if world.rng.random() < 0.3:
        body["assignee_id"] = world.rng.choice(sorted(world.projects[project_id]))
    answer = world.call("create task", 201, "POST", "/tasks", person, body)
    if answer is not None:
        world.tasks[answer["id"]] = ModelTask(
            id=answer["id"],
            project_id=project_id,
            created_by=person.user_id,
            title=body["title"],
            parent_id=body.get("parent_id"),
            depends_on=list(body.get("depends_on", [])),
            assignee_id=body.get("assignee_id"),
        )


def update_task(world: World) -> None:
    person = world.pick_person()
    task = world.pick_task(person)
    if task is None:
        return
    kind = world.rng.choice(["title", "priority", "depends_on", "status"])
    body: dict[str, Any]
    if kind == "priority":
        body = {"priority": "high" if task.priority != "high" else "low"}
    elif kind == "depends_on":
        candidates = [
            t.id for t in world.tasks_of(task.project_id)
            if t.id != task.id and not world.reaches(t.id, task.id)
        ]  # fmt: skip
        chosen = sorted(world.rng.sample(candidates, min(len(candidates), world.rng.randint(0, 2))))
        if chosen == sorted(task.depends_on):
            return
        body = {"depends_on": chosen}
    elif kind == "status" and task.status == "pending" and world.ready(task):
        body = {"status": "in_progress"}
    else:
        body = {"title": world.unique("renamed ")}
    headers = {"If-Match": f'"{task.version}"'} if world.rng.random() < 0.5 else None
    answer = world.call("update task", 200, "PATCH", f"/tasks/{task.id}", person, body, headers)
    if answer is not None:
        task.title = body.get("title", task.title)
        task.priority = body.get("priority", task.priority)
        task.depends_on = list(body.get("depends_on", task.depends_on))
        task.status = body.get("status", task.status)
        world.changed(task, answer, "task.updated")


def stale_update(world: World) -> None:
    person = world.pick_person()
    task = world.pick_task(person)
    if task is None:
        return
    stale = task.version - 1 if task.version > 1 else task.version + 3
    headers = {"If-Match": f'"{stale}"'}
    body = {"title": world.unique("never ")}
    world.call("stale update", 412, "PATCH", f"/tasks/{task.id}", person, body, headers)


def complete_task(world: World) -> None:
    person = world.pick_person()
    task = world.pick_task(person)
    if task is None or task.status == "completed" or not world.ready(task):
        return
    answer = world.call("complete", 200, "POST", f"/tasks/{task.id}/complete", person)
    if answer is not None:
        task.status = "completed"
        world.changed(task, answer, "task.completed")


def assign_task(world: World) -> None:
    person = world.pick_person()
    task = world.pick_task(person)
    if task is None:
        return
    choices = [None, *sorted(world.projects[task.project_id])]
    assignee = world.rng.choice([c for c in choices if c != task.assignee_id])
    body = {"assignee_id": assignee}
    answer = world.call("assign", 200, "POST", f"/tasks/{task.id}/assign", person, body)
    if answer is not None:
        task.assignee_id = assignee
        world.changed(task, answer, "task.assigned")


def delete_task(world: World) -> None:
    person = world.pick_person()
    task = world.pick_task(person)
    if task is None:
        return
    admin = world.role(person, task.project_id) in ("owner", "admin")
    if task.created_by != person.user_id and not admin:
        return
    if world.call("delete task", 204, "DELETE", f"/tasks/{task.id}", person) is not None:
        world.forget_task(task)


def comment(world: World) -> None:
    person = world.pick_person()
    task = world.pick_task(person)
    if task is None:
        return
    mentioned = world.rng.choice(world.people)
    body = {"body": f"{world.unique('note ')} for @{mentioned.email}"}
    answer = world.call("comment", 201, "POST", f"/tasks/{task.id}/comments", person, body)
    if answer is not None:
        task.comments[answer["id"]] = person.user_id
        task.history.append("comment.created")


def delete_comment(world: World) -> None:
    person = world.pick_person()
    mine = [
        (task, comment_id)
        for task in sorted(world.tasks.values(), key=lambda t: t.id)
        for comment_id, author in task.comments.items()
        if author == person.user_id and world.role(person, task.project_id) in WRITE_ROLES
    ]
    if not mine:
        return
    task, comment_id = world.rng.choice(mine)
    path = f"/tasks/{task.id}/comments/{comment_id}"
    if world.call("delete comment", 204, "DELETE", path, person) is not None:
        del task.comments[comment_id]  # its history event stays


def run_now(world: World) -> None:
    person = world.pick_person()
    task = world.pick_task(person)
    if task is None:
        return
    answer = world.call("run now", 202, "POST", f"/tasks/{task.id}/run", person)
    if answer is not None:
        assert answer["status"] == "queued"  # no state machine in process: it stays queued
        task.executions.append(answer["id"])
        task.history.append("execution.queued")


def read_task(world: World) -> None:
    person = world.pick_person()
    task = world.pick_task(person, "owner", "admin", "member", "viewer")
    if task is not None:
        answer = world.call("read task", 200, "GET", f"/tasks/{task.id}", person)
        if answer is not None:
            assert_task_matches(answer, task)


def read_history(world: World) -> None:
    person = world.pick_person()
    task = world.pick_task(person, "owner", "admin", "member", "viewer")
    if task is not None:
        path = f"/tasks/{task.id}/history?limit=100"
        answer = world.call("history", 200, "GET", path, person)
        if answer is not None:
            assert [e["type"] for e in answer["items"]] == task.history


def list_tasks(world: World) -> None:
    person = world.pick_person()
    projects = world.writable(person)
    if projects:
        project_id = world.rng.choice(projects)
        path = f"/tasks?project_id={project_id}&limit=100"
        answer = world.call("list tasks", 200, "GET", path, person)
        if answer is not None:
            assert sorted(t["id"] for t in answer["items"]) == [
                t.id for t in world.tasks_of(project_id)
            ]
            assert answer["next_cursor"] is None


def notifications(world: World) -> None:
    person = world.pick_person()
    if world.rng.random() < 0.5:
        world.call("notifications", 200, "GET", "/notifications?unread=true", person)
    else:
        world.call("read all", 204, "POST", "/notifications/read-all", person)


OPERATIONS_BY_WEIGHT: list[tuple[Callable[[World], None], int]] = [
    (register, 2),
    (login, 2),
    (create_project, 2),
    (add_member, 4),
    (remove_member, 1),
    (delete_project, 1),
    (create_task, 24),
    (update_task, 16),
    (stale_update, 3),
    (complete_task, 8),
    (assign_task, 5),
    (delete_task, 4),
    (comment, 8),
    (delete_comment, 2),
    (run_now, 3),
    (read_task, 4),
    (read_history, 3),
    (list_tasks, 3),
    (notifications, 2),
]


def assert_task_matches(answer: dict[str, Any], task: ModelTask) -> None:
    shown = {
        "title": answer["title"],
        "status": answer["status"],
        "priority": answer["priority"],
        "parent_id": answer["parent_id"],
        "depends_on": sorted(answer["depends_on"]),
        "assignee_id": answer["assignee_id"],
        "version": answer["version"],
    }
    assert shown == {
        "title": task.title,
        "status": task.status,
        "priority": task.priority,
        "parent_id": task.parent_id,
        "depends_on": sorted(task.depends_on),
        "assignee_id": task.assignee_id,
        "version": task.version,
    }, task.id


# ---- the invariants of the tables -------------------------------------------------------------


def tables_are_consistent() -> None:
    """The data model's invariants (docs/data-model.md), read from the tables themselves."""
    users = {u.id: u for u in UserModel.scan()}
    projects = {p.id: p for p in ProjectModel.scan()}
    memberships = {(m.project_id, m.user_id): m.role for m in MembershipModel.scan()}
    claims = {c.key: c.owner_id for c in ClaimModel.scan()}
    tasks = {t.id: task_from_model(t) for t in TaskModel.scan()}
    rows = {t.id: t for t in TaskModel.scan()}

    # Accounts: one email claim per user and no claim without its user; one first admin.
    emails = {key.removeprefix("email#"): owner for key, owner in claims.items() if "@" in key}
    assert emails == {u.email: u.id for u in users.values()}
    assert users[claims["system#first-admin"]].role == "admin"
    for user in users.values():
        personal = projects[user.personal_project_id]
        assert (personal.owner_id, personal.personal) == (user.id, True)
    assert {s.user_id for s in SessionModel.scan()} <= set(users)

    # Memberships: of existing projects and users, mirrored in user_projects; one owner each.
    assert {p for p, _ in memberships} <= set(projects)
    assert {u for _, u in memberships} <= set(users)
    mirrored = {
        (project_id, row.user_id): role
        for row in UserProjectsModel.scan()
        for project_id, role in (row.projects.as_dict() if row.projects else {}).items()
    }
    assert mirrored == memberships
    assert set(users) <= {row.user_id for row in UserProjectsModel.scan()}
    for project in projects.values():
        assert memberships[(project.id, project.owner_id)] == "owner"

    # Tasks: in existing projects; subtask sets, dependencies and the graph item agree.
    edges: dict[str, dict[str, list[str]]] = {}
    for task in tasks.values():
        assert task.project_id in projects, task.id
        children = {t.id for t in tasks.values() if t.parent_id == task.id}
        open_children = {
            t.id for t in tasks.values() if t.parent_id == task.id and not t.status.closed
        }
        assert set(task.subtask_ids) == children, task.id
        assert set(task.open_subtask_ids) == open_children, task.id
        if task.parent_id is not None:
            parent = tasks[task.parent_id]
            assert (parent.project_id, parent.parent_id) == (task.project_id, None)
        for dependency in task.depends_on:
            assert tasks[dependency].project_id == task.project_id, (task.id, dependency)
        if task.depends_on:
            edges.setdefault(task.project_id, {})[task.id] = sorted(task.depends_on)
        row = rows[task.id]
        assert row.due_key == due_key(task)
        assert row.status_key == f"{task.status.rank}#{task.id}"
        assert row.priority_key == f"{task.priority.rank}#{task.id}"
        assert row.project_status == f"{task.project_id}#{task.status.value}"
        assert row.open_due_day == open_due_day(task)
    graphs = {
        g.project_id: {t: sorted(d) for t, d in (g.edges.as_dict() if g.edges else {}).items()}
        for g in TaskGraphModel.scan()
    }
    assert {p: e for p, e in graphs.items() if e and p in projects} == edges

    # History: one versioned event per version, comments and runs each with their event.
    for task in tasks.values():
        events = list(TaskHistoryModel.query(task.id))
        assert events[0].type == "task.created", task.id
        assert sum(e.type in VERSIONED_EVENTS for e in events) == task.version, task.id
        commented = {
            json.loads(e.changes)["comment_id"][1] for e in events if e.type == "comment.created"
        }
        assert {c.id for c in CommentModel.query(task.id)} <= commented, task.id
        queued = {
            json.loads(e.changes)["execution_id"][1] for e in events if e.type == "execution.queued"
        }
        assert {e.id for e in ExecutionModel.by_task.query(task.id)} == queued, task.id
    assert {n.user_id for n in NotificationModel.scan()} <= set(users)


def purge_deleted_projects() -> None:
    """What the stream consumer does after a project's deletion (memberships, tasks, ...)."""
    settings = bootstrap.container().settings
    streams.on_change(stream_event(settings.table_name("projects")))


# ---- the test -------------------------------------------------------------------------------


@pytest.fixture
def world(serialized_moto: None, container: bootstrap.Container) -> Iterator[World]:
    with Client(app) as client:
        throttle = Throttle(connection.root().client, SHARE, SEED)
        try:
            yield World(Api(client), throttle, random.Random(SEED))
        finally:
            throttle.remove()


def test_a_mixed_run_under_throttling_answers_503_or_succeeds_and_writes_all_or_nothing(
    world: World,
) -> None:
    for _ in range(3):
        register(world)
    world.throttle.on = True
    operations, weights = zip(*OPERATIONS_BY_WEIGHT, strict=True)
    while world.requests() < REQUESTS:
        world.rng.choices(operations, weights)[0](world)
    world.throttle.on = False

    statuses = [s for answers in world.answers.values() for s in answers]
    assert statuses.count(503) >= REQUESTS // 4, world.answers  # the faults did happen
    assert len(statuses) - statuses.count(503) >= REQUESTS // 3, world.answers
    assert len(world.tasks) >= 20, world.answers  # and enough happened in spite of them
    # Every kind of fault came up: each throttling error, and cancelled transactions.
    kinds = {key.split(":")[1] for key in world.throttle.injected}
    assert kinds == {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "TransactionCanceledException",
    }, world.throttle.injected

    # With throttling off, the API shows exactly what the successful answers said.
    for task in world.tasks.values():
        owner = next(p for p in world.people if world.role(p, task.project_id))
        assert_task_matches(world.call("final read", 200, "GET", f"/tasks/{task.id}", owner), task)
        history = world.call(
            "final history", 200, "GET", f"/tasks/{task.id}/history?limit=100", owner
        )
        assert [e["type"] for e in history["items"]] == task.history, task.id
        comments = world.call(
            "final comments", 200, "GET", f"/tasks/{task.id}/comments?limit=100", owner
        )
        assert {c["id"] for c in comments["items"]} == set(task.comments), task.id
    for project_id, members in world.projects.items():
        owner = next(p for p in world.people if members.get(p.user_id) == "owner")
        listed = world.call(
            "final list", 200, "GET", f"/tasks?project_id={project_id}&limit=100", owner
        )
        assert sorted(t["id"] for t in listed["items"]) == [
            t.id for t in world.tasks_of(project_id)
        ]
        shown = world.call(
            "final members", 200, "GET", f"/projects/{project_id}/members?limit=100", owner
        )
        assert {m["user_id"]: m["role"] for m in shown["items"]} == members

    purge_deleted_projects()
    tables_are_consistent()
    assert {t.id for t in TaskModel.scan()} == set(world.tasks)


@pytest.mark.parametrize("reason", sorted(THROTTLED_ITEM))
def test_a_transaction_cancelled_by_throttling_is_503_and_writes_nothing(
    container: bootstrap.Container, reason: str
) -> None:
    """DynamoDB throttles a transaction by cancelling it, naming the item that ran out of
    capacity (or met another transaction): the request is a 503 to retry, not a 500."""
    with Client(app) as client:
        api = Api(client)
        token = api.register()["access_token"]
        throttle = Throttle(
            connection.root().client,
            1.0,
            SEED,
            operations=frozenset({"TransactWriteItems"}),
            cancellations=1.0,
            reasons=(reason,),
        )
        throttle.on = True
        try:
            response = api.call("POST", "/tasks", {"title": "Throttled"}, token=token)
            project = api.call("POST", "/projects", {"name": "Throttled"}, token=token)
        finally:
            throttle.remove()
        for answer in (response, project):
            assert_error(answer, 503, "unavailable")
            assert int(answer.headers["Retry-After"]) >= 1
        assert throttle.injected == {"TransactWriteItems:TransactionCanceledException": 2}
        listed = json.loads(api.call("GET", "/tasks", token=token).body)
        assert listed["items"] == []
        projects = json.loads(api.call("GET", "/projects", token=token).body)["items"]
        assert [p["name"] for p in projects] == ["Personal"]


def test_a_single_write_that_meets_a_transaction_is_503(container: bootstrap.Container) -> None:
    """DynamoDB refuses a PutItem/UpdateItem/DeleteItem of an item a transaction is writing at
    that moment (`TransactionConflictException`; botocore does not retry it): retry, not 500."""
    with Client(app) as client:
        api = Api(client)
        token = api.register()["access_token"]
        throttle = Throttle(
            connection.root().client,
            1.0,
            SEED,
            operations=frozenset({"PutItem"}),
            codes=("TransactionConflictException",),
        )
        throttle.on = True
        try:
            response = api.call("PATCH", "/users/profile", {"name": "Grace"}, token=token)
        finally:
            throttle.remove()
        assert_error(response, 503, "unavailable")
        assert int(response.headers["Retry-After"]) >= 1
        assert throttle.injected == {"PutItem:TransactionConflictException": 1}
        profile = json.loads(api.call("GET", "/users/profile", token=token).body)
        assert (profile["name"], profile["version"]) == ("Ada", 1)
