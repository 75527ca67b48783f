"""Executions over HTTP and the `fire` Lambda (Chalice's test client on moto): contract, status
codes, the call budget, and one execution per firing however often it is delivered."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.dynamodb import connection
from chalicelib.domain.model import new_id
from chalicelib.handlers import scheduling
from chalicelib.settings import Settings
from tests.fakes import fast_hasher
from tests.integration.conftest import Http

EXECUTION_FIELDS = {
    "id", "task_id", "project_id", "workflow_run_id", "trigger", "scheduled_for", "started_at",
    "finished_at", "status", "attempts", "result", "error", "version",
}  # fmt: skip
RATE = {"kind": "rate", "every": 5, "unit": "minutes", "timezone": "UTC"}


def error_code(response: Any) -> str:
    return str(response.json["error"]["code"])


def team(http: Http) -> dict[str, Any]:
    """A project with an owner, a viewer and a stranger, and one task in it."""
    owner, viewer, stranger = (
        http.register(f"{name}@example.com") for name in ("owner", "viewer", "stranger")
    )
    project = http("POST", "/projects", {"name": "Ops"}, owner["access_token"]).json
    added = http(
        "POST",
        f"/projects/{project['id']}/members",
        {"user_id": viewer["user"]["id"], "role": "viewer"},
        owner["access_token"],
    )
    assert added.status_code == 201, added.body
    task = http(
        "POST", "/tasks", {"title": "Ping", "project_id": project["id"]}, owner["access_token"]
    )
    assert task.status_code == 201, task.body
    return {
        "owner": owner["access_token"],
        "viewer": viewer["access_token"],
        "stranger": stranger["access_token"],
        "project": project["id"],
        "task": task.json["id"],
    }


def test_run_list_and_read_within_budget(http: Http) -> None:
    t = team(http)
    run = http("POST", f"/tasks/{t['task']}/run", token=t["owner"])
    assert run.status_code == 202, run.body
    assert len(http.calls) <= 3, http.calls
    execution = run.json
    assert set(execution) == EXECUTION_FIELDS
    assert (execution["trigger"], execution["status"], execution["attempts"]) == (
        "manual",
        "queued",
        0,
    )
    assert (execution["task_id"], execution["project_id"]) == (t["task"], t["project"])
    assert execution["scheduled_for"] is None

    others = [
        http("POST", f"/tasks/{t['task']}/run", token=t["owner"]).json["id"] for _ in range(2)
    ]
    newest_first = sorted([execution["id"], *others], reverse=True)

    page = http("GET", f"/tasks/{t['task']}/executions?limit=2", token=t["viewer"])
    assert page.status_code == 200, page.body
    assert len(http.calls) <= 2, http.calls
    assert [e["id"] for e in page.json["items"]] == newest_first[:2]
    rest = http(
        "GET", f"/tasks/{t['task']}/executions?cursor={page.json['next_cursor']}", token=t["viewer"]
    )
    assert [e["id"] for e in rest.json["items"]] == newest_first[2:]
    assert rest.json["next_cursor"] is None

    read = http("GET", f"/executions/{execution['id']}", token=t["viewer"])
    assert read.status_code == 200, read.body
    assert len(http.calls) <= 2, http.calls
    assert read.json == execution
    assert read.headers["ETag"] == '"1"'


def test_who_may_run_and_see(http: Http) -> None:
    t = team(http)
    execution_id = http("POST", f"/tasks/{t['task']}/run", token=t["owner"]).json["id"]

    denied = http("POST", f"/tasks/{t['task']}/run", token=t["viewer"])
    assert (denied.status_code, error_code(denied)) == (403, "forbidden")
    for method, path in (
        ("POST", f"/tasks/{t['task']}/run"),
        ("GET", f"/tasks/{t['task']}/executions"),
        ("GET", f"/executions/{execution_id}"),
    ):
        hidden = http(method, path, token=t["stranger"])
        assert (hidden.status_code, error_code(hidden)) == (404, "not_found"), (method, path)
    for unknown in ("nonsense", new_id() + t["project"], "x" * 300):
        missing = http("GET", f"/executions/{unknown}", token=t["owner"])
        assert missing.status_code == 404, unknown
        assert len(http.calls) <= 2, http.calls
    assert http("GET", f"/executions/{execution_id}").status_code == 401
    page = http("GET", f"/tasks/{t['task']}/executions", token=t["owner"]).json
    assert [e["id"] for e in page["items"]] == [execution_id]


def test_an_edited_cursor_is_400(http: Http) -> None:
    t = team(http)
    for _ in range(2):
        http("POST", f"/tasks/{t['task']}/run", token=t["owner"])
    cursor = http("GET", f"/tasks/{t['task']}/executions?limit=1", token=t["owner"]).json[
        "next_cursor"
    ]
    edited = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    bad = http("GET", f"/tasks/{t['task']}/executions?cursor={edited}", token=t["owner"])
    assert bad.status_code == 400


def firing(
    task: dict[str, Any], attempt: int, scheduled_time: str = "2026-11-21T12:05:00Z"
) -> dict[str, Any]:
    return {
        "task_id": task["id"],
        "project_id": task["project_id"],
        "scheduled_time": scheduled_time,
        "attempt": attempt,
        "execution_id": f"delivery-{attempt}",
    }


def invoke_fire(event: dict[str, Any]) -> dict[str, Any]:
    with Client(app) as client:
        response = client.lambda_.invoke("fire", event)
    return response.payload  # type: ignore[no-any-return]


def test_three_deliveries_of_one_firing_make_one_execution(http: Http) -> None:
    owner = http.register("owner@example.com")["access_token"]
    created = http("POST", "/tasks", {"title": "Nightly", "schedule": RATE}, owner)
    assert created.status_code == 201, created.body
    task = created.json

    http.calls.clear()
    answers = [invoke_fire(firing(task, 1))]
    # The whole run in this delivery: the task and project in one batch read; the overlap
    # slot, then the execution (running; its put, on a new id derived from the firing, is the
    # claim); the reminder (the task and its history); the end (the execution, its history,
    # the notification); the slot released, and a look for a firing waiting for it.
    # (next_run_at is not written: it is shown as the next firing still to come.)
    assert http.calls == [
        "BatchGetItem",
        "PutItem",
        "PutItem",
        "TransactWriteItems",
        "TransactWriteItems",
        "DeleteItem",
        "GetItem",
    ]
    answers += [invoke_fire(firing(task, attempt)) for attempt in (2, 3)]
    assert [a["created"] for a in answers] == [True, False, False]
    assert len({a["execution_id"] for a in answers}) == 1
    assert [a["status"] for a in answers] == ["succeeded"] * 3
    assert [a["taken"] for a in answers] == ["", "nothing", "nothing"]

    page = http("GET", f"/tasks/{task['id']}/executions", token=owner).json
    assert len(page["items"]) == 1
    execution = page["items"][0]
    assert execution["id"] == answers[0]["execution_id"]
    assert (execution["trigger"], execution["scheduled_for"]) == (
        "schedule",
        "2026-11-21T12:05:00Z",
    )

    # The same instant written another way is the same firing; the next one is a new one.
    same = invoke_fire(firing(task, 4, "2026-11-21T13:05:00+01:00"))
    assert (same["execution_id"], same["created"]) == (execution["id"], False)
    # The next firing is a new one, and runs (the first one finished and freed the slot).
    following = invoke_fire(firing(task, 1, "2026-11-21T12:10:00Z"))
    assert (following["created"], following["status"]) == (True, "succeeded")
    assert following["execution_id"] != execution["id"]
    history = http("GET", f"/tasks/{task['id']}/history", token=owner).json["items"]
    kinds = [e["type"] for e in history]
    assert kinds[0] == "task.created"
    # A scheduled run is told when it ends (no execution.queued: it would cost a transaction).
    assert (kinds.count("execution.queued"), kinds.count("execution.finished")) == (0, 2)


def test_firings_of_unscheduled_and_deleted_tasks(http: Http) -> None:
    owner = http.register("owner@example.com")["access_token"]
    plain = http("POST", "/tasks", {"title": "Plain"}, owner).json
    skipped = [invoke_fire(firing(plain, attempt)) for attempt in (1, 2)]
    assert [s["status"] for s in skipped] == ["skipped", "skipped"]
    assert skipped[0]["execution_id"] == skipped[1]["execution_id"]
    read = http("GET", f"/executions/{skipped[0]['execution_id']}", token=owner).json
    assert read["finished_at"]
    assert "no longer scheduled" in read["error"]

    gone = http("POST", "/tasks", {"title": "Gone", "schedule": RATE}, owner).json
    assert http("DELETE", f"/tasks/{gone['id']}", token=owner).status_code == 204
    answer = invoke_fire(firing(gone, 1))
    assert (answer["execution_id"], answer["created"]) == (None, False)


def test_a_malformed_firing_is_refused(container: Any) -> None:
    for event in (
        {},
        {"task_id": "T"},
        {"task_id": "T", "scheduled_time": "tomorrow"},
        {"scheduled_time": "2026-11-21T12:05:00Z"},
    ):
        with pytest.raises(scheduling.BadFiring):
            scheduling.fire(json.loads(json.dumps(event)))


@pytest.fixture
def private_webhooks(settings: Settings) -> Settings:
    """Settings that let webhooks reach loopback, as the local stack's do."""
    return settings.model_copy(update={"allow_private_webhooks": True})


