"""Real time: WebSocket channels, client frames and the events pushed to clients (API.md).

A client subscribes to `project:<id>` channels; every connection also gets its own user's
notifications without subscribing. Events are `{id, type, at, data}`, `data` being the resource
as the HTTP API returns it. Events come from the tables' streams (never from request handlers).
A project's events are kept in its event log first (`domain/event_log.py`), which gives them
their ids, in order; a user's notification keeps its stream record's id.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from chalicelib.domain.model import rfc3339

# API Gateway closes every WebSocket connection after 2 hours: stored connections and
# subscriptions expire then, so a lost `$disconnect` leaves nothing behind for long.
CONNECTION_LIFETIME: Final = timedelta(hours=2)
PROJECT_CHANNEL_PREFIX: Final = "project:"
# API Gateway's limit for one WebSocket message, with room for the frame's envelope.
MAX_FRAME_BYTES: Final = 128 * 1024 - 1024
# A fan-out larger than this is pushed in shares of this size: the first here, the others
# each by their own `fan_out` invocation, so no invocation nears Lambda's time limit however
# many connections a project has (16 pushes at a time at ~20 ms each: about a third of a
# second per share).
FAN_OUT_SHARE: Final = 250
# A client has no reason for more; each subscription is a write and a fan-out target.
MAX_SUBSCRIPTIONS: Final = 100


class EventType(enum.StrEnum):
    TASK_CREATED = "task.created"
    TASK_UPDATED = "task.updated"
    TASK_DELETED = "task.deleted"
    COMMENT_CREATED = "comment.created"
    EXECUTION_UPDATED = "execution.updated"
    WORKFLOW_RUN_UPDATED = "workflow_run.updated"
    NOTIFICATION = "notification"


@dataclass(frozen=True)
class Event:
    """One event for clients: to a project's subscribers, or to one user's connections."""

    id: str
    type: EventType
    at: datetime
    data: dict[str, Any]
    project_id: str | None = None
    user_id: str | None = None
    # Its data is only the resource's ids (it was too large for a frame when it was logged).
    truncated: bool = False
    # The stream record it was made from, once the event log has given it its own id: the
    # same record delivered again makes the same hook deliveries (services/hooks.py).
    source: str | None = field(default=None, compare=False)

    def frame(self) -> dict[str, Any]:
        """The frame clients get. One over API Gateway's 128 KiB message limit carries only
        the resource's ids and `"truncated": true`: the client reads the rest over HTTP."""
        frame = {"id": self.id, "type": self.type.value, "at": rfc3339(self.at), "data": self.data}
        if self.truncated:
            return {**frame, "truncated": True}
        if len(json.dumps(frame, separators=(",", ":"), default=str)) <= MAX_FRAME_BYTES:
            return frame
        ids = {k: v for k, v in self.data.items() if k == "id" or k.endswith("_id")}
        return {**frame, "data": ids, "truncated": True}


def project_channel(project_id: str) -> str:
    return PROJECT_CHANNEL_PREFIX + project_id


def project_of_channel(channel: str) -> str | None:
    """The project a channel names, or None if it names none."""
    if not channel.startswith(PROJECT_CHANNEL_PREFIX):
        return None
    project_id = channel.removeprefix(PROJECT_CHANNEL_PREFIX)
    return project_id if project_id and project_id.isalnum() and len(project_id) <= 64 else None


@dataclass(frozen=True)
class StreamChange:
    """One stream record of a table whose changes clients hear about, decoded to domain
    objects (`before` / `after`: None where the record has no such image)."""

    record_id: str  # the stream record's eventID: the pushed event's id
    at: datetime  # when the write happened (ApproximateCreationDateTime)
    operation: str  # INSERT | MODIFY | REMOVE
    before: Any
    after: Any


@dataclass(frozen=True)
class Connection:
    connection_id: str
    user_id: str
    connected_at: datetime
    expires_at: datetime
    channels: frozenset[str] = field(default_factory=frozenset)


def new_connection(connection_id: str, user_id: str, at: datetime) -> Connection:
    return Connection(connection_id, user_id, at, at + CONNECTION_LIFETIME)


@dataclass(frozen=True)
class Subscriber:
    connection_id: str
    user_id: str
    # A subscription made with `after` is delivered in order, exactly once: the number of the
    # last event of the project it was sent (see RealtimeService). None: live events only.
    delivered: int | None = None
    # While a sender holds a claim on the events after `delivered` (a replay's page), until
    # when; after that, anyone may take it over (the holder stopped on the way).
    claimed_until: datetime | None = None

    def claimed(self, now: datetime) -> bool:
        return self.claimed_until is not None and self.claimed_until > now


def error_frame(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, **extra}
