"""Tasks over HTTP (Chalice's test client on moto): contract, status codes and call budget."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Http

PASSWORD = "correct horse battery"
TASK_FIELDS = {
    "id", "project_id", "title", "description", "status", "priority", "due_date", "assignee_id",
    "tags", "parent_id", "depends_on", "schedule", "action", "retry", "next_run_at", "created_by",
    "created_at", "updated_at", "completed_at", "version",
}  # fmt: skip


def error_code(response: Any) -> str:
    return str(response.json["error"]["code"])


def test_create_read_update_delete_with_budget(http: Http) -> None:
    me = http.register("ada@example.com")
    token = me["access_token"]
    created = http(
        "POST", "/tasks", {"title": "Write docs", "tags": ["docs"], "due_date": "2026-12-01"}, token
    )
    assert created.status_code == 201, created.body
    assert set(created.json) == TASK_FIELDS
    assert created.json["created_by"] == me["user"]["id"]
    assert created.headers["ETag"] == '"1"'
    assert created.json["due_date"] == "2026-12-01T23:59:59Z"
    assert len(http.calls) <= 3, http.calls
    task_id = created.json["id"]

    read = http("GET", f"/tasks/{task_id}", token=token)
    assert read.status_code == 200
    assert len(http.calls) <= 2, http.calls

    patched = http(
        "PATCH",
        f"/tasks/{task_id}",
        {"priority": "urgent", "due_date": None},
        token,
        If_Match='"1"',
    )
    assert patched.status_code == 200, patched.body
    assert (patched.json["priority"], patched.json["due_date"], patched.json["version"]) == (
        "urgent",
        None,
        2,
    )
    assert len(http.calls) <= 3, http.calls

    stale = http("PUT", f"/tasks/{task_id}", {"title": "x"}, token, If_Match='"1"')
    assert (stale.status_code, error_code(stale)) == (412, "precondition_failed")

    completed = http("POST", f"/tasks/{task_id}/complete", token=token)
    assert completed.json["status"] == "completed"
    assert completed.json["completed_at"]
    assert len(http.calls) <= 3, http.calls

    deleted = http("DELETE", f"/tasks/{task_id}", token=token)
    assert deleted.status_code == 204
    assert len(http.calls) <= 3, http.calls
    assert http("GET", f"/tasks/{task_id}", token=token).status_code == 404


def test_listing_stays_within_two_calls(http: Http) -> None:
    token = http.register("ada@example.com")["access_token"]
    for index in range(5):
        http(
            "POST",
            "/tasks",
            {"title": f"T{index}", "priority": "high" if index % 2 else "low"},
            token,
        )
    for query in (
        "",
        "?status=pending&sort=due_date&limit=2",
        "?priority=high",
        "?assignee_id=me",
        "?due=overdue",
    ):
        response = http("GET", f"/tasks{query}", token=token)
        assert response.status_code == 200, (query, response.body)
        assert len(http.calls) <= 2, (query, http.calls)
    page = http("GET", "/tasks?limit=2", token=token).json
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    rest = http("GET", f"/tasks?limit=10&cursor={page['next_cursor']}", token=token).json
    assert len(rest["items"]) == 3
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("?sort=title", 422),
        ("?status=nope", 422),
        ("?limit=abc", 400),
        ("?cursor=garbage", 400),
        ("?due=someday", 422),
    ],
)
def test_bad_list_parameters(http: Http, query: str, status: int) -> None:
    token = http.register("ada@example.com")["access_token"]
    assert http("GET", f"/tasks{query}", token=token).status_code == status


def test_validation_and_rules(http: Http) -> None:
    token = http.register("ada@example.com")["access_token"]
    invalid_bodies = [
        {"title": ""},
        {"title": "x" * 201},
        {"title": "x", "tags": ["t"] * 21},
        {"title": "x", "id": "mine"},
        {"title": "x", "version": 3},
        {"title": "x", "status": "done"},
    ]
    for body in invalid_bodies:
        response = http("POST", "/tasks", body, token)
        assert (response.status_code, error_code(response)) == (422, "validation_error"), body
    first = http("POST", "/tasks", {"title": "First"}, token).json
    second = http("POST", "/tasks", {"title": "Second", "depends_on": [first["id"]]}, token).json
    blocked = http("PATCH", f"/tasks/{second['id']}", {"status": "in_progress"}, token)
    assert (blocked.status_code, error_code(blocked)) == (409, "conflict")
    assert blocked.json["error"]["details"][0]["loc"] == ["depends_on", first["id"]]
    cycle = http("PATCH", f"/tasks/{first['id']}", {"depends_on": [second["id"]]}, token)
    assert (cycle.status_code, error_code(cycle)) == (422, "validation_error")
    assert cycle.json["error"]["details"][0]["cycle"] == [first["id"], second["id"], first["id"]]
    child = http("POST", "/tasks", {"title": "Child", "parent_id": first["id"]}, token).json
    subtasks = http("GET", f"/tasks/{first['id']}/subtasks", token=token)
    assert [t["id"] for t in subtasks.json["items"]] == [child["id"]]
    assert len(http.calls) <= 2, http.calls


def test_strangers_see_nothing(http: Http) -> None:
    owner = http.register("ada@example.com")["access_token"]
    stranger = http.register("eve@example.com")["access_token"]
    task = http("POST", "/tasks", {"title": "Secret"}, owner).json
    for method, path, body in (
        ("GET", f"/tasks/{task['id']}", None),
        ("PATCH", f"/tasks/{task['id']}", {"title": "mine"}),
        ("DELETE", f"/tasks/{task['id']}", None),
        ("POST", f"/tasks/{task['id']}/complete", None),
        ("POST", f"/tasks/{task['id']}/assign", {"assignee_id": None}),
        ("GET", f"/tasks/{task['id']}/subtasks", None),
        ("GET", f"/tasks?project_id={task['project_id']}", None),
        ("POST", "/tasks", {"title": "x", "project_id": task["project_id"]}),
    ):
        response = http(method, path, body, stranger)
        assert (response.status_code, error_code(response)) == (404, "not_found"), (method, path)
    assert http("GET", f"/tasks/{task['id']}").status_code == 401
    assert http("GET", "/tasks/not-a-task-id", token=owner).status_code == 404


def test_if_none_match_answers_304(http: Http) -> None:
    token = http.register("ada@example.com")["access_token"]
    task = http("POST", "/tasks", {"title": "Cached"}, token).json
    same = http("GET", f"/tasks/{task['id']}", token=token, If_None_Match='"1"')
    assert same.status_code == 304
    assert not same.body
    assert same.headers["ETag"] == '"1"'
    http("PATCH", f"/tasks/{task['id']}", {"title": "Changed"}, token)
    changed = http("GET", f"/tasks/{task['id']}", token=token, If_None_Match='"1"')
    assert changed.status_code == 200
    assert changed.json["title"] == "Changed"
