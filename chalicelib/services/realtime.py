"""Real time over the WebSocket API: connections, subscriptions and the fan-out of events.

- `connect`: the token in the query string is checked before the upgrade completes (API
  Gateway refuses the socket when `$connect` answers non-2xx); the connection is stored with
  API Gateway's 2-hour lifetime.
- `receive`: `ping`, `subscribe` and `unsubscribe` frames. Subscribing to a project needs
  membership; a caller who cannot see it gets `not_found`, as over HTTP.
- `publish`: events built from the tables' streams go to a project's subscribers (found by
  key: one Query on the channel) or to a user's connections (their notifications). A member
  removed from a project stops receiving its events at once: every fan-out checks the
  subscribers' memberships (one batch read for all of them). Connections API Gateway reports
  gone (410) are forgotten. A fan-out larger than `FAN_OUT_SHARE` is split: this invocation
  pushes the first share, and each other share goes to its own `fan_out` invocation.

Request handlers never push events; the stream consumer does, after the write is durable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import InsufficientScope, NotFound, Unauthorized
from chalicelib.domain.projects import ProjectRole
from chalicelib.domain.realtime import (
    FAN_OUT_SHARE,
    MAX_SUBSCRIPTIONS,
    Event,
    error_frame,
    new_connection,
    project_channel,
    project_of_channel,
)
from chalicelib.ports import (
    Clock,
    ConnectionRepository,
    FanOut,
    Prefetcher,
    ProjectRepository,
    Pusher,
    reads,
)
from chalicelib.services.access import ProjectAccess
from chalicelib.services.auth import AuthService


@dataclass(frozen=True)
class Published:
    """What one fan-out did: frames sent here, connections found gone and forgotten, and
    connections handed to `fan_out` invocations."""

    pushed: int = 0
    gone: int = 0
    handed_off: int = 0


class RealtimeService:
    def __init__(
        self,
        connections: ConnectionRepository,
        pusher: Pusher,
        auth: AuthService,
        projects: ProjectRepository,
        prefetcher: Prefetcher,
        clock: Clock,
        fan_out: FanOut | None = None,
    ) -> None:
        self._connections = connections
        self._pusher = pusher
        self._auth = auth
        self._projects = projects
        self._access = ProjectAccess(projects)
        self._prefetch = prefetcher
        self._clock = clock
        self._fan_out = fan_out  # None: every push is made here

    # ---- the WebSocket routes -------------------------------------------------------------------

    def connect(self, connection_id: str, token: str | None) -> bool:
        """`$connect`: False refuses the connection (a missing, bad or revoked token)."""
        try:
            principal = self._auth.authenticate(token)
            # An API token (a script's) connects with the `read` scope: a socket only reads.
            self._auth.admit(principal, "read")
        except (Unauthorized, InsufficientScope):
            return False
        self._connections.add(new_connection(connection_id, principal.user_id, self._clock.now()))
        return True

    def disconnect(self, connection_id: str) -> None:
        self._connections.remove(connection_id)

    def receive(self, connection_id: str, frame: Any) -> None:
        """One client frame; the answer (or error) goes back on the same connection."""
        self._pusher.push(connection_id, self._answer(connection_id, frame))

    def _answer(self, connection_id: str, frame: Any) -> dict[str, Any]:
        if not isinstance(frame, dict):
            return error_frame("bad_request", "frames are JSON objects")
        action = frame.get("action")
        if action == "ping":
            return {"type": "pong"}
        if action not in ("subscribe", "unsubscribe"):
            return error_frame("bad_request", f"unknown action: {action!r}")
        channel = frame.get("channel")
        if not isinstance(channel, str) or project_of_channel(channel) is None:
            return error_frame(
                "bad_request", 'channel must be "project:<id>"', channel=str(channel)[:100]
            )
        connection = self._connections.get(connection_id)
        if connection is None:  # its $connect never completed, or it expired
            return error_frame("unauthorized", "the connection is not authenticated")
        if action == "unsubscribe":
            if channel in connection.channels:
                self._connections.unsubscribe(connection, channel)
            return {"type": "unsubscribed", "channel": channel}
        project_id = project_of_channel(channel)
        assert project_id is not None
        try:
            self._access.require(connection.user_id, project_id, ProjectRole.VIEWER)
        except NotFound:
            return error_frame("not_found", "project not found", channel=channel)
        if channel not in connection.channels:
            if len(connection.channels) >= MAX_SUBSCRIPTIONS:
                return error_frame(
                    "too_many_subscriptions",
                    f"a connection holds at most {MAX_SUBSCRIPTIONS} subscriptions",
                    channel=channel,
                )
            if not self._connections.subscribe(connection, channel):
                return error_frame("unauthorized", "the connection is not authenticated")
        return {"type": "subscribed", "channel": channel}

    # ---- fan-out ---------------------------------------------------------------------------------

    def publish(self, events: Iterable[Event]) -> Published:
        pushed = gone = handed_off = 0
        for event in events:
            targets = self._targets(event)
            frame = event.frame()
            if self._fan_out is not None and len(targets) > FAN_OUT_SHARE:
                for start in range(FAN_OUT_SHARE, len(targets), FAN_OUT_SHARE):
                    self._fan_out.dispatch(targets[start : start + FAN_OUT_SHARE], frame)
                    handed_off += len(targets[start : start + FAN_OUT_SHARE])
                targets = targets[:FAN_OUT_SHARE]
            done = self.deliver(targets, frame)
            pushed += done.pushed
            gone += done.gone
        return Published(pushed, gone, handed_off)

    def deliver(self, connection_ids: Sequence[str], frame: dict[str, Any]) -> Published:
        """Push one frame to these connections; forget those API Gateway says are gone."""
        if not connection_ids:
            return Published()
        lost = self._pusher.push_many(connection_ids, frame)
        for connection_id in lost:
            self._connections.remove(connection_id)
        return Published(len(connection_ids) - len(lost), len(lost))

    def _targets(self, event: Event) -> list[str]:
        if event.user_id is not None:
            return self._connections.connections_of(event.user_id)
        if event.project_id is None:
            return []
        subscribers = self._connections.subscribers(project_channel(event.project_id))
        members = self._members(event.project_id, {s.user_id for s in subscribers})
        return [s.connection_id for s in subscribers if s.user_id in members]

    def _members(self, project_id: str, user_ids: Sequence[str] | set[str]) -> set[str]:
        """Which of these users are still members (their memberships in one batch read)."""
        if not user_ids:
            return set()
        users = sorted(user_ids)
        self._prefetch.warm([reads.member(project_id, user) for user in users])
        return {user for user in users if self._projects.membership(project_id, user) is not None}
