"""Assertions on monitoring in the synthesized template: the alarm topic, an alarm per failure
mode (each notifying the topic), the dashboard, and tracing everywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.adapters.dynamodb import tables
from infrastructure.components.monitoring import TABLE_OPERATIONS
from tests.infra.conftest import STACK_NAME, TABLE_PREFIX, CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _topic_id(cloud_assembly: CloudAssembly) -> str:
    (topic_id,) = cloud_assembly.resources("AWS::SNS::Topic")
    return topic_id


def _alarms(cloud_assembly: CloudAssembly) -> list[dict[str, Any]]:
    return [a["Properties"] for a in cloud_assembly.resources("AWS::CloudWatch::Alarm").values()]


def _metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm watches: its own, or those of its math expression."""
    if "MetricName" in alarm:
        return [
            {
                "Namespace": alarm["Namespace"],
                "MetricName": alarm["MetricName"],
                "Dimensions": alarm.get("Dimensions", []),
            }
        ]
    return [query["MetricStat"]["Metric"] for query in alarm["Metrics"] if "MetricStat" in query]


def _dimension(metric: dict[str, Any], name: str) -> Any:
    values = [d["Value"] for d in metric.get("Dimensions", []) if d["Name"] == name]
    return values[0] if values else None


def _alarmed(cloud_assembly: CloudAssembly, namespace: str, metric_name: str) -> list[Any]:
    return [
        metric
        for alarm in _alarms(cloud_assembly)
        for metric in _metrics(alarm)
        if (metric["Namespace"], metric["MetricName"]) == (namespace, metric_name)
    ]


def _function_names(cloud_assembly: CloudAssembly) -> dict[str, list[Any]]:
    """How an alarm may name each function: a Ref to it, or the fixed name a component gave
    it (both are the function's name once deployed)."""
    return {
        logical_id: [{"Ref": logical_id}, function["Properties"].get("FunctionName")]
        for logical_id, function in cloud_assembly.functions().items()
    }


def _table_names(cloud_assembly: CloudAssembly) -> dict[str, str]:
    return {
        logical_id: table["Properties"]["TableName"]
        for logical_id, table in cloud_assembly.resources("AWS::DynamoDB::Table").items()
    }


