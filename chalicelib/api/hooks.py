"""Project webhooks (event subscriptions), admin+: /projects/{id}/hooks, /hooks/{id},
/hooks/{id}/deliveries and /deliveries/{id}/redeliver.

Hook and delivery ids name their project the way a task id does, so each route reads the item,
its project and the caller's membership with the session.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, from_params, route
from chalicelib.domain.hooks import Delivery, DeliveryStatus, Hook, HookCreate, HookUpdate
from chalicelib.representations.schemas import Out, PageOut
from chalicelib.services.hooks import HookService

TAG = "hooks"


class HookOut(Out):
    id: str
    project_id: str
    url: str
    events: list[str]
    active: bool
    consecutive_failures: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, hook: Hook) -> HookOut:
        return cls(
            id=hook.id,
            project_id=hook.project_id,
            url=hook.url,
            events=list(hook.events),
            active=hook.active,
            consecutive_failures=hook.consecutive_failures,
            created_by=hook.created_by,
            created_at=hook.created_at,
            updated_at=hook.updated_at,
            version=hook.version,
        )


class DeliveryOut(Out):
    id: str
    hook_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    response_status: int | None
    error: str | None
    redelivery_of: str | None
    created_at: datetime
    updated_at: datetime | None

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        return cls(
            id=delivery.id,
            hook_id=delivery.hook_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            status=delivery.status,
            attempts=delivery.attempts,
            response_status=delivery.response_status,
            error=delivery.error,
            redelivery_of=delivery.redelivery_of,
            created_at=delivery.created_at,
            updated_at=delivery.updated_at,
        )


@route(
    "/projects/{project_id}/hooks",
    "POST",
    tag=TAG,
    status=201,
    summary="Subscribe a URL to a project's events (admin+); a private address is 422",
    body=HookCreate,
    response=HookOut,
    errors=(403, 404, 409, 422),
    prefetch=from_params(HookService.reads_for_project, "project_id"),
)
def create_hook(call: Call) -> HookOut:
    return HookOut.of(
        bootstrap.container().hooks.create(call.principal, call.params["project_id"], call.body)
    )


@route(
    "/projects/{project_id}/hooks",
    "GET",
    tag=TAG,
    summary="The hooks of a project, newest first (admin+)",
    query=PageQuery,
    response=PageOut[HookOut],
    errors=(400, 403, 404, 422),
    prefetch=from_params(HookService.reads_for_project, "project_id"),
)
def list_hooks(call: Call) -> PageOut[HookOut]:
    page = bootstrap.container().hooks.find(
        call.principal, call.params["project_id"], call.query.page()
    )
    return PageOut[HookOut](items=[HookOut.of(h) for h in page.items], next_cursor=page.next_cursor)


@route(
    "/hooks/{hook_id}",
    "GET",
    tag=TAG,
    summary="A project hook (admin+)",
    response=HookOut,
    errors=(403, 404),
    prefetch=from_params(HookService.reads_for_hook, "hook_id"),
)
def get_hook(call: Call) -> HookOut:
    return HookOut.of(bootstrap.container().hooks.get(call.principal, call.params["hook_id"]))


@route(
    "/hooks/{hook_id}",
    "PATCH",
    tag=TAG,
    summary="Change a project hook (fields present are applied; `active: true` also resets "
    "its failure count)",
    body=HookUpdate,
    response=HookOut,
    errors=(403, 404, 409, 412, 422),
    prefetch=from_params(HookService.reads_for_hook, "hook_id"),
)
def update_hook(call: Call) -> HookOut:
    hook = bootstrap.container().hooks.update(
        call.principal, call.params["hook_id"], call.body, call.if_match
    )
    return HookOut.of(hook)


@route(
    "/hooks/{hook_id}",
    "DELETE",
    tag=TAG,
    status=204,
    summary="Delete a project hook (admin+)",
    errors=(403, 404, 409, 412),
    prefetch=from_params(HookService.reads_for_hook, "hook_id"),
)
def delete_hook(call: Call) -> None:
    bootstrap.container().hooks.delete(call.principal, call.params["hook_id"], call.if_match)


@route(
    "/hooks/{hook_id}/deliveries",
    "GET",
    tag=TAG,
    summary="A hook's deliveries, newest first: status, attempts, last response status, error",
    query=PageQuery,
    response=PageOut[DeliveryOut],
    errors=(400, 403, 404, 422),
    prefetch=from_params(HookService.reads_for_hook, "hook_id"),
)
def list_deliveries(call: Call) -> PageOut[DeliveryOut]:
    page = bootstrap.container().hooks.deliveries(
        call.principal, call.params["hook_id"], call.query.page()
    )
    return PageOut[DeliveryOut](
        items=[DeliveryOut.of(d) for d in page.items], next_cursor=page.next_cursor
    )


@route(
    "/deliveries/{delivery_id}/redeliver",
    "POST",
    tag=TAG,
    status=202,
    summary="Deliver a delivery's event to its hook again: a new delivery (`redelivery_of` "
    "names the original), queued at once; 409 if the hook is inactive",
    response=DeliveryOut,
    errors=(403, 404, 409),
    prefetch=from_params(HookService.reads_for_delivery, "delivery_id"),
)
def redeliver(call: Call) -> DeliveryOut:
    return DeliveryOut.of(
        bootstrap.container().hooks.redeliver(call.principal, call.params["delivery_id"])
    )
