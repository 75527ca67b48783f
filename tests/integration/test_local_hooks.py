"""The local stack's hook delivery queue: provisioned like CDK's (a dead-letter queue behind
it), consumed by the poller as Lambda's SQS mapping would, and moto in server mode keeping what
the design relies on: a ChangeMessageVisibility hides a message for that long, and a message
received more than maxReceiveCount times moves to the dead-letter queue. Then a hook on a
loopback target that fails once: the delivery succeeds on its retry after the backoff."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.adapters.aws.hook_queue import MAX_RECEIVES, VISIBILITY_TIMEOUT_SECONDS
from local.stack import LocalStack
from local.testing import ApiClient, register_user, wait_until
from tests.hook_target import HookTarget, signature_ok

pytestmark = pytest.mark.xdist_group("local-stack-in-process")

# Shrunk for the test: the first retry after 1 s; an attempt waits 2 s for an answer.
FAST = {"TASKBEAT_HOOK_RETRY_BASE_SECONDS": "1", "TASKBEAT_HOOK_TIMEOUT_SECONDS": "2"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    saved = {name: os.environ.get(name) for name in FAST}
    os.environ.update(FAST)
    try:
        with LocalStack(http_port=0, ws_port=0, quiet=True, sweep_interval_seconds=0) as running:
            yield running
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def sqs(stack: LocalStack) -> Any:
    return boto3.client("sqs", region_name=stack.region)


def test_the_queue_has_a_dead_letter_queue_and_the_app_knows_it(stack: LocalStack) -> None:
    url = stack.provisioned.hook_queue_url
    assert os.environ["TASKBEAT_HOOK_QUEUE_URL"] == url
    attributes = sqs(stack).get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == MAX_RECEIVES
    assert redrive["deadLetterTargetArn"].endswith(":taskbeat-local-hook-deliveries-dlq")
    assert int(attributes["VisibilityTimeout"]) == VISIBILITY_TIMEOUT_SECONDS
    assert stack.hook_poller is not None


def test_moto_server_honours_change_message_visibility(stack: LocalStack) -> None:
    client = sqs(stack)
    url = client.create_queue(QueueName="visibility-check")["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody="x")
    (message,) = client.receive_message(QueueUrl=url)["Messages"]
    client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=2
    )
    hidden_at = time.monotonic()
    assert client.receive_message(QueueUrl=url).get("Messages") is None
    back = wait_until(
        lambda: client.receive_message(QueueUrl=url).get("Messages"), timeout=10, interval=0.1
    )
    waited = time.monotonic() - hidden_at
    assert back[0]["MessageId"] == message["MessageId"]
    assert 1.5 <= waited < 6, waited


def test_moto_server_moves_a_message_past_max_receives_to_the_dead_letter_queue(
    stack: LocalStack,
) -> None:
    client = sqs(stack)
    dlq = client.create_queue(QueueName="poison-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = client.create_queue(
        QueueName="poison",
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
        },
    )["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody="poison")
    for _ in range(2):
        assert len(client.receive_message(QueueUrl=url)["Messages"]) == 1
    assert client.receive_message(QueueUrl=url).get("Messages") is None
    moved = client.receive_message(QueueUrl=dlq)["Messages"]
    assert [m["Body"] for m in moved] == ["poison"]


def test_a_failing_target_gets_the_delivery_on_its_retry(stack: LocalStack) -> None:
    owner = register_user(stack.api_url)
    api = ApiClient(stack.api_url, owner["access_token"])
    project = api("POST", "/projects", {"name": "Hooked"}, expect=201)
    secret = api("GET", f"/projects/{project['id']}/webhook-secret")["secret"]
    with HookTarget(500) as target:
        hook = api(
            "POST",
            f"/projects/{project['id']}/hooks",
            {"url": target.url, "events": ["task.created"]},
            expect=201,
        )
        task = api("POST", "/tasks", {"title": "Hi", "project_id": project["id"]}, expect=201)
        first, second = target.wait_for(2, timeout=20)
        assert first.headers["X-Taskbeat-Delivery"] == second.headers["X-Taskbeat-Delivery"]
        assert 0.8 <= second.at - first.at < 8  # the 1-second backoff, not the queue's 720 s
        assert signature_ok(secret, second)
        assert json.loads(second.body)["data"]["id"] == task["id"]

        def settled() -> Any:
            items = api("GET", f"/hooks/{hook['id']}/deliveries")["items"]
            return items if items and items[0]["status"] == "succeeded" else None

        (delivery,) = wait_until(settled, timeout=10)
        assert (delivery["attempts"], delivery["response_status"], delivery["error"]) == (
            2,
            204,
            None,
        )
