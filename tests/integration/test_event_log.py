"""One contract for the project event log, run on the in-memory fake and on DynamoDB (moto):
numbering without gaps, ids, reading from a number, a batch delivered twice logged once; and
the in-order subscriptions' conditional number (`ConnectionRepository.advance`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.connections import DynamoConnectionRepository
from chalicelib.adapters.dynamodb.event_log import DynamoEventLog
from chalicelib.adapters.dynamodb.models import ProjectEventModel
from chalicelib.domain.event_log import event_id, generation_at, parse_event_id
from chalicelib.domain.model import new_id
from chalicelib.domain.realtime import (
    MAX_FRAME_BYTES,
    Event,
    EventType,
    Subscriber,
    new_connection,
    project_channel,
)
from tests.fakes import InMemoryConnectionRepository, InMemoryEventLog

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "dynamodb"])
def log(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return InMemoryEventLog()
    request.getfixturevalue("moto_aws")
    return DynamoEventLog()


@pytest.fixture(params=["memory", "dynamodb"])
def connections(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return InMemoryConnectionRepository()
    request.getfixturevalue("moto_aws")
    return DynamoConnectionRepository()


def seq_of(event: Event | None) -> int:
    assert event is not None
    position = parse_event_id(event.id)
    assert position is not None
    return position.seq


def events(project_id: str, count: int, kind: EventType = EventType.TASK_UPDATED) -> list[Event]:
    return [Event(new_id(), kind, AT, {"id": f"t{n}", "n": n}, project_id) for n in range(count)]


def test_events_are_numbered_from_one_in_the_order_given(log: Any) -> None:
    project_id = new_id()
    assert log.latest(project_id) is None
    logged = log.append(project_id, events(project_id, 3))
    generation = generation_at(AT)
    assert [e.id for e in logged] == [event_id(project_id, generation, n) for n in (1, 2, 3)]
    assert [e.data["n"] for e in logged] == [0, 1, 2]
    more = log.append(project_id, events(project_id, 2))
    assert [e.id for e in more] == [event_id(project_id, generation, n) for n in (4, 5)]
    assert log.latest(project_id) == more[-1]


def test_reading_from_a_number_gives_what_was_logged_in_order(log: Any) -> None:
    project_id, other = new_id(), new_id()
    written = log.append(project_id, events(project_id, 5, EventType.COMMENT_CREATED))
    log.append(other, events(other, 2))
    assert log.read(project_id, 1, 100) == written
    assert log.read(project_id, 3, 2) == written[2:4]
    assert log.read(project_id, 6, 10) == []
    assert log.read(new_id(), 1, 10) == []


def test_a_batch_delivered_again_is_logged_once(log: Any) -> None:
    project_id = new_id()
    batch = events(project_id, 3)
    log.append(project_id, batch[:2])
    logged = log.append(project_id, batch)  # the first two again, with a new one
    assert [e.data["n"] for e in logged] == [2]
    assert seq_of(log.latest(project_id)) == 3


def test_another_writers_events_are_numbered_on_from_theirs(log: Any) -> None:
    """Two writers of one project (two containers, as two stream shards have): each takes
    the number after the latest, whoever wrote it."""
    other = type(log)() if isinstance(log, DynamoEventLog) else log
    project_id = new_id()
    log.append(project_id, events(project_id, 2))
    other.append(project_id, events(project_id, 2))
    logged = log.append(project_id, events(project_id, 1))  # its own last was 2
    assert seq_of(logged[0]) == 5
    assert [seq_of(e) for e in log.read(project_id, 1, 10)] == [1, 2, 3, 4, 5]


def test_a_quiet_project_numbers_on_in_a_new_generation(log: Any) -> None:
    """Past the retention the latest event's predecessors may be gone: the next event starts
    a new generation, so an id that existed is never written again."""
    project_id = new_id()
    first = log.append(project_id, events(project_id, 2))
    later = Event(new_id(), EventType.TASK_CREATED, AT + timedelta(days=8), {}, project_id)
    logged = log.append(project_id, [later])
    before, after = parse_event_id(first[-1].id), parse_event_id(logged[0].id)
    assert before is not None
    assert after is not None
    assert after.seq == 3
    assert after.generation > before.generation
    assert logged[0].id > first[-1].id


def test_a_too_large_event_is_kept_as_its_frame_was_sent(log: Any) -> None:
    project_id = new_id()
    big = Event(
        new_id(),
        EventType.TASK_CREATED,
        AT,
        {"id": "t1", "project_id": project_id, "description": "x" * MAX_FRAME_BYTES},
        project_id,
    )
    logged = log.append(project_id, [big])
    kept = log.read(project_id, 1, 1)[0]
    assert kept.frame() == logged[0].frame()
    assert kept.frame()["truncated"] is True
    assert kept.frame()["data"] == {"id": "t1", "project_id": project_id}


def test_events_expire_seven_days_after_they_happened(moto_aws: None) -> None:
    project_id = new_id()
    DynamoEventLog().append(project_id, events(project_id, 1))
    event = ProjectEventModel.get(project_id, 1)
    assert (event.expires_at - AT).days == 7


def test_an_in_order_subscription_moves_only_from_the_number_it_is_at(connections: Any) -> None:
    channel = project_channel(new_id())
    connection = new_connection("c1", "u1", AT)
    connections.add(connection)
    assert connections.subscribe(connection, channel, 4)
    assert connections.subscriber(channel, "c1") == Subscriber("c1", "u1", 4)
    assert [s.delivered for s in connections.subscribers(channel)] == [4]
    until = AT + timedelta(seconds=60)
    assert not connections.claim(channel, "c1", 3, 5, until, AT)
    assert connections.claim(channel, "c1", 4, 5, until, AT)
    assert connections.release(channel, "c1", 5)
    assert not connections.claim(channel, "c1", 4, 5, until, AT)  # someone moved it first
    assert connections.subscriber(channel, "c1").delivered == 5
    assert connections.subscriber(channel, "c2") is None
    assert not connections.claim(channel, "c2", 0, 1, until, AT)  # no such subscription
    assert not connections.release(channel, "c2", 1)


def test_a_claim_holds_off_other_senders_until_released_or_run_out(connections: Any) -> None:
    channel = project_channel(new_id())
    connection = new_connection("c1", "u1", AT)
    connections.add(connection)
    connections.subscribe(connection, channel, 2)
    until = AT + timedelta(seconds=60)
    assert connections.claim(channel, "c1", 2, 9, until, AT)
    held = connections.subscriber(channel, "c1")
    assert (held.delivered, held.claimed_until, held.claimed(AT)) == (2, until, True)
    assert [s.claimed_until for s in connections.subscribers(channel)] == [until]
    # Others wait: no second claim.
    assert not connections.claim(channel, "c1", 2, 5, until, AT)
    assert connections.release(channel, "c1", 9)
    free = connections.subscriber(channel, "c1")
    assert (free.delivered, free.claimed_until) == (9, None)
    assert not connections.release(channel, "c1", 9)  # released already
    # A claim that ran out is taken over; its holder's release then fails.
    assert connections.claim(channel, "c1", 9, 12, until, AT)
    later = until + timedelta(seconds=1)
    assert connections.claim(channel, "c1", 9, 14, later + timedelta(seconds=60), later)
    assert not connections.release(channel, "c1", 12)
    assert connections.release(channel, "c1", 14)
    assert connections.claim(channel, "c1", 14, 15, later, later)


def test_a_plain_subscription_has_no_number(connections: Any) -> None:
    channel = project_channel(new_id())
    connection = new_connection("c1", "u1", AT)
    connections.add(connection)
    connections.subscribe(connection, channel)
    assert [s.delivered for s in connections.subscribers(channel)] == [None]
    assert not connections.claim(channel, "c1", 0, 1, AT, AT)
