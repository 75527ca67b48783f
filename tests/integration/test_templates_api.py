"""Task templates over HTTP (Chalice's test client on moto): contract, roles and call budget."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Http
from tests.integration.test_workflows_api import BATCH, TRANSACTION, error_code, team

TEMPLATE = {
    "name": "Onboarding",
    "task": {
        "title": "Onboard {{name}}",
        "description": "Welcome {{ name }} to {{team}}",
        "priority": "high",
        "tags": ["onboarding", "{{team}}"],
    },
    "subtasks": [{"title": "Laptop for {{name}}"}, {"title": "Badge", "priority": "low"}],
}
TEMPLATE_FIELDS = {
    "id", "project_id", "name", "task", "subtasks", "placeholders", "created_by", "created_at",
    "updated_at", "version",
}  # fmt: skip


def test_templates_crud_with_roles_and_versions(http: Http) -> None:
    t = team(http)
    path = f"/projects/{t['project']}/templates"
    assert http("POST", path, TEMPLATE, t["viewer"]).status_code == 403
    assert error_code(http("POST", path, TEMPLATE, t["stranger"])) == "not_found"
    created = http("POST", path, TEMPLATE, t["member"])
    assert created.status_code == 201, created.body
    assert http.calls == [BATCH, TRANSACTION]
    template = created.json
    assert set(template) == TEMPLATE_FIELDS
    assert created.headers["ETag"] == '"1"'
    assert template["placeholders"] == ["name", "team"]
    assert template["task"] == {**TEMPLATE["task"], "assignee_id": None}
    assert template["subtasks"][1] == {
        "title": "Badge",
        "description": "",
        "priority": "low",
        "tags": [],
        "assignee_id": None,
    }

    read = http("GET", f"/templates/{template['id']}", token=t["viewer"])
    assert (read.status_code, read.json) == (200, template)
    assert http.calls == [BATCH]
    assert http("GET", f"/templates/{template['id']}", token=t["stranger"]).status_code == 404
    listed = http("GET", f"{path}?limit=1", token=t["viewer"])
    assert (listed.json["items"], listed.json["next_cursor"]) == ([template], None)
    assert http("GET", path, token=t["stranger"]).status_code == 404

    bad = http("POST", path, {**TEMPLATE, "id": "x"}, t["member"])
    assert (bad.status_code, error_code(bad)) == (422, "validation_error")
    not_member = http(
        "POST", path, {**TEMPLATE, "task": {"title": "x", "assignee_id": "nobody"}}, t["member"]
    )
    assert not_member.status_code == 422
    assert not_member.json["error"]["details"][0]["loc"] == ["body", "task", "assignee_id"]

    renamed = http(
        "PATCH", f"/templates/{template['id']}", {"name": "Hiring"}, t["member"], If_Match='"1"'
    )
    assert renamed.status_code == 200, renamed.body
    assert (renamed.json["name"], renamed.json["version"], renamed.json["task"]) == (
        "Hiring",
        2,
        template["task"],
    )
    stale = http(
        "PUT", f"/templates/{template['id']}", {"subtasks": []}, t["member"], If_Match='"1"'
    )
    assert (stale.status_code, error_code(stale)) == (412, "precondition_failed")
    assert http(
        "PATCH", f"/templates/{template['id']}", {"name": None}, t["member"]
    ).status_code == (422)

    owners = http("POST", path, TEMPLATE, t["owner"]).json
    refused = http("DELETE", f"/templates/{owners['id']}", token=t["member"])
    assert (refused.status_code, error_code(refused)) == (403, "forbidden")
    assert http("DELETE", f"/templates/{template['id']}", token=t["member"]).status_code == 204
    assert http("GET", f"/templates/{template['id']}", token=t["member"]).status_code == 404


def test_a_task_from_a_template_with_its_subtasks(http: Http) -> None:
    t = team(http)
    template = http("POST", f"/projects/{t['project']}/templates", TEMPLATE, t["member"]).json
    body: dict[str, Any] = {"template_id": template["id"], "values": {"name": "Ada"}}
    missing = http("POST", "/tasks/from-template", body, t["member"])
    assert (missing.status_code, error_code(missing)) == (422, "validation_error")
    assert missing.json["error"]["details"] == [
        {
            "loc": ["body", "values", "team"],
            "message": "the template uses {{team}}; give it a value",
        }
    ]
    too_long = http(
        "POST",
        "/tasks/from-template",
        {**body, "values": {"name": "x" * 300, "team": "ops"}},
        t["member"],
    )
    assert too_long.status_code == 422
    assert too_long.json["error"]["details"][0]["loc"] == ["template", "task", "title"]
    assert http("GET", f"/tasks?project_id={t['project']}", token=t["member"]).json["items"]

    body["values"]["team"] = "Ops"
    viewer = http("POST", "/tasks/from-template", body, t["viewer"])
    assert (viewer.status_code, error_code(viewer)) == (403, "forbidden")
    stranger = http("POST", "/tasks/from-template", body, t["stranger"])
    assert (stranger.status_code, error_code(stranger)) == (404, "not_found")

    made = http("POST", "/tasks/from-template", body, t["member"])
    assert made.status_code == 201, made.body
    task = made.json
    subtasks = task.pop("subtasks")
    assert task == http("GET", f"/tasks/{task['id']}", token=t["member"]).json
    assert (task["title"], task["description"], task["priority"], task["tags"]) == (
        "Onboard Ada",
        "Welcome Ada to Ops",
        "high",
        ["onboarding", "Ops"],
    )
    assert [(s["title"], s["priority"], s["parent_id"]) for s in subtasks] == [
        ("Laptop for Ada", "medium", task["id"]),
        ("Badge", "low", task["id"]),
    ]
    listed = http("GET", f"/tasks/{task['id']}/subtasks", token=t["member"]).json["items"]
    assert sorted(s["id"] for s in listed) == sorted(s["id"] for s in subtasks)
    history = http("GET", f"/tasks/{task['id']}/history", token=t["member"]).json["items"]
    assert [e["type"] for e in history] == ["task.created"]


def test_the_openapi_document_lists_the_routes(http: Http) -> None:
    paths = http("GET", "/openapi.json").json["paths"]
    assert set(paths["/projects/{project_id}/templates"]) == {"get", "post"}
    assert set(paths["/templates/{template_id}"]) == {"get", "put", "patch", "delete"}
    created = paths["/tasks/from-template"]["post"]["responses"]["201"]
    assert "TaskWithSubtasksOut" in str(created)
