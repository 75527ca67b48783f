"""Calendar feeds: the feed token's scheme, which tasks a feed shows, and each task as an event.

A user's calendar token is derived, never stored (docs/security.md, "Calendar feeds"):

    token  = base64url(HMAC-SHA256(calendar key, "<user id>:<nonce>"))   43 characters
    lookup = SHA-256(token), hex                                          the only stored form

The calendar key is derived from the deployment's derivation key; the nonce is 16 random bytes
kept on the user's item and replaced by each rotation. The profile recomputes the token for
display; a feed request hashes the token it was given and finds its user by that hash.

What a feed is, as plain data (rendering it as RFC 5545 text is the HTTP layer's job): the
tasks with a due date from `FEED_WINDOW` ago onwards, at most `FEED_MAX_EVENTS` of them, each
a `VEVENT` whose `UID` is `<task id>@taskbeat`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from chalicelib.domain.tasks import Priority, Status, Task

# Due dates older than this are left out of feeds: a calendar is about what is coming.
FEED_WINDOW = timedelta(days=90)
# At most this many events (and index items read) per feed: bounds the work of a request
# anyone holding the URL may repeat. The earliest due dates of the window come first.
FEED_MAX_EVENTS = 1_000
# A timed due date shows as an event of this length starting at the due time.
TIMED_EVENT_LENGTH = timedelta(minutes=30)
DESCRIPTION_MAX = 1_000  # characters of the task's description a feed repeats
UID_DOMAIN = "taskbeat"
FEED_NOT_FOUND = "calendar not found"

NONCE_BYTES = 16
TOKEN_LENGTH = 43  # base64url of 32 bytes, unpadded
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
# RFC 5545 TEXT may not hold control characters other than tab (newlines are escaped).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# iCalendar PRIORITY: 1 is the highest, 9 the lowest.
ICAL_PRIORITY = {Priority.URGENT: 1, Priority.HIGH: 3, Priority.MEDIUM: 5, Priority.LOW: 9}


# ---- tokens -----------------------------------------------------------------------------------


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def derive_token(key: bytes, user_id: str, nonce: str) -> str:
    digest = hmac.new(key, f"{user_id}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def lookup_of(token: str) -> str:
    """The stored form of a token: what its lookup item is keyed by."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def same_token(expected: str, given: str) -> bool:
    """Constant-time comparison of two tokens (of the token alphabet)."""
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii"))


def plausible_token(value: str) -> bool:
    """Whether `value` has the shape of a token at all (anything else costs no read)."""
    return _TOKEN_SHAPE.fullmatch(value) is not None


class CalendarKeys:
    """Derives tokens from a user's nonce with the calendar key (itself derived from the
    deployment's derivation key, read on first use)."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._key = key

    def token(self, user_id: str, nonce: str) -> str:
        return derive_token(self._key(), user_id, nonce)

    def lookup(self, user_id: str, nonce: str) -> str:
        return lookup_of(self.token(user_id, nonce))

    def issue(self, user_id: str) -> tuple[str, str]:
        """A new nonce for the user, and the lookup of the token it gives."""
        nonce = new_nonce()
        return nonce, self.lookup(user_id, nonce)


# ---- feeds ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedEvent:
    """One task as a calendar event. `start`/`end` are dates for an all-day event (`end` the
    day after, exclusive), else UTC datetimes."""

    uid: str
    summary: str
    description: str
    start: date | datetime
    end: date | datetime
    stamp: datetime  # the task's last change (DTSTAMP / LAST-MODIFIED)
    created: datetime
    cancelled: bool
    priority: int
    categories: tuple[str, ...]

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, datetime)


@dataclass(frozen=True)
class Feed:
    name: str  # X-WR-CALNAME
    timezone: str  # the token owner's, a hint for clients (X-WR-TIMEZONE)
    events: tuple[FeedEvent, ...]


def window_start(now: datetime) -> datetime:
    return now - FEED_WINDOW


def plain_text(value: str, limit: int | None = None) -> str:
    """Text a calendar may show: no control characters, normalised, at most `limit` long."""
    text = _CONTROL.sub("", unicodedata.normalize("NFC", value)).replace("\r\n", "\n")
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _event_time(due: datetime, timezone: str) -> tuple[date | datetime, date | datetime]:
    """A due date at 23:59:59 in the owner's time zone is what a plain `YYYY-MM-DD` becomes
    (domain/tasks.end_of_day): an all-day event on that day. Any other is a timed event."""
    local = due.astimezone(zoneinfo.ZoneInfo(timezone))
    if local.time() == time(23, 59, 59):
        day = local.date()
        return day, day + timedelta(days=1)
    start = due.astimezone(UTC)
    return start, start + TIMED_EVENT_LENGTH


def _description(task: Task) -> str:
    facts = [f"Status: {task.status.value.replace('_', ' ')}", f"Priority: {task.priority.value}"]
    if task.tags:
        facts.append("Tags: " + ", ".join(task.tags))
    text = " · ".join(facts)
    if task.description.strip():
        text += "\n\n" + plain_text(task.description.strip(), DESCRIPTION_MAX)
    return text


def event_of(task: Task, timezone: str) -> FeedEvent:
    assert task.due_date is not None, "only tasks with a due date are events"
    start, end = _event_time(task.due_date, timezone)
    return FeedEvent(
        uid=f"{task.id}@{UID_DOMAIN}",
        summary=plain_text(task.title) or "(untitled)",
        description=_description(task),
        start=start,
        end=end,
        stamp=task.updated_at.astimezone(UTC),
        created=task.created_at.astimezone(UTC),
        cancelled=task.status == Status.CANCELLED,
        priority=ICAL_PRIORITY[task.priority],
        categories=tuple(plain_text(tag) for tag in task.tags),
    )


def _due_order(task: Task) -> tuple[datetime, str]:
    assert task.due_date is not None
    return task.due_date, task.id


def build_feed(name: str, timezone: str, tasks: Iterable[Task], since: datetime) -> Feed:
    """The feed of `tasks`: those with a due date at or after `since`, earliest first, at most
    `FEED_MAX_EVENTS` (repositories already read them so; this holds fakes to it too)."""
    dated = sorted(
        (t for t in tasks if t.due_date is not None and t.due_date >= since), key=_due_order
    )[:FEED_MAX_EVENTS]
    return Feed(
        name=plain_text(name, 200),
        timezone=timezone,
        events=tuple(event_of(task, timezone) for task in dated),
    )
