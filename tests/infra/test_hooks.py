"""Assertions on project hook deliveries in the synthesized template: the queue and its
dead-letter queue (redrive, encryption, visibility), the consumer's SQS event source with
partial batch failures, who may send and who may consume, and the alarm on dead letters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.adapters.aws.hook_queue import (
    CONSUMER_TIMEOUT_SECONDS,
    MAX_RECEIVES,
    VISIBILITY_TIMEOUT_SECONDS,
)
from infrastructure.components.hooks import CONSUME_ACTIONS, DELIVER_HOOKS, SEND_ACTIONS
from infrastructure.components.roles import LOGICAL_IDS
from tests.infra.conftest import CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _queues(cloud_assembly: CloudAssembly) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    queues = {
        logical_id: resource["Properties"]
        for logical_id, resource in cloud_assembly.resources("AWS::SQS::Queue").items()
        if logical_id.startswith("HookDeliveries")
    }
    ((dlq_id, dlq),) = [(k, v) for k, v in queues.items() if "DeadLetter" in k]
    ((queue_id, queue),) = [(k, v) for k, v in queues.items() if "DeadLetter" not in k]
    return queue_id, queue, dlq_id, dlq


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements_of(cloud_assembly: CloudAssembly, function: str) -> list[dict[str, Any]]:
    role = cloud_assembly.functions()[LOGICAL_IDS[function]]["Properties"]["Role"]
    role_id = role["Fn::GetAtt"][0]
    return [  # CDK moves what overflows a role's policy to managed policies
        statement
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        for policy in cloud_assembly.resources(kind).values()
        if {"Ref": role_id} in policy["Properties"].get("Roles", [])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_queue_redrives_poison_messages_to_its_dead_letter_queue(
    cloud_assembly: CloudAssembly,
) -> None:
    _, queue, dlq_id, dlq = _queues(cloud_assembly)
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": MAX_RECEIVES,
    }
    # About 14 receives in 24 hours at the default schedule; the rest is headroom.
    assert MAX_RECEIVES >= 3 * 14
    assert queue["VisibilityTimeout"] == VISIBILITY_TIMEOUT_SECONDS
    assert VISIBILITY_TIMEOUT_SECONDS >= CONSUMER_TIMEOUT_SECONDS
    assert queue["MessageRetentionPeriod"] > 24 * 3600
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    for properties in (queue, dlq):
        assert properties["SqsManagedSseEnabled"] is True


def test_the_consumer_reports_partial_batch_failures(cloud_assembly: CloudAssembly) -> None:
    queue_id, _, _, _ = _queues(cloud_assembly)
    mappings = [
        m["Properties"]
        for m in cloud_assembly.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    assert len(mappings) == 1
    (mapping,) = mappings
    assert mapping["FunctionName"] == {"Ref": DELIVER_HOOKS}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 10
    function = cloud_assembly.functions()[DELIVER_HOOKS]["Properties"]
    assert function["Handler"] == "chalicelib.functions.deliver_hooks"
    assert function["Timeout"] == CONSUMER_TIMEOUT_SECONDS


def test_only_the_stream_consumer_and_redelivery_send_and_only_the_consumer_consumes(
    cloud_assembly: CloudAssembly,
) -> None:
    queue_id, _, _, _ = _queues(cloud_assembly)
    queue_arn = {"Fn::GetAtt": [queue_id, "Arn"]}
    for function in LOGICAL_IDS:
        on_queue = {
            action
            for statement in _statements_of(cloud_assembly, function)
            if queue_arn in _as_list(statement["Resource"])
            for action in _as_list(statement["Action"])
        }
        if function in ("on_change", "api_handler"):
            assert on_queue == set(SEND_ACTIONS), function
        elif function == "deliver_hooks":
            assert on_queue == set(CONSUME_ACTIONS), function
        else:
            assert on_queue == set(), function
    # The scheduler's dead letters stay fire's alone.
    sends = [
        function
        for function in LOGICAL_IDS
        for statement in _statements_of(cloud_assembly, function)
        if statement.get("Sid") == "FireDeadLetters"
    ]
    assert sends == ["fire"]


def test_every_function_knows_the_queue(cloud_assembly: CloudAssembly) -> None:
    queue_id, _, _, _ = _queues(cloud_assembly)
    for logical_id, function in cloud_assembly.functions().items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["TASKBEAT_HOOK_QUEUE_URL"] == {"Ref": queue_id}, logical_id


def test_a_dead_letter_raises_the_alarm(cloud_assembly: CloudAssembly) -> None:
    _, _, dlq_id, _ = _queues(cloud_assembly)
    alarms = [
        a["Properties"]
        for a in cloud_assembly.resources("AWS::CloudWatch::Alarm").values()
        if json.dumps({"Fn::GetAtt": [dlq_id, "QueueName"]})
        in json.dumps(a["Properties"].get("Dimensions", []))
    ]
    assert len(alarms) == 1
    (alarm,) = alarms
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert alarm["AlarmActions"], "the alarm tells the stage's topic"
