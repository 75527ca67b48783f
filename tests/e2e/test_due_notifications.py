"""`task.due_soon` and `task.overdue` over real HTTP against the local stack, whose due-date
sweep runs by itself every second (TASKBEAT_LOCAL_SWEEP_SECONDS, set by `StackProcess`).

"Exactly once after several sweeps" is shown without sleeping: a witness task created after
the notification was seen is told about by a later sweep, so each witness that gets its own
notification proves one more whole sweep ran (sweeps run one at a time, and a sweep reads the
tasks before it writes).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from local.testing import StackProcess, unique_email, wait_until

pytestmark = pytest.mark.e2e

DEADLINE = 30.0  # seconds; a sweep runs every second


class Person:
    def __init__(self, api: str, registered: dict[str, Any], email: str) -> None:
        self.api = api
        self.id: str = registered["user"]["id"]
        self.token: str = registered["access_token"]
        self.email = email

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(
            method,
            f"{self.api}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert response.status_code in (200, 201, 204), (method, path, response.text)
        return response.json() if response.content else None

    def told(self, kind: str, task: dict[str, Any]) -> list[dict[str, Any]]:
        items = self.ok("GET", "/notifications?limit=100")["items"]
        return [n for n in items if n["type"] == kind and n["task_id"] == task["id"]]

    def task(self, title: str, due_in: timedelta | None, **fields: Any) -> dict[str, Any]:
        body = {"title": title, **fields}
        if due_in is not None:
            body["due_date"] = rfc3339(datetime.now(UTC) + due_in)
        task: dict[str, Any] = self.ok("POST", "/tasks", body)
        return task


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def person(stack: StackProcess, new_user: Callable[..., dict[str, Any]]) -> Callable[[], Person]:
    def make() -> Person:
        email = unique_email("due")
        return Person(stack.api, new_user(email=email), email)

    return make


def wait_for_one(person: Person, kind: str, task: dict[str, Any]) -> dict[str, Any]:
    found = wait_until(
        lambda: person.told(kind, task), timeout=DEADLINE, message=f"{kind} for {task['title']}"
    )
    assert len(found) == 1, found
    return found[0]


def more_sweeps(witness: Person, count: int = 2) -> None:
    """Return once `count` more whole sweeps have run (see the module's docstring)."""
    for number in range(count):
        marker = witness.task(f"witness {number}", timedelta(hours=1))
        wait_for_one(witness, "task.due_soon", marker)


def test_a_task_due_within_the_hour_tells_its_assignee_once(
    person: Callable[[], Person],
) -> None:
    owner, assignee, witness = person(), person(), person()
    project = owner.ok("POST", "/projects", {"name": "Launch"})
    owner.ok(
        "POST", f"/projects/{project['id']}/members", {"email": assignee.email, "role": "member"}
    )
    task = owner.task(
        "Ship the release",
        timedelta(hours=1),
        project_id=project["id"],
        assignee_id=assignee.id,
    )

    notification = wait_for_one(assignee, "task.due_soon", task)
    assert notification["project_id"] == project["id"]
    assert notification["read"] is False
    assert "Ship the release" in notification["message"]
    more_sweeps(witness)
    assert len(assignee.told("task.due_soon", task)) == 1
    assert owner.told("task.due_soon", task) == []  # the assignee is told, not the creator
    assert assignee.told("task.overdue", task) == []


def test_a_task_due_a_minute_ago_is_overdue_once(person: Callable[[], Person]) -> None:
    creator, witness = person(), person()
    task = creator.task("Pay the invoice", -timedelta(minutes=1))

    notification = wait_for_one(creator, "task.overdue", task)  # no assignee: the creator
    assert "Pay the invoice" in notification["message"]
    more_sweeps(witness)
    assert len(creator.told("task.overdue", task)) == 1
    assert creator.told("task.due_soon", task) == []  # already past: never "due soon"


def test_a_task_completed_before_the_sweep_is_never_overdue(
    person: Callable[[], Person],
) -> None:
    creator, witness = person(), person()
    # Due in three days: no sweep has anything to say about it yet.
    task = creator.task("Renew the domain", timedelta(days=3))
    creator.ok("POST", f"/tasks/{task['id']}/complete")
    # Completed, and now past its due date: were it open, it would be overdue.
    past = rfc3339(datetime.now(UTC) - timedelta(minutes=1))
    assert creator.ok("PATCH", f"/tasks/{task['id']}", {"due_date": past})["status"] == "completed"
    # The control: an open task due at the same time is told about.
    control = creator.task("Renew the certificate", -timedelta(minutes=1))

    wait_for_one(creator, "task.overdue", control)
    more_sweeps(witness)
    assert creator.told("task.overdue", task) == []
    assert creator.told("task.due_soon", task) == []
