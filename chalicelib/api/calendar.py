"""Calendar feeds (RFC 5545) behind a secret URL, and the rotation of their token.

- `GET /calendar/{calendar_token}.ics`: the tasks assigned to the token's user.
- `GET /calendar/{calendar_token}/projects/{project_id}.ics`: a project's tasks, while the
  token's user is a member of it (viewer or more).
- `POST /users/profile/calendar-token`: a new token; the old one stops working at once.

The feed routes take no bearer token: calendar clients cannot send one, so the path is the
secret. API Gateway (and Chalice) capture whole path segments only, so the segments are
declared as `{calendar}` and `{project}` and the view takes the `.ics` off them. The token
never reaches a log: the access log names the route's template, and the local server's
request lines go through `redact_path`.
"""

from __future__ import annotations

import hashlib
import re

from pydantic import Field

from chalicelib import bootstrap
from chalicelib.api import ical
from chalicelib.api.routing import Call, Reply, from_params, route
from chalicelib.domain.calendars import FEED_NOT_FOUND, Feed
from chalicelib.domain.errors import NotFound
from chalicelib.representations.schemas import Out
from chalicelib.services.calendars import CalendarService

TAG = "calendar"
SUFFIX = ".ics"
# Feeds may be kept by the client that fetched them (never by shared caches: the URL is a
# secret) for a few minutes; after that, `If-None-Match` with the ETag answers 304.
CACHE_CONTROL = "private, max-age=300"
FEED_HEADERS = {
    "ETag": "A hash of the feed; `If-None-Match` with it answers 304 while nothing changed",
    "Cache-Control": CACHE_CONTROL,
}
FEED_BODY = (
    "An iCalendar (RFC 5545) feed: one VEVENT per task with a due date (UID `<task id>@taskbeat`)"
)
WINDOW_NOTE = (
    " Tasks due from 90 days ago onwards, earliest first, at most 1,000. A plain due date"
    " (the end of a day in the token owner's time zone) is an all-day event; any other is a"
    " 30-minute event starting at the due time."
)
_CALENDAR_SEGMENT = re.compile(r"(/calendar/)[^/?#\s\"]+")


class CalendarTokenOut(Out):
    calendar_token: str = Field(
        description="The secret of your calendar feeds' URLs: "
        "`/calendar/{calendar_token}.ics` and `/calendar/{calendar_token}/projects/{id}.ics`."
    )


def redact_path(text: str) -> str:
    """`text` (a path, a log line) with any calendar token in it replaced."""
    return _CALENDAR_SEGMENT.sub(r"\1[redacted]", text)


def _strip_suffix(segment: str) -> str:
    if not segment.endswith(SUFFIX):
        raise NotFound(FEED_NOT_FOUND)
    return segment[: -len(SUFFIX)]


def _etag(feed: Feed) -> str:
    """A hash of what the feed holds (the text is a function of it and of the renderer's
    format), so a client's `If-None-Match` is answered before rendering: rendering is most of
    a feed's cost (about 0.7 ms of CPU an event here)."""
    described = f"{ical.FORMAT}|{feed!r}".encode()
    return '"' + hashlib.sha256(described).hexdigest()[:32] + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _feed_reply(call: Call, feed: Feed) -> Reply:
    etag = _etag(feed)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _matches(call.request.headers.get("if-none-match"), etag):
        return Reply("", 304, headers)
    return Reply(ical.render(feed), 200, headers)


@route(
    "/calendar/{calendar}",
    "GET",
    tag=TAG,
    auth=False,
    summary="Your calendar feed: your assigned tasks (no bearer token: the URL is the secret)",
    description="`calendar` is your calendar token (`GET /users/profile`) followed by `.ics`."
    + WINDOW_NOTE
    + " An unknown or rotated token is 404.",
    content_type=ical.MEDIA_TYPE,
    text_body=FEED_BODY,
    headers=FEED_HEADERS,
    param_docs={"calendar": "Your calendar token followed by `.ics`"},
    conditional=True,
    errors=(404,),
)
def user_feed(call: Call) -> Reply:
    token = _strip_suffix(call.params["calendar"])
    return _feed_reply(call, bootstrap.container().calendars.user_feed(token))


@route(
    "/calendar/{calendar}/projects/{project}",
    "GET",
    tag=TAG,
    auth=False,
    summary="A project's calendar feed, for its members (no bearer token: the URL is the secret)",
    description="`calendar` is your calendar token; `project` is the project's id followed by "
    "`.ics`. Every task of the project with a due date, while you are a member of it (viewer or "
    "more)." + WINDOW_NOTE + " An unknown token, an unknown project and a project you are not "
    "a member of are the same 404.",
    content_type=ical.MEDIA_TYPE,
    text_body=FEED_BODY,
    headers=FEED_HEADERS,
    param_docs={
        "calendar": "Your calendar token",
        "project": "The project's id followed by `.ics`",
    },
    conditional=True,
    errors=(404,),
)
def project_feed(call: Call) -> Reply:
    project_id = _strip_suffix(call.params["project"])
    feed = bootstrap.container().calendars.project_feed(call.params["calendar"], project_id)
    return _feed_reply(call, feed)


@route(
    "/users/profile/calendar-token",
    "POST",
    session_only=True,
    tag=TAG,
    summary="Rotate your calendar token: feeds' URLs with the old one stop working at once",
    response=CalendarTokenOut,
    prefetch=from_params(CalendarService.reads_for_rotate),
    idempotency="sealed",  # the answer carries the new token: kept encrypted
)
def rotate_token(call: Call) -> CalendarTokenOut:
    token = bootstrap.container().calendars.rotate(call.principal)
    return CalendarTokenOut(calendar_token=token)
