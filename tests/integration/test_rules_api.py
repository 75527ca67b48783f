"""Automation rules over HTTP and on moto's stream records: routes, write-time checks, roles,
and the evaluation of a batch (twice, as a redelivery) with the loop guard on real items."""

from __future__ import annotations

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb.models import TaskModel
from tests.integration.conftest import Http
from tests.integration.test_search import stream_event
from tests.integration.test_workflows_api import BATCH, TRANSACTION, error_code, team

RULE_FIELDS = {
    "id", "project_id", "name", "enabled", "trigger", "actions", "created_by", "created_at",
    "updated_at", "version",
}  # fmt: skip


def test_rules_crud_checks_and_roles(http: Http) -> None:
    t = team(http)
    path = f"/projects/{t['project']}/rules"
    body = {
        "name": "Escalate",
        "trigger": {"event": "task.status_changed", "conditions": {"status": "in_progress"}},
        "actions": [
            {"type": "assign", "assignee_id": t["member_id"]},
            {"type": "notify", "user_id": "creator", "message": "picked up"},
        ],
    }
    assert http("POST", path, body, t["viewer"]).status_code == 403
    assert error_code(http("POST", path, body, t["stranger"])) == "not_found"
    created = http("POST", path, body, t["member"])
    assert created.status_code == 201, created.body
    assert http.calls == [BATCH, BATCH, TRANSACTION]  # the assignee's membership: one batch
    rule = created.json
    assert set(rule) == RULE_FIELDS
    assert (rule["enabled"], rule["trigger"], rule["actions"], rule["version"]) == (
        True,
        body["trigger"],
        body["actions"],
        1,
    )
    assert created.headers["ETag"] == '"1"'
    read = http("GET", f"/rules/{rule['id']}", token=t["viewer"])
    assert (read.status_code, read.json) == (200, rule)
    assert http.calls == [BATCH]
    assert http("GET", f"/rules/{rule['id']}", token=t["stranger"]).status_code == 404
    assert http("GET", path, token=t["viewer"]).json["items"] == [rule]

    wrong = http(
        "POST",
        path,
        {
            **body,
            "actions": [
                {"type": "assign", "assignee_id": "nobody"},
                {"type": "create_task", "template_id": "x"},
                {"type": "run_workflow", "workflow_id": "y"},
            ],
        },
        t["member"],
    )
    assert (wrong.status_code, error_code(wrong)) == (422, "validation_error")
    assert [d["loc"] for d in wrong.json["error"]["details"]] == [
        ["body", "actions", 0, "assignee_id"],
        ["body", "actions", 1, "template_id"],
        ["body", "actions", 2, "workflow_id"],
    ]
    unknown = http(
        "POST", path, {**body, "trigger": {"event": "task.created", "x": 1}}, t["member"]
    )
    assert unknown.status_code == 422

    off = http("PATCH", f"/rules/{rule['id']}", {"enabled": False}, t["member"], If_Match='"1"')
    assert (off.status_code, off.json["enabled"], off.json["version"]) == (200, False, 2)
    stale = http("PUT", f"/rules/{rule['id']}", {"name": "x"}, t["member"], If_Match='"1"')
    assert (stale.status_code, error_code(stale)) == (412, "precondition_failed")
    owners = http("POST", path, body, t["owner"]).json
    assert http("DELETE", f"/rules/{owners['id']}", token=t["member"]).status_code == 403
    assert http("DELETE", f"/rules/{rule['id']}", token=t["member"]).status_code == 204
    assert http("GET", f"/rules/{rule['id']}", token=t["member"]).status_code == 404

    paths = http("GET", "/openapi.json").json["paths"]
    assert set(paths["/projects/{project_id}/rules"]) == {"get", "post"}
    assert set(paths["/rules/{rule_id}"]) == {"get", "put", "patch", "delete"}
    assert set(paths["/rules/{rule_id}/executions"]) == {"get"}


def test_a_stream_batch_runs_a_rule_once_and_its_own_writes_trigger_nothing(
    http: Http, container: bootstrap.Container
) -> None:
    t = team(http)
    template = http(
        "POST",
        f"/projects/{t['project']}/templates",
        {"name": "Triage", "task": {"title": "Triage {{task_title}}", "tags": ["intake"]}},
        t["member"],
    ).json
    rule = http(
        "POST",
        f"/projects/{t['project']}/rules",
        {
            "name": "Intake",
            "trigger": {"event": "task.created", "conditions": {"tag": "intake"}},
            "actions": [
                {"type": "set_field", "field": "priority", "value": "urgent"},
                {"type": "create_task", "template_id": template["id"]},
            ],
        },
        t["member"],
    ).json
    task = http(
        "POST",
        "/tasks",
        {"title": "Outage", "project_id": t["project"], "tags": ["intake"]},
        t["owner"],
    ).json
    tasks_table = container.settings.table_name("tasks")

    def evaluate() -> int:
        event = stream_event(tasks_table)
        return len(container.rule_engine.handle(container.rule_events(event)))

    assert evaluate() == 1
    # The whole stream again: a redelivery of the first records, and the rule's own writes.
    assert evaluate() == 0
    log = http("GET", f"/rules/{rule['id']}/executions", token=t["viewer"])
    assert log.status_code == 200, log.body
    (entry,) = log.json["items"]
    assert (entry["status"], entry["trigger_event"], entry["task_id"], entry["error"]) == (
        "succeeded",
        "task.created",
        task["id"],
        None,
    )
    made_id = entry["actions"][1]["ref"]
    assert http("GET", f"/tasks/{made_id}", token=t["owner"]).json["title"] == "Triage Outage"
    assert http("GET", f"/tasks/{task['id']}", token=t["owner"]).json["priority"] == "urgent"
    assert TaskModel.get(task["id"]).changed_by_rule == rule["id"]
    assert TaskModel.get(made_id).changed_by_rule == rule["id"]
    # A person's next write drops the mark: their changes set off rules again.
    http("PATCH", f"/tasks/{task['id']}", {"title": "Outage!"}, t["owner"])
    assert TaskModel.get(task["id"]).changed_by_rule is None
    assert http("GET", f"/rules/{rule['id']}/executions", token=t["stranger"]).status_code == 404
