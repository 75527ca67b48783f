"""Catching up on a project's events, on fakes: the event log's pages (`events_page`), and a
`subscribe` with `after` that replays what a client missed and then goes live with no gap and
no duplicate, even when live events are sent while the replay runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib.domain.errors import BadRequest, Gone, NotFound
from chalicelib.domain.event_log import event_id, generation_at, parse_event_id
from chalicelib.domain.model import new_id
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.realtime import Event, EventType, new_connection, project_channel
from chalicelib.services.realtime import CLAIM_LEASE, RealtimeService
from tests.fakes import (
    InMemoryConnectionRepository,
    InMemoryEventLog,
    InMemoryProjectRepository,
    NoPrefetch,
    RecordingPusher,
)
from tests.unit.conftest import World

OWNER = Principal("owner", "session")


class Stage:
    def __init__(self, world: World, pusher: RecordingPusher | None = None) -> None:
        self.world = world
        self.connections = InMemoryConnectionRepository()
        self.pusher = pusher or RecordingPusher()
        self.projects = InMemoryProjectRepository()
        self.log = InMemoryEventLog()
        now = world.clock.now()
        self.project = Project(new_id(), "P", "", "owner", now, now)
        self.projects.create(
            self.project, Membership(self.project.id, "owner", ProjectRole.OWNER, now)
        )
        self.service = RealtimeService(
            self.connections,
            self.pusher,
            world.auth,
            self.projects,
            NoPrefetch(),
            world.clock,
            self.log,
        )
        self.channel = project_channel(self.project.id)

    def write(self, count: int = 1) -> list[Event]:
        """`count` task events, as the stream consumer handles them: logged, then published."""
        events = [
            Event(
                new_id(), EventType.TASK_CREATED, self.world.clock.now(), {"n": n}, self.project.id
            )
            for n in range(count)
        ]
        logged = self.service.record(events)
        self.service.publish(logged)
        return logged

    def connect(self, connection_id: str = "c1") -> str:
        self.connections.add(new_connection(connection_id, "owner", self.world.clock.now()))
        return connection_id

    def subscribe(self, connection_id: str, after: str | None) -> None:
        frame: dict[str, Any] = {"action": "subscribe", "channel": self.channel}
        if after is not None:
            frame["after"] = after
        self.service.receive(connection_id, frame)

    def event_ids(self, connection_id: str) -> list[str]:
        return [str(f["id"]) for f in self.pusher.frames.get(connection_id, []) if "id" in f]


@pytest.fixture
def stage(world: World) -> Stage:
    return Stage(world)


def seqs(ids: list[str]) -> list[int]:
    positions = [parse_event_id(i) for i in ids]
    assert all(p is not None for p in positions)
    return [p.seq for p in positions if p is not None]


class TestRecord:
    def test_project_events_are_numbered_in_order_and_notifications_pass_through(
        self, stage: Stage
    ) -> None:
        at = stage.world.clock.now()
        note = Event("rec-n", EventType.NOTIFICATION, at, {}, user_id="owner")
        other = new_id()
        events = [
            Event("rec-1", EventType.TASK_CREATED, at, {}, stage.project.id),
            note,
            Event("rec-2", EventType.TASK_UPDATED, at, {}, other),
            Event("rec-3", EventType.TASK_DELETED, at, {}, stage.project.id),
        ]
        kept = stage.service.record(events)
        assert note in kept
        generation = generation_at(at)
        ids = sorted(e.id for e in kept if e.user_id is None)
        assert ids == sorted(
            [
                event_id(stage.project.id, generation, 1),
                event_id(stage.project.id, generation, 2),
                event_id(other, generation, 1),
            ]
        )

    def test_of_a_resources_state_updates_in_one_batch_only_the_last_is_kept(
        self, stage: Stage
    ) -> None:
        at = stage.world.clock.now()
        p = stage.project.id

        def update(kind: EventType, resource: str, n: int) -> Event:
            return Event(new_id(), kind, at, {"id": resource, "n": n}, p)

        batch = [
            update(EventType.EXECUTION_UPDATED, "e1", 1),  # started: stale in this batch
            Event(new_id(), EventType.TASK_CREATED, at, {"id": "t1", "n": 2}, p),
            update(EventType.TASK_UPDATED, "t1", 3),
            update(EventType.EXECUTION_UPDATED, "e2", 4),
            update(EventType.EXECUTION_UPDATED, "e1", 5),  # finished
            update(EventType.TASK_UPDATED, "t1", 6),
            Event(new_id(), EventType.COMMENT_CREATED, at, {"id": "c1", "n": 7}, p),
            Event(new_id(), EventType.COMMENT_CREATED, at, {"id": "c1", "n": 8}, p),
        ]
        kept = stage.service.record(batch)
        assert [e.data["n"] for e in kept] == [2, 4, 5, 6, 7, 8]
        assert seqs([e.id for e in kept]) == [1, 2, 3, 4, 5, 6]

    def test_a_batch_delivered_again_is_logged_once(self, stage: Stage) -> None:
        at = stage.world.clock.now()
        batch = [Event("rec-1", EventType.TASK_CREATED, at, {}, stage.project.id)]
        assert len(stage.service.record(batch)) == 1
        assert stage.service.record(batch) == []
        assert len(stage.log.read(stage.project.id, 1, 10)) == 1


class TestEventsPage:
    def test_pages_go_oldest_first_and_the_cursor_is_the_last_id(self, stage: Stage) -> None:
        written = stage.write(5)
        first = stage.service.events_page(OWNER, stage.project.id, None, 2)
        assert [e.id for e in first.items] == [e.id for e in written[:2]]
        assert first.next_cursor == written[1].id
        second = stage.service.events_page(OWNER, stage.project.id, first.next_cursor, 2)
        assert [e.id for e in second.items] == [e.id for e in written[2:4]]
        last = stage.service.events_page(OWNER, stage.project.id, second.next_cursor, 2)
        assert [e.id for e in last.items] == [written[4].id]
        assert last.next_cursor is None
        caught_up = stage.service.events_page(OWNER, stage.project.id, written[4].id, 2)
        assert (caught_up.items, caught_up.next_cursor) == ([], None)

    def test_data_is_what_subscribers_got(self, stage: Stage) -> None:
        stage.connect()
        stage.subscribe("c1", None)
        written = stage.write(1)
        page = stage.service.events_page(OWNER, stage.project.id, None, 10)
        assert [e.frame() for e in page.items] == stage.pusher.frames["c1"][1:]
        assert page.items[0].id == written[0].id

    def test_a_non_member_sees_404(self, stage: Stage) -> None:
        with pytest.raises(NotFound):
            stage.service.events_page(Principal("stranger", "s"), stage.project.id, None, 10)

    @pytest.mark.parametrize("after", ["nonsense", "0" * 12, "x.000000000001"])
    def test_an_after_that_is_no_event_id_is_400(self, stage: Stage, after: str) -> None:
        with pytest.raises(BadRequest):
            stage.service.events_page(OWNER, stage.project.id, after, 10)

    def test_an_event_of_another_project_or_not_yet_written_is_400(self, stage: Stage) -> None:
        generation = generation_at(stage.world.clock.now())
        stage.write(1)
        for after in (
            event_id(new_id(), generation, 1),
            event_id(stage.project.id, generation, 2),
            event_id(stage.project.id, generation + 1, 1),
        ):
            with pytest.raises(BadRequest):
                stage.service.events_page(OWNER, stage.project.id, after, 10)

    def test_an_after_past_the_retention_is_gone(self, stage: Stage) -> None:
        written = stage.write(3)
        stage.world.clock.advance(days=7, seconds=1)
        stage.write(1)
        with pytest.raises(Gone):  # still stored (TTL lags) but older than 7 days
            stage.service.events_page(OWNER, stage.project.id, written[2].id, 10)
        stage.log.expire(stage.project.id, through=3)  # TTL deleted them
        with pytest.raises(Gone):
            stage.service.events_page(OWNER, stage.project.id, written[0].id, 10)
        # Without `after`: what is kept and within 7 days.
        page = stage.service.events_page(OWNER, stage.project.id, None, 10)
        assert seqs([e.id for e in page.items]) == [4]

    def test_expired_events_still_stored_are_left_out_of_the_first_page(self, stage: Stage) -> None:
        stage.write(2)
        stage.world.clock.advance(days=8)
        fresh = stage.write(1)
        page = stage.service.events_page(OWNER, stage.project.id, None, 10)
        assert [e.id for e in page.items] == [fresh[0].id]


class TestSubscribeAfter:
    def test_the_missed_events_come_after_subscribed_then_live_ones(self, stage: Stage) -> None:
        written = stage.write(4)
        stage.connect()
        stage.subscribe("c1", written[0].id)
        frames = stage.pusher.frames["c1"]
        assert frames[0] == {"type": "subscribed", "channel": stage.channel}
        assert stage.event_ids("c1") == [e.id for e in written[1:]]
        later = stage.write(2)
        assert stage.event_ids("c1") == [e.id for e in written[1:] + later]

    def test_after_the_last_event_replays_nothing_and_goes_live(self, stage: Stage) -> None:
        written = stage.write(2)
        stage.connect()
        stage.subscribe("c1", written[-1].id)
        assert stage.event_ids("c1") == []
        later = stage.write(1)
        assert stage.event_ids("c1") == [later[0].id]

    def test_live_events_during_the_replay_come_once_in_order(self, world: World) -> None:
        """Writes land while the replay pushes: each live fan-out runs in the middle of the
        replay's pushes (as another Lambda would), yet every id comes once, in order."""
        writes_left = [6]

        class InterleavingPusher(RecordingPusher):
            def push(self, connection_id: str, message: dict[str, object]) -> bool:
                sent = super().push(connection_id, message)
                if "id" in message and writes_left[0] > 0:
                    writes_left[0] -= 1
                    stage.write(1)  # a live event while the replay is mid-way
                return sent

        stage = Stage(world, InterleavingPusher())
        written = stage.write(5)
        stage.connect()
        stage.subscribe("c1", written[0].id)
        stage.write(3)
        got = seqs(stage.event_ids("c1"))
        assert got == list(range(2, 5 + 6 + 3 + 1))

    def test_a_fan_out_that_finds_the_subscription_behind_sends_what_it_missed(
        self, stage: Stage
    ) -> None:
        written = stage.write(2)
        stage.connect()
        stage.subscribe("c1", written[-1].id)
        # Events logged whose fan-out has not run yet (another invocation, still on its way).
        at = stage.world.clock.now()
        pending = stage.service.record(
            [Event(new_id(), EventType.TASK_UPDATED, at, {}, stage.project.id) for _ in range(3)]
        )
        stage.service.publish(pending[2:])  # the last one's fan-out comes first
        assert seqs(stage.event_ids("c1")) == [3, 4, 5]
        stage.service.publish(pending[:2])  # the others' arrive late: nothing twice
        assert seqs(stage.event_ids("c1")) == [3, 4, 5]

    def test_a_live_event_during_a_claim_is_left_to_its_holder(self, stage: Stage) -> None:
        stage.write(3)
        connection = new_connection("c1", "owner", stage.world.clock.now())
        stage.connections.add(connection)
        stage.connections.subscribe(connection, stage.channel, 1)
        now = stage.world.clock.now()
        # Another sender (a replay on its way) holds the events up to 3.
        assert stage.connections.claim(stage.channel, "c1", 1, 3, now + CLAIM_LEASE, now)
        later = stage.write(1)
        assert stage.event_ids("c1") == []  # the holder sends 2..4 once it is done
        assert stage.connections.release(stage.channel, "c1", 3)
        assert seqs([later[0].id]) == [4]

    def test_a_claim_whose_holder_stopped_is_taken_over_when_it_runs_out(
        self, stage: Stage
    ) -> None:
        written = stage.write(3)
        connection = new_connection("c1", "owner", stage.world.clock.now())
        stage.connections.add(connection)
        stage.connections.subscribe(connection, stage.channel, 1)
        now = stage.world.clock.now()
        assert stage.connections.claim(stage.channel, "c1", 1, 3, now + CLAIM_LEASE, now)
        stage.world.clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
        later = stage.write(1)
        assert stage.event_ids("c1") == [e.id for e in written[1:] + later]

    def test_plain_subscribers_beside_in_order_ones_get_live_events_only(
        self, stage: Stage
    ) -> None:
        written = stage.write(2)
        stage.connect("plain")
        stage.subscribe("plain", None)
        stage.connect("ordered")
        stage.subscribe("ordered", written[0].id)
        later = stage.write(1)
        assert stage.event_ids("plain") == [later[0].id]
        assert stage.event_ids("ordered") == [written[1].id, later[0].id]

    def test_a_gone_connection_is_forgotten_during_the_replay(self, stage: Stage) -> None:
        written = stage.write(3)
        stage.connect()
        stage.pusher.gone.add("c1")
        stage.subscribe("c1", written[0].id)
        assert stage.connections.get("c1") is None

    @pytest.mark.parametrize("after", ["nonsense", 7, "x"])
    def test_a_bad_after_answers_bad_request_and_subscribes_nothing(
        self, stage: Stage, after: object
    ) -> None:
        stage.connect()
        stage.service.receive(
            "c1", {"action": "subscribe", "channel": stage.channel, "after": after}
        )
        assert stage.pusher.frames["c1"][-1]["code"] == "bad_request"
        assert stage.connections.subscribers(stage.channel) == []

    def test_an_after_past_the_retention_answers_gone(self, stage: Stage) -> None:
        written = stage.write(2)
        stage.world.clock.advance(days=7, hours=1)
        stage.connect()
        stage.subscribe("c1", written[0].id)
        assert stage.pusher.frames["c1"][-1]["code"] == "gone"
        assert stage.connections.subscribers(stage.channel) == []

    def test_a_removed_member_gets_nothing_more(self, stage: Stage) -> None:
        written = stage.write(1)
        stage.projects.add_member(
            Membership(stage.project.id, "guest", ProjectRole.VIEWER, stage.world.clock.now())
        )
        stage.connections.add(new_connection("g", "guest", stage.world.clock.now()))
        stage.subscribe("g", written[0].id)
        stage.projects.remove_member(stage.project.id, "guest")
        stage.write(1)
        assert stage.event_ids("g") == []

    def test_a_projects_subscribers_are_read_once_per_batch(self, stage: Stage) -> None:
        stage.connect()
        stage.subscribe("c1", None)
        reads: list[str] = []
        subscribers = stage.connections.subscribers

        def counted(channel: str) -> Any:
            reads.append(channel)
            return subscribers(channel)

        stage.connections.subscribers = counted  # type: ignore[method-assign]
        written = stage.write(3)
        at = stage.world.clock.now()
        logged = stage.service.record(
            [
                Event(new_id(), EventType.COMMENT_CREATED, at, {"n": n}, stage.project.id)
                for n in range(3)
            ]
        )
        reads.clear()
        stage.service.publish(logged)
        assert reads == [stage.channel]
        assert stage.event_ids("c1") == [e.id for e in written + logged]

    def test_the_retention_is_seven_days(self) -> None:
        from chalicelib.domain.event_log import EVENT_RETENTION

        assert timedelta(days=7) == EVENT_RETENTION
