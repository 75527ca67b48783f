"""The project event log: every event the WebSocket sends to a project's subscribers, kept in
order for 7 days so a client that was away can catch up (API.md, "Catching up").

Each project's events are numbered 1, 2, 3, ... with no gap: the number (`seq`) is taken by a
conditional write on the project's head, so two writers never take the same one and a reader
that has seen `n` has seen everything before it. An event's id is its project and its number
(`<project id>.<12-digit seq>`): orderable within the project, unique across projects, so a
connection subscribed to several projects never sees one id twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from chalicelib.domain.ids import ULID_LENGTH

EVENT_RETENTION: Final = timedelta(days=7)
SEQ_DIGITS: Final = 12
# One catch-up frame batch, and the most events one page of GET .../events holds.
MAX_EVENTS_PAGE: Final = 100


@dataclass(frozen=True, slots=True)
class EventPosition:
    """Where an event sits: its project and its number there."""

    project_id: str
    seq: int

    def __str__(self) -> str:
        return f"{self.project_id}.{self.seq:0{SEQ_DIGITS}d}"


def event_id(project_id: str, seq: int) -> str:
    return str(EventPosition(project_id, seq))


def parse_event_id(value: str) -> EventPosition | None:
    """The position an event id writes, or None if it is not an event id."""
    project_id, dot, digits = value.partition(".")
    if (
        not dot
        or len(project_id) != ULID_LENGTH
        or not project_id.isalnum()
        or len(digits) != SEQ_DIGITS
        or not digits.isdigit()
    ):
        return None
    seq = int(digits)
    return EventPosition(project_id, seq) if seq > 0 else None
