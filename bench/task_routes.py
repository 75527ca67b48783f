"""DynamoDB calls of the task, comment, history and notification routes (see bench/__main__)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def task_routes(
    call: Callable[..., Any], measure: Callable[..., Any], token: str, other: dict[str, Any]
) -> None:
    """Every write gets fresh state, so each repetition does real work."""

    def body(response: Any) -> Any:
        assert response.status_code < 300, response.body
        return json.loads(response.body) if response.body else None

    project = body(call("POST", "/projects", {"name": "Bench tasks"}, token))["id"]
    call(
        "POST",
        f"/projects/{project}/members",
        {"user_id": other["user"]["id"], "role": "member"},
        token,
    )
    titles = iter(f"Task {i}" for i in range(1000))
    first = body(
        measure(
            "POST /tasks",
            lambda: call("POST", "/tasks", {"title": next(titles), "project_id": project}, token),
        )
    )
    task = f"/tasks/{first['id']}"
    keyed_routes(call, measure, token, project)
    lists = {
        "GET /tasks (default)": f"/tasks?project_id={project}",
        "GET /tasks?status&sort=due_date": (
            f"/tasks?project_id={project}&status=pending&sort=due_date"
        ),
        "GET /tasks?priority&tag": f"/tasks?project_id={project}&priority=high&tag=x",
        "GET /tasks?assignee_id=me": "/tasks?assignee_id=me",
        "GET /tasks/search": f"/tasks/search?q=task&project_id={project}",
    }
    for label, path in lists.items():
        measure(label, lambda path=path: call("GET", path, token=token))
    measure("GET /tasks/{id}", lambda: call("GET", task, token=token))
    priorities = iter(["high", "low"] * 5)
    measure("PATCH /tasks/{id}", lambda: call("PATCH", task, {"priority": next(priorities)}, token))
    assignees = iter([other["user"]["id"], None] * 5)
    measure(
        "POST /tasks/{id}/assign",
        lambda: call("POST", f"{task}/assign", {"assignee_id": next(assignees)}, token),
    )
    fresh = iter(
        [
            body(call("POST", "/tasks", {"title": "t", "project_id": project}, token))["id"]
            for _ in range(10)
        ]
    )
    measure(
        "POST /tasks/{id}/complete",
        lambda: call("POST", f"/tasks/{next(fresh)}/complete", token=token),
    )
    measure("DELETE /tasks/{id}", lambda: call("DELETE", f"/tasks/{next(fresh)}", token=token))
    parent = body(call("POST", "/tasks", {"title": "parent", "project_id": project}, token))["id"]
    for _ in range(3):
        call(
            "POST", "/tasks", {"title": "child", "project_id": project, "parent_id": parent}, token
        )
    measure(
        "GET /tasks/{id}/subtasks", lambda: call("GET", f"/tasks/{parent}/subtasks", token=token)
    )
    measure(
        "POST /tasks/{id}/comments",
        lambda: call(
            "POST", f"{task}/comments", {"body": f"ping @{other['user']['email']}"}, token
        ),
    )
    measure("GET /tasks/{id}/comments", lambda: call("GET", f"{task}/comments", token=token))
    comments = iter(
        [body(call("POST", f"{task}/comments", {"body": "bye"}, token))["id"] for _ in range(5)]
    )
    measure(
        "DELETE .../comments/{id}",
        lambda: call("DELETE", f"{task}/comments/{next(comments)}", token=token),
    )
    measure("GET /tasks/{id}/history", lambda: call("GET", f"{task}/history", token=token))
    their = other["access_token"]
    measure("GET /notifications", lambda: call("GET", "/notifications?unread=true", token=their))
    notes = iter([n["id"] for n in body(call("GET", "/notifications", token=their))["items"]])
    measure(
        "POST /notifications/{id}/read",
        lambda: call("POST", f"/notifications/{next(notes)}/read", token=their),
    )
    measure(
        "POST /notifications/read-all", lambda: call("POST", "/notifications/read-all", token=their)
    )


# Labels of the keyed POSTs (bench/routes.py gives them their own budgets).
KEYED = "POST /tasks + Idempotency-Key"
REPLAYED = "POST /tasks + Idempotency-Key, replayed"


def keyed_routes(
    call: Callable[..., Any], measure: Callable[..., Any], token: str, project: str
) -> None:
    """A POST with an Idempotency-Key (a new key each time: claim, the task's transaction
    carrying the claim's check, the answer kept), and the same POST again (the replay)."""
    keys = iter(f"bench-{i}" for i in range(1000))
    body = {"title": "Keyed", "project_id": project}
    measure(KEYED, lambda: call("POST", "/tasks", body, token, key=next(keys)))
    measure(REPLAYED, lambda: call("POST", "/tasks", body, token, key="bench-0"))
