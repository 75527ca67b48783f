"""RealtimeService on fakes: connect, ping, subscribe, unsubscribe, and the fan-out of events to
subscribers (members only) and of notifications to their user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.model import new_id
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.realtime import (
    CONNECTION_LIFETIME,
    FAN_OUT_SHARE,
    MAX_SUBSCRIPTIONS,
    Event,
    EventType,
    new_connection,
    project_channel,
    project_of_channel,
)
from chalicelib.domain.users import RegisterInput
from chalicelib.services.realtime import RealtimeService
from tests.fakes import (
    InMemoryConnectionRepository,
    InMemoryEventLog,
    InMemoryProjectRepository,
    NoPrefetch,
    RecordingPusher,
)
from tests.unit.conftest import World

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@dataclass
class Stage:
    world: World
    connections: InMemoryConnectionRepository
    pusher: RecordingPusher
    projects: InMemoryProjectRepository
    service: RealtimeService
    project: Project

    def user(self, role: ProjectRole | None = ProjectRole.MEMBER) -> tuple[str, str]:
        """A registered user (member of the project with `role`): (user id, access token)."""
        email = f"{new_id().lower()}@example.com"
        result = self.world.auth.register(
            RegisterInput(email=email, password="correct horse battery", name="N")
        )
        if role is not None:
            self.projects.add_member(Membership(self.project.id, result.user.id, role, AT))
        return result.user.id, result.access_token

    def connect(self, role: ProjectRole | None = ProjectRole.MEMBER) -> tuple[str, str]:
        user_id, token = self.user(role)
        connection_id = new_id()
        assert self.service.connect(connection_id, token)
        return connection_id, user_id

    def last(self, connection_id: str) -> dict[str, object]:
        return self.pusher.frames[connection_id][-1]


@pytest.fixture
def stage(world: World) -> Stage:
    connections = InMemoryConnectionRepository()
    pusher = RecordingPusher()
    projects = InMemoryProjectRepository()
    project = Project(new_id(), "P", "", "owner", AT, AT)
    projects.create(project, Membership(project.id, "owner", ProjectRole.OWNER, AT))
    service = RealtimeService(
        connections, pusher, world.auth, projects, NoPrefetch(), world.clock, InMemoryEventLog()
    )
    return Stage(world, connections, pusher, projects, service, project)


def event(project_id: str | None = None, user_id: str | None = None) -> Event:
    kind = EventType.NOTIFICATION if user_id else EventType.TASK_CREATED
    return Event(new_id(), kind, AT, {"id": "x"}, project_id=project_id, user_id=user_id)


class TestConnect:
    def test_a_good_token_stores_the_connection_for_two_hours(self, stage: Stage) -> None:
        connection_id, user_id = stage.connect()
        stored = stage.connections.get(connection_id)
        assert stored is not None
        assert stored.user_id == user_id
        assert stored.expires_at - stored.connected_at == CONNECTION_LIFETIME

    @pytest.mark.parametrize("token", [None, "", "not-a-token"])
    def test_a_missing_or_bad_token_is_refused_and_nothing_stored(
        self, stage: Stage, token: str | None
    ) -> None:
        assert not stage.service.connect("c1", token)
        assert stage.connections.connections == {}

    def test_disconnect_forgets_the_connection_and_its_subscriptions(self, stage: Stage) -> None:
        connection_id, _ = stage.connect()
        channel = project_channel(stage.project.id)
        stage.service.receive(connection_id, {"action": "subscribe", "channel": channel})
        stage.service.disconnect(connection_id)
        assert stage.connections.get(connection_id) is None
        assert stage.connections.subscribers(channel) == []
        stage.service.disconnect(connection_id)  # twice is fine


class TestFrames:
    def test_ping_answers_pong(self, stage: Stage) -> None:
        connection_id, _ = stage.connect()
        stage.service.receive(connection_id, {"action": "ping"})
        assert stage.last(connection_id) == {"type": "pong"}

    @pytest.mark.parametrize(
        "frame", [None, [], "ping", {"action": "dance"}, {"action": "subscribe"}]
    )
    def test_bad_frames_answer_bad_request(self, stage: Stage, frame: object) -> None:
        connection_id, _ = stage.connect()
        stage.service.receive(connection_id, frame)
        answer = stage.last(connection_id)
        assert (answer["type"], answer["code"]) == ("error", "bad_request")

    @pytest.mark.parametrize("channel", ["project:", "user:x", "project:a/b", "x" * 500])
    def test_only_project_channels_exist(self, stage: Stage, channel: str) -> None:
        connection_id, _ = stage.connect()
        stage.service.receive(connection_id, {"action": "subscribe", "channel": channel})
        assert stage.last(connection_id)["code"] == "bad_request"
        assert project_of_channel(channel) is None

    def test_a_member_subscribes_and_unsubscribes(self, stage: Stage) -> None:
        connection_id, user_id = stage.connect(ProjectRole.VIEWER)
        channel = project_channel(stage.project.id)
        stage.service.receive(connection_id, {"action": "subscribe", "channel": channel})
        assert stage.last(connection_id) == {"type": "subscribed", "channel": channel}
        assert [s.user_id for s in stage.connections.subscribers(channel)] == [user_id]
        stage.service.receive(connection_id, {"action": "unsubscribe", "channel": channel})
        assert stage.last(connection_id) == {"type": "unsubscribed", "channel": channel}
        assert stage.connections.subscribers(channel) == []

    def test_a_non_member_gets_not_found_and_no_subscription(self, stage: Stage) -> None:
        connection_id, _ = stage.connect(role=None)
        for project_id in (stage.project.id, new_id()):  # hidden and missing look the same
            channel = project_channel(project_id)
            stage.service.receive(connection_id, {"action": "subscribe", "channel": channel})
            answer = stage.last(connection_id)
            assert (answer["type"], answer["code"]) == ("error", "not_found")
            assert stage.connections.subscribers(channel) == []

    def test_a_connection_holds_a_bounded_number_of_subscriptions(self, stage: Stage) -> None:
        connection_id, user_id = stage.connect()
        for _ in range(MAX_SUBSCRIPTIONS):
            project = Project(new_id(), "P", "", user_id, AT, AT)
            stage.projects.create(project, Membership(project.id, user_id, ProjectRole.OWNER, AT))
            channel = project_channel(project.id)
            stage.service.receive(connection_id, {"action": "subscribe", "channel": channel})
            assert stage.last(connection_id)["type"] == "subscribed"
        channel = project_channel(stage.project.id)
        stage.service.receive(connection_id, {"action": "subscribe", "channel": channel})
        assert stage.last(connection_id)["code"] == "too_many_subscriptions"

    def test_frames_of_an_unknown_connection_are_refused(self, stage: Stage) -> None:
        channel = project_channel(stage.project.id)
        stage.service.receive("never-connected", {"action": "subscribe", "channel": channel})
        assert stage.last("never-connected")["code"] == "unauthorized"


class TestPublish:
    def subscribed(self, stage: Stage, role: ProjectRole = ProjectRole.MEMBER) -> str:
        connection_id, _ = stage.connect(role)
        channel = project_channel(stage.project.id)
        stage.service.receive(connection_id, {"action": "subscribe", "channel": channel})
        return connection_id

    def test_project_events_reach_every_subscriber_once(self, stage: Stage) -> None:
        first, second = self.subscribed(stage), self.subscribed(stage, ProjectRole.VIEWER)
        unsubscribed, _ = stage.connect()
        sent = event(project_id=stage.project.id)
        published = stage.service.publish([sent])
        assert (published.pushed, published.gone) == (2, 0)
        for connection_id in (first, second):
            assert stage.last(connection_id) == sent.frame()
        assert unsubscribed not in stage.pusher.frames
        other = stage.service.publish([event(project_id=new_id())])
        assert other.pushed == 0

    def test_a_removed_member_hears_nothing_more(self, stage: Stage) -> None:
        connection_id = self.subscribed(stage)
        user_id = stage.connections.connections[connection_id].user_id
        stage.projects.remove_member(stage.project.id, user_id)
        before = len(stage.pusher.frames[connection_id])
        assert stage.service.publish([event(project_id=stage.project.id)]).pushed == 0
        assert len(stage.pusher.frames[connection_id]) == before

    def test_notifications_reach_all_of_their_users_connections_only(self, stage: Stage) -> None:
        user_id, token = stage.user()
        first, second = new_id(), new_id()  # two tabs of one user
        assert stage.service.connect(first, token)
        assert stage.service.connect(second, token)
        other, _ = stage.connect()
        sent = event(user_id=user_id)
        assert stage.service.publish([sent]).pushed == 2
        assert stage.last(first) == sent.frame() == stage.last(second)
        assert other not in stage.pusher.frames

    def test_gone_connections_are_forgotten(self, stage: Stage) -> None:
        alive, gone = self.subscribed(stage), self.subscribed(stage)
        stage.pusher.gone.add(gone)
        published = stage.service.publish([event(project_id=stage.project.id)])
        assert (published.pushed, published.gone) == (1, 1)
        assert stage.connections.get(gone) is None
        assert [
            s.connection_id
            for s in stage.connections.subscribers(project_channel(stage.project.id))
        ] == [alive]

    def test_the_frame_is_the_api_event(self) -> None:
        sent = Event("rec-1", EventType.TASK_UPDATED, AT, {"id": "t"}, project_id="p")
        assert sent.frame() == {
            "id": "rec-1",
            "type": "task.updated",
            "at": "2026-11-21T12:00:00.000Z",
            "data": {"id": "t"},
        }


def test_a_frame_over_the_message_limit_carries_only_the_ids() -> None:
    data = {"id": "t1", "project_id": "p1", "assignee_id": None, "description": "x" * 200_000}
    sent = Event("rec-2", EventType.TASK_UPDATED, AT, data, project_id="p1")
    frame = sent.frame()
    assert frame["truncated"] is True
    assert frame["data"] == {"id": "t1", "project_id": "p1", "assignee_id": None}
    small = Event("rec-3", EventType.TASK_UPDATED, AT, {"id": "t1", "title": "ok"})
    assert "truncated" not in small.frame()


class SharesHandedOff:
    """A FanOut that records the shares it was given (and pushes them, as `fan_out` would)."""

    def __init__(self, service: list[RealtimeService]) -> None:
        self.shares: list[list[str]] = []
        self._service = service

    def dispatch(self, connection_ids: Any, frame: dict[str, Any]) -> None:
        self.shares.append(list(connection_ids))
        self._service[0].deliver(connection_ids, frame)


def test_a_large_fan_out_is_pushed_in_shares(world: World) -> None:
    connections, pusher, projects = (
        InMemoryConnectionRepository(),
        RecordingPusher(),
        InMemoryProjectRepository(),
    )
    project = Project(new_id(), "P", "", "owner", AT, AT)
    projects.create(project, Membership(project.id, "owner", ProjectRole.OWNER, AT))
    holder: list[RealtimeService] = []
    fan_out = SharesHandedOff(holder)
    service = RealtimeService(
        connections,
        pusher,
        world.auth,
        projects,
        NoPrefetch(),
        world.clock,
        InMemoryEventLog(),
        fan_out,
    )
    holder.append(service)
    channel = project_channel(project.id)
    total = 2 * FAN_OUT_SHARE + 100
    for n in range(total):
        connection = new_connection(f"c{n:04}", "owner", AT)
        connections.add(connection)
        connections.subscribe(connection, channel)
    published = service.publish([event(project_id=project.id)])
    assert (published.pushed, published.handed_off) == (FAN_OUT_SHARE, total - FAN_OUT_SHARE)
    assert [len(share) for share in fan_out.shares] == [FAN_OUT_SHARE, 100]
    assert len(pusher.frames) == total  # every connection got the frame, once
    assert all(len(frames) == 1 for frames in pusher.frames.values())
