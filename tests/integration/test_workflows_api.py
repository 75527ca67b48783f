"""Workflows over HTTP (Chalice's test client on moto): contract, status codes and call budget."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.dynamodb.tasks import DynamoTaskRepository
from chalicelib.domain.model import new_id
from chalicelib.domain.tasks import Task, new_task_id
from chalicelib.domain.workflows import STEPS_MAX
from tests.integration.conftest import Http

WORKFLOW_FIELDS = {
    "id", "project_id", "name", "steps", "max_concurrency", "on_failure", "schedule",
    "next_run_at", "created_by", "created_at", "updated_at", "version",
}  # fmt: skip
BATCH, TRANSACTION = "BatchGetItem", "TransactWriteItems"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def error_code(response: Any) -> str:
    return str(response.json["error"]["code"])


def team(http: Http) -> dict[str, Any]:
    """A project with an owner, a member, a viewer and a stranger, and three tasks in it."""
    owner, member, viewer, stranger = (
        http.register(f"{name}@example.com") for name in ("owner", "member", "viewer", "stranger")
    )
    project = http("POST", "/projects", {"name": "Ops"}, owner["access_token"]).json
    for who, role in ((member, "member"), (viewer, "viewer")):
        added = http(
            "POST",
            f"/projects/{project['id']}/members",
            {"user_id": who["user"]["id"], "role": role},
            owner["access_token"],
        )
        assert added.status_code == 201, added.body
    tasks = []
    for title in ("Build", "Test", "Ship"):
        task = http(
            "POST", "/tasks", {"title": title, "project_id": project["id"]}, owner["access_token"]
        )
        assert task.status_code == 201, task.body
        tasks.append(task.json["id"])
    return {
        "owner": owner["access_token"],
        "member": member["access_token"],
        "member_id": member["user"]["id"],
        "viewer": viewer["access_token"],
        "stranger": stranger["access_token"],
        "project": project["id"],
        "tasks": tasks,
    }


def pipeline(t: dict[str, Any], **fields: Any) -> dict[str, Any]:
    build, test, ship = t["tasks"]
    return {
        "project_id": t["project"],
        "name": "Release",
        "steps": [
            {"key": "build", "task_id": build},
            {"key": "unit", "task_id": test, "depends_on": ["build"]},
            {"key": "lint", "task_id": test, "depends_on": ["build"]},
            {"key": "ship", "task_id": ship, "depends_on": ["unit", "lint"]},
        ],
        **fields,
    }


def test_create_read_change_delete_within_budget(http: Http) -> None:
    t = team(http)
    created = http("POST", "/workflows", pipeline(t), t["member"])
    assert created.status_code == 201, created.body
    assert http.calls == [BATCH, TRANSACTION]
    workflow = created.json
    assert set(workflow) == WORKFLOW_FIELDS
    assert created.headers["ETag"] == '"1"'
    assert (workflow["project_id"], workflow["created_by"], workflow["version"]) == (
        t["project"],
        t["member_id"],
        1,
    )
    assert (workflow["max_concurrency"], workflow["on_failure"], workflow["schedule"]) == (
        10,
        "stop",
        None,
    )
    assert workflow["steps"][3] == {
        "key": "ship",
        "task_id": t["tasks"][2],
        "depends_on": ["unit", "lint"],
    }
    assert workflow["id"].endswith(t["project"])

    read = http("GET", f"/workflows/{workflow['id']}", token=t["viewer"])
    assert (read.status_code, read.json) == (200, workflow)
    assert http.calls == [BATCH]
    assert read.headers["ETag"] == '"1"'

    renamed = http(
        "PATCH",
        f"/workflows/{workflow['id']}",
        {"name": "Release 2", "max_concurrency": 2, "on_failure": "continue"},
        t["member"],
        If_Match='"1"',
    )
    assert renamed.status_code == 200, renamed.body
    assert http.calls == [BATCH, TRANSACTION]
    assert (
        renamed.json["name"],
        renamed.json["max_concurrency"],
        renamed.json["on_failure"],
        renamed.json["version"],
        renamed.json["steps"],
    ) == ("Release 2", 2, "continue", 2, workflow["steps"])
    assert renamed.headers["ETag"] == '"2"'

    # PUT applies the fields present, like PATCH (API.md, Conventions); steps replace the list.
    build, _, ship = t["tasks"]
    new_steps = [{"key": "a", "task_id": ship}, {"key": "b", "task_id": build, "depends_on": ["a"]}]
    replaced = http("PUT", f"/workflows/{workflow['id']}", {"steps": new_steps}, t["member"])
    assert replaced.status_code == 200, replaced.body
    assert http.calls == [BATCH, TRANSACTION]
    assert replaced.json["steps"] == [{"depends_on": [], **new_steps[0]}, new_steps[1]]
    assert (replaced.json["name"], replaced.json["version"]) == ("Release 2", 3)

    stale = http(
        "PATCH", f"/workflows/{workflow['id']}", {"name": "x"}, t["member"], If_Match='"1"'
    )
    assert (stale.status_code, error_code(stale)) == (412, "precondition_failed")
    assert http("GET", f"/workflows/{workflow['id']}", token=t["member"]).json["name"] == (
        "Release 2"
    )

    stale_delete = http("DELETE", f"/workflows/{workflow['id']}", token=t["member"], If_Match='"2"')
    assert (stale_delete.status_code, error_code(stale_delete)) == (412, "precondition_failed")
    deleted = http("DELETE", f"/workflows/{workflow['id']}", token=t["member"], If_Match='"3"')
    assert deleted.status_code == 204, deleted.body
    assert http.calls == [BATCH, "DeleteItem"]
    gone = http("GET", f"/workflows/{workflow['id']}", token=t["member"])
    assert (gone.status_code, error_code(gone)) == (404, "not_found")


def test_a_schedule_is_shown_with_its_next_run(http: Http) -> None:
    t = team(http)
    schedule = {"kind": "cron", "expression": "0 9 * * ? *"}  # in the caller's zone (UTC)
    created = http("POST", "/workflows", pipeline(t, schedule=schedule), t["member"])
    assert created.status_code == 201, created.body
    assert http.calls == [BATCH, TRANSACTION]  # the caller came with the session
    shown = created.json["schedule"]
    assert (shown["kind"], shown["expression"], shown["timezone"], shown["paused"]) == (
        "cron",
        "0 9 * * ? *",
        "UTC",
        False,
    )
    assert created.json["next_run_at"].endswith("T09:00:00Z")
    cleared = http("PATCH", f"/workflows/{created.json['id']}", {"schedule": None}, t["member"])
    assert (cleared.json["schedule"], cleared.json["next_run_at"]) == (None, None)
    bad = http(
        "PATCH",
        f"/workflows/{created.json['id']}",
        {"schedule": {"kind": "cron", "expression": "not cron"}},
        t["member"],
    )
    assert (bad.status_code, error_code(bad)) == (422, "validation_error")
    assert bad.json["error"]["details"][0]["loc"][:3] == ["body", "schedule", "cron"]


def test_the_largest_workflow_stays_within_the_write_budget(http: Http) -> None:
    t = team(http)
    repo = DynamoTaskRepository()
    task_ids = []
    for index in range(STEPS_MAX):
        task = Task(new_task_id(t["project"]), t["project"], f"T{index}", "u", NOW, NOW)
        task_ids.append(repo.create(task, None).id)
    steps = [
        {"key": f"s{i}", "task_id": task_id, "depends_on": [f"s{i - 1}"] if i else []}
        for i, task_id in enumerate(task_ids)
    ]
    created = http("POST", "/workflows", pipeline(t, steps=steps), t["member"])
    assert created.status_code == 201, created.body
    assert http.calls == [BATCH, BATCH, TRANSACTION]
    assert [s["task_id"] for s in created.json["steps"]] == task_ids
    changed = http("PATCH", f"/workflows/{created.json['id']}", {"steps": steps[::-1]}, t["member"])
    assert changed.status_code == 200, changed.body
    assert http.calls == [BATCH, BATCH, TRANSACTION]
    too_many = [*steps, {"key": "extra", "task_id": task_ids[0]}]
    refused = http("POST", "/workflows", pipeline(t, steps=too_many), t["member"])
    assert (refused.status_code, error_code(refused)) == (422, "validation_error")
    assert refused.json["error"]["details"][0]["loc"] == ["body", "steps"]


def test_list_newest_first_in_pages(http: Http) -> None:
    t = team(http)
    made = [
        http("POST", "/workflows", pipeline(t, name=f"W{i}"), t["member"]).json["id"]
        for i in range(3)
    ]
    page = http("GET", f"/workflows?project_id={t['project']}&limit=2", token=t["viewer"])
    assert page.status_code == 200, page.body
    assert http.calls == [BATCH, "Query"]
    assert [w["id"] for w in page.json["items"]] == made[::-1][:2]
    rest = http(
        "GET",
        f"/workflows?project_id={t['project']}&limit=2&cursor={page.json['next_cursor']}",
        token=t["viewer"],
    )
    assert ([w["id"] for w in rest.json["items"]], rest.json["next_cursor"]) == ([made[0]], None)
    personal = http("GET", "/workflows", token=t["member"])
    assert (personal.status_code, personal.json) == (200, {"items": [], "next_cursor": None})
    assert len(http.calls) <= 2, http.calls
    for query, status in (
        ("&limit=0", 422),
        ("&limit=abc", 400),
        ("&cursor=garbage", 400),
        (f"&cursor={page.json['next_cursor'][:-2]}AA", 400),
    ):
        response = http("GET", f"/workflows?project_id={t['project']}{query}", token=t["viewer"])
        assert response.status_code == status, (query, response.body)
    foreign = http("GET", f"/workflows?cursor={page.json['next_cursor']}", token=t["member"])
    assert (foreign.status_code, error_code(foreign)) == (400, "bad_request")


def test_validation_errors_point_at_the_field(http: Http) -> None:
    t = team(http)
    build, test, _ = t["tasks"]

    def refused(body: dict[str, Any]) -> dict[str, Any]:
        response = http("POST", "/workflows", body, t["member"])
        assert (response.status_code, error_code(response)) == (422, "validation_error"), body
        return response.json["error"]  # type: ignore[no-any-return]

    for field, value in (
        ("id", "mine"),
        ("version", 3),
        ("created_by", "me"),
        ("max_concurrency", 41),
        ("on_failure", "retry"),
        ("steps", []),
        ("name", ""),
    ):
        error = refused(pipeline(t, **{field: value}))
        assert error["details"][0]["loc"][:2] == ["body", field], field

    error = refused(pipeline(t, steps=[{"key": "has space", "task_id": build}]))
    assert error["details"][0]["loc"] == ["body", "steps", 0, "key"]

    error = refused(
        pipeline(t, steps=[{"key": "a", "task_id": build}, {"key": "a", "task_id": test}])
    )
    assert error["details"] == [
        {"loc": ["body", "steps", 1, "key"], "message": "duplicate step key 'a' (also step 0)"}
    ]

    error = refused(pipeline(t, steps=[{"key": "a", "task_id": build, "depends_on": ["a", "zzz"]}]))
    assert [d["loc"] for d in error["details"]] == [
        ["body", "steps", 0, "depends_on", 0],
        ["body", "steps", 0, "depends_on", 1],
    ]

    cycle = [
        {"key": "a", "task_id": build, "depends_on": ["c"]},
        {"key": "b", "task_id": test, "depends_on": ["a"]},
        {"key": "c", "task_id": build, "depends_on": ["b"]},
    ]
    error = refused(pipeline(t, steps=cycle))
    assert error["message"] == "steps have a dependency cycle: a -> c -> b -> a"
    assert error["details"][0]["loc"] == ["body", "steps", 0, "depends_on"]
    assert error["details"][0]["cycle"] == ["a", "c", "b", "a"]

    # A task of another project (here: the stranger's personal one) or none at all.
    stranger_task = http("POST", "/tasks", {"title": "Theirs"}, t["stranger"]).json["id"]
    steps = [
        {"key": "mine", "task_id": build},
        {"key": "theirs", "task_id": stranger_task},
        {"key": "nothing", "task_id": new_task_id(t["project"])},
    ]
    error = refused(pipeline(t, steps=steps))
    assert [d["loc"] for d in error["details"]] == [
        ["body", "steps", 1, "task_id"],
        ["body", "steps", 2, "task_id"],
    ]
    assert "'theirs', 'nothing'" in error["message"]
    assert len(http.calls) <= 2, http.calls

    # The same rules on a change.
    workflow = http("POST", "/workflows", pipeline(t), t["member"]).json
    response = http("PATCH", f"/workflows/{workflow['id']}", {"steps": cycle}, t["member"])
    assert (response.status_code, error_code(response)) == (422, "validation_error")
    assert response.json["error"]["details"][0]["cycle"] == ["a", "c", "b", "a"]
    for body in ({"name": None}, {"steps": None}, {"id": "x"}, {"project_id": t["project"]}):
        response = http("PATCH", f"/workflows/{workflow['id']}", body, t["member"])
        assert (response.status_code, error_code(response)) == (422, "validation_error"), body
    assert http("GET", f"/workflows/{workflow['id']}", token=t["member"]).json == workflow


def test_who_may_do_what(http: Http) -> None:
    t = team(http)
    workflow = http("POST", "/workflows", pipeline(t), t["owner"]).json
    path = f"/workflows/{workflow['id']}"

    for method, target, body in (
        ("POST", "/workflows", pipeline(t)),
        ("PATCH", path, {"name": "viewer"}),
        ("PUT", path, {"name": "viewer"}),
        ("DELETE", path, None),
    ):
        denied = http(method, target, body, t["viewer"])
        assert (denied.status_code, error_code(denied)) == (403, "forbidden"), (method, target)
    assert http("GET", path, token=t["viewer"]).status_code == 200
    assert http("GET", f"/workflows?project_id={t['project']}", token=t["viewer"]).status_code == (
        200
    )

    for method, target, body in (
        ("GET", path, None),
        ("PATCH", path, {"name": "stranger"}),
        ("DELETE", path, None),
        ("GET", f"/workflows?project_id={t['project']}", None),
        ("POST", "/workflows", pipeline(t)),
    ):
        hidden = http(method, target, body, t["stranger"])
        assert (hidden.status_code, error_code(hidden)) == (404, "not_found"), (method, target)
    for unknown in ("nonsense", new_id() + t["project"], "x" * 300):
        missing = http("GET", f"/workflows/{unknown}", token=t["owner"])
        assert (missing.status_code, error_code(missing)) == (404, "not_found"), unknown
        assert len(http.calls) <= 1, http.calls
    assert http("GET", path).status_code == 401
    assert http("POST", "/workflows", pipeline(t)).status_code == 401

    # Members change anyone's workflow, but delete only their own; admins and owners any.
    assert http("PATCH", path, {"name": "by member"}, t["member"]).status_code == 200
    denied = http("DELETE", path, token=t["member"])
    assert (denied.status_code, error_code(denied)) == (403, "forbidden")
    assert http("DELETE", path, token=t["owner"]).status_code == 204


def test_a_deleted_projects_workflows_are_gone_at_once(http: Http) -> None:
    t = team(http)
    workflow = http("POST", "/workflows", pipeline(t), t["member"]).json
    assert http("DELETE", f"/projects/{t['project']}", token=t["owner"]).status_code == 204
    response = http("GET", f"/workflows/{workflow['id']}", token=t["owner"])
    assert (response.status_code, error_code(response)) == (404, "not_found")


def test_if_none_match_answers_304(http: Http) -> None:
    t = team(http)
    workflow = http("POST", "/workflows", pipeline(t), t["member"]).json
    same = http("GET", f"/workflows/{workflow['id']}", token=t["member"], If_None_Match='"1"')
    assert (same.status_code, same.body, same.headers["ETag"]) == (304, b"", '"1"')
    http("PATCH", f"/workflows/{workflow['id']}", {"name": "Changed"}, t["member"])
    changed = http("GET", f"/workflows/{workflow['id']}", token=t["member"], If_None_Match='"1"')
    assert (changed.status_code, changed.json["name"]) == (200, "Changed")


def test_openapi_documents_the_routes_and_bodies(http: Http) -> None:
    document = http("GET", "/openapi.json").json
    paths = document["paths"]
    assert set(paths["/workflows"]) == {"get", "post"}
    assert set(paths["/workflows/{workflow_id}"]) == {"get", "put", "patch", "delete"}
    post = paths["/workflows"]["post"]
    schema_ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"name", "steps"}
    assert schema["additionalProperties"] is False
    assert schema["properties"]["steps"]["maxItems"] == STEPS_MAX
    assert {"201", "401", "403", "404", "422"} <= set(post["responses"])
    patch = paths["/workflows/{workflow_id}"]["patch"]
    assert any(p["name"] == "If-Match" for p in patch["parameters"])
