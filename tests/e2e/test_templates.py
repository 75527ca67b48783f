"""Task templates on the running local stack: a task and its subtasks from a template whose
placeholders are filled in, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from local.testing import StackProcess


def call(stack: StackProcess, token: str, method: str, path: str, body: Any = None) -> Any:
    return requests.request(
        method,
        stack.api + path,
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_from_template_fills_placeholders_and_makes_subtasks(
    stack: StackProcess, new_user: Callable[..., dict[str, Any]]
) -> None:
    token = new_user()["access_token"]
    project = call(stack, token, "POST", "/projects", {"name": "Hiring"}).json()
    template = call(
        stack,
        token,
        "POST",
        f"/projects/{project['id']}/templates",
        {
            "name": "Onboarding",
            "task": {"title": "Onboard {{name}}", "tags": ["{{ team }}"], "priority": "high"},
            "subtasks": [{"title": "Laptop for {{name}}"}, {"title": "Badge for {{name}}"}],
        },
    )
    assert template.status_code == 201, template.text
    template_id = template.json()["id"]

    missing = call(
        stack, token, "POST", "/tasks/from-template", {"template_id": template_id, "values": {}}
    )
    assert missing.status_code == 422, missing.text
    assert {tuple(d["loc"]) for d in missing.json()["error"]["details"]} == {
        ("body", "values", "name"),
        ("body", "values", "team"),
    }

    made = call(
        stack,
        token,
        "POST",
        "/tasks/from-template",
        {"template_id": template_id, "values": {"name": "Ada", "team": "ops"}},
    )
    assert made.status_code == 201, made.text
    task = made.json()
    assert (task["title"], task["tags"], task["priority"], task["project_id"]) == (
        "Onboard Ada",
        ["ops"],
        "high",
        project["id"],
    )
    assert [s["title"] for s in task["subtasks"]] == ["Laptop for Ada", "Badge for Ada"]
    subtasks = call(stack, token, "GET", f"/tasks/{task['id']}/subtasks").json()["items"]
    assert sorted(s["title"] for s in subtasks) == ["Badge for Ada", "Laptop for Ada"]
    assert all(s["parent_id"] == task["id"] for s in subtasks)
    # The parent cannot be completed while its subtasks are open: they are real subtasks.
    blocked = call(stack, token, "POST", f"/tasks/{task['id']}/complete")
    assert blocked.status_code == 409, blocked.text
