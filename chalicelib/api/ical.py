"""A calendar feed as RFC 5545 text, written by the `icalendar` library (escaping, CRLF line
endings and 75-octet folding are its job).

`icalendar` is imported on first use: it takes ~0.2 s to import, which only the feed routes
should pay, not every cold start (bench/coldstart.py).

The output depends on the feed alone (no "now" in it: DTSTAMP is the task's last change, as
RFC 5545 asks of an object without METHOD), so the ETag can hash the feed instead of the text.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from chalicelib.domain.calendars import Feed, FeedEvent

if TYPE_CHECKING:
    from icalendar import Event

PRODID = "-//Taskbeat//Calendar feed//EN"
# Feeds' ETags hash the feed and this (api/calendar.py): bump it whenever `render` writes the
# same feed differently, so clients holding the old text get the new one.
FORMAT = "taskbeat-ics-1"
MEDIA_TYPE = "text/calendar; charset=utf-8"
# How often clients are asked to refresh (RFC 7986 REFRESH-INTERVAL; X-PUBLISHED-TTL for the
# clients that only know the older property).
REFRESH_INTERVAL = timedelta(hours=1)


def render(feed: Feed) -> str:
    from icalendar import Calendar

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", feed.name)
    calendar.add("x-wr-timezone", feed.timezone)
    calendar.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    for event in feed.events:
        calendar.add_component(_vevent(event))
    text: bytes = calendar.to_ical()
    return text.decode("utf-8")


def _vevent(event: FeedEvent) -> Event:
    from icalendar import Event

    vevent = Event()
    vevent.add("uid", event.uid)
    vevent.add("dtstamp", event.stamp)
    vevent.add("created", event.created)
    vevent.add("last-modified", event.stamp)
    vevent.add("summary", event.summary)
    vevent.add("description", event.description)
    vevent.add("dtstart", event.start)
    vevent.add("dtend", event.end)
    vevent.add("status", "CANCELLED" if event.cancelled else "CONFIRMED")
    vevent.add("priority", event.priority)
    # A due date is not a meeting: it never makes its owner look busy.
    vevent.add("transp", "TRANSPARENT")
    if event.categories:
        vevent.add("categories", list(event.categories))
    return vevent
