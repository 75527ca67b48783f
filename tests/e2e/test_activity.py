"""Comments, history and notifications over real HTTP against the local stack: what a team sees
when it works on a task together, and who may see or do it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from local.testing import StackProcess, unique_email

pytestmark = pytest.mark.e2e


class Person:
    def __init__(self, api: str, registered: dict[str, Any], email: str) -> None:
        self.api = api
        self.id: str = registered["user"]["id"]
        self.token: str = registered["access_token"]
        self.email = email

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method,
            f"{self.api}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        response = self.call(method, path, body)
        assert response.status_code in (200, 201, 204), (method, path, response.text)
        return response.json() if response.content else None

    def notifications(self, unread: bool = False) -> list[dict[str, Any]]:
        query = "?unread=true&limit=100" if unread else "?limit=100"
        items: list[dict[str, Any]] = self.ok("GET", f"/notifications{query}")["items"]
        return items


@pytest.fixture
def people(stack: StackProcess, new_user: Callable[..., dict[str, Any]]) -> dict[str, Person]:
    found = {}
    for name in ("owner", "member", "viewer", "stranger"):
        email = unique_email()
        found[name] = Person(stack.api, new_user(email=email, name=name.title()), email)
    return found


def test_a_team_working_on_a_task(people: dict[str, Person]) -> None:
    owner, member, viewer = people["owner"], people["member"], people["viewer"]
    project = owner.ok("POST", "/projects", {"name": "Launch"})
    for person, role in ((member, "member"), (viewer, "viewer")):
        owner.ok(
            "POST", f"/projects/{project['id']}/members", {"email": person.email, "role": role}
        )
    task = owner.ok("POST", "/tasks", {"title": "Draft", "project_id": project["id"]})
    comments = f"/tasks/{task['id']}/comments"

    # A comment mentioning the viewer (twice, in capitals) notifies them once.
    comment = member.ok(
        "POST", comments, {"body": f"@{viewer.email.upper()} have a look, @{viewer.email}"}
    )
    assert (comment["author_id"], comment["task_id"]) == (member.id, task["id"])
    (mention,) = viewer.notifications()
    assert (mention["type"], mention["task_id"], mention["project_id"], mention["read"]) == (
        "comment.mention",
        task["id"],
        project["id"],
        False,
    )
    assert viewer.ok("GET", comments)["items"] == [comment]

    owner.ok("PATCH", f"/tasks/{task['id']}", {"title": "Final"})
    owner.ok("POST", f"/tasks/{task['id']}/assign", {"assignee_id": member.id})
    (assigned,) = member.notifications()
    assert (assigned["type"], assigned["task_id"]) == ("task.assigned", task["id"])

    member.ok("PATCH", f"/tasks/{task['id']}", {"status": "in_progress"})
    member.ok("POST", f"/tasks/{task['id']}/complete")
    assert [n["type"] for n in owner.notifications()] == ["task.status_changed"] * 2
    assert [n["type"] for n in member.notifications()] == ["task.assigned"]  # not for its own

    history = viewer.ok("GET", f"/tasks/{task['id']}/history")["items"]
    assert [(e["type"], e["actor_id"]) for e in history] == [
        ("task.created", owner.id),
        ("comment.created", member.id),
        ("task.updated", owner.id),
        ("task.assigned", owner.id),
        ("task.updated", member.id),
        ("task.completed", member.id),
    ]
    assert history[1]["changes"] == {"comment_id": [None, comment["id"]]}
    assert history[2]["changes"] == {"title": ["Draft", "Final"]}
    assert history[3]["changes"] == {"assignee_id": [None, member.id]}
    assert history[4]["changes"]["status"] == ["pending", "in_progress"]
    assert history[5]["changes"]["status"] == ["in_progress", "completed"]

    # Read one, then all.
    assert viewer.call("POST", f"/notifications/{mention['id']}/read").status_code == 204
    assert viewer.notifications(unread=True) == []
    assert viewer.notifications()[0]["read"] is True
    assert owner.call("POST", f"/notifications/{mention['id']}/read").status_code == 404
    assert len(owner.notifications(unread=True)) == 2
    assert owner.call("POST", "/notifications/read-all").status_code == 204
    assert owner.notifications(unread=True) == []
    assert all(n["read"] for n in owner.notifications())

    # Comments go with their author, or any admin.
    assert viewer.call("DELETE", f"{comments}/{comment['id']}").status_code == 403
    assert member.call("DELETE", f"{comments}/{comment['id']}").status_code == 204
    assert member.call("DELETE", f"{comments}/{comment['id']}").status_code == 404
    assert viewer.ok("GET", comments)["items"] == []


def test_who_may_see_and_do_what(stack: StackProcess, people: dict[str, Person]) -> None:
    owner, viewer, stranger = people["owner"], people["viewer"], people["stranger"]
    project = owner.ok("POST", "/projects", {"name": "Private"})
    owner.ok(
        "POST", f"/projects/{project['id']}/members", {"email": viewer.email, "role": "viewer"}
    )
    task = owner.ok("POST", "/tasks", {"title": "Secret", "project_id": project["id"]})
    comments = f"/tasks/{task['id']}/comments"
    comment = owner.ok("POST", comments, {"body": f"hi @{stranger.email}"})
    assert stranger.notifications() == []  # not a member: the mention is ignored

    assert viewer.call("GET", comments).status_code == 200
    assert viewer.call("GET", f"/tasks/{task['id']}/history").status_code == 200
    refused = viewer.call("POST", comments, {"body": "me too"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")

    requests_to_try = (
        ("GET", comments, None),
        ("POST", comments, {"body": "hello"}),
        ("DELETE", f"{comments}/{comment['id']}", None),
        ("GET", f"/tasks/{task['id']}/history", None),
    )
    for method, path, body in requests_to_try:
        hidden = stranger.call(method, path, body)
        assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "not_found"), path
        anonymous = requests.request(method, f"{stack.api}{path}", json=body, timeout=30)
        assert anonymous.status_code == 401, path
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    for method, path in (
        ("GET", "/notifications"),
        ("POST", "/notifications/read-all"),
        ("POST", f"/notifications/{comment['id']}/read"),
    ):
        assert requests.request(method, f"{stack.api}{path}", timeout=30).status_code == 401
    invalid = owner.call("POST", comments, {"body": ""})
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (422, "validation_error")
