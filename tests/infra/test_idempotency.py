"""The Idempotency-Key records' table in the synthesized template: TTL on, no stream, and only
the REST API's function may touch it (least privilege)."""

from __future__ import annotations

import pytest

from infrastructure.access import READ_ACTIONS, WRITE_ACTIONS
from tests.infra.conftest import TABLE_PREFIX, CloudAssembly
from tests.infra.test_roles import _as_list, _role_of, _statements

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

NAME = f"{TABLE_PREFIX}idempotency"


def _table(cloud_assembly: CloudAssembly) -> tuple[str, dict[str, object]]:
    (found,) = [
        (logical_id, resource["Properties"])
        for logical_id, resource in cloud_assembly.resources("AWS::DynamoDB::Table").items()
        if resource["Properties"]["TableName"] == NAME
    ]
    return found


def test_the_table_expires_records_and_streams_nothing(cloud_assembly: CloudAssembly) -> None:
    _, properties = _table(cloud_assembly)
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": "expires_at",
        "Enabled": True,
    }
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert "StreamSpecification" not in properties
    assert properties["BillingMode"] == "PAY_PER_REQUEST"


def test_only_the_api_function_may_read_and_write_it(cloud_assembly: CloudAssembly) -> None:
    table_id, _ = _table(cloud_assembly)
    functions = cloud_assembly.functions()
    touching: dict[str, set[str]] = {}
    for logical_id in functions:
        role = functions[logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]
        for statement in _statements(cloud_assembly, role):
            resources = [
                r["Fn::GetAtt"][0]
                for r in _as_list(statement.get("Resource", []))
                if isinstance(r, dict) and "Fn::GetAtt" in r
            ]
            if table_id in resources:
                touching.setdefault(logical_id, set()).update(_as_list(statement["Action"]))
    api = _role_of(cloud_assembly, "api_handler")
    assert [functions[f]["Properties"]["Role"]["Fn::GetAtt"][0] for f in touching] == [api]
    (actions,) = touching.values()
    assert actions == set(READ_ACTIONS) | set(WRITE_ACTIONS)
    assert "dynamodb:Scan" not in actions
