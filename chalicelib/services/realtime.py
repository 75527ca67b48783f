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

A project's events are first kept in its event log (`record`), which numbers them in order
without gaps; those numbers are their ids. Catching up (API.md): `GET /projects/{id}/events`
pages the log (`events_page`), and a `subscribe` frame with `after` makes an in-order
subscription: it stores the number of the last event it was sent, and only a sender that
moves that number (a conditional write from the number it read) sends those events. The
subscribe handler replays the log from `after` a page at a time; every sender claims what it
sends (a page, or a live fan-out's one event when the subscription is at the one before),
pushes it, then releases it, and reads the log again after releasing. A fan-out that finds a
claim held leaves its event to the holder; one that finds the subscription behind reads the
log itself. So the replay and live events meet with no gap and no duplicate, in order,
whichever runs first: the claim is what keeps two senders' pushes from crossing. It costs an
in-order subscription three DynamoDB calls per live event (claim, release, the log's read);
subscriptions without `after` cost nothing of this.

Request handlers never push events; the stream consumer does, after the write is durable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Final

from chalicelib.domain.errors import (
    BadRequest,
    DomainError,
    Gone,
    InsufficientScope,
    NotFound,
    Unauthorized,
)
from chalicelib.domain.event_log import EVENT_RETENTION, MAX_EVENTS_PAGE, parse_event_id
from chalicelib.domain.model import Page
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import ProjectRole
from chalicelib.domain.realtime import (
    FAN_OUT_SHARE,
    MAX_SUBSCRIPTIONS,
    Connection,
    Event,
    EventType,
    Subscriber,
    error_frame,
    new_connection,
    project_channel,
    project_of_channel,
)
from chalicelib.ports import (
    Clock,
    ConnectionRepository,
    EventLog,
    FanOut,
    Prefetcher,
    ProjectRepository,
    Pusher,
    reads,
)
from chalicelib.services.access import ProjectAccess, project_reads
from chalicelib.services.auth import AuthService

# How long a sender may hold its claim on an in-order subscription's next events (a page of
# the log, pushed one by one) before others take over, as from a sender that stopped on the way.
CLAIM_LEASE: Final = timedelta(seconds=60)


# Updates that say only "this is how the resource is now": of several of one resource in a
# batch, the last says all the others do.
_STATE_UPDATES: Final = frozenset(
    {EventType.TASK_UPDATED, EventType.EXECUTION_UPDATED, EventType.WORKFLOW_RUN_UPDATED}
)


def _latest_updates(events: Iterable[Event]) -> list[Event]:
    """The batch's events, with each resource's state updates but the last left out (the
    last keeps its place). A firing's execution is written when it starts and when it ends:
    when both writes come in one batch, subscribers, the log and project hooks get its end
    once instead of a start already stale and then its end."""
    listed = list(events)
    last: dict[tuple[EventType, str], int] = {}
    for n, event in enumerate(listed):
        if event.type in _STATE_UPDATES and isinstance(event.data.get("id"), str):
            last[(event.type, event.data["id"])] = n
    return [
        event
        for n, event in enumerate(listed)
        if event.type not in _STATE_UPDATES
        or not isinstance(event.data.get("id"), str)
        or last[(event.type, event.data["id"])] == n
    ]


def _seq(event: Event) -> int:
    position = parse_event_id(event.id)
    assert position is not None, "a logged event's id is an event id"
    return position.seq


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
        event_log: EventLog,
        fan_out: FanOut | None = None,
    ) -> None:
        self._connections = connections
        self._log = event_log
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
        """One client frame; the answer (or error) goes back on the same connection, then
        (for `subscribe` with `after`) the events it missed."""
        follow_up: list[Callable[[], object]] = []
        self._pusher.push(connection_id, self._answer(connection_id, frame, follow_up))
        for step in follow_up:
            step()

    def _answer(
        self, connection_id: str, frame: Any, follow_up: list[Callable[[], object]]
    ) -> dict[str, Any]:
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
        after = frame.get("after")
        delivered = None
        if after is not None:
            try:
                delivered = self._start(project_id, after)
            except DomainError as exc:
                code = "gone" if isinstance(exc, Gone) else "bad_request"
                return error_frame(code, exc.message, channel=channel)
        if channel not in connection.channels and len(connection.channels) >= MAX_SUBSCRIPTIONS:
            return error_frame(
                "too_many_subscriptions",
                f"a connection holds at most {MAX_SUBSCRIPTIONS} subscriptions",
                channel=channel,
            )
        if delivered is not None:
            # Subscribed only once `subscribed` is sent: no event may come before it.
            follow_up.append(lambda: self._subscribe_in_order(connection, channel, delivered))
        elif channel not in connection.channels and not self._connections.subscribe(
            connection, channel
        ):
            return error_frame("unauthorized", "the connection is not authenticated")
        return {"type": "subscribed", "channel": channel}

    def _subscribe_in_order(self, connection: Connection, channel: str, delivered: int) -> None:
        connection_id = connection.connection_id
        if not self._connections.subscribe(connection, channel, delivered):
            return  # the connection is gone: nobody to send anything to
        project_id = project_of_channel(channel)
        assert project_id is not None
        state = Subscriber(connection_id, connection.user_id, delivered)
        self._catch_up(channel, connection_id, project_id, state)

    # ---- the event log ---------------------------------------------------------------------------

    def record(self, events: Iterable[Event]) -> list[Event]:
        """Keep the project events in their projects' logs, which number them: they come back
        with their ids (a user's notifications come back as they are). Events logged before
        (the same stream records, delivered again) are left out, and so are a resource's state
        updates that a later one in the batch makes stale."""
        kept: list[Event] = []
        by_project: dict[str, list[Event]] = {}
        for event in _latest_updates(events):
            if event.project_id is not None and event.user_id is None:
                by_project.setdefault(event.project_id, []).append(event)
            else:
                kept.append(event)
        for project_id, project_events in by_project.items():
            kept += self._log.append(project_id, project_events)
        return kept

    reads_for_events = staticmethod(project_reads)

    def events_page(
        self, principal: Principal, project_id: str, after: str | None, limit: int
    ) -> Page[Event]:
        """`GET /projects/{id}/events`: the project's kept events after `after` (all kept ones
        without it), oldest first; `next_cursor` is the last one's id while more follow."""
        self._access.require(principal.user_id, project_id, ProjectRole.VIEWER)
        if after is None:
            cutoff = self._clock.now() - EVENT_RETENTION
            rows = [e for e in self._log.read(project_id, 1, limit + 1) if e.at >= cutoff]
        else:
            rows = self._log.read(project_id, self._start(project_id, after) + 1, limit + 1)
        items = rows[:limit]
        more = len(rows) > limit
        return Page(items=items, next_cursor=items[-1].id if more and items else None)

    def _start(self, project_id: str, after: object) -> int:
        """The number of the event `after` names, if the log still holds every event after it:
        BadRequest for what is not the id of an event of this project, Gone when it is past
        the retention (or DynamoDB's TTL deleted it)."""
        position = parse_event_id(after) if isinstance(after, str) else None
        if position is None or position.project_id != project_id:
            raise BadRequest("after is not the id of an event of this project")
        found = self._log.read(project_id, position.seq, 1)
        if found and found[0].id == after:
            if found[0].at >= self._clock.now() - EVENT_RETENTION:
                return position.seq
        else:
            latest = self._log.latest(project_id)
            newest = parse_event_id(latest.id) if latest else None
            if newest is not None and (position.generation, position.seq) > (
                newest.generation,
                newest.seq,
            ):
                raise BadRequest("after is not the id of an event of this project")
        raise Gone(
            "the events after this one are no longer kept (7 days): read the project's "
            "current state again, then follow its events from now on"
        )

    def _catch_up(
        self,
        channel: str,
        connection_id: str,
        project_id: str,
        state: Subscriber | None,
        known: list[Event] | None = None,
    ) -> Published:
        """Send an in-order subscription the logged events after its last delivered one (the
        first page may be `known` already), a page at a time: each page claimed first (a
        conditional write from the number it is at), pushed in order, then released (the
        number moves to the page's last). While a claim is held, other senders leave the
        subscription to its holder, who reads the log again once it has released, so what was
        logged meanwhile is sent by it, after what it holds."""
        pushed = 0
        while state is not None and state.delivered is not None:
            now = self._clock.now()
            if state.claimed(now):
                break  # its holder reads the log again when it is done
            delivered = state.delivered
            events = known or self._log.read(project_id, delivered + 1, MAX_EVENTS_PAGE)
            known = None
            if not events:
                break
            through = _seq(events[-1])
            until = now + CLAIM_LEASE
            if not self._connections.claim(channel, connection_id, delivered, through, until, now):
                state = self._connections.subscriber(channel, connection_id)
                continue  # someone else moved it: go on from where they are
            for event in events:
                if not self._pusher.push(connection_id, event.frame()):
                    self._connections.remove(connection_id)
                    return Published(pushed, 1)
                pushed += 1
            if not self._connections.release(channel, connection_id, through):
                break  # the claim ran out and was taken over: its taker sends on
            state = replace(state, delivered=through, claimed_until=None)
        return Published(pushed)

    def _send_in_order(self, channel: str, subscriber: Subscriber, event: Event) -> Published:
        """One live event to an in-order subscription: left to a claim's holder, else sent as
        a page of one when the subscription is at the event before it, else (it is behind: an
        earlier event's fan-out has not come yet) with the events before it from the log."""
        position = parse_event_id(event.id)
        delivered = subscriber.delivered
        if position is None or delivered is None or delivered >= position.seq:
            return Published()
        known = [event] if delivered == position.seq - 1 else None
        return self._catch_up(
            channel, subscriber.connection_id, position.project_id, subscriber, known
        )

    # ---- fan-out ---------------------------------------------------------------------------------

    def publish(self, events: Iterable[Event]) -> Published:
        pushed = gone = handed_off = 0
        # A project's subscribers (and their memberships) are read once for all its events in
        # the batch: a firing's two execution writes often come together.
        found: dict[str, tuple[list[str], list[Subscriber]]] = {}
        for event in events:
            if event.user_id is None and event.project_id is not None:
                if event.project_id not in found:
                    found[event.project_id] = self._targets(event)
                targets, in_order = found[event.project_id]
            else:
                targets, in_order = self._targets(event)
            for subscriber in in_order:
                assert event.project_id is not None
                done = self._send_in_order(project_channel(event.project_id), subscriber, event)
                pushed += done.pushed
                gone += done.gone
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

    def _targets(self, event: Event) -> tuple[list[str], list[Subscriber]]:
        """The connections to push the event to as it is, and the in-order subscriptions."""
        if event.user_id is not None:
            return self._connections.connections_of(event.user_id), []
        if event.project_id is None:
            return [], []
        subscribers = self._connections.subscribers(project_channel(event.project_id))
        members = self._members(event.project_id, {s.user_id for s in subscribers})
        allowed = [s for s in subscribers if s.user_id in members]
        return (
            [s.connection_id for s in allowed if s.delivered is None],
            [s for s in allowed if s.delivered is not None],
        )

    def _members(self, project_id: str, user_ids: Sequence[str] | set[str]) -> set[str]:
        """Which of these users are still members (their memberships in one batch read)."""
        if not user_ids:
            return set()
        users = sorted(user_ids)
        self._prefetch.warm([reads.member(project_id, user) for user in users])
        return {user for user in users if self._projects.membership(project_id, user) is not None}
