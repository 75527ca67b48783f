"""The local stack, started in this process: Lambda in process through moto, Step Functions,
the scheduler ticker, provisioning, the management API and the REST API paths."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
import requests

from chalicelib.adapters.dynamodb import tables
from chalicelib.settings import Settings
from local.provision import lambda_entry_points
from local.stack import LocalStack
from local.testing import Probe, deploy_probe, wait_until

# One worker runs the module under xdist, so one stack serves it.
pytestmark = pytest.mark.xdist_group("local-stack-in-process")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(http_port=0, ws_port=0, quiet=True) as running:
        yield running


def client(stack: LocalStack, service: str, **kwargs: Any) -> Any:
    return boto3.client(service, region_name=stack.region, **kwargs)


def whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- provisioning ----------------------------------------------------------------------------


def test_moto_and_fake_credentials_are_in_the_environment(stack):
    assert os.environ["AWS_ENDPOINT_URL"] == stack.moto_endpoint
    assert stack.moto_endpoint.startswith("http://127.0.0.1:")
    assert os.environ["MOTO_PORT"] == stack.moto_endpoint.rsplit(":", 1)[1]
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["TASKBEAT_WS_MANAGEMENT_URL"] == stack.management_url
    assert os.environ["TASKBEAT_ALLOW_PRIVATE_WEBHOOKS"] == "true"
    from moto.core.config import default_user_config

    assert default_user_config["stepfunctions"]["execute_state_machine"] is True


def test_every_table_exists(stack):
    settings = Settings()
    names = set(client(stack, "dynamodb").list_tables()["TableNames"])
    expected = {f"{settings.table_prefix}{spec.base_name}" for spec in tables.specs()}
    assert expected
    assert expected <= names


def test_the_jwt_signing_secret_is_generated(stack):
    settings = Settings()
    secret = client(stack, "secretsmanager").get_secret_value(SecretId=settings.jwt_secret_id)
    assert len(secret["SecretString"]) >= 64


def test_every_entry_point_is_a_lambda_function_and_routes_are_not(stack):
    from app import app

    entry_points = lambda_entry_points(app)
    assert {"ws_connect", "ws_message", "ws_disconnect"} <= set(entry_points)
    route_views = {e.view_name for methods in app.routes.values() for e in methods.values()}
    assert not route_views & set(entry_points)
    functions = client(stack, "lambda").list_functions()["Functions"]
    by_name = {f["FunctionName"]: f for f in functions}
    for name in entry_points:
        assert by_name[name]["Runtime"] == "python3.13"
        assert by_name[name]["Handler"] == f"app.{name}"
        assert name in stack.registry


# --- Lambda in process -----------------------------------------------------------------------


def test_a_function_invoked_through_moto_runs_in_process(stack):
    probe = Probe(reply=lambda event: {"doubled": event["n"] * 2})
    arn = deploy_probe(stack, probe, "probe-double")
    response = client(stack, "lambda").invoke(FunctionName="probe-double", Payload=b'{"n": 21}')
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"doubled": 42}
    assert probe.received() == [{"n": 21}]
    context = probe.contexts[0]
    assert context.function_name == "probe-double"
    assert context.invoked_function_arn == arn
    assert context.aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 60_000


def test_an_empty_payload_arrives_as_an_empty_object(stack):
    probe = Probe()
    deploy_probe(stack, probe, "probe-empty")
    client(stack, "lambda").invoke(FunctionName="probe-empty")
    assert probe.received() == [{}]


def test_a_handler_exception_is_a_function_error(stack):
    def fail(event: Any) -> Any:
        raise RuntimeError(f"boom {event['n']}")

    deploy_probe(stack, Probe(reply=fail), "probe-fail")
    response = client(stack, "lambda").invoke(FunctionName="probe-fail", Payload=b'{"n": 7}')
    assert response["FunctionError"]
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "RuntimeError"
    assert payload["errorMessage"] == "boom 7"
    # moto (and the stack) survived it.
    assert client(stack, "lambda").get_function(FunctionName="probe-fail")


def test_a_result_that_is_not_json_is_a_function_error(stack):
    deploy_probe(stack, Probe(reply=lambda event: {1, 2}), "probe-set")
    response = client(stack, "lambda").invoke(FunctionName="probe-set")
    assert response["FunctionError"]
    assert json.loads(response["Payload"].read())["errorType"] == "Runtime.MarshalError"


def test_one_function_handles_one_event_at_a_time(stack):
    running = []
    overlaps = []
    lock = threading.Lock()

    def slow(event: Any) -> Any:
        with lock:
            running.append(event["i"])
            if len(running) > 1:
                overlaps.append(list(running))
        threading.Event().wait(0.05)
        with lock:
            running.remove(event["i"])
        return event["i"]

    deploy_probe(stack, Probe(reply=slow), "probe-serial")
    lambda_client = client(stack, "lambda")
    results: list[int] = []

    def call(i: int) -> None:
        response = lambda_client.invoke(FunctionName="probe-serial", Payload=json.dumps({"i": i}))
        results.append(json.loads(response["Payload"].read()))

    callers = [threading.Thread(target=call, args=(i,)) for i in range(5)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(20)
    assert sorted(results) == [0, 1, 2, 3, 4]
    assert overlaps == []


def test_a_function_may_invoke_another_while_it_runs(stack):
    inner = Probe(reply=lambda event: "inner saw " + event["word"])
    deploy_probe(stack, inner, "probe-inner")

    def outer_reply(event: Any) -> Any:
        response = client(stack, "lambda").invoke(
            FunctionName="probe-inner", Payload=json.dumps(event)
        )
        return json.loads(response["Payload"].read())

    deploy_probe(stack, Probe(reply=outer_reply), "probe-outer")
    response = client(stack, "lambda").invoke(FunctionName="probe-outer", Payload=b'{"word": "hi"}')
    assert json.loads(response["Payload"].read()) == "inner saw hi"


def test_dynamodb_stream_records_reach_the_mapped_function_without_blocking_the_writer(stack):
    dynamodb = client(stack, "dynamodb")
    table = f"probe-stream-{uuid.uuid4().hex[:8]}"
    created = dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )

    def on_record(event: Any) -> Any:
        # Writing to the table it consumes: must neither deadlock nor loop forever.
        for record in event["Records"]:
            key = record["dynamodb"]["Keys"]["pk"]["S"]
            if not key.startswith("echo-"):
                dynamodb.put_item(TableName=table, Item={"pk": {"S": f"echo-{key}"}})
        return None

    consumer = Probe(reply=on_record)
    deploy_probe(stack, consumer, "probe-stream")
    client(stack, "lambda").create_event_source_mapping(
        EventSourceArn=created["TableDescription"]["LatestStreamArn"],
        FunctionName="probe-stream",
        StartingPosition="LATEST",
    )
    for key in ("a", "b", "c"):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": key}})

    events = consumer.wait_for(6)
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for e in events for r in e["Records"]]
    assert keys[:1] == ["a"]
    assert sorted(keys) == ["a", "b", "c", "echo-a", "echo-b", "echo-c"]
    assert keys.index("a") < keys.index("b") < keys.index("c")  # in order, like a shard
    assert all(r["eventName"] == "INSERT" for e in events for r in e["Records"])
    assert set(consumer.threads) == {"lambda-deliveries-probe-stream"}


# --- Step Functions --------------------------------------------------------------------------


def run_state_machine(
    stack: LocalStack, definition: dict[str, Any], payload: Any
) -> dict[str, Any]:
    sfn = client(stack, "stepfunctions")
    machine = sfn.create_state_machine(
        name=f"probe-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        roleArn=stack.provisioned.role_arn,
    )
    execution = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], input=json.dumps(payload)
    )

    def finished() -> dict[str, Any] | None:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        return described if described["status"] != "RUNNING" else None

    return wait_until(finished, timeout=30, message="the execution to finish")


def lambda_task(function_arn: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        **extra,
    }


def test_a_state_machine_lambda_task_runs_the_function_in_process(stack):
    probe = Probe(reply=lambda event: {"n": event["n"] + 1})
    arn = deploy_probe(stack, probe, "probe-increment")
    definition = {
        "StartAt": "First",
        "States": {
            "First": lambda_task(arn, Next="Second"),
            "Second": lambda_task(arn, End=True),
        },
    }
    execution = run_state_machine(stack, definition, {"n": 40})
    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"]) == {"n": 42}
    assert probe.received() == [{"n": 40}, {"n": 41}]


def test_a_failing_lambda_task_is_caught_by_name(stack):
    class WebhookFailed(Exception):
        pass

    def fail(event: Any) -> Any:
        raise WebhookFailed("503 from the target")

    arn = deploy_probe(stack, Probe(reply=fail), "probe-webhook")
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": lambda_task(
                arn,
                Catch=[
                    {"ErrorEquals": ["WebhookFailed"], "Next": "Failed", "ResultPath": "$.error"}
                ],
                End=True,
            ),
            "Failed": {"Type": "Pass", "End": True},
        },
    }
    execution = run_state_machine(stack, definition, {"task": "t1"})
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["task"] == "t1"
    assert output["error"]["Error"] == "WebhookFailed"


# --- the scheduler ticker --------------------------------------------------------------------


def create_schedule(stack: LocalStack, target_arn: str, expression: str, **kwargs: Any) -> str:
    name = f"probe-{uuid.uuid4().hex[:10]}"
    client(stack, "scheduler").create_schedule(
        Name=name,
        ScheduleExpression=expression,
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": target_arn,
            "RoleArn": stack.provisioned.role_arn,
            "Input": json.dumps(
                {
                    "scheduled_time": "<aws.scheduler.scheduled-time>",
                    "execution_id": "<aws.scheduler.execution-id>",
                    "attempt": "<aws.scheduler.attempt-number>",
                    "schedule_arn": "<aws.scheduler.schedule-arn>",
                }
            ),
        },
        **kwargs,
    )
    return name


def test_a_one_time_schedule_fires_once_on_the_clock_and_is_deleted(stack):
    probe = Probe()
    arn = deploy_probe(stack, probe)
    at = whole_second(datetime.now(UTC)) + timedelta(seconds=2)
    name = create_schedule(
        stack, arn, f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})", ActionAfterCompletion="DELETE"
    )

    [event] = probe.wait_for(1, timeout=15)  # the ticker thread fires it
    assert event["scheduled_time"] == rfc3339(at)
    assert event["attempt"] == "1"
    assert event["schedule_arn"].endswith(f":schedule/default/{name}")
    uuid.UUID(event["execution_id"])
    scheduler = client(stack, "scheduler")
    wait_until(
        lambda: name not in {s["Name"] for s in scheduler.list_schedules()["Schedules"]},
        message="the completed schedule to be deleted",
    )
    assert not [f for f in stack.ticker.tick(at + timedelta(minutes=5)) if f.target_arn == arn]
    assert len(probe.received()) == 1


def test_a_one_time_schedule_in_a_time_zone(stack):
    probe = Probe()
    arn = deploy_probe(stack, probe)
    now = whole_second(datetime.now(UTC))
    at_utc = now + timedelta(hours=3)
    berlin = at_utc.astimezone(ZoneInfo("Europe/Berlin"))
    create_schedule(
        stack,
        arn,
        f"at({berlin.strftime('%Y-%m-%dT%H:%M:%S')})",
        ScheduleExpressionTimezone="Europe/Berlin",
    )
    assert not [f for f in stack.ticker.tick(at_utc - timedelta(seconds=1)) if f.target_arn == arn]
    fired = [f for f in stack.ticker.tick(at_utc) if f.target_arn == arn]
    assert [f.scheduled_time for f in fired] == [at_utc]
    assert probe.wait_for(1)[0]["scheduled_time"] == rfc3339(at_utc)
    assert not [f for f in stack.ticker.tick(at_utc + timedelta(hours=1)) if f.target_arn == arn]


def test_a_rate_schedule_fires_at_the_expected_times_under_tick(stack):
    probe = Probe()
    arn = deploy_probe(stack, probe)
    start = whole_second(datetime.now(UTC)) + timedelta(hours=1)
    create_schedule(stack, arn, "rate(5 minutes)", StartDate=start)

    fired = stack.ticker.tick(start + timedelta(minutes=11))
    ours = [f for f in fired if f.target_arn == arn]
    expected = [start, start + timedelta(minutes=5), start + timedelta(minutes=10)]
    assert [f.scheduled_time for f in ours] == expected
    assert all(f.error is None for f in ours)
    events = probe.wait_for(3)
    assert [e["scheduled_time"] for e in events] == [rfc3339(t) for t in expected]
    assert len({e["execution_id"] for e in events}) == 3

    assert not [f for f in stack.ticker.tick(start + timedelta(minutes=11)) if f.target_arn == arn]
    later = [f for f in stack.ticker.tick(start + timedelta(minutes=15)) if f.target_arn == arn]
    assert [f.scheduled_time for f in later] == [start + timedelta(minutes=15)]
    assert len(probe.wait_for(4)) == 4


def test_a_cron_schedule_follows_its_time_zone_and_end_date(stack):
    probe = Probe()
    arn = deploy_probe(stack, probe)
    new_york = ZoneInfo("America/New_York")
    now = datetime.now(UTC)
    end = now + timedelta(days=3)
    name = create_schedule(
        stack, arn, "cron(0 9 * * ? *)", ScheduleExpressionTimezone="America/New_York", EndDate=end
    )
    created = client(stack, "scheduler").get_schedule(Name=name)["CreationDate"]
    fired = [f for f in stack.ticker.tick(now + timedelta(days=5)) if f.target_arn == arn]

    today = now.astimezone(new_york).date()
    nine_am = (
        datetime.combine(today + timedelta(days=n), time(9), new_york).astimezone(UTC)
        for n in range(6)
    )
    expected = [t for t in nine_am if whole_second(created) <= t <= end]
    assert len(expected) >= 2
    # (The ticker thread may have delivered one falling due this very second; the probe saw all.)
    assert {f.scheduled_time for f in fired} <= set(expected)
    assert [e["scheduled_time"] for e in probe.wait_for(len(expected))] == [
        rfc3339(t) for t in expected
    ]
    assert len(probe.received()) == len(expected)


def test_a_disabled_schedule_does_not_fire(stack):
    probe = Probe()
    arn = deploy_probe(stack, probe)
    create_schedule(stack, arn, "rate(1 minute)", State="DISABLED")
    fired = stack.ticker.tick(datetime.now(UTC) + timedelta(minutes=30))
    assert not [f for f in fired if f.target_arn == arn]
    assert probe.received() == []


def test_a_failing_target_does_not_stop_the_other_schedules(stack):
    probe = Probe()
    arn = deploy_probe(stack, probe)
    start = whole_second(datetime.now(UTC)) + timedelta(hours=2)
    missing = arn.rsplit(":", 1)[0] + ":no-such-function"
    unsupported = "arn:aws:sqs:us-east-1:123456789012:no-such-queue"
    create_schedule(stack, missing, "rate(1 hour)", StartDate=start)
    create_schedule(stack, unsupported, "rate(1 hour)", StartDate=start)
    create_schedule(stack, arn, "rate(1 hour)", StartDate=start)

    fired = stack.ticker.tick(start + timedelta(seconds=1))
    by_target = {f.target_arn: f for f in fired}
    assert by_target[missing].error
    assert by_target[unsupported].error
    assert by_target[arn].error is None
    assert probe.wait_for(1)[0]["scheduled_time"] == rfc3339(start)


def test_a_schedule_can_start_a_state_machine_execution(stack):
    probe = Probe(reply=lambda event: event)
    function_arn = deploy_probe(stack, probe)
    sfn = client(stack, "stepfunctions")
    machine = sfn.create_state_machine(
        name=f"probe-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(
            {"StartAt": "Run", "States": {"Run": lambda_task(function_arn, End=True)}}
        ),
        roleArn=stack.provisioned.role_arn,
    )["stateMachineArn"]
    start = whole_second(datetime.now(UTC)) + timedelta(hours=4)
    create_schedule(stack, machine, "rate(1 day)", StartDate=start)

    [firing] = [f for f in stack.ticker.tick(start) if f.target_arn == machine]
    assert firing.error is None
    [event] = probe.wait_for(1, timeout=30)
    assert event["scheduled_time"] == rfc3339(start)
    assert event["execution_id"] == firing.execution_id


# --- WebSocket management API and REST paths -------------------------------------------------


def test_posting_to_an_unknown_connection_is_gone(stack):
    management = client(stack, "apigatewaymanagementapi", endpoint_url=stack.management_url)
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId="Zm9vYmFyYmF6cXV4=", Data=b'{"type": "pong"}')
    with pytest.raises(management.exceptions.GoneException):
        management.get_connection(ConnectionId="Zm9vYmFyYmF6cXV4=")


def test_health_is_served_under_the_stage(stack):
    response = requests.get(f"{stack.api_url}/health", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"
    assert stack.api_url == f"http://127.0.0.1:{stack.http_port}/api/v1"
    assert stack.docs_url == f"{stack.api_url}/docs"


@pytest.mark.parametrize("path", ["/api/v1/no-such-route", "/api", "/v1/health", "/favicon.ico"])
def test_unknown_paths_get_the_json_404(stack, path):
    response = requests.get(f"http://127.0.0.1:{stack.http_port}{path}", timeout=10)
    assert response.status_code == 404
    body = response.json()
    assert body["error"]["code"] == "not_found"
    assert body["error"]["details"] == []
    assert body["request_id"]


def test_chalice_schedule_rules_fire_with_the_event_a_rule_sends(stack):
    from chalice.app import Chalice, Rate

    from local.provision import create_function, schedule_rules

    rules_app = Chalice(app_name="rules")
    seen: list[Any] = []

    @rules_app.schedule(Rate(2, unit=Rate.HOURS), name=f"every-two-hours-{uuid.uuid4().hex[:6]}")
    def every_two_hours(event: Any) -> None:
        seen.append(event)

    for name, handler in lambda_entry_points(rules_app).items():
        create_function(stack.registry, name, handler, stack.provisioned.role_arn)
    [rule] = schedule_rules(rules_app, stack.region, stack.provisioned.role_arn)
    created = client(stack, "scheduler").get_schedule(Name=rule, GroupName="taskbeat-local-rules")
    assert created["ScheduleExpression"] == "rate(2 hours)"

    # A rate rule fires at once, then every interval. (The ticker thread may deliver the
    # first before this test ticks; each is delivered exactly once either way.)
    origin = whole_second(created["CreationDate"])
    expected = [origin, origin + timedelta(hours=2)]
    fired = [f for f in stack.ticker.tick(origin + timedelta(hours=2)) if f.name == rule]
    assert {f.scheduled_time for f in fired} <= set(expected)
    wait_until(lambda: len(seen) == 2, message="two scheduled events")
    assert [event.time for event in seen] == [rfc3339(t) for t in expected]
    assert seen[0].detail_type == "Scheduled Event"
    assert seen[0].source == "aws.events"
    assert seen[0].resources[0].endswith(f":rule/{rule}")


def test_an_event_invocation_is_queued_and_may_invoke_its_own_function(stack):
    lambda_client = client(stack, "lambda")

    def reply(event: Any) -> Any:
        if event["hop"] < 2:  # invokes itself while holding its own function's lock
            lambda_client.invoke(
                FunctionName="probe-hops",
                InvocationType="Event",
                Payload=json.dumps({"hop": event["hop"] + 1}),
            )
        return event["hop"]

    probe = Probe(reply=reply)
    deploy_probe(stack, probe, "probe-hops")
    response = lambda_client.invoke(
        FunctionName="probe-hops", InvocationType="Event", Payload=b'{"hop": 0}'
    )
    assert response["StatusCode"] == 202
    assert [event["hop"] for event in probe.wait_for(3)] == [0, 1, 2]
    assert set(probe.threads) == {"lambda-deliveries-probe-hops"}


def test_concurrent_transactions_lose_no_write(stack):
    """moto restores whole tables when a transaction fails; the stack's write lock keeps that
    from wiping other threads' writes (many racing registrations, some failing on the claim)."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    def register(index: int) -> int:
        # Five requests per address: four lose on the email claim, and moto restores the tables.
        body = {"email": f"racer{index % 8}@example.com", "password": "long enough pw", "name": "R"}
        return requests.post(f"{stack.api_url}/auth/register", json=body, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(register, range(40)))
    created = codes.count(201)
    assert created == 8
    assert codes.count(409) == 32
    from chalicelib.adapters.dynamodb.models import UserModel

    stored = sum(1 for _ in UserModel.by_email.query("users", UserModel.email.startswith("racer")))
    assert stored == created
