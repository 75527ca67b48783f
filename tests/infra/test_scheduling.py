"""Assertions on the scheduling part of the synthesized template: the schedule group, the role
EventBridge Scheduler assumes, the dead-letter queue and its alarm, and the functions' rights."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.aws.scheduler import RETRY_POLICY
from chalicelib.domain.executions import ATTEMPT_LEASE, FIRE_TIMEOUT_SECONDS
from chalicelib.domain.webhooks import MAX_TIMEOUT_SECONDS as MAX_WEBHOOK_TIMEOUT
from infrastructure.components.roles import LOGICAL_IDS
from infrastructure.components.scheduling import FIRE, SCHEDULE_ACTIONS
from tests.infra.conftest import STACK_NAME, CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

FIRE_NAME = f"{STACK_NAME}-fire"


def _one(cloud_assembly: CloudAssembly, resource_type: str) -> tuple[str, dict[str, Any]]:
    # The hook delivery queues are components/hooks.py's (tests/infra/test_hooks.py).
    found = {
        logical_id: resource
        for logical_id, resource in cloud_assembly.resources(resource_type).items()
        if not logical_id.startswith("HookDeliveries")
    }
    assert len(found) == 1, f"{len(found)} resources of type {resource_type}"
    ((logical_id, resource),) = found.items()
    return logical_id, resource


def _rendered(value: Any) -> str:
    """A string, Ref or Fn::Join of them, with each Ref shown as `{Name}`."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"{{{value['Ref']}}}"
    separator, parts = value["Fn::Join"]
    return str(separator).join(_rendered(part) for part in parts)


def _fire_arn() -> str:
    return f"arn:{{AWS::Partition}}:lambda:{{AWS::Region}}:{{AWS::AccountId}}:function:{FIRE_NAME}"


def _scheduler_role(cloud_assembly: CloudAssembly) -> tuple[str, dict[str, Any]]:
    roles = [
        (logical_id, role)
        for logical_id, role in cloud_assembly.resources("AWS::IAM::Role").items()
        if role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "scheduler.amazonaws.com"}
    ]
    assert len(roles) == 1
    return roles[0]


