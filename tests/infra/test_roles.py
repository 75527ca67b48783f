"""One role per function in the template, each allowing exactly what `infrastructure/access.py`
declares for its function (which `tests/integration/test_function_access.py` holds to what the
function does): its own tables with read or read-write actions, and its other actions only."""

from __future__ import annotations

from typing import Any

import pytest

from infrastructure.access import FUNCTION_ACCESS, INVOKE, READ_ACTIONS, WRITE_ACTIONS
from infrastructure.components.roles import IMPLIED_BY, LOGICAL_IDS
from tests.infra.conftest import TABLE_PREFIX, CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

STREAM_READ = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}


def _role_of(cloud_assembly: CloudAssembly, function: str) -> str:
    role = cloud_assembly.functions()[LOGICAL_IDS[function]]["Properties"]["Role"]
    return str(role["Fn::GetAtt"][0])


def _statements(cloud_assembly: CloudAssembly, role_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in cloud_assembly.resources(kind).values():
            if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _table_names(cloud_assembly: CloudAssembly) -> dict[str, str]:
    """Logical id -> base name of every table."""
    return {
        logical_id: resource["Properties"]["TableName"].removeprefix(TABLE_PREFIX)
        for logical_id, resource in cloud_assembly.resources("AWS::DynamoDB::Table").items()
    }


def test_the_workload_covers_every_function(cloud_assembly: CloudAssembly) -> None:
    assert set(LOGICAL_IDS) == set(FUNCTION_ACCESS)
    assert set(LOGICAL_IDS.values()) <= set(cloud_assembly.functions())


def test_every_function_has_a_role_of_its_own(cloud_assembly: CloudAssembly) -> None:
    roles = [_role_of(cloud_assembly, function) for function in FUNCTION_ACCESS]
    assert len(set(roles)) == len(roles)
    for role_id in roles:
        trust = cloud_assembly.template["Resources"][role_id]["Properties"]
        assert trust["AssumeRolePolicyDocument"]["Statement"] == [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
            }
        ]


@pytest.mark.parametrize("function", sorted(FUNCTION_ACCESS))
def test_tables_as_declared(cloud_assembly: CloudAssembly, function: str) -> None:
    access = FUNCTION_ACCESS[function]
    tables = _table_names(cloud_assembly)
    reads: set[str] = set()
    writes: set[str] = set()
    for statement in _statements(cloud_assembly, _role_of(cloud_assembly, function)):
        actions = set(_as_list(statement["Action"]))
        if not any(action.startswith("dynamodb:") for action in actions):
            continue
        if actions <= STREAM_READ:  # the change feed's stream read (on_change only)
            assert function == "on_change"
            continue
        named = set()
        for resource in _as_list(statement["Resource"]):
            if "Fn::GetAtt" in resource:
                named.add(tables[resource["Fn::GetAtt"][0]])
            else:  # "<table arn>/index/*"
                (table_ref,) = [p for p in resource["Fn::Join"][1] if isinstance(p, dict)]
                named.add(tables[table_ref["Fn::GetAtt"][0]])
        if actions == set(READ_ACTIONS):
            reads |= named
        else:
            assert actions == set(READ_ACTIONS + WRITE_ACTIONS), statement
            writes |= named
    assert (reads, writes) == (set(access.reads), set(access.writes))


@pytest.mark.parametrize("function", sorted(FUNCTION_ACCESS))
def test_other_actions_only_as_declared(cloud_assembly: CloudAssembly, function: str) -> None:
    access = FUNCTION_ACCESS[function]
    declared = set(access.actions) | ({INVOKE} if access.invokes else set())
    granted = {
        IMPLIED_BY.get(action, action)
        for statement in _statements(cloud_assembly, _role_of(cloud_assembly, function))
        for action in _as_list(statement["Action"])
        if not action.startswith("dynamodb:")
    }
    assert granted == declared


@pytest.mark.parametrize("function", sorted(FUNCTION_ACCESS))
def test_it_may_invoke_exactly_the_functions_it_declares(
    cloud_assembly: CloudAssembly, function: str
) -> None:
    invocable = set()
    for statement in _statements(cloud_assembly, _role_of(cloud_assembly, function)):
        if INVOKE in _as_list(statement["Action"]):
            assert _as_list(statement["Action"]) == [INVOKE], statement
            for resource in _as_list(statement["Resource"]):
                # arn:...:function:<stack>-<name>, with the stack's name a token
                name = resource["Fn::Join"][1][-1].rsplit("-", 1)[-1]
                invocable.add(name)
    assert invocable == set(FUNCTION_ACCESS[function].invokes)
