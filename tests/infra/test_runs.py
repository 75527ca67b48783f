"""Assertions on the runs part of the synthesized template: the run state machine (its definition
is `chalicelib.runs.definition`), its role, logs and alarm, and the functions' right to start it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chalicelib import runs
from infrastructure.access import FUNCTION_ACCESS, START_RUN, STOP_RUN
from infrastructure.components.roles import LOGICAL_IDS
from infrastructure.components.runs import PLAN, RUN_STEP
from tests.infra.conftest import (
    LOG_DELIVERY_ACTIONS,
    STACK_NAME,
    TRACING_ACTIONS,
    CloudAssembly,
)

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

STATE_MACHINE_NAME = f"{STACK_NAME}-runs"
STATE_MACHINE_ARN = (
    "arn:{AWS::Partition}:states:{AWS::Region}:{AWS::AccountId}:"
    f"stateMachine:{STATE_MACHINE_NAME}"
)


def _one(cloud_assembly: CloudAssembly, resource_type: str) -> tuple[str, dict[str, Any]]:
    found = cloud_assembly.resources(resource_type)
    assert len(found) == 1, f"{len(found)} resources of type {resource_type}"
    ((logical_id, resource),) = found.items()
    return logical_id, resource


def _rendered(value: Any) -> str:
    """A string, Ref, GetAtt or Fn::Join of them, with `{Name}` for a Ref, `{Name.Att}` for a
    GetAtt."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"{{{value['Ref']}}}"
    if "Fn::GetAtt" in value:
        return "{" + ".".join(value["Fn::GetAtt"]) + "}"
    separator, parts = value["Fn::Join"]
    return str(separator).join(_rendered(part) for part in parts)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements_of(cloud_assembly: CloudAssembly, role_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    # CDK moves statements beyond a role's inline size limit into "overflow" managed policies.
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in cloud_assembly.resources(kind).values():
            if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _state_machine(cloud_assembly: CloudAssembly) -> tuple[str, dict[str, Any]]:
    return _one(cloud_assembly, "AWS::StepFunctions::StateMachine")


def _definition(cloud_assembly: CloudAssembly) -> dict[str, Any]:
    """The definition as CloudFormation will create it, each substitution shown as `{Name.Att}`."""
    _, state_machine = _state_machine(cloud_assembly)
    properties = state_machine["Properties"]
    text = properties["DefinitionString"]
    assert isinstance(text, str), "the definition is plain JSON, tokens are substitutions"
    substitutions = properties["DefinitionSubstitutions"]
    assert set(re.findall(r"\$\{([^}]*)\}", text)) == set(substitutions)
    for name, value in substitutions.items():
        text = text.replace(f"${{{name}}}", _rendered(value))
    return dict(json.loads(text))


def _invoked_functions(states: dict[str, Any]) -> set[str]:
    functions = set()
    for state in states.values():
        if state["Type"] == "Task":
            assert state["Resource"] == "arn:aws:states:::lambda:invoke"
            functions.add(state["Parameters"]["FunctionName"])
        if state["Type"] == "Map":
            functions |= _invoked_functions(state["ItemProcessor"]["States"])
    return functions


def _state_machine_role(cloud_assembly: CloudAssembly) -> str:
    _, state_machine = _state_machine(cloud_assembly)
    role_id, attribute = state_machine["Properties"]["RoleArn"]["Fn::GetAtt"]
    assert attribute == "Arn"
    return str(role_id)


def _role_of(cloud_assembly: CloudAssembly, function: str) -> str:
    role = cloud_assembly.functions()[LOGICAL_IDS[function]]["Properties"]["Role"]
    return str(role["Fn::GetAtt"][0])


def test_one_standard_state_machine_named_after_the_stage(cloud_assembly: CloudAssembly) -> None:
    _, state_machine = _state_machine(cloud_assembly)
    properties = state_machine["Properties"]
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["StateMachineName"] == STATE_MACHINE_NAME
    assert properties["TracingConfiguration"] == {"Enabled": True}


def test_the_plan_and_run_step_ids_are_the_chalice_functions(
    cloud_assembly: CloudAssembly,
) -> None:
    functions = cloud_assembly.functions()
    assert functions[PLAN]["Properties"]["Handler"] == f"chalicelib.functions.{runs.PLAN_FUNCTION}"
    assert (
        functions[RUN_STEP]["Properties"]["Handler"]
        == f"chalicelib.functions.{runs.RUN_STEP_FUNCTION}"
    )


def test_the_definition_is_the_one_chalicelib_builds(cloud_assembly: CloudAssembly) -> None:
    definition = _definition(cloud_assembly)
    assert definition == runs.definition(f"{{{PLAN}.Arn}}", f"{{{RUN_STEP}.Arn}}")
    assert {"Plan", "DoneOrRun", "RunSteps", "Finished"} <= set(definition["States"])


def test_the_definition_invokes_exactly_plan_and_run_step(cloud_assembly: CloudAssembly) -> None:
    definition = _definition(cloud_assembly)
    assert _invoked_functions(definition["States"]) == {f"{{{PLAN}.Arn}}", f"{{{RUN_STEP}.Arn}}"}
    assert definition["States"]["Plan"]["Parameters"]["FunctionName"] == f"{{{PLAN}.Arn}}"


def test_only_step_functions_of_this_account_assumes_its_role(
    cloud_assembly: CloudAssembly,
) -> None:
    role = cloud_assembly.template["Resources"][_state_machine_role(cloud_assembly)]
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"Service": "states.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }
    assert "ManagedPolicyArns" not in role["Properties"]
    assert "Policies" not in role["Properties"]


def test_the_state_machine_may_invoke_plan_and_run_step_only(
    cloud_assembly: CloudAssembly,
) -> None:
    statements = _statements_of(cloud_assembly, _state_machine_role(cloud_assembly))
    invoking = [s for s in statements if "lambda:" in json.dumps(s["Action"])]
    assert len(invoking) == 1
    (statement,) = invoking
    assert statement["Action"] == "lambda:InvokeFunction"
    assert sorted(map(_rendered, statement["Resource"])) == sorted(
        f"{{{function}.Arn}}{qualifier}"
        for function in (PLAN, RUN_STEP)
        for qualifier in ("", ":*")  # a version or alias of the function
    )
    # Everything else is log delivery and tracing, which IAM cannot scope.
    for other in statements:
        if other is statement:
            continue
        actions = set(_as_list(other["Action"]))
        assert actions <= LOG_DELIVERY_ACTIONS | TRACING_ACTIONS, other
        assert other["Resource"] == "*"


def test_every_function_knows_the_state_machine(cloud_assembly: CloudAssembly) -> None:
    functions = cloud_assembly.functions()
    # The API (`POST /tasks/{id}/run`), the firing and a finished run (buffered) start runs.
    assert {"APIHandler", "Fire", RUN_STEP} <= set(functions)
    for logical_id, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert _rendered(variables["TASKBEAT_STATE_MACHINE_ARN"]) == STATE_MACHINE_ARN, logical_id


def test_functions_may_start_and_stop_runs_of_this_state_machine_only(
    cloud_assembly: CloudAssembly,
) -> None:
    executions = STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:", 1) + ":*"
    for function in FUNCTION_ACCESS:
        statements = _statements_of(cloud_assembly, _role_of(cloud_assembly, function))
        found = {
            s["Action"]: _rendered(s["Resource"])
            for s in statements
            if "states:" in json.dumps(s["Action"])
        }
        expected = {"states:StartExecution": STATE_MACHINE_ARN}
        if STOP_RUN in FUNCTION_ACCESS[function].actions:  # cancel (the API only)
            expected["states:StopExecution"] = executions
        if START_RUN not in FUNCTION_ACCESS[function].actions:
            expected = {}
        assert found == expected, function


def test_execution_errors_are_logged_without_execution_data(
    cloud_assembly: CloudAssembly,
) -> None:
    _, state_machine = _state_machine(cloud_assembly)
    logging = state_machine["Properties"]["LoggingConfiguration"]
    assert logging["Level"] == "ERROR"
    assert logging["IncludeExecutionData"] is False
    ((destination),) = logging["Destinations"]
    log_group_id, attribute = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"]
    assert attribute == "Arn"
    log_group = cloud_assembly.resources("AWS::Logs::LogGroup")[log_group_id]
    assert log_group["Properties"]["LogGroupName"] == f"/aws/vendedlogs/states/{STATE_MACHINE_NAME}"
    assert log_group["Properties"]["RetentionInDays"] == 30
    assert log_group["DeletionPolicy"] == "Retain"  # kept with the data by default


def test_failed_or_timed_out_executions_raise_the_alarm(cloud_assembly: CloudAssembly) -> None:
    state_machine_id, _ = _state_machine(cloud_assembly)
    alarms = [
        alarm["Properties"]
        for alarm in cloud_assembly.resources("AWS::CloudWatch::Alarm").values()
        if "AWS/States" in json.dumps(alarm["Properties"].get("Metrics", []))
    ]
    assert len(alarms) == 1
    (alarm,) = alarms
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    stats = {
        metric["MetricStat"]["Metric"]["MetricName"]: (metric_id, metric["MetricStat"])
        for metric_id, metric in metrics.items()
        if "MetricStat" in metric
    }
    assert set(stats) == {"ExecutionsFailed", "ExecutionsTimedOut"}
    for _, stat in stats.values():
        assert stat["Metric"]["Namespace"] == "AWS/States"
        assert stat["Metric"]["Dimensions"] == [
            {"Name": "StateMachineArn", "Value": {"Ref": state_machine_id}}
        ]
        assert stat["Stat"] == "Sum"
    (expression,) = [m for m in metrics.values() if "Expression" in m]
    assert expression["ReturnData"] is True
    assert sorted(re.findall(r"\w+", expression["Expression"])) == sorted(
        metric_id for metric_id, _ in stats.values()
    )
    assert "+" in expression["Expression"]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0
    assert alarm["TreatMissingData"] == "notBreaching"


def test_the_state_machine_arn_is_an_output(cloud_assembly: CloudAssembly) -> None:
    state_machine_id, _ = _state_machine(cloud_assembly)
    assert cloud_assembly.template["Outputs"]["StateMachineArn"]["Value"] == {
        "Ref": state_machine_id
    }


def test_dev_stacks_delete_the_run_logs() -> None:
    """The construct alone, in a bare stack: `retain_logs=False` deletes the log group."""
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam
    from aws_cdk.assertions import Template

    from infrastructure.components.runs import Runs

    stack = cdk.Stack(cdk.App(), "Test")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    functions = [
        cdk.CfnResource(
            stack,
            logical_id,
            type="AWS::Lambda::Function",
            properties={
                "Code": {"ZipFile": "def handler(event, context): pass"},
                "Handler": "index.handler",
                "Role": role.role_arn,
                "Runtime": "python3.13",
            },
        )
        for logical_id in (PLAN, RUN_STEP)
    ]
    Runs(
        stack,
        "Runs",
        plan=functions[0],
        run_step=functions[1],
        functions=functions,
        function_role=role,
        retain_logs=False,
    )
    template = Template.from_stack(stack)
    template.has_resource(
        "AWS::Logs::LogGroup",
        {
            "DeletionPolicy": "Delete",
            "Properties": {"LogGroupName": "/aws/vendedlogs/states/Test-runs"},
        },
    )
