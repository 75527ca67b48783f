"""Project webhooks: their routes (admin+), the stream's hand-off (`dispatch`) and one
delivery attempt (`attempt`, run by the `deliver_hooks` function from the queue).

Who may do what: a caller who is not a member of the project gets 404; members below admin 403.

Dispatch (the stream consumer, never a request): the events of a batch are grouped by project;
each project's active hooks are one Query; each (event, hook) whose type the hook wants becomes a
delivery record (`pending`, id derived from the pair: a batch the stream delivers again finds
the records it made and makes none twice) and a queue message naming it (sent in batches).

An attempt (`attempt`): the delivery and its hook are read; a delivery already settled, or
whose hook is gone or inactive, is over. Otherwise the event is POSTed (signed like webhook
actions with the project's secret; the URL is checked again by the client: a private address is
refused at delivery as at creation) and its outcome recorded on the delivery (conditional on the
attempts read, so a message handed out twice records once). A failure is retried after the
schedule's delay (`Retry`), until the next attempt would come more than the window after the
delivery was made: it is then `failed`. A settled delivery moves its hook's consecutive-failure
count: +1 (an atomic ADD) for a failure, back to 0 for a success; the failure that brings it to
exactly `HOOK_DISABLE_AFTER` disables the hook (a conditional write: once) and notifies the
project's admins and owner (`hook.disabled`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.activity import Notification, NotificationType
from chalicelib.domain.errors import Conflict, NotFound, ValidationFailed
from chalicelib.domain.hooks import (
    HOOK_DISABLE_AFTER,
    HOOK_EVENT_TYPES,
    HOOKS_PER_PROJECT_MAX,
    Delivery,
    DeliveryStatus,
    Hook,
    HookCreate,
    HookUpdate,
    RetrySchedule,
    delivery_headers,
    delivery_id_for,
    event_body,
    new_delivery_id,
    new_hook_id,
    short_error,
)
from chalicelib.domain.ids import project_of
from chalicelib.domain.model import Page, PageRequest, new_id
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import ProjectRole
from chalicelib.domain.realtime import Event
from chalicelib.domain.webhooks import WebhookRequest, WebhookResult
from chalicelib.ports import (
    Clock,
    DeliveryQueue,
    DeliveryRepository,
    HookRepository,
    NotificationRepository,
    Prefetcher,
    PrefetchKey,
    ProjectRepository,
    WebhookClient,
    reads,
)
from chalicelib.services.access import ProjectAccess, ProjectContext, project_reads, scoped_reads
from chalicelib.services.common import require_version, with_version_retries

MANAGE_ROLE = ProjectRole.ADMIN
TIMEOUT_SECONDS = 10.0
MEMBERS_PAGE = 100


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt: `retry_in` seconds until the next, or None if settled."""

    delivery_id: str
    status: DeliveryStatus | None  # None: nothing to do (already settled, unknown)
    retry_in: int | None = None


