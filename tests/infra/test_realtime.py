"""The real-time pieces in the synthesized template: connection tables that expire with API
Gateway's connections, and every table clients hear about feeding the change consumer."""

from __future__ import annotations

import pytest

from tests.infra.conftest import TABLE_PREFIX, CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

# The tables whose writes become WebSocket events (chalicelib/api/events.py).
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
