"""WebSocket connections, their subscriptions, and pushing frames to them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

# The domain's types are for annotations only (see the package's docstring).
if TYPE_CHECKING:
    from chalicelib.domain.realtime import Connection, Event, Subscriber


class Pusher(Protocol):
    def push(self, connection_id: str, message: dict[str, object]) -> bool:
        """Send one JSON frame; False if the connection is gone (API Gateway's 410)."""
        ...

    def push_many(self, connection_ids: Sequence[str], message: dict[str, object]) -> list[str]:
        """Send one frame to many connections side by side; the ids of those that are gone."""
        ...


class FanOut(Protocol):
    def dispatch(self, connection_ids: Sequence[str], frame: dict[str, Any]) -> None:
        """Have these connections pushed `frame` elsewhere (another invocation), not here."""
        ...


class ConnectionRepository(Protocol):
    """Open WebSocket connections and their channel subscriptions (expiring with them)."""

    def add(self, connection: Connection) -> None: ...

    def get(self, connection_id: str) -> Connection | None: ...

    def remove(self, connection_id: str) -> None:
        """Forget the connection and every subscription it holds (idempotent)."""
        ...

    def subscribe(self, connection: Connection, channel: str, delivered: int | None = None) -> bool:
        """Subscribe; False if the connection is gone (it must exist, conditionally).
        `delivered`: the subscription is delivered in order from the event after that number."""
        ...

    def claim(
        self,
        channel: str,
        connection_id: str,
        sent: int,
        through: int,
        until: datetime,
        now: datetime,
    ) -> bool:
        """Claim the events after `sent` up to `through` for sending, until `until`: only if the
        subscription is still at `sent` and no live claim is held on it."""
        ...

    def release(self, channel: str, connection_id: str, through: int) -> bool:
        """The claim's events are sent: the subscription is at `through`, and free (False if
        the claim is no longer this one: it expired and was taken over)."""
        ...

    def subscriber(self, channel: str, connection_id: str) -> Subscriber | None:
        """One subscription as it is now (None: no such subscription)."""
        ...

    def unsubscribe(self, connection: Connection, channel: str) -> None: ...

    def subscribers(self, channel: str) -> list[Subscriber]: ...

    def connections_of(self, user_id: str) -> list[str]: ...


class EventLog(Protocol):
    """Each project's events in order, numbered 1, 2, 3, ... without gaps, kept 7 days
    (`chalicelib.domain.event_log`)."""

    def append(self, project_id: str, events: Sequence[Event]) -> list[Event]:
        """Keep these events of the project, in this order, after its latest one; they come
        back with their event ids. Best effort against a stream batch delivered twice: an
        event whose `id` (its stream record's) this log kept lately is left out."""
        ...

    def read(self, project_id: str, from_seq: int, limit: int) -> list[Event]:
        """Up to `limit` kept events of the project numbered `from_seq` or more, in order
        (including any past retention that DynamoDB's TTL has not deleted yet)."""
        ...

    def latest(self, project_id: str) -> Event | None:
        """The project's latest kept event (None: none is kept)."""
        ...