class HookService:
    def __init__(
        self,
        hooks: HookRepository,
        deliveries: DeliveryRepository,
        queue: DeliveryQueue,
        projects: ProjectRepository,
        notifications: NotificationRepository,
        client: WebhookClient,
        secret_for: Callable[[str], str],
        check_url: Callable[[str], None],
        prefetcher: Prefetcher,
        clock: Clock,
        schedule: RetrySchedule,
        timeout_seconds: float = TIMEOUT_SECONDS,
    ) -> None:
        self._hooks = hooks
        self._deliveries = deliveries
        self._queue = queue
        self._projects = projects
        self._access = ProjectAccess(projects)
        self._notifications = notifications
        self._client = client
        self._secret_for = secret_for
        self._check_url = check_url
        self._prefetch = prefetcher
        self._clock = clock
        self.schedule = schedule
        self._timeout = timeout_seconds

    # ---- first reads --------------------------------------------------------------------------

    reads_for_project = staticmethod(project_reads)

    @staticmethod
    def reads_for_hook(principal: Principal, hook_id: str) -> list[PrefetchKey]:
        return scoped_reads(principal, hook_id, reads.hook)

    @staticmethod
    def reads_for_delivery(principal: Principal, delivery_id: str) -> list[PrefetchKey]:
        return scoped_reads(principal, delivery_id, reads.delivery)

    # ---- hooks ----------------------------------------------------------------------------------

    def get(self, principal: Principal, hook_id: str) -> Hook:
        return self._require(principal, hook_id)[0]

    def find(self, principal: Principal, project_id: str, page: PageRequest) -> Page[Hook]:
        self._prefetch.warm(self.reads_for_project(principal, project_id))
        self._access.require(principal.user_id, project_id, MANAGE_ROLE)
        return self._hooks.find(project_id, page)

    def create(self, principal: Principal, project_id: str, command: HookCreate) -> Hook:
        self._prefetch.warm(self.reads_for_project(principal, project_id))
        self._access.require(principal.user_id, project_id, MANAGE_ROLE)
        self._url_allowed(command.url)
        existing = self._hooks.find(project_id, PageRequest(limit=HOOKS_PER_PROJECT_MAX))
        if len(existing.items) >= HOOKS_PER_PROJECT_MAX:
            raise Conflict(f"a project has at most {HOOKS_PER_PROJECT_MAX} hooks")
        now = self._clock.now()
        hook = Hook(
            id=new_hook_id(project_id),
            project_id=project_id,
            url=command.url,
            events=tuple(command.events),
            active=command.active,
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
        )
        return self._hooks.create(hook)

    def update(
        self,
        principal: Principal,
        hook_id: str,
        update: HookUpdate,
        expected_version: int | None = None,
    ) -> Hook:
        if update.url is not None:
            self._url_allowed(update.url)

        def attempt() -> Hook:
            before, _context = self._require(principal, hook_id)
            require_version("hook", before.version, expected_version)
            changes: dict[str, Any] = {}
            if update.url is not None:
                changes["url"] = update.url
            if update.events is not None:
                changes["events"] = tuple(update.events)
            if update.active is not None:
                changes["active"] = update.active
            after = before.with_changes(**changes)
            if after == before:
                return before
            if after.active and not before.active:
                after = after.with_changes(consecutive_failures=0)
            return self._hooks.update(before, after.with_changes(updated_at=self._clock.now()))

        return with_version_retries("hook", expected_version, attempt)

    def delete(
        self, principal: Principal, hook_id: str, expected_version: int | None = None
    ) -> None:
        def attempt() -> None:
            hook, _context = self._require(principal, hook_id)
            require_version("hook", hook.version, expected_version)
            self._hooks.delete(hook)

        with_version_retries("hook", expected_version, attempt)

    def purge_project(self, project_id: str) -> int:
        return self._hooks.purge_project(project_id)

    # ---- deliveries -----------------------------------------------------------------------------

    def deliveries(self, principal: Principal, hook_id: str, page: PageRequest) -> Page[Delivery]:
        hook, _context = self._require(principal, hook_id)
        return self._deliveries.find(hook.id, page)

    def redeliver(self, principal: Principal, delivery_id: str) -> Delivery:
        """A new delivery of the same event to the same hook (a new record, `redelivery_of`
        naming the original; the original keeps its log), queued at once. 409 if the hook is
        inactive."""
        self._prefetch.warm(self.reads_for_delivery(principal, delivery_id))
        original = self._deliveries.get(delivery_id) if project_of(delivery_id) else None
        if original is None:
            raise NotFound("delivery not found")
        try:
            self._access.require(principal.user_id, original.project_id, MANAGE_ROLE)
        except NotFound:
            raise NotFound("delivery not found") from None
        hook = self._hooks.get(original.hook_id)
        if hook is None:
            raise NotFound("delivery not found")
        if not hook.active:
            raise Conflict("the hook is not active: activate it first")
        now = self._clock.now()
        copy = Delivery(
            id=new_delivery_id(original.project_id),
            hook_id=original.hook_id,
            project_id=original.project_id,
            event_id=original.event_id,
            event_type=original.event_type,
            body=original.body,
            created_at=now,
            updated_at=now,
            redelivery_of=original.id,
        )
        self._deliveries.add(copy)
        self._queue.send([copy.id])
        return copy

    # ---- from the stream ------------------------------------------------------------------------

    def dispatch(self, events: Iterable[Event]) -> int:
        """Make and queue the deliveries of a stream batch's events; how many were queued."""
        by_project: dict[str, list[Event]] = {}
        for event in events:
            if event.project_id and event.type.value in HOOK_EVENT_TYPES:
                by_project.setdefault(event.project_id, []).append(event)
        queued: list[str] = []
        for project_id, project_events in by_project.items():
            hooks = self._hooks.active_for(project_id)
            if not hooks:
                continue
            now = self._clock.now()
            for event in project_events:
                body: str | None = None
                for hook in hooks:
                    if not hook.wants(event.type.value):
                        continue
                    body = body or event_body(event)
                    delivery = Delivery(
                        # Named after the stream record: delivered again, the same ids.
                        id=delivery_id_for(hook.id, event.source or event.id, event.at, project_id),
                        hook_id=hook.id,
                        project_id=project_id,
                        event_id=event.id,
                        event_type=event.type.value,
                        body=body,
                        created_at=now,
                        updated_at=now,
                    )
                    if self._deliveries.add(delivery) or self._unsent(delivery.id):
                        queued.append(delivery.id)
        if queued:
            self._queue.send(queued)
        return len(queued)

    def _unsent(self, delivery_id: str) -> bool:
        """A delivery an earlier try of this batch made but may not have queued: queued again
        (at least once; the receiver tells repeats by `X-Taskbeat-Delivery`)."""
        found = self._deliveries.get(delivery_id)
        return found is not None and found.status is DeliveryStatus.PENDING and found.attempts == 0

    # ---- one attempt (the queue's consumer) -----------------------------------------------------

    def attempt(self, delivery_id: str) -> Outcome:
        delivery = self._deliveries.get(delivery_id) if project_of(delivery_id) else None
        if delivery is None or delivery.status is not DeliveryStatus.PENDING:
            return Outcome(delivery_id, None)
        hook = self._hooks.get(delivery.hook_id)
        if hook is None or not hook.active:
            reason = "hook deleted" if hook is None else "hook inactive"
            settled = self._record(delivery, None, reason, DeliveryStatus.FAILED, count=False)
            return Outcome(delivery_id, DeliveryStatus.FAILED if settled else None)
        now = self._clock.now()
        result = self._send(hook, delivery, int(now.timestamp()))
        if result.succeeded:
            settled = self._record(delivery, result.status_code, None, DeliveryStatus.SUCCEEDED)
            # Written only when the hook read has a count (the common success writes nothing
            # more); the reset itself is one atomic SET.
            if settled and hook.consecutive_failures:
                self._hooks.reset_failures(hook.id)
            return Outcome(delivery_id, DeliveryStatus.SUCCEEDED)
        error = result.error or f"HTTP {result.status_code}"
        retry_in = self.schedule.next_retry(delivery.created_at, delivery.attempts + 1, now)
        if retry_in is None:
            if self._record(delivery, result.status_code, error, DeliveryStatus.FAILED):
                self._count_failure(hook)
            return Outcome(delivery_id, DeliveryStatus.FAILED)
        self._record(delivery, result.status_code, error, DeliveryStatus.PENDING)
        return Outcome(delivery_id, DeliveryStatus.PENDING, max(1, round(retry_in)))

    def retry_later(self, receipt: str, delay_seconds: int) -> None:
        """Hide the message being handled until its next attempt is due."""
        self._queue.retry_later(receipt, delay_seconds)

    def _send(self, hook: Hook, delivery: Delivery, timestamp: int) -> WebhookResult:
        secret = self._secret_for(hook.project_id)
        return self._client.deliver(
            WebhookRequest(
                url=hook.url,
                method="POST",
                headers=delivery_headers(delivery, secret, timestamp),
                body=delivery.body.encode("utf-8"),
                timeout_seconds=self._timeout,
            )
        )

    def _record(
        self,
        delivery: Delivery,
        response_status: int | None,
        error: str | None,
        status: DeliveryStatus,
        *,
        count: bool = True,
    ) -> bool:
        after = delivery.with_changes(
            status=status,
            attempts=delivery.attempts + 1 if count else delivery.attempts,
            response_status=response_status,
            error=short_error(error),
            updated_at=self._clock.now(),
        )
        return self._deliveries.record_attempt(delivery, after)

    def _count_failure(self, hook: Hook) -> None:
        count = self._hooks.count_failure(hook.id)
        if count != HOOK_DISABLE_AFTER:
            return
        disabled = self._hooks.disable(hook.id, self._clock.now())
        if disabled is not None:
            self._notify_disabled(disabled)

    def _notify_disabled(self, hook: Hook) -> None:
        admins: list[str] = []
        cursor: str | None = None
        while True:
            page = self._projects.members(hook.project_id, PageRequest(MEMBERS_PAGE, cursor))
            admins += [m.user_id for m in page.items if m.role.at_least(MANAGE_ROLE)]
            cursor = page.next_cursor
            if cursor is None:
                break
        now = self._clock.now()
        message = (
            f"Hook {hook.url} was turned off after {HOOK_DISABLE_AFTER} failed deliveries "
            'in a row; turn it on again with PATCH /hooks/{id} {"active": true}.'
        )
        self._notifications.add(
            [
                Notification(
                    id=new_id(),
                    user_id=user_id,
                    type=NotificationType.HOOK_DISABLED,
                    message=message,
                    created_at=now,
                    project_id=hook.project_id,
                )
                for user_id in dict.fromkeys(admins)
            ]
        )

    # ---- helpers --------------------------------------------------------------------------------

    def _url_allowed(self, url: str) -> None:
        """422 for a URL the deployment must not call (private address), at `body.url`."""
        try:
            self._check_url(url)
        except ValidationFailed as exc:
            details = [{**d, "loc": ["body", "url"]} for d in exc.details] or [
                {"loc": ["body", "url"], "message": exc.message}
            ]
            raise ValidationFailed(exc.message, details) from None

    def _require(self, principal: Principal, hook_id: str) -> tuple[Hook, ProjectContext]:
        self._prefetch.warm(self.reads_for_hook(principal, hook_id))
        hook = self._hooks.get(hook_id) if project_of(hook_id) else None
        if hook is None:
            raise NotFound("hook not found")
        try:
            return hook, self._access.require(principal.user_id, hook.project_id, MANAGE_ROLE)
        except NotFound:
            raise NotFound("hook not found") from None
