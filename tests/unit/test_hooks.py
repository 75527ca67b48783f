"""Project hooks on fakes: who may manage them, which events they get, the retry schedule and
its 24-hour cut-off, the consecutive-failure count and the disable at exactly 20."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.activity import Notification, NotificationType
from chalicelib.domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from chalicelib.domain.hooks import (
    EVENT_HEADER,
    HOOK_DISABLE_AFTER,
    HOOK_EVENT_TYPES,
    MAX_DELAY_SECONDS,
    DeliveryStatus,
    HookCreate,
    HookUpdate,
    RetrySchedule,
    delivery_id_for,
    delivery_of,
    message_body,
)
from chalicelib.domain.ids import ScopedId
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.realtime import Event, EventType
from chalicelib.domain.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    WebhookRequest,
    WebhookResult,
)
from chalicelib.services.hooks import HookService
from tests.fakes import (
    FakeClock,
    InMemoryDeliveryQueue,
    InMemoryDeliveryRepository,
    InMemoryHookRepository,
    InMemoryNotificationRepository,
    InMemoryProjectRepository,
    NoPrefetch,
    refuse_internal_urls,
)

SECRET = "project-secret"


class ScriptedClient:
    """Answers with the statuses given, in order (None: a network error), then `then`."""

    def __init__(self, *answers: int | None, then: int | None = 204) -> None:
        self.answers = list(answers)
        self.then = then
        self.requests: list[WebhookRequest] = []

    def deliver(self, request: WebhookRequest) -> WebhookResult:
        self.requests.append(request)
        status = self.answers.pop(0) if self.answers else self.then
        if status is None:
            return WebhookResult(None, 5, error="refused")
        return WebhookResult(status, 5, body_excerpt="ok")


@dataclass
class Setup:
    clock: FakeClock
    projects: InMemoryProjectRepository
    hooks: InMemoryHookRepository
    deliveries: InMemoryDeliveryRepository
    queue: InMemoryDeliveryQueue
    notifications: InMemoryNotificationRepository
    client: ScriptedClient
    service: HookService
    project_id: str
    users: dict[ProjectRole, Principal]
    outsider: Principal

    def hook(self, **body: Any) -> Any:
        body.setdefault("url", "https://hooks.example.com/in")
        body.setdefault("events", ["task.created"])
        return self.service.create(
            self.users[ProjectRole.ADMIN], self.project_id, HookCreate.model_validate(body)
        )

    def event(self, kind: EventType = EventType.TASK_CREATED, project_id: str = "") -> Event:
        return Event(
            id=new_id(),
            type=kind,
            at=self.clock.now(),
            data={"id": "t1", "title": "Hello"},
            project_id=project_id or self.project_id,
        )


@pytest.fixture
def setup() -> Setup:
    clock = FakeClock()
    projects = InMemoryProjectRepository()
    project_id = new_id()
    now = clock.now()
    users = {role: Principal(new_id(), "s") for role in ProjectRole}
    projects.create(
        Project(project_id, "P", "", users[ProjectRole.OWNER].user_id, now, now),
        Membership(project_id, users[ProjectRole.OWNER].user_id, ProjectRole.OWNER, now),
    )
    for role, principal in users.items():
        if role is not ProjectRole.OWNER:
            projects.memberships[(project_id, principal.user_id)] = Membership(
                project_id, principal.user_id, role, now
            )
    hooks = InMemoryHookRepository(projects)
    deliveries = InMemoryDeliveryRepository()
    queue = InMemoryDeliveryQueue()
    notifications = InMemoryNotificationRepository()
    client = ScriptedClient()
    service = HookService(
        hooks,
        deliveries,
        queue,
        projects,
        notifications,
        client,
        lambda _project: SECRET,
        refuse_internal_urls,
        NoPrefetch(),
        clock,
        RetrySchedule(10, timedelta(hours=24)),
    )
    return Setup(
        clock,
        projects,
        hooks,
        deliveries,
        queue,
        notifications,
        client,
        service,
        project_id,
        users,
        Principal(new_id(), "s"),
    )


class TestManaging:
    def test_admins_and_the_owner_manage_members_below_are_refused(self, setup: Setup) -> None:
        for role in (ProjectRole.OWNER, ProjectRole.ADMIN):
            body = HookCreate(url="https://a.example.com/", events=["task.created"])
            hook = setup.service.create(setup.users[role], setup.project_id, body)
            assert setup.service.get(setup.users[role], hook.id) == hook
        for role in (ProjectRole.MEMBER, ProjectRole.VIEWER):
            with pytest.raises(Forbidden):
                setup.service.create(setup.users[role], setup.project_id, body)
            with pytest.raises(Forbidden):
                setup.service.get(setup.users[role], hook.id)
            with pytest.raises(Forbidden):
                setup.service.find(setup.users[role], setup.project_id, PageRequest())
        with pytest.raises(NotFound):
            setup.service.create(setup.outsider, setup.project_id, body)
        with pytest.raises(NotFound):
            setup.service.get(setup.outsider, hook.id)
        with pytest.raises(NotFound):
            setup.service.get(setup.users[ProjectRole.ADMIN], "not-a-hook")

    def test_update_applies_fields_and_checks_the_version(self, setup: Setup) -> None:
        admin = setup.users[ProjectRole.ADMIN]
        hook = setup.hook()
        changed = setup.service.update(
            admin, hook.id, HookUpdate(events=["task.deleted", "task.deleted"]), hook.version
        )
        assert (changed.events, changed.version, changed.url) == (("task.deleted",), 2, hook.url)
        with pytest.raises(PreconditionFailed):
            setup.service.update(admin, hook.id, HookUpdate(active=False), 1)
        assert setup.service.update(admin, hook.id, HookUpdate()) == changed
        with pytest.raises(ValidationFailed) as caught:
            setup.service.update(admin, hook.id, HookUpdate(url="https://x.internal.test/"))
        assert caught.value.details[0]["loc"] == ["body", "url"]
        setup.service.delete(admin, hook.id, changed.version)
        with pytest.raises(NotFound):
            setup.service.get(admin, hook.id)

    def test_a_private_url_is_refused_at_body_url(self, setup: Setup) -> None:
        with pytest.raises(ValidationFailed) as caught:
            setup.hook(url="https://db.internal.test/hook")
        assert caught.value.details == [
            {"loc": ["body", "url"], "message": "the URL resolves to a private address"}
        ]

    def test_bodies(self) -> None:
        assert set(HOOK_EVENT_TYPES) == {t.value for t in EventType} - {"notification"}
        for bad in (
            {"url": "https://a.example.com", "events": []},
            {"url": "https://a.example.com", "events": ["notification"]},
            {"url": "ftp://a.example.com", "events": ["task.created"]},
            {"url": "https://a.example.com", "events": ["task.created"], "secret": "x"},
        ):
            with pytest.raises(ValidationError):
                HookCreate.model_validate(bad)
        with pytest.raises(ValidationError):
            HookUpdate.model_validate({"active": None})

    def test_at_most_50_hooks_a_project(self, setup: Setup) -> None:
        for _ in range(50):
            setup.hook()
        with pytest.raises(Conflict):
            setup.hook()


class TestDispatch:
    def test_one_query_per_project_and_a_delivery_per_matching_hook(self, setup: Setup) -> None:
        wants_created = setup.hook(events=["task.created", "comment.created"])
        wants_deleted = setup.hook(events=["task.deleted"])
        setup.hook(events=["task.created"], active=False)
        other = new_id()
        events = [
            setup.event(EventType.TASK_CREATED),
            setup.event(EventType.TASK_CREATED),
            setup.event(EventType.TASK_DELETED),
            setup.event(EventType.TASK_UPDATED),
            setup.event(EventType.TASK_CREATED, project_id=other),
            Event(new_id(), EventType.NOTIFICATION, setup.clock.now(), {}, user_id="u"),
        ]
        assert setup.service.dispatch(events) == 3
        assert setup.hooks.active_queries == [setup.project_id, other]
        made = {setup.deliveries.get(d) for d in setup.queue.sent}
        assert sorted((d.hook_id, d.event_id) for d in made if d) == sorted(
            [
                (wants_created.id, events[0].id),
                (wants_created.id, events[1].id),
                (wants_deleted.id, events[2].id),
            ]
        )
        first = setup.deliveries.get(setup.queue.sent[0])
        assert first is not None
        assert first.status is DeliveryStatus.PENDING
        assert json.loads(first.body) == {
            "id": events[0].id,
            "type": "task.created",
            "at": "2026-11-21T12:00:00.000Z",
            "data": {"id": "t1", "title": "Hello"},
        }

    def test_a_batch_delivered_again_makes_no_second_delivery(self, setup: Setup) -> None:
        setup.hook()
        event = setup.event()
        assert setup.service.dispatch([event]) == 1
        # Made but perhaps not queued (a crash between the two): queued again, same id.
        assert setup.service.dispatch([event]) == 1
        assert len(set(setup.queue.sent)) == 1
        assert len(setup.deliveries.deliveries) == 1
        setup.service.attempt(setup.queue.sent[0])
        assert setup.service.dispatch([event]) == 0

    def test_delivery_ids_are_scoped_and_derived(self) -> None:
        at = datetime(2026, 1, 2, tzinfo=UTC)
        project = new_id()
        one = delivery_id_for("h1", "e1", at, project)
        assert one == delivery_id_for("h1", "e1", at, project)
        assert one != delivery_id_for("h2", "e1", at, project)
        parsed = ScopedId.parse(one)
        assert parsed is not None
        assert parsed.project_id == project
        assert delivery_of(message_body(one)) == one
        assert delivery_of("not json") is None
        assert delivery_of('{"x": 1}') is None


class TestAttempts:
    def test_the_post_is_signed_like_webhook_actions(self, setup: Setup) -> None:
        setup.hook()
        setup.service.dispatch([setup.event()])
        delivery_id = setup.queue.sent[0]
        outcome = setup.service.attempt(delivery_id)
        assert (outcome.status, outcome.retry_in) == (DeliveryStatus.SUCCEEDED, None)
        request = setup.client.requests[0]
        headers = request.headers
        assert request.method == "POST"
        assert headers[EVENT_HEADER] == "task.created"
        assert headers[DELIVERY_HEADER] == delivery_id
        t, v1 = (part.split("=", 1)[1] for part in headers[SIGNATURE_HEADER].split(","))
        expected = hmac.new(SECRET.encode(), f"{t}.".encode() + request.body, hashlib.sha256)
        assert v1 == expected.hexdigest()
        assert int(t) == int(setup.clock.now().timestamp())
        stored = setup.deliveries.get(delivery_id)
        assert stored is not None
        assert (stored.status, stored.attempts, stored.response_status) == (
            DeliveryStatus.SUCCEEDED,
            1,
            204,
        )
        # A message handed out twice does not send twice.
        assert setup.service.attempt(delivery_id).status is None
        assert len(setup.client.requests) == 1

    def test_backoff_doubles_from_the_base_and_stops_after_the_window(self) -> None:
        schedule = RetrySchedule(10, timedelta(hours=24))
        assert [schedule.delay_after(n) for n in range(1, 6)] == [10, 20, 40, 80, 160]
        assert schedule.delay_after(30) == MAX_DELAY_SECONDS
        start = datetime(2026, 1, 1, tzinfo=UTC)
        now, attempts = start, 0
        while (delay := schedule.next_retry(start, attempts + 1, now)) is not None:
            attempts += 1
            now += timedelta(seconds=delay)
        # 10 s .. 40,960 s: the 14th attempt is the last inside 24 hours.
        assert attempts + 1 == 14
        assert now - start <= timedelta(hours=24)

    def test_a_failing_target_is_retried_then_recovers(self, setup: Setup) -> None:
        setup.client.answers = [500, None, 503]
        setup.hook()
        setup.service.dispatch([setup.event()])
        delivery_id = setup.queue.sent[0]
        delays = []
        for _ in range(3):
            outcome = setup.service.attempt(delivery_id)
            assert outcome.status is DeliveryStatus.PENDING
            delays.append(outcome.retry_in)
            setup.clock.advance(seconds=outcome.retry_in or 0)
        assert delays == [10, 20, 40]
        stored = setup.deliveries.get(delivery_id)
        assert stored is not None
        assert (stored.attempts, stored.response_status, stored.error) == (
            3,
            503,
            "HTTP 503",
        )
        assert setup.service.attempt(delivery_id).status is DeliveryStatus.SUCCEEDED
        stored = setup.deliveries.get(delivery_id)
        assert stored is not None
        assert (stored.attempts, stored.error) == (4, None)

    def test_after_the_window_the_delivery_is_failed(self, setup: Setup) -> None:
        setup.client.then = 500
        hook = setup.hook()
        setup.service.dispatch([setup.event()])
        delivery_id = setup.queue.sent[0]
        attempts = 0
        while (outcome := setup.service.attempt(delivery_id)).retry_in is not None:
            attempts += 1
            setup.clock.advance(seconds=outcome.retry_in)
        assert outcome.status is DeliveryStatus.FAILED
        assert attempts + 1 == 14
        stored = setup.deliveries.get(delivery_id)
        assert stored is not None
        assert (stored.status, stored.attempts) == (
            DeliveryStatus.FAILED,
            14,
        )
        assert setup.hooks.get(hook.id).consecutive_failures == 1

    def test_a_deleted_or_inactive_hook_ends_its_deliveries(self, setup: Setup) -> None:
        admin = setup.users[ProjectRole.ADMIN]
        hook = setup.hook()
        setup.service.dispatch([setup.event(), setup.event()])
        first, second = setup.queue.sent
        setup.service.update(admin, hook.id, HookUpdate(active=False))
        assert setup.service.attempt(first).status is DeliveryStatus.FAILED
        setup.service.delete(admin, hook.id)
        assert setup.service.attempt(second).status is DeliveryStatus.FAILED
        assert [setup.deliveries.get(d).error for d in (first, second)] == [  # type: ignore[union-attr]
            "hook inactive",
            "hook deleted",
        ]
        assert setup.client.requests == []
        assert setup.service.attempt("nope").status is None


def fail_deliveries(setup: Setup, count: int) -> None:
    """`count` deliveries that each fail for good (one attempt each, a window of 1 s)."""
    setup.service.schedule = RetrySchedule(10, timedelta(seconds=1))
    for _ in range(count):
        setup.service.dispatch([setup.event()])
        for delivery_id in setup.queue.take():
            assert setup.service.attempt(delivery_id).status is DeliveryStatus.FAILED


class TestDisabling:
    def test_exactly_20_consecutive_failures_disable_and_notify_admins(self, setup: Setup) -> None:
        setup.client.then = 500
        hook = setup.hook()
        fail_deliveries(setup, HOOK_DISABLE_AFTER - 1)
        stored = setup.hooks.get(hook.id)
        assert stored.active
        assert stored.consecutive_failures == HOOK_DISABLE_AFTER - 1
        assert setup.notifications.records == []
        fail_deliveries(setup, 1)
        stored = setup.hooks.get(hook.id)
        assert not stored.active
        assert stored.version == hook.version + 1
        notified = [r for r in setup.notifications.records if isinstance(r, Notification)]
        assert {n.type for n in notified} == {NotificationType.HOOK_DISABLED}
        assert sorted(n.user_id for n in notified) == sorted(
            setup.users[r].user_id for r in (ProjectRole.OWNER, ProjectRole.ADMIN)
        )
        assert all(n.project_id == setup.project_id for n in notified)
        # Inactive: no more deliveries are made for it.
        setup.service.dispatch([setup.event()])
        assert setup.queue.sent == []
        # On again: the count starts from 0.
        on = setup.service.update(setup.users[ProjectRole.OWNER], hook.id, HookUpdate(active=True))
        assert on.active
        assert setup.hooks.get(hook.id).consecutive_failures == 0

    def test_a_success_resets_the_count(self, setup: Setup) -> None:
        setup.client.then = 500
        hook = setup.hook()
        fail_deliveries(setup, HOOK_DISABLE_AFTER - 1)
        setup.client.then = 200
        setup.service.dispatch([setup.event()])
        setup.service.attempt(setup.queue.take()[0])
        assert setup.hooks.get(hook.id).consecutive_failures == 0
        setup.client.then = 500
        fail_deliveries(setup, HOOK_DISABLE_AFTER - 1)
        assert setup.hooks.get(hook.id).active

    def test_a_user_change_keeps_the_count(self, setup: Setup) -> None:
        setup.client.then = 500
        hook = setup.hook()
        fail_deliveries(setup, 3)
        setup.service.update(
            setup.users[ProjectRole.ADMIN], hook.id, HookUpdate(url="https://b.example.com/")
        )
        assert setup.hooks.get(hook.id).consecutive_failures == 3


class TestLogAndRedelivery:
    def test_log_newest_first_and_redelivery_is_a_new_delivery(self, setup: Setup) -> None:
        admin = setup.users[ProjectRole.ADMIN]
        hook = setup.hook()
        setup.service.dispatch([setup.event()])
        setup.clock.advance(seconds=1)
        setup.service.dispatch([setup.event()])
        first, second = setup.queue.take()
        setup.service.attempt(first)
        log = setup.service.deliveries(admin, hook.id, PageRequest(limit=1))
        assert [d.id for d in log.items] == [second]
        assert log.next_cursor
        again = setup.service.redeliver(admin, first)
        assert again.id != first
        assert again.redelivery_of == first
        assert again.attempts == 0
        assert setup.queue.take() == [again.id]
        assert setup.service.attempt(again.id).status is DeliveryStatus.SUCCEEDED
        assert setup.client.requests[0].body == setup.client.requests[1].body
        with pytest.raises(Forbidden):
            setup.service.redeliver(setup.users[ProjectRole.MEMBER], first)
        with pytest.raises(NotFound):
            setup.service.redeliver(setup.outsider, first)
        with pytest.raises(NotFound):
            setup.service.redeliver(admin, "nope")
        setup.service.update(admin, hook.id, HookUpdate(active=False))
        with pytest.raises(Conflict):
            setup.service.redeliver(admin, first)
        setup.service.delete(admin, hook.id)
        with pytest.raises(NotFound):
            setup.service.redeliver(admin, first)


class StubSqs:
    def __init__(self, failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.failing = failing
        self.batches: list[list[dict[str, str]]] = []
        self.visibility: list[dict[str, Any]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.batches.append(Entries)
        failed = [{"Id": e["Id"]} for e in Entries if delivery_of(e["MessageBody"]) in self.failing]
        return {"Successful": [], "Failed": failed}

    def change_message_visibility(self, **kwargs: Any) -> None:
        self.visibility.append(kwargs)


class TestQueueAdapter:
    def test_sends_in_batches_of_ten_and_raises_for_entries_not_queued(self) -> None:
        from chalicelib.adapters.aws.hook_queue import QueueNotSent, SqsDeliveryQueue

        client = StubSqs()
        queue = SqsDeliveryQueue(client, "https://q")
        ids = [f"d{n}" for n in range(23)]
        queue.send(ids)
        assert [len(b) for b in client.batches] == [10, 10, 3]
        assert [delivery_of(e["MessageBody"]) for b in client.batches for e in b] == ids
        with pytest.raises(QueueNotSent):
            SqsDeliveryQueue(StubSqs({"d3"}), "https://q").send(ids)
        queue.retry_later("receipt", 40)
        assert client.visibility == [
            {"QueueUrl": "https://q", "ReceiptHandle": "receipt", "VisibilityTimeout": 40}
        ]

    def test_without_a_queue_nothing_can_be_queued(self) -> None:
        from chalicelib.adapters.aws.hook_queue import QueueNotSent, UnconfiguredQueue

        UnconfiguredQueue().send([])
        with pytest.raises(QueueNotSent):
            UnconfiguredQueue().send(["d"])
        with pytest.raises(QueueNotSent):
            UnconfiguredQueue().retry_later("r", 1)


def test_the_consumer_reports_a_message_whose_attempt_raised() -> None:
    from chalicelib import bootstrap
    from chalicelib.handlers.hooks import deliver_hooks
    from tests.fakes import InMemoryAdapters, in_memory_settings

    adapters = InMemoryAdapters()

    def broken(delivery_id: str) -> Any:
        raise RuntimeError("DynamoDB is down")

    adapters.hook_deliveries.get = broken  # type: ignore[method-assign]
    bootstrap.override(bootstrap.wire(in_memory_settings(), adapters))
    try:
        delivery_id = str(ScopedId.new(new_id()))
        answer = deliver_hooks(
            {
                "Records": [
                    {"messageId": "m", "receiptHandle": "r", "body": message_body(delivery_id)}
                ]
            }
        )
    finally:
        bootstrap.override(None)
    assert answer["batchItemFailures"] == [{"itemIdentifier": "m"}]
    assert adapters.hook_queue.delays == []  # back after the queue's own visibility timeout
