"""Assertions on the due-date sweep in the synthesized template: the sweep function, the
EventBridge rule that invokes it every 5 minutes (and only it), and the alarm."""

from __future__ import annotations

from typing import Any

import pytest

from infrastructure.components.sweep import SWEEP
from tests.infra.conftest import CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _sweep_rules(cloud_assembly: CloudAssembly) -> list[dict[str, Any]]:
    return [
        rule["Properties"]
        for rule in cloud_assembly.resources("AWS::Events::Rule").values()
        if any(
            target["Arn"] == {"Fn::GetAtt": [SWEEP, "Arn"]}
            for target in rule["Properties"].get("Targets", [])
        )
    ]


def test_the_sweep_is_a_function_of_the_app(cloud_assembly: CloudAssembly) -> None:
    function = cloud_assembly.functions()[SWEEP]["Properties"]
    assert function["Handler"] == "chalicelib.functions.sweep"
    # No event source of Chalice's own: the rule below is the only trigger.
    assert not function.get("Events")


def test_a_rule_invokes_the_sweep_every_five_minutes(cloud_assembly: CloudAssembly) -> None:
    (rule,) = _sweep_rules(cloud_assembly)
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 300


def test_only_that_rule_may_invoke_the_sweep(cloud_assembly: CloudAssembly) -> None:
    (rule_id,) = [
        logical_id
        for logical_id, rule in cloud_assembly.resources("AWS::Events::Rule").items()
        if rule["Properties"].get("ScheduleExpression") == "rate(5 minutes)"
    ]
    permissions = [
        p["Properties"]
        for p in cloud_assembly.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [SWEEP, "Arn"]}
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [SWEEP, "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceAccount": {"Ref": "AWS::AccountId"},
            "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]},
        }
    ]


def test_failing_sweeps_raise_an_alarm(cloud_assembly: CloudAssembly) -> None:
    alarms = [
        alarm["Properties"]
        for alarm in cloud_assembly.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == "AWS/Lambda"
        and alarm["Properties"].get("Dimensions")
        == [{"Name": "FunctionName", "Value": {"Ref": SWEEP}}]
        and alarm["Properties"].get("MetricName") == "Errors"  # (monitoring adds throttles)
    ]
    assert len(alarms) == 1
    (alarm,) = alarms
    assert alarm["MetricName"] == "Errors"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0


def test_the_sweep_reads_the_tasks_index_it_queries(cloud_assembly: CloudAssembly) -> None:
    (table,) = [
        t["Properties"]
        for t in cloud_assembly.resources("AWS::DynamoDB::Table").values()
        if t["Properties"]["TableName"].endswith("-tasks")
    ]
    (index,) = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == "open_by_due_day"]
    assert index["KeySchema"] == [
        {"AttributeName": "open_due_day", "KeyType": "HASH"},
        {"AttributeName": "due_key", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
