"""/notifications: the caller's own notifications, newest first; mark one or all read.

The caller's "read up to" mark comes with the session (what the use cases declare, see
`chalicelib.services.notifications`), so listing is one Query
more and "read all" at most two calls more, whatever the number of notifications.
"""

from __future__ import annotations

from pydantic import Field

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, from_params, route
from chalicelib.representations.schemas import NotificationOut, PageOut
from chalicelib.services.notifications import NotificationService

TAG = "notifications"


class NotificationQuery(PageQuery):
    unread: bool = Field(False, description="true: only the unread ones.")


@route(
    "/notifications",
    "GET",
    tag=TAG,
    summary="Your notifications, newest first (unread=true: only the unread ones)",
    query=NotificationQuery,
    response=PageOut[NotificationOut],
    errors=(400, 422),
    prefetch=from_params(NotificationService.reads_for_inbox),
)
def list_notifications(call: Call) -> PageOut[NotificationOut]:
    query: NotificationQuery = call.query
    page = bootstrap.container().notifications.find(
        call.principal, query.page(), unread_only=query.unread
    )
    return PageOut[NotificationOut](
        items=[NotificationOut.of(n) for n in page.items], next_cursor=page.next_cursor
    )


@route(
    "/notifications/read-all",
    "POST",
    tag=TAG,
    status=204,
    summary="Mark every notification you have read",
    prefetch=from_params(NotificationService.reads_for_inbox),
)
def read_all_notifications(call: Call) -> None:
    bootstrap.container().notifications.mark_all_read(call.principal)


@route(
    "/notifications/{notification_id}/read",
    "POST",
    tag=TAG,
    status=204,
    summary="Mark one of your notifications read",
    errors=(404,),
)
def read_notification(call: Call) -> None:
    bootstrap.container().notifications.mark_read(call.principal, call.params["notification_id"])
