"""Least privilege, observed: every Lambda function's work on moto, with each AWS call it makes
recorded in IAM terms, against the access its role is built from
(`infrastructure/access.py`). A function must be granted what it did, and nothing it never
did (a table or action granted but unused fails, unless declared as unexercised with a reason).

The workload goes through every route group of the HTTP API, the WebSocket routes, the stream
consumer (fed every streamed table's records), scheduled firings of a task and a workflow, the
run state machine's `plan` and `run_step`, a fan-out share and the due-date sweep.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.dynamodb import tables
from chalicelib.adapters.dynamodb.executions import DynamoExecutionRepository
from chalicelib.domain.executions import Execution, ExecutionStatus, Trigger, new_execution_id
from chalicelib.handlers import hooks, runs, scheduling, streams, sweep, websocket
from chalicelib.settings import Settings
from infrastructure.access import FUNCTION_ACCESS, UNEXERCISED, granted
from tests.fakes import fast_hasher
from tests.hook_target import HookTarget
from tests.integration.conftest import REGION, Http
from tests.integration.function_calls import CALLS, Recorder
from tests.integration.function_calls import record as _record
from tests.integration.test_scheduler_adapter import DLQ_ARN, FIRE_ARN, GROUP, ROLE_ARN
from tests.integration.test_search import stream_event

DEFINITION = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}


@pytest.fixture(scope="module")
def observed() -> dict[str, set[tuple[str, str]]]:
    """Runs the whole workload once; what each function did."""
    mp = pytest.MonkeyPatch()
    from tests.integration.conftest import TEST_ENV

    for name, value in TEST_ENV.items():
        mp.setenv(name, value)
    mp.delenv("AWS_ENDPOINT_URL", raising=False)
    try:
        from moto import mock_aws

        with mock_aws():
            yield from _workload()
    finally:
        mp.undo()


def _workload() -> Iterator[dict[str, set[tuple[str, str]]]]:
    settings = Settings(table_prefix="test-", jwt_secret_id="test/jwt", aws_region=REGION)
    tables.bind(settings.table_prefix, REGION)
    tables.create_all(boto3.client("dynamodb", region_name=REGION), settings.table_prefix)
    secretsmanager = boto3.client("secretsmanager", region_name=REGION)
    for name, value in settings.model_dump().items():  # the signing key and any other secret
        if name.endswith("_secret_id") and value:
            secretsmanager.create_secret(Name=value, SecretString="k" * 64)
    boto3.client("scheduler", region_name=REGION).create_schedule_group(Name=GROUP)
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="runs", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name="runs", definition=json.dumps(DEFINITION), roleArn=role
    )["stateMachineArn"]
    configured = settings.model_copy(
        update={
            "schedule_group": GROUP,
            "fire_function_arn": FIRE_ARN,
            "scheduler_role_arn": ROLE_ARN,
            "scheduler_dlq_arn": DLQ_ARN,
            "state_machine_arn": machine,
            "hook_queue_url": boto3.client("sqs", region_name=REGION).create_queue(
                QueueName="hooks"
            )["QueueUrl"],
            "allow_private_webhooks": True,  # the webhook below answers on loopback
            # A failed hook delivery's first retry (10 s on) is within it, its second (20 s
            # more) is not: the workload shows both a retry and a delivery that fails for good.
            "hook_retry_window_seconds": 15,
        }
    )
    _SETTINGS[:] = [configured]
    container = bootstrap.build(configured, hasher=fast_hasher())
    bootstrap.override(container)
    CALLS.clear()
    try:
        with Recorder(settings.table_prefix) as recorder, Client(app) as client:
            _run_everything(container, Http(client), recorder)
        yield {name: set(calls) for name, calls in CALLS.items()}
    finally:
        bootstrap.override(None)


_SETTINGS: list[Settings] = []


@contextmanager
def record(function: str) -> Iterator[None]:
    """Calls made inside are `function`'s, in a container of its own: each Lambda function is
    its own process, so nothing one read is cached for another (the signing key, say)."""
    bootstrap.override(bootstrap.build(_SETTINGS[0], hasher=fast_hasher()))
    with _record(function):
        yield


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.body
    return response.json


def _run_everything(container: bootstrap.Container, http: Http, recorder: Recorder) -> None:
    with HookTarget() as target:
        _run_everything_with(container, http, recorder, target)


def _run_everything_with(
    container: bootstrap.Container, http: Http, recorder: Recorder, target: HookTarget
) -> None:
    with record("api_handler"):
        owner = http.register("owner@example.com")
        member = http.register("member@example.com")
        token, other = owner["access_token"], member["access_token"]
        _ok(
            http(
                "POST",
                "/auth/login",
                {"email": "owner@example.com", "password": "correct horse battery"},
            )
        )
        refreshed = _ok(http("POST", "/auth/refresh", {"refresh_token": member["refresh_token"]}))
        other = refreshed["access_token"]
        _ok(http("GET", "/users/profile", token=token))
        _ok(http("PATCH", "/users/profile", {"name": "Owner"}, token))
        _ok(http("GET", "/users?q=mem", token=token))
        project = _ok(http("POST", "/projects", {"name": "Ops"}, token), 201)
        pid = project["id"]
        _ok(http("GET", "/projects", token=token))
        _ok(http("PATCH", f"/projects/{pid}", {"description": "d"}, token))
        _ok(
            http(
                "POST",
                f"/projects/{pid}/members",
                {"user_id": member["user"]["id"], "role": "member"},
                token,
            ),
            201,
        )
        _ok(http("GET", f"/projects/{pid}/members", token=token))
        _ok(http("GET", f"/projects/{pid}/webhook-secret", token=token))
        soon = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        task = _ok(
            http(
                "POST",
                "/tasks",
                {
                    "title": "Deploy",
                    "project_id": pid,
                    "due_date": soon,
                    "schedule": {"kind": "rate", "every": 5, "unit": "minutes", "timezone": "UTC"},
                },
                token,
            ),
            201,
        )
        sub = _ok(
            http(
                "POST",
                "/tasks",
                {"title": "Sub", "parent_id": task["id"], "project_id": pid},
                token,
            ),
            201,
        )
        _ok(http("PATCH", f"/tasks/{task['id']}", {"priority": "high"}, token))
        _ok(
            http(
                "POST", f"/tasks/{task['id']}/assign", {"assignee_id": member["user"]["id"]}, token
            )
        )
        _ok(http("PATCH", f"/tasks/{sub['id']}", {"depends_on": []}, token))
        first = {"title": "First", "project_id": pid}
        blocker = _ok(http("POST", "/tasks", first, token, Idempotency_Key="first"), 201)
        replayed = http("POST", "/tasks", first, token, Idempotency_Key="first")
        assert replayed.headers["Idempotent-Replayed"] == "true"
        _ok(http("PATCH", f"/tasks/{task['id']}", {"depends_on": [blocker["id"]]}, token))
        wrong = {"email": "owner@example.com", "password": "not the password"}
        assert http("POST", "/auth/login", wrong).status_code == 401
        _ok(http("GET", f"/tasks?project_id={pid}&sort=due_date", token=token))
        _ok(http("GET", f"/tasks/search?q=deploy&project_id={pid}", token=token))
        _ok(http("GET", f"/tasks/{task['id']}/subtasks", token=token))
        _ok(http("GET", f"/tasks/{task['id']}/schedule/preview", token=token))
        _ok(
            http(
                "POST", f"/tasks/{task['id']}/comments", {"body": "hi @member@example.com"}, token
            ),
            201,
        )
        _ok(http("GET", f"/tasks/{task['id']}/comments", token=token))
        _ok(http("GET", f"/tasks/{task['id']}/history", token=token))
        # Calendar feeds (text/calendar, so through the client itself).
        rotated = _ok(http("POST", "/users/profile/calendar-token", token=token))
        # API tokens: made, used as a bearer (its item read, its last use written), revoked.
        api_token = _ok(
            http("POST", "/users/profile/tokens", {"name": "ci", "scopes": ["read"]}, token), 201
        )
        _ok(http("GET", "/projects", token=api_token["token"]))
        _ok(http("GET", "/users/profile/tokens", token=token))
        _ok(http("DELETE", f"/users/profile/tokens/{api_token['id']}", token=token), 204)
        reader = _ok(
            http("POST", "/users/profile/tokens", {"name": "ws", "scopes": ["read"]}, token), 201
        )["token"]
        calendar = rotated["calendar_token"]
        for feed in (f"/calendar/{calendar}.ics", f"/calendar/{calendar}/projects/{pid}.ics"):
            assert http.client.http.get(f"/v1{feed}").status_code == 200
        _ok(http("POST", f"/tasks/{sub['id']}/complete", token=token))
        execution = _ok(http("POST", f"/tasks/{task['id']}/run", token=token), 202)
        _ok(http("GET", f"/tasks/{task['id']}/executions", token=token))
        _ok(http("GET", f"/executions/{execution['id']}", token=token))
        _ok(http("GET", "/notifications?unread=true", token=other))
        _ok(http("POST", "/notifications/read-all", token=other), 204)
        workflow = _ok(
            http(
                "POST",
                "/workflows",
                {
                    "name": "Release",
                    "project_id": pid,
                    "steps": [{"key": "a", "task_id": task["id"]}],
                    "schedule": {"kind": "rate", "every": 1, "unit": "hours", "timezone": "UTC"},
                },
                token,
            ),
            201,
        )
        run = _ok(http("POST", f"/workflows/{workflow['id']}/run", token=token), 202)
        _ok(http("GET", f"/workflows/{workflow['id']}/runs", token=token))
        _ok(http("GET", f"/workflow-runs/{run['id']}", token=token))
        _ok(http("POST", f"/workflow-runs/{run['id']}/cancel", token=token), 202)
        template = _ok(
            http(
                "POST",
                f"/projects/{pid}/templates",
                {
                    "name": "Triage",
                    "task": {"title": "Triage {{what}}"},
                    "subtasks": [{"title": "Look"}],
                },
                token,
            ),
            201,
        )
        _ok(
            http(
                "POST",
                "/tasks/from-template",
                {"template_id": template["id"], "values": {"what": "it"}},
                token,
            ),
            201,
        )
        rule = _ok(
            http(
                "POST",
                f"/projects/{pid}/rules",
                {
                    "name": "Urgent",
                    "trigger": {"event": "task.created", "conditions": {"priority": "urgent"}},
                    "actions": [
                        {"type": "set_field", "field": "status", "value": "in_progress"},
                        {"type": "notify", "user_id": "creator"},
                        {
                            "type": "create_task",
                            "template_id": template["id"],
                            "values": {"what": "x"},
                        },
                        {"type": "run_workflow", "workflow_id": workflow["id"]},
                    ],
                },
                token,
            ),
            201,
        )
        _ok(http("GET", f"/rules/{rule['id']}/executions", token=token))
        _ok(
            http(
                "POST", "/tasks", {"title": "Hot", "project_id": pid, "priority": "urgent"}, token
            ),
            201,
        )
        hourly = {"kind": "rate", "every": 1, "unit": "hours", "timezone": "UTC"}
        doomed = _ok(
            http(
                "POST", "/tasks", {"title": "Doomed", "project_id": pid, "schedule": hourly}, token
            ),
            201,
        )
        _ok(http("POST", f"/tasks/{doomed['id']}/comments", {"body": "bye"}, token), 201)
        _ok(http("POST", f"/tasks/{doomed['id']}/run", token=token), 202)
        _ok(http("DELETE", f"/tasks/{doomed['id']}", token=token), 204)
        hook = _ok(
            http(
                "POST",
                f"/projects/{pid}/hooks",
                {"url": target.url, "events": ["task.created", "comment.created"]},
                token,
            ),
            201,
        )
        _ok(http("GET", f"/projects/{pid}/hooks", token=token))
        _ok(http("PATCH", f"/hooks/{hook['id']}", {"events": ["task.created"]}, token))
        spare = _ok(http("POST", "/projects", {"name": "Spare"}, token), 201)
        spare_hook = {"url": target.url, "events": ["task.deleted"]}
        _ok(http("POST", f"/projects/{spare['id']}/hooks", spare_hook, token), 201)
        _ok(http("DELETE", f"/projects/{spare['id']}", token=token), 204)
        _ok(http("POST", "/auth/logout", token=token), 204)
        token = _ok(
            http(
                "POST",
                "/auth/login",
                {"email": "owner@example.com", "password": "correct horse battery"},
            )
        )["access_token"]

    def ws_event(connection_id: str, **fields: Any) -> dict[str, Any]:
        return {"requestContext": {"connectionId": connection_id}, **fields}

    with record("websocket_connect"):
        websocket.on_connect(ws_event("conn-1", queryStringParameters={"token": other}))
        # A script's socket: a read-scoped API token (its item and user read, last use set).
        websocket.on_connect(ws_event("conn-0", queryStringParameters={"token": reader}))
    with record("websocket_message"):
        for frame in ({"action": "ping"}, {"action": "subscribe", "channel": f"project:{pid}"}):
            websocket.on_message(ws_event("conn-1", body=json.dumps(frame)))

    # What Lambda's event source mappings read is theirs, not the function's: the batches are
    # read outside the recording.
    streamed = [spec.base_name for spec in tables.specs() if spec.stream]
    for _ in range(2):  # the first pass writes what the second reads (rules, purges)
        batches = [stream_event(container.settings.table_name(name)) for name in streamed]
        with record("on_change"):
            for batch in batches:
                streams.on_change(batch)
    with record("api_handler"):  # search, now that the stream consumer indexed the tasks
        _ok(http("GET", f"/tasks/search?q=deploy&project_id={pid}", token=token))
        logged = _ok(http("GET", f"/projects/{pid}/events?limit=1", token=token))["items"]
    # The hook's deliveries, as the SQS event source mapping hands them over (read outside).
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = container.settings.hook_queue_url
    batches = []
    while received := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        batches.append(received)
    assert batches
    with record("deliver_hooks"):
        for received in batches:
            answer = hooks.deliver_hooks(
                {
                    "Records": [
                        {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                         "body": m["Body"]}
                        for m in received
                    ]
                }
            )  # fmt: skip
            assert answer["batchItemFailures"] == []
    target.statuses = [500, 500]  # a retry (the message hidden), then failed for good
    with record("api_handler"):
        log = _ok(http("GET", f"/hooks/{hook['id']}/deliveries", token=token))
        again = _ok(
            http("POST", f"/deliveries/{log['items'][0]['id']}/redeliver", token=token), 202
        )
        _ok(http("GET", f"/hooks/{hook['id']}", token=token))
    (message,) = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    assert again["id"] in message["Body"]
    with record("deliver_hooks"):
        record_ = {
            "messageId": "m",
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
        }
        assert hooks.deliver_hooks({"Records": [record_]})["retried"] == 1
        # Handed out again: past the window now, the delivery fails and counts on its hook.
        assert hooks.deliver_hooks({"Records": [record_]})["settled"] == 1
    with record("api_handler"):
        _ok(http("DELETE", f"/hooks/{hook['id']}", token=token), 204)

    with record("fire"):
        for target in ({"task_id": task["id"]}, {"workflow_id": workflow["id"]}):
            scheduling.fire(
                {
                    **target,
                    "project_id": pid,
                    "scheduled_time": "2026-11-21T12:05:00Z",
                    "attempt": 1,
                    "execution_id": "delivery-1",
                }
            )

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    Thread(target=server.serve_forever, daemon=True).start()
    hook = {"type": "webhook", "url": f"http://127.0.0.1:{server.server_address[1]}/hook"}
    with record("api_handler"):
        pinged = _ok(
            http("POST", "/tasks", {"title": "Ping", "project_id": pid, "action": hook}, token), 201
        )
        ping = _ok(http("POST", f"/tasks/{pinged['id']}/run", token=token), 202)
        third = _ok(http("POST", f"/tasks/{pinged['id']}/run", token=token), 202)
        reminder = _ok(http("POST", "/tasks", {"title": "Remind", "project_id": pid}, token), 201)
        queued = _ok(http("POST", f"/tasks/{reminder['id']}/run", token=token), 202)
        second_run = _ok(http("POST", f"/workflows/{workflow['id']}/run", token=token), 202)
        once = {**hook, "url": hook["url"] + "?once"}
        fragile = _ok(
            http(
                "POST",
                "/tasks",
                {"title": "Once", "project_id": pid, "action": once, "retry": {"max_attempts": 1}},
                token,
            ),
            201,
        )
    # Executions whose holder died (leases expired): the sweep takes them over below.
    expired = datetime.now(UTC) - timedelta(minutes=5)
    for trigger, status, subject in (
        (Trigger.SCHEDULE, ExecutionStatus.RUNNING, pinged),  # handed to the state machine
        (Trigger.SCHEDULE, ExecutionStatus.RUNNING, fragile),  # no retry left: timed out
        (Trigger.MANUAL, ExecutionStatus.QUEUED, reminder),  # dispatched again
    ):
        DynamoExecutionRepository().create(
            Execution(
                new_execution_id(pid), subject["id"], pid, trigger, status, expired,
                lease_expires_at=expired,
            )
        )  # fmt: skip
    with record("plan"):
        runs.plan({"run": {"kind": "execution", "id": queued["id"]}, "round": 0})
        planned = runs.plan({"run": {"kind": "workflow_run", "id": second_run["id"]}, "round": 0})
    with record("run_step"):
        runs.run_step({"execution_id": queued["id"], "task_id": reminder["id"], "attempt": 1})
        runs.run_step({"execution_id": ping["id"], "task_id": pinged["id"], "attempt": 1})
    with record("fire"):  # the manual runs' dispatches (the first attempts: webhook, reminder)
        for name, event in list(recorder.dispatched):
            assert name == "fire", name
            scheduling.fire(event)
        recorder.dispatched.clear()
    made = DynamoExecutionRepository().get(third["id"])
    assert made is not None
    assert made.attempts == 1
    server.shutdown()
    server.server_close()
    with record("run_step"):
        for step in planned["steps"]:
            runs.run_step({**step, "attempt": 1})
    with record("plan"):
        runs.plan({"run": {"kind": "workflow_run", "id": second_run["id"]}, "round": 1})
    with record("fan_out"):
        websocket.fan_out({"connection_ids": ["conn-1", "gone-2"], "frame": {"type": "x"}})
    with record("sweep"):
        sweep.sweep({"time": "2026-11-21T12:00:00Z"})
    assert [name for name, _ in recorder.dispatched] == ["fire"]  # the lost dispatch, again
    with record("websocket_message"):
        unsubscribe = {"action": "unsubscribe", "channel": f"project:{pid}"}
        websocket.on_message(ws_event("conn-1", body=json.dumps(unsubscribe)))
        # In order from the first event: the catch-up reads the log and moves the subscription.
        subscribe = {"action": "subscribe", "channel": f"project:{pid}", "after": logged[0]["id"]}
        websocket.on_message(ws_event("conn-1", body=json.dumps(subscribe)))
    # The tasks written since are logged and sent to the in-order subscription.
    batches = [stream_event(container.settings.table_name(name)) for name in streamed]
    with record("on_change"):
        for batch in batches:
            streams.on_change(batch)
    with record("websocket_disconnect"):  # while subscribed: its subscription goes too
        websocket.on_disconnect(ws_event("conn-1"))


@pytest.mark.parametrize("function", sorted(FUNCTION_ACCESS))
def test_every_call_is_allowed(observed: dict[str, set[tuple[str, str]]], function: str) -> None:
    assert function in observed, f"the workload never ran {function}"
    refused = observed[function] - granted(function)
    assert not refused, f"{function} needs what its role does not allow: {sorted(refused)}"


@pytest.mark.parametrize("function", sorted(FUNCTION_ACCESS))
def test_every_grant_is_used(observed: dict[str, set[tuple[str, str]]], function: str) -> None:
    """Table by table and action by action outside DynamoDB: nothing granted that the function
    never did (a read-write grant must see a write)."""
    access = FUNCTION_ACCESS[function]
    did = observed.get(function, set())
    touched = {resource.split("/")[0] for action, resource in did if action.startswith("dynamodb:")}
    wrote = {
        resource
        for action, resource in did
        if action
        in (
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem",
        )
    }
    unused = {("table", t) for t in access.tables - touched if (function, t) not in UNEXERCISED}
    unused |= {("writes", t) for t in access.writes - wrote if (function, t) not in UNEXERCISED}
    unused |= {
        (action, "")
        for action in access.actions
        if not any(a == action for a, _ in did) and (function, action) not in UNEXERCISED
    }
    unused |= {
        ("invokes", name)
        for name in access.invokes
        if ("lambda:InvokeFunction", f"function:{name}") not in did
        and (function, f"function:{name}") not in UNEXERCISED
    }
    assert not unused, f"{function} is granted what it never used: {sorted(unused)}"


def test_no_function_may_scan() -> None:
    for function in FUNCTION_ACCESS:
        assert not any(action == "dynamodb:Scan" for action, _ in granted(function))
