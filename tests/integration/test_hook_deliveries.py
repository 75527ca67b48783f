"""Project hooks on moto: each route's DynamoDB calls, and a task write travelling the whole
way: stream record -> `on_change` -> delivery record + SQS message -> `deliver_hooks` with the
SQS event -> a signed POST to a server on 127.0.0.1; a failed attempt hides its message with
ChangeMessageVisibility for the backoff delay and reports it in `batchItemFailures`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.domain.hooks import HookCreate
from chalicelib.domain.model import PageRequest
from chalicelib.domain.tasks import TaskCreate
from chalicelib.domain.users import RegisterInput
from chalicelib.handlers.hooks import deliver_hooks
from chalicelib.handlers.streams import on_change
from chalicelib.settings import Settings
from tests.fakes import fast_hasher
from tests.hook_target import HookTarget, signature_ok
from tests.integration.conftest import Http
from tests.integration.test_hooks_api import PUBLIC, QUEUE_NAME, QUEUE_URL, admin_team, event_of
from tests.integration.test_search import stream_event
from tests.integration.test_workflows_api import BATCH, TRANSACTION

QUERY, PUT, DELETE = "Query", "PutItem", "DeleteItem"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        table_prefix="test-", jwt_secret_id="test/jwt", aws_region="us-east-1",
        hook_queue_url=QUEUE_URL,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def hook_queue(moto_aws: None) -> Iterator[Any]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.create_queue(QueueName=QUEUE_NAME, Attributes={"VisibilityTimeout": "30"})
    return sqs


def test_each_route_within_its_budget(http: Http, container: bootstrap.Container) -> None:
    t = admin_team(http)
    path = f"/projects/{t['project']}/hooks"
    created = http("POST", path, {"url": PUBLIC, "events": ["task.created"]}, t["admin"])
    assert created.status_code == 201
    assert http.calls == [BATCH, QUERY, TRANSACTION]
    hook = created.json["id"]
    http("GET", path, token=t["admin"])
    assert http.calls == [BATCH, QUERY]
    http("GET", f"/hooks/{hook}", token=t["admin"])
    assert http.calls == [BATCH]
    http("PATCH", f"/hooks/{hook}", {"active": False}, t["admin"])
    assert http.calls == [BATCH, TRANSACTION]
    http("PATCH", f"/hooks/{hook}", {"active": True}, t["admin"])
    with container.request_scope():
        container.hooks.dispatch([event_of(t["project"])])
    log = http("GET", f"/hooks/{hook}/deliveries", token=t["admin"])
    assert http.calls == [BATCH, QUERY]
    again = http("POST", f"/deliveries/{log.json['items'][0]['id']}/redeliver", token=t["admin"])
    assert again.status_code == 202
    assert http.calls == [BATCH, "GetItem", PUT]
    assert http("DELETE", f"/hooks/{hook}", token=t["admin"]).status_code == 204
    assert http.calls == [BATCH, DELETE]


def sqs_event(sqs: Any, wait: float = 0) -> dict[str, Any]:
    """What the SQS event source mapping hands the function: the messages received now."""
    answer = sqs.receive_message(
        QueueUrl=QUEUE_URL,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        WaitTimeSeconds=int(wait),
    )
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{QUEUE_NAME}",
            }
            for m in answer.get("Messages", [])
        ]
    }


def test_a_task_write_reaches_the_hook_signed_and_a_failure_waits_its_backoff(
    settings: Settings, hook_queue: Any
) -> None:
    local = settings.model_copy(
        update={"allow_private_webhooks": True, "hook_retry_base_seconds": 2}
    )
    container = bootstrap.build(local, hasher=fast_hasher())
    bootstrap.override(container)
    try:
        with HookTarget(500) as target:
            me = container.auth.authenticate(
                container.auth.register(
                    RegisterInput(email="a@x.io", password="long enough", name="A")
                ).access_token
            )
            project = me.personal_project_id
            with container.request_scope():
                hook = container.hooks.create(
                    me, project, HookCreate(url=target.url, events=["task.created"])
                )
            with container.request_scope():
                task = container.tasks.create(me, TaskCreate(title="Ship it"))
            answer = on_change(stream_event(f"{settings.table_prefix}tasks"))
            assert answer["hook_deliveries"] == 1

            first = sqs_event(hook_queue)
            (record,) = first["Records"]
            outcome = deliver_hooks(first)
            # 500: the message is reported failed and hidden for the first backoff (2 s).
            assert outcome["batchItemFailures"] == [{"itemIdentifier": record["messageId"]}]
            assert sqs_event(hook_queue)["Records"] == []
            (sent,) = target.wait_for(1, timeout=5)
            delivery_id = json.loads(record["body"])["delivery_id"]
            assert sent.headers["X-Taskbeat-Delivery"] == delivery_id
            assert sent.headers["X-Taskbeat-Event"] == "task.created"
            secret = container.webhook_secrets.for_signing(project)
            assert signature_ok(secret, sent)
            body = json.loads(sent.body)
            assert set(body) == {"id", "type", "at", "data"}
            assert (body["type"], body["data"]["id"]) == ("task.created", task.id)

            # The message comes back once its visibility timeout (the backoff) has passed.
            deadline = time.monotonic() + 10
            again: dict[str, Any] = {"Records": []}
            while not again["Records"] and time.monotonic() < deadline:
                again = sqs_event(hook_queue, wait=1)
            assert [r["messageId"] for r in again["Records"]] == [record["messageId"]]
            assert deliver_hooks(again)["batchItemFailures"] == []
            target.wait_for(2, timeout=5)
            with container.request_scope():
                log = container.hooks.deliveries(me, hook.id, PageRequest())
            (delivery,) = log.items
            assert (delivery.status.value, delivery.attempts, delivery.response_status) == (
                "succeeded",
                2,
                204,
            )
    finally:
        bootstrap.override(None)


def test_poison_and_unknown_messages(container: bootstrap.Container, hook_queue: Any) -> None:
    event = {
        "Records": [
            {"messageId": "m1", "receiptHandle": "r1", "body": "not json"},
            {"messageId": "m2", "receiptHandle": "r2", "body": json.dumps({"delivery_id": "x"})},
        ]
    }
    answer = deliver_hooks(event)
    # Unparsable: failed (SQS retries it, then the dead-letter queue); unknown: settled.
    assert answer["batchItemFailures"] == [{"itemIdentifier": "m1"}]
    assert answer["settled"] == 1
