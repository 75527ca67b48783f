"""The real-time pieces in the synthesized template: connection tables that expire with API
Gateway's connections, and every table clients hear about feeding the change consumer."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import STACK_NAME, TABLE_PREFIX, CloudAssembly
from tests.infra.test_template import _statements

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

# The tables whose writes become WebSocket events (chalicelib/representations/events.py).
EVENT_SOURCES = ("tasks", "comments", "executions", "workflow_runs", "notifications")


def _tables(cloud_assembly: CloudAssembly) -> dict[str, dict]:  # type: ignore[type-arg]
    return {
        resource["Properties"]["TableName"].removeprefix(TABLE_PREFIX): resource["Properties"]
        for resource in cloud_assembly.resources("AWS::DynamoDB::Table").values()
    }


@pytest.mark.parametrize("name", ["connections", "subscriptions"])
def test_connections_and_subscriptions_expire(cloud_assembly: CloudAssembly, name: str) -> None:
    properties = _tables(cloud_assembly)[name]
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": "expires_at",
        "Enabled": True,
    }
    assert "StreamSpecification" not in properties  # nothing listens to sockets coming and going


def test_subscribers_and_a_users_connections_are_found_by_key(
    cloud_assembly: CloudAssembly,
) -> None:
    found = _tables(cloud_assembly)
    assert found["subscriptions"]["KeySchema"] == [
        {"AttributeName": "channel", "KeyType": "HASH"},
        {"AttributeName": "connection_id", "KeyType": "RANGE"},
    ]
    (by_user,) = found["connections"]["GlobalSecondaryIndexes"]
    assert by_user["IndexName"] == "by_user"
    assert by_user["KeySchema"][0] == {"AttributeName": "user_id", "KeyType": "HASH"}


@pytest.mark.parametrize("name", EVENT_SOURCES)
def test_event_sources_stream_both_images(cloud_assembly: CloudAssembly, name: str) -> None:
    stream = _tables(cloud_assembly)[name]["StreamSpecification"]
    assert stream == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_the_stream_consumer_may_hand_shares_to_fan_out_only(
    cloud_assembly: CloudAssembly,
) -> None:
    resources = cloud_assembly.template["Resources"]
    fan_out = resources["FanOut"]["Properties"]
    assert fan_out["FunctionName"] == f"{STACK_NAME}-fan_out"
    for name in ("OnChange", "FanOut"):
        variables = resources[name]["Properties"]["Environment"]["Variables"]
        assert "fan_out" in json.dumps(variables["TASKBEAT_FAN_OUT_FUNCTION_ARN"])
    invokes = [s for s in _statements(cloud_assembly) if s.get("Sid") == "InvokeFanOut"]
    assert len(invokes) == 1
    assert invokes[0]["Action"] == "lambda:InvokeFunction"
    assert "fan_out" in json.dumps(invokes[0]["Resource"])
