"""Project webhooks (event subscriptions): a hook, its deliveries, and their retry schedule.

A hook (`POST /projects/{id}/hooks`, admin+) names a URL and the event types it wants, of those
the WebSocket sends a project's subscribers (`realtime.EventType` without `notification`). Each
matching event becomes one delivery: the event `{id, type, at, data}` POSTed to the URL with
`X-Taskbeat-Event`, `X-Taskbeat-Delivery` (the delivery id) and `X-Taskbeat-Signature` (signed
like webhook actions, with the project's webhook secret).

A failed attempt is retried after `base * 2^(n-1)` seconds (n = attempts made so far), until
the next attempt would come later than `window` after the delivery was made: the delivery is
then `failed`. `HOOK_DISABLE_AFTER` consecutive failed deliveries of a hook (a succeeded one
resets the count) turn it `active: false`.

Ids: hooks and deliveries have scoped ids (their own ULID + their project's), so a request about
either reads it, its project and the caller's membership in one round trip. A delivery's id is
derived from (hook, event): a stream batch delivered twice makes the same delivery, not two.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import Field, field_validator

from chalicelib.domain.ids import ScopedId
from chalicelib.domain.model import Input, rfc3339
from chalicelib.domain.realtime import Event, EventType
from chalicelib.domain.webhooks import WebhookUrl, signature_header

EVENT_HEADER: Final = "X-Taskbeat-Event"
HOOK_DISABLE_AFTER: Final = 20
HOOKS_PER_PROJECT_MAX: Final = 50
# SQS refuses a visibility timeout over 12 hours: a longer backoff waits in steps of this.
MAX_DELAY_SECONDS: Final = 12 * 3600
ERROR_MAX: Final = 500


class HookEventType(enum.StrEnum):
    """The event types a hook may subscribe to: what the WebSocket sends to a project."""

    TASK_CREATED = EventType.TASK_CREATED.value
    TASK_UPDATED = EventType.TASK_UPDATED.value
    TASK_DELETED = EventType.TASK_DELETED.value
    COMMENT_CREATED = EventType.COMMENT_CREATED.value
    EXECUTION_UPDATED = EventType.EXECUTION_UPDATED.value
    WORKFLOW_RUN_UPDATED = EventType.WORKFLOW_RUN_UPDATED.value


HOOK_EVENT_TYPES: Final = frozenset(t.value for t in HookEventType)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class Hook:
    id: str
    project_id: str
    url: str
    events: tuple[str, ...]
    active: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int = 1
    consecutive_failures: int = 0  # failed deliveries since the last success (system-kept)

    def with_changes(self, **changes: Any) -> Hook:
        return replace(self, **changes)

    def wants(self, event_type: str) -> bool:
        return self.active and event_type in self.events


@dataclass(frozen=True)
class Delivery:
    id: str
    hook_id: str
    project_id: str
    event_id: str
    event_type: str
    body: str  # the JSON POSTed: {id, type, at, data}
    created_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    response_status: int | None = None
    error: str | None = None
    updated_at: datetime | None = None
    redelivery_of: str | None = None

    def with_changes(self, **changes: Any) -> Delivery:
        return replace(self, **changes)


def _events(value: list[str]) -> list[str]:
    unknown = [v for v in value if v not in HOOK_EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event types {unknown}: use any of {sorted(HOOK_EVENT_TYPES)}")
    return list(dict.fromkeys(value))


class HookCreate(Input):
    url: WebhookUrl
    events: list[str] = Field(min_length=1, max_length=len(HookEventType))
    active: bool = True

    _check_events = field_validator("events")(_events)


class HookUpdate(Input):
    """Fields present are applied; `events` replaces the whole list."""

    url: WebhookUrl | None = None
    events: list[str] | None = Field(None, min_length=1, max_length=len(HookEventType))
    active: bool | None = None

    @field_validator("url", "events", "active")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    @field_validator("events")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _events(value)


# ---- ids ----------------------------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_hook_id(project_id: str) -> str:
    return str(ScopedId.new(project_id))


def new_delivery_id(project_id: str) -> str:
    return str(ScopedId.new(project_id))


def delivery_id_for(hook_id: str, event_id: str, at: datetime, project_id: str) -> str:
    """The delivery of `event_id` to `hook_id`: a ULID whose time is the event's and whose
    random part is a hash of both ids, so the same event and hook always make the same id."""
    millis = max(0, int(at.timestamp() * 1000)) & ((1 << 48) - 1)
    digest = hashlib.sha256(f"{hook_id}\n{event_id}".encode()).digest()
    value = (millis << 80) | int.from_bytes(digest[:10], "big")
    item = "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))
    return str(ScopedId(item, project_id))


# ---- what is sent -------------------------------------------------------------------------------


def event_body(event: Event) -> str:
    """The JSON a delivery POSTs: the event as the WebSocket sends it (`{id, type, at, data}`)."""
    frame = {"id": event.id, "type": event.type.value, "at": rfc3339(event.at), "data": event.data}
    return json.dumps(frame, separators=(",", ":"), default=str)


def delivery_headers(delivery: Delivery, secret: str, timestamp: int) -> dict[str, str]:
    from chalicelib.domain.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER

    return {
        "Content-Type": "application/json",
        "User-Agent": "Taskbeat-Hooks/1",
        EVENT_HEADER: delivery.event_type,
        DELIVERY_HEADER: delivery.id,
        SIGNATURE_HEADER: signature_header(secret, timestamp, delivery.body.encode("utf-8")),
    }


# ---- the retry schedule -------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrySchedule:
    """Exponential backoff: `base_seconds` before the first retry, doubling, for `window`."""

    base_seconds: float
    window: timedelta

    def delay_after(self, attempts: int) -> float:
        """Seconds between attempt `attempts` (1 = the first) and the next one."""
        return float(min(self.base_seconds * 2 ** max(0, attempts - 1), MAX_DELAY_SECONDS))

    def next_retry(self, created_at: datetime, attempts: int, now: datetime) -> float | None:
        """The delay before the next attempt, or None if it would fall past the window."""
        delay = self.delay_after(attempts)
        if now + timedelta(seconds=delay) > created_at + self.window:
            return None
        return delay


def short_error(error: str | None) -> str | None:
    return None if error is None else error[:ERROR_MAX]


# ---- queue messages -----------------------------------------------------------------------------


def message_body(delivery_id: str) -> str:
    """The queue message of a delivery: its id only (the body sent is on the record)."""
    return json.dumps({"delivery_id": delivery_id}, separators=(",", ":"))


def delivery_of(body: str) -> str | None:
    """The delivery a queue message names, or None for a message that names none."""
    try:
        value = json.loads(body).get("delivery_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None
