"""The project event log: every event the WebSocket sends to a project's subscribers, kept in
order for 7 days so a client that was away can catch up (API.md, "Catching up").

Each project's events are numbered 1, 2, 3, ... with no gap: an event is written at the number
after the latest one only if that number is free (a conditional put), so two writers never take
the same number, and a number is only ever written by one who saw the number before it: a
reader that has seen `n` has seen everything before it.

An event's id is `<project id>.<generation>.<number>` (13 and 12 digits): orderable within the
project, unique across projects. The generation is when the project's numbering began (epoch
milliseconds). A project that stays quiet for longer than the retention loses its events to
DynamoDB's TTL, newest included; its numbering then begins again in a new generation, so ids
never go back and never repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from chalicelib.domain.ids import ULID_LENGTH

EVENT_RETENTION: Final = timedelta(days=7)
GENERATION_DIGITS: Final = 13
SEQ_DIGITS: Final = 12
# One catch-up frame batch, and the most events one page of GET .../events holds.
MAX_EVENTS_PAGE: Final = 100


@dataclass(frozen=True, slots=True)
class EventPosition:
    """Where an event sits: its project, the generation of the project's numbering, and its
    number (the log's key within the project)."""

    project_id: str
    generation: int
    seq: int

    def __str__(self) -> str:
        return (
            f"{self.project_id}.{self.generation:0{GENERATION_DIGITS}d}.{self.seq:0{SEQ_DIGITS}d}"
        )


def event_id(project_id: str, generation: int, seq: int) -> str:
    return str(EventPosition(project_id, generation, seq))


def parse_event_id(value: str) -> EventPosition | None:
    """The position an event id writes, or None if it is not an event id."""
    parts = value.split(".")
    if len(parts) != 3:
        return None
    project_id, generation, digits = parts
    if (
        len(project_id) != ULID_LENGTH
        or not project_id.isalnum()
        or len(generation) != GENERATION_DIGITS
        or not generation.isdigit()
        or len(digits) != SEQ_DIGITS
        or not digits.isdigit()
    ):
        return None
    seq = int(digits)
    return EventPosition(project_id, int(generation), seq) if seq > 0 else None


def generation_at(at: datetime) -> int:
    """The generation a numbering begun at `at` has."""
    return int((at - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))


def next_position(
    project_id: str, latest: EventPosition | None, latest_at: datetime | None, at: datetime
) -> EventPosition:
    """Where the event after `latest` (the project's latest kept event, written at
    `latest_at`) goes, for an event happening at `at`: the next number, in the same generation
    unless the latest is past the retention (its predecessors may be gone already: a new
    generation keeps ids from repeating ones that existed)."""
    if latest is None:
        return EventPosition(project_id, generation_at(at), 1)
    fresh = latest_at is not None and latest_at >= at - EVENT_RETENTION
    generation = latest.generation if fresh else max(generation_at(at), latest.generation + 1)
    return EventPosition(project_id, generation, latest.seq + 1)