def test_an_attempt_named_with_its_task_costs_three_calls(
    private_webhooks: Settings, moto_aws: None
) -> None:
    """The state machine names each step's execution and task: `run_step` reads both in one
    batch, writes `running`, sends the webhook, and writes the result."""

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    Thread(target=server.serve_forever, daemon=True).start()
    bootstrap.override(bootstrap.build(private_webhooks, hasher=fast_hasher()))
    try:
        with Client(app) as client:
            http = Http(client)
            owner = http.register("owner@example.com")["access_token"]
            url = f"http://127.0.0.1:{server.server_address[1]}/hook"
            task = http(
                "POST",
                "/tasks",
                {"title": "Ping", "action": {"type": "webhook", "url": url}},
                owner,
            ).json
            execution = http("POST", f"/tasks/{task['id']}/run", token=owner).json
            calls: list[str] = []
            connection.root().client.meta.events.register(
                "before-call.dynamodb",
                lambda event_name, **_: calls.append(event_name.rsplit(".", 1)[-1]),
            )
            answer = client.lambda_.invoke(
                "run_step", {"execution_id": execution["id"], "task_id": task["id"], "attempt": 1}
            ).payload
            assert answer == {"outcome": "succeeded", "attempt": 1, "delay_seconds": 0}
            assert calls == ["BatchGetItem", "PutItem", "TransactWriteItems"], calls
            done = http("GET", f"/executions/{execution['id']}", token=owner).json
            assert (done["status"], done["attempts"], done["result"]["status_code"]) == (
                "succeeded",
                1,
                204,
            )
    finally:
        bootstrap.override(None)
        server.shutdown()
        server.server_close()