def _statements_of(cloud_assembly: CloudAssembly, role_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    # CDK moves statements beyond a role's inline size limit into "overflow" managed policies.
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in cloud_assembly.resources(kind).values():
            if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _function_role(cloud_assembly: CloudAssembly) -> str:
    """The role of the one function that keeps schedules in step: the stream consumer."""
    role = cloud_assembly.functions()[LOGICAL_IDS["on_change"]]["Properties"]["Role"]
    return str(role["Fn::GetAtt"][0])


def test_one_schedule_group_named_after_the_stage(cloud_assembly: CloudAssembly) -> None:
    _, group = _one(cloud_assembly, "AWS::Scheduler::ScheduleGroup")
    assert group["Properties"]["Name"] == STACK_NAME


def test_the_fire_function_has_a_known_name(cloud_assembly: CloudAssembly) -> None:
    assert cloud_assembly.functions()[FIRE]["Properties"]["FunctionName"] == FIRE_NAME


def test_only_the_scheduler_of_this_account_and_group_assumes_its_role(
    cloud_assembly: CloudAssembly,
) -> None:
    _, role = _scheduler_role(cloud_assembly)
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Effect"] == "Allow"
    condition = statement["Condition"]["StringEquals"]
    assert condition["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert _rendered(condition["aws:SourceArn"]) == (
        "arn:{AWS::Partition}:scheduler:{AWS::Region}:{AWS::AccountId}:"
        f"schedule-group/{STACK_NAME}"
    )
    assert "ManagedPolicyArns" not in role["Properties"]


def test_the_scheduler_may_invoke_the_fire_function_and_dead_letter_only(
    cloud_assembly: CloudAssembly,
) -> None:
    role_id, _ = _scheduler_role(cloud_assembly)
    queue_id, _ = _one(cloud_assembly, "AWS::SQS::Queue")
    statements = {
        statement["Action"]: statement for statement in _statements_of(cloud_assembly, role_id)
    }
    assert set(statements) == {"lambda:InvokeFunction", "sqs:SendMessage"}
    assert _rendered(statements["lambda:InvokeFunction"]["Resource"]) == _fire_arn()
    assert statements["sqs:SendMessage"]["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}


def test_the_dead_letter_queue_is_encrypted_and_kept_two_weeks(
    cloud_assembly: CloudAssembly,
) -> None:
    _, queue = _one(cloud_assembly, "AWS::SQS::Queue")
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_a_dead_letter_raises_the_alarm(cloud_assembly: CloudAssembly) -> None:
    queue_id, _ = _one(cloud_assembly, "AWS::SQS::Queue")
    alarms = [
        alarm["Properties"]
        for logical_id, alarm in cloud_assembly.resources("AWS::CloudWatch::Alarm").items()
        if alarm["Properties"].get("Namespace") == "AWS/SQS"
        and not logical_id.startswith("HookDeliveries")  # tests/infra/test_hooks.py's
    ]
    assert len(alarms) == 1
    (alarm,) = alarms
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
    ]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0
    assert alarm["TreatMissingData"] == "notBreaching"


def test_functions_manage_schedules_of_their_group_only(cloud_assembly: CloudAssembly) -> None:
    statements = _statements_of(cloud_assembly, _function_role(cloud_assembly))
    scheduler = [s for s in statements if "scheduler:" in str(s["Action"])]
    assert len(scheduler) == 1
    (statement,) = scheduler
    assert sorted(statement["Action"]) == sorted(SCHEDULE_ACTIONS)
    assert _rendered(statement["Resource"]) == (
        "arn:{AWS::Partition}:scheduler:{AWS::Region}:{AWS::AccountId}:"
        f"schedule/{STACK_NAME}/*"  # names are per task: the group's prefix is all IAM allows
    )


def test_functions_may_pass_the_scheduler_role_only_to_the_scheduler(
    cloud_assembly: CloudAssembly,
) -> None:
    role_id, _ = _scheduler_role(cloud_assembly)
    statements = _statements_of(cloud_assembly, _function_role(cloud_assembly))
    passing = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert passing == [
        {
            "Action": "iam:PassRole",
            "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [role_id, "Arn"]},
            "Sid": "PassSchedulerRole",
        }
    ]


def test_every_function_knows_the_scheduling_settings(cloud_assembly: CloudAssembly) -> None:
    role_id, _ = _scheduler_role(cloud_assembly)
    queue_id, _ = _one(cloud_assembly, "AWS::SQS::Queue")
    functions = cloud_assembly.functions()
    assert FIRE in functions
    for logical_id, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["TASKBEAT_SCHEDULE_GROUP"] == STACK_NAME, logical_id
        assert _rendered(variables["TASKBEAT_FIRE_FUNCTION_ARN"]) == _fire_arn(), logical_id
        assert variables["TASKBEAT_SCHEDULER_ROLE_ARN"] == {"Fn::GetAtt": [role_id, "Arn"]}
        assert variables["TASKBEAT_SCHEDULER_DLQ_ARN"] == {"Fn::GetAtt": [queue_id, "Arn"]}


def test_fire_outlives_the_longest_webhook_and_its_lease_outlives_fire(
    cloud_assembly: CloudAssembly,
) -> None:
    """fire makes the first attempt itself: a 60 s webhook and the writes around it. Its lease
    must outlast the function, so an expired lease means the function is surely gone."""
    timeout = cloud_assembly.functions()[FIRE]["Properties"]["Timeout"]
    assert timeout == FIRE_TIMEOUT_SECONDS
    assert timeout >= MAX_WEBHOOK_TIMEOUT + 20
    assert ATTEMPT_LEASE.total_seconds() > timeout


def test_a_fire_event_that_failed_every_try_is_a_dead_letter(
    cloud_assembly: CloudAssembly,
) -> None:
    queue_id, _ = _one(cloud_assembly, "AWS::SQS::Queue")
    _, config = _one(cloud_assembly, "AWS::Lambda::EventInvokeConfig")
    properties = config["Properties"]
    assert (properties["FunctionName"], properties["Qualifier"]) == (FIRE_NAME, "$LATEST")
    assert properties["MaximumRetryAttempts"] == 2
    # Within the hour the scheduler gives a delivery too.
    assert properties["MaximumEventAgeInSeconds"] == RETRY_POLICY["MaximumEventAgeInSeconds"]
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": [queue_id, "Arn"]
    }
    # Lambda sends it with the function's own role.
    fire_role = cloud_assembly.functions()[FIRE]["Properties"]["Role"]["Fn::GetAtt"][0]
    sends = [
        s for s in _statements_of(cloud_assembly, fire_role) if s["Action"] == "sqs:SendMessage"
    ]
    assert [s["Resource"] for s in sends] == [{"Fn::GetAtt": [queue_id, "Arn"]}]
