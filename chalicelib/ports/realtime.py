"""WebSocket connections, their subscriptions, and pushing frames to them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

# The domain's types are for annotations only (see the package's docstring).
if TYPE_CHECKING:
    from chalicelib.domain.realtime import Connection, Subscriber


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

    def subscribe(self, connection: Connection, channel: str) -> bool:
        """Subscribe; False if the connection is gone (it must exist, conditionally)."""
        ...

    def unsubscribe(self, connection: Connection, channel: str) -> None: ...

    def subscribers(self, channel: str) -> list[Subscriber]: ...

    def connections_of(self, user_id: str) -> list[str]: ...
