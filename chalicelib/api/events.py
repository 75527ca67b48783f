"""/projects/{id}/events: catching up on a project's events (API.md, "Catching up").

The events the WebSocket sent the project's subscribers, kept 7 days in order: a client that
was away reads them from the last one it saw (`after`), then follows the socket (whose
`subscribe` takes `after` too). Two DynamoDB calls: the caller's session with the project and
membership, then one Query of the log.
"""

from __future__ import annotations

from pydantic import Field

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, from_params, route
from chalicelib.representations.schemas import PageOut, ProjectEventOut
from chalicelib.services.realtime import RealtimeService

TAG = "projects"


class EventQuery(PageQuery):
    after: str | None = Field(
        None,
        max_length=64,
        description="The id of the last event you have: the page starts after it. "
        "Without it, the page starts at the oldest event kept.",
    )


@route(
    "/projects/{project_id}/events",
    "GET",
    tag=TAG,
    summary="The project's events after `after`, oldest first (kept 7 days; any member)",
    description="The events the WebSocket sends the project's subscribers (`{id, type, at, "
    "data}`), in the order they were sent. `next_cursor` is the last event's id while more "
    "follow (`cursor` and `after` mean the same). An `after` whose following events are no "
    "longer kept (7 days) is 410 `gone`: read the resources again, then follow from now on.",
    query=EventQuery,
    response=PageOut[ProjectEventOut],
    errors=(400, 404, 410, 422),
    prefetch=from_params(RealtimeService.reads_for_events, "project_id"),
)
def list_events(call: Call) -> PageOut[ProjectEventOut]:
    query: EventQuery = call.query
    page = bootstrap.container().realtime.events_page(
        call.principal, call.params["project_id"], query.after or query.cursor, query.limit
    )
    return PageOut[ProjectEventOut](
        items=[ProjectEventOut.of(e) for e in page.items], next_cursor=page.next_cursor
    )