def test_the_alarm_topic_is_encrypted_and_takes_tls_only(cloud_assembly: CloudAssembly) -> None:
    topic_id = _topic_id(cloud_assembly)
    topic = cloud_assembly.template["Resources"][topic_id]["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = cloud_assembly.template["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    # CloudWatch must be able to use the key, or alarms could never publish.
    assert any(
        s["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and "kms:Decrypt" in s["Action"]
        for s in key["KeyPolicy"]["Statement"]
    )
    (policy,) = cloud_assembly.resources("AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {
        "Action": "sns:Publish",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": "*",
        "Resource": {"Ref": topic_id},
        "Sid": "AllowPublishThroughSSLOnly",
    } in statements
    (cloudwatch,) = [s for s in statements if s["Effect"] == "Allow"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert cloudwatch["Condition"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }
    # No address given (the CI synth has no alarm_email): no subscription.
    assert not cloud_assembly.resources("AWS::SNS::Subscription")
    assert cloud_assembly.template["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": topic_id}


def test_every_alarm_notifies_the_topic(cloud_assembly: CloudAssembly) -> None:
    topic = {"Ref": _topic_id(cloud_assembly)}
    alarms = cloud_assembly.resources("AWS::CloudWatch::Alarm")
    assert len(alarms) > 20
    for logical_id, alarm in alarms.items():
        properties = alarm["Properties"]
        assert properties.get("AlarmActions") == [topic], logical_id
        assert properties.get("OKActions") == [topic], logical_id
        assert properties["AlarmDescription"], logical_id
        assert properties["TreatMissingData"] == "notBreaching", logical_id


def test_every_function_has_an_errors_and_a_throttles_alarm(
    cloud_assembly: CloudAssembly,
) -> None:
    names = _function_names(cloud_assembly)
    assert len(names) >= 10
    for metric_name in ("Errors", "Throttles"):
        alarmed = [
            _dimension(m, "FunctionName")
            for m in _alarmed(cloud_assembly, "AWS/Lambda", metric_name)
        ]
        for logical_id, forms in names.items():
            # Exactly one: the sweep's and fan_out's own alarms are not doubled here.
            count = sum(alarmed.count(form) for form in forms if form is not None)
            assert count == 1, (metric_name, logical_id)


def test_the_stream_consumer_iterator_age_is_alarmed(cloud_assembly: CloudAssembly) -> None:
    (metric,) = _alarmed(cloud_assembly, "AWS/Lambda", "IteratorAge")
    assert _dimension(metric, "FunctionName") == {"Ref": "OnChange"}
    (alarm,) = [a for a in _alarms(cloud_assembly) if a.get("MetricName") == "IteratorAge"]
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Maximum", 60_000)


def test_every_table_has_throttle_and_system_error_alarms(cloud_assembly: CloudAssembly) -> None:
    table_names = _table_names(cloud_assembly)
    assert len(table_names) == len(tables.specs())
    for metric_name in ("ReadThrottleEvents", "WriteThrottleEvents"):
        alarmed = [
            _dimension(m, "TableName")
            for m in _alarmed(cloud_assembly, "AWS/DynamoDB", metric_name)
        ]
        assert sorted(alarmed, key=str) == sorted(
            ({"Ref": logical_id} for logical_id in table_names), key=str
        )
    errors = _alarmed(cloud_assembly, "AWS/DynamoDB", "SystemErrors")
    for logical_id in table_names:
        operations = {
            _dimension(m, "Operation")
            for m in errors
            if _dimension(m, "TableName") == {"Ref": logical_id}
        }
        assert operations == set(TABLE_OPERATIONS), logical_id
    # An alarm's expression may use at most 10 metrics.
    for alarm in _alarms(cloud_assembly):
        assert len(alarm.get("Metrics", [])) <= 10


def test_the_api_has_error_rate_and_latency_alarms(cloud_assembly: CloudAssembly) -> None:
    api = {"ApiName": STACK_NAME, "Stage": "api"}
    errors = _alarmed(cloud_assembly, "AWS/ApiGateway", "5XXError")
    assert [{d["Name"]: d["Value"] for d in m["Dimensions"]} for m in errors] == [api]
    (latency,) = [a for a in _alarms(cloud_assembly) if a.get("MetricName") == "Latency"]
    assert latency["ExtendedStatistic"] == "p99"
    # API Gateway names a REST API's metrics after the API: each stage's has its own name.
    (rest_api,) = cloud_assembly.resources("AWS::Serverless::Api").values()
    assert rest_api["Properties"]["Name"] == STACK_NAME
    assert rest_api["Properties"]["DefinitionBody"]["info"]["title"] == STACK_NAME


def test_runs_dead_letters_sweep_and_fan_out_are_alarmed(cloud_assembly: CloudAssembly) -> None:
    (state_machine_id,) = cloud_assembly.resources("AWS::StepFunctions::StateMachine")
    for metric_name in ("ExecutionsFailed", "ExecutionsTimedOut"):
        (metric,) = _alarmed(cloud_assembly, "AWS/States", metric_name)
        assert _dimension(metric, "StateMachineArn") == {"Ref": state_machine_id}
    queues = cloud_assembly.resources("AWS::SQS::Queue")
    # The scheduler's dead letters and the hook deliveries' (components/hooks.py).
    dead_letter_queues = {q for q in queues if "DeadLetterQueue" in q}
    assert len(dead_letter_queues) == 2
    alarmed = _alarmed(cloud_assembly, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert sorted(json.dumps(_dimension(m, "QueueName")) for m in alarmed) == sorted(
        json.dumps({"Fn::GetAtt": [q, "QueueName"]}) for q in dead_letter_queues
    )
    errors = [
        _dimension(m, "FunctionName") for m in _alarmed(cloud_assembly, "AWS/Lambda", "Errors")
    ]
    assert {"Ref": "Sweep"} in errors
    assert f"{STACK_NAME}-fan_out" in errors


def test_the_dashboard_shows_the_key_metrics(cloud_assembly: CloudAssembly) -> None:
    (dashboard,) = cloud_assembly.resources("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"{STACK_NAME}-overview"
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for needle in (
        "AWS/ApiGateway",
        "5XXError",
        "4XXError",
        "p99",
        "p50",
        "ConnectCount",
        "AWS/Lambda",
        "Throttles",
        "Duration",
        "IteratorAge",
        "ReadThrottleEvents",
        "SystemErrors",
        "AWS/States",
        "ExecutionsFailed",
        "ApproximateNumberOfMessagesVisible",
        "Taskbeat",
        "ExecutionsFinished",
        "FiringLateness",
    ):
        assert needle in body, needle
    for table in tables.specs():
        assert f"{TABLE_PREFIX}{table.base_name}" in body or table.base_name in body


def test_everything_is_traced(cloud_assembly: CloudAssembly) -> None:
    for logical_id, function in cloud_assembly.functions().items():
        assert function["Properties"]["Tracing"] == "Active", logical_id
    (rest_api,) = cloud_assembly.resources("AWS::Serverless::Api").values()
    assert rest_api["Properties"]["TracingEnabled"] is True
    (state_machine,) = cloud_assembly.resources("AWS::StepFunctions::StateMachine").values()
    assert state_machine["Properties"]["TracingConfiguration"] == {"Enabled": True}


def test_an_alarm_email_subscribes_to_the_topic() -> None:
    """Monitoring alone in a small stack (no Chalice packaging): `alarm_email` subscribes."""
    import aws_cdk as cdk
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_sqs as sqs
    from aws_cdk import aws_stepfunctions as sfn
    from aws_cdk.assertions import Template

    from infrastructure.components.monitoring import Monitoring

    stack = cdk.Stack(cdk.App(), "Small", stack_name="taskbeat-small")
    function = cdk.CfnResource(
        stack, "Fire", type="AWS::Lambda::Function", properties={"Role": "r", "Code": {}}
    )
    api = cdk.CfnResource(stack, "RestAPI", type="AWS::Serverless::Api", properties={})
    websocket = cdk.CfnResource(stack, "WebsocketAPI", type="AWS::ApiGatewayV2::Api")
    table = dynamodb.Table(
        stack,
        "tasks",
        partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
    )
    state_machine = sfn.StateMachine(
        stack, "Runs", definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(stack, "P"))
    )
    Monitoring(
        stack,
        "Monitoring",
        functions=[function],
        stream_consumer=function,
        rest_api=api,
        rest_api_stage="api",
        websocket_api=websocket,
        websocket_stage="api",
        tables={"tasks": table},
        state_machine=state_machine,
        dead_letter_queue=sqs.Queue(stack, "Dlq"),
        alarm_email="ops@example.com",
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )
    # Fire: errors and throttles; the stream consumer's iterator age; the table's two; the API's.
    template.resource_count_is("AWS::CloudWatch::Alarm", 7)
