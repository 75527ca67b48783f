"""One contract for WebSocket connections and subscriptions, run on the in-memory fake and on
DynamoDB (moto): what the real-time service relies on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.connections import DynamoConnectionRepository
from chalicelib.domain.model import new_id
from chalicelib.domain.realtime import Subscriber, new_connection, project_channel
from tests.fakes import InMemoryConnectionRepository

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "dynamodb"])
def repo(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return InMemoryConnectionRepository()
    request.getfixturevalue("moto_aws")
    return DynamoConnectionRepository()


def test_a_connection_round_trips_with_its_lifetime(repo: Any) -> None:
    connection = new_connection("c1", "u1", AT)
    repo.add(connection)
    assert repo.get("c1") == connection
    assert repo.get("c2") is None


def test_subscribers_of_a_channel_and_connections_of_a_user(repo: Any) -> None:
    channel, other = project_channel(new_id()), project_channel(new_id())
    first, second, third = (
        new_connection(c, u, AT) for c, u in [("a", "u1"), ("b", "u1"), ("c", "u2")]
    )
    for connection in (first, second, third):
        repo.add(connection)
    assert repo.subscribe(first, channel)
    assert repo.subscribe(third, channel)
    assert repo.subscribe(third, other)
    assert sorted(repo.subscribers(channel), key=lambda s: s.connection_id) == [
        Subscriber("a", "u1"),
        Subscriber("c", "u2"),
    ]
    assert repo.subscribers(project_channel(new_id())) == []
    assert sorted(repo.connections_of("u1")) == ["a", "b"]
    stored = repo.get("c")
    assert stored is not None
    assert stored.channels == {channel, other}


def test_unsubscribe_and_remove_leave_nothing_behind(repo: Any) -> None:
    channel, other = project_channel(new_id()), project_channel(new_id())
    connection = new_connection("a", "u1", AT)
    repo.add(connection)
    repo.subscribe(connection, channel)
    repo.subscribe(connection, other)
    repo.unsubscribe(connection, channel)
    assert repo.subscribers(channel) == []
    stored = repo.get("a")
    assert stored is not None
    assert stored.channels == {other}
    repo.remove("a")
    assert (repo.get("a"), repo.subscribers(other), repo.connections_of("u1")) == (None, [], [])
    repo.remove("a")  # idempotent


def test_a_gone_connection_cannot_subscribe(repo: Any) -> None:
    channel = project_channel(new_id())
    assert not repo.subscribe(new_connection("never-added", "u1", AT), channel)
    assert repo.subscribers(channel) == []
