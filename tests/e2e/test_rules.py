"""Automation rules on the running local stack: the stream consumer evaluates a rule when a
task is created; the rule sets a field and creates a task from a template, once, and its own
changes set off no rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local.testing import ApiClient, StackProcess, wait_until

TIMEOUT = 30.0


def test_a_rule_sets_a_field_and_creates_a_task_once(
    stack: StackProcess, new_user: Callable[..., dict[str, Any]]
) -> None:
    api = ApiClient(stack.api, new_user()["access_token"])
    project = api("POST", "/projects", {"name": "Intake"}, 201)["id"]
    # The template's task has the very tag the rule reacts to: were the rule's own task to set
    # off rules, it would go on and on.
    template = api(
        "POST",
        f"/projects/{project}/templates",
        {"name": "Triage", "task": {"title": "Triage {{task_title}}", "tags": ["intake"]}},
        201,
    )
    rule = api(
        "POST",
        f"/projects/{project}/rules",
        {
            "name": "Urgent intake",
            "trigger": {"event": "task.created", "conditions": {"tag": "intake"}},
            "actions": [
                {"type": "set_field", "field": "priority", "value": "urgent"},
                {"type": "create_task", "template_id": template["id"]},
            ],
        },
        201,
    )
    assert (rule["enabled"], rule["trigger"]["conditions"]) == (True, {"tag": "intake"})
    sentinel = api(
        "POST",
        f"/projects/{project}/rules",
        {
            "name": "Sentinel",
            "trigger": {"event": "task.created", "conditions": {"tag": "sentinel"}},
            "actions": [{"type": "notify", "user_id": "creator", "message": "sentinel"}],
        },
        201,
    )

    task = api(
        "POST", "/tasks", {"title": "Server down", "project_id": project, "tags": ["intake"]}, 201
    )
    assert task["priority"] == "medium"

    def fired() -> list[dict[str, Any]]:
        return api("GET", f"/rules/{rule['id']}/executions")["items"]  # type: ignore[no-any-return]

    (execution,) = wait_until(fired, TIMEOUT, interval=0.2, message="the rule's execution")
    assert (execution["status"], execution["trigger_event"], execution["task_id"]) == (
        "succeeded",
        "task.created",
        task["id"],
    )
    assert [(a["type"], a["status"]) for a in execution["actions"]] == [
        ("set_field", "succeeded"),
        ("create_task", "succeeded"),
    ]
    assert api("GET", f"/tasks/{task['id']}")["priority"] == "urgent"
    made = api("GET", f"/tasks/{execution['actions'][1]['ref']}")
    assert (made["title"], made["tags"]) == ("Triage Server down", ["intake"])

    # A barrier: a task created after the rule's own task; once the sentinel rule has acted on
    # it, the stream consumer has gone past the rule's task too.
    later = api(
        "POST", "/tasks", {"title": "Later", "project_id": project, "tags": ["sentinel"]}, 201
    )
    (seen,) = wait_until(
        lambda: api("GET", f"/rules/{sentinel['id']}/executions")["items"],
        TIMEOUT,
        interval=0.2,
        message="the sentinel rule",
    )
    assert seen["task_id"] == later["id"]
    assert len(fired()) == 1  # the rule's own task set off nothing
    titles = [t["title"] for t in api("GET", f"/tasks?project_id={project}&limit=100")["items"]]
    assert sorted(titles) == ["Later", "Server down", "Triage Server down"]
    notes = api("GET", "/notifications")["items"]
    assert [(n["type"], n["message"]) for n in notes if n["type"] == "rule.notify"] == [
        ("rule.notify", "sentinel")
    ]
