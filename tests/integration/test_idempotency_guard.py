"""Idempotency-Key on moto: the DynamoDB store's conditions, the guard in the route's own
transaction, what a crash between the work and the kept answer does (docs/idempotency.md),
a 503 on the claim, and the calls a key costs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb.idempotency import DynamoIdempotencyStore, record_id
from chalicelib.adapters.dynamodb.models import IdempotencyModel, TaskModel
from chalicelib.adapters.dynamodb.tasks import DynamoTaskRepository
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.idempotency import LEASE, IdempotencyRecord, State, fingerprint
from tests.integration.conftest import Http

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def record(lease_id: str = "a", at: datetime = NOW, fp: str = "fp") -> IdempotencyRecord:
    return IdempotencyRecord(
        user_id="u1",
        key="k",
        fingerprint=fp,
        route="POST /tasks",
        state=State.IN_PROGRESS,
        lease_id=lease_id,
        lease_until=at + LEASE,
        expires_at=at + timedelta(hours=24),
    )


class TestTheStore:
    def test_claim_complete_and_the_record_that_holds_the_key(self, moto_aws: None) -> None:
        store = DynamoIdempotencyStore()
        first = record()
        assert store.claim(first, NOW) is None
        held = store.claim(record("b"), NOW + timedelta(seconds=1))
        assert held is not None
        assert (held.lease_id, held.state, held.committed) == ("a", State.IN_PROGRESS, False)
        assert store.complete(first, b"answer", False)
        done = store.claim(record("c"), NOW + timedelta(seconds=2))
        assert done is not None
        assert (done.state, done.answer, done.sealed) == (State.DONE, b"answer", False)
        # Completing with a claim that is not the holder's keeps nothing.
        assert not store.complete(record("c"), b"other", False)

    def test_a_lease_over_is_taken_over_unless_committed_or_another_request(
        self, moto_aws: None
    ) -> None:
        store = DynamoIdempotencyStore()
        after_lease = NOW + LEASE + timedelta(seconds=1)
        first = record()
        store.claim(first, NOW)
        assert store.claim(record("x", fp="other"), after_lease) is not None  # another body
        second = record("b", at=after_lease)
        assert store.claim(second, after_lease) is None  # taken over
        with store.guarded(second):  # its work commits, and marks the claim
            DynamoTaskRepository().create(new_task(), None)
        stale = after_lease + LEASE + timedelta(seconds=1)
        held = store.claim(record("c", at=stale), stale)
        assert held is not None  # committed: never taken over
        assert (held.lease_id, held.committed) == ("b", True)

    def test_an_expired_record_is_claimed_afresh(self, moto_aws: None) -> None:
        store = DynamoIdempotencyStore()
        first = record()
        store.claim(first, NOW)
        store.complete(first, b"old", False)
        next_day = NOW + timedelta(hours=24, seconds=1)
        assert store.claim(record("b", at=next_day, fp="new"), next_day) is None

    def test_release_deletes_an_uncommitted_claim_and_ends_a_committed_ones_lease(
        self, moto_aws: None
    ) -> None:
        store = DynamoIdempotencyStore()
        first = record()
        store.claim(first, NOW)
        store.release(first, NOW)
        assert store.claim(record("b"), NOW) is None  # gone: claimed afresh
        second = record("b")
        with store.guarded(second):
            DynamoTaskRepository().create(new_task(), None)
        store.release(second, NOW + timedelta(seconds=3))
        row = IdempotencyModel.get(record_id("u1", "k"))
        assert (row.committed, row.state) == (True, "in_progress")
        assert row.lease_until == NOW + timedelta(seconds=3)
        store.release(record("zzz"), NOW)  # not ours: nothing changes
        assert IdempotencyModel.get(record_id("u1", "k")).lease_id == "b"


def new_task() -> Any:
    """A task in a project that exists (the transaction checks it)."""
    from chalicelib.adapters.dynamodb.models import ProjectModel
    from chalicelib.domain.model import new_id
    from chalicelib.domain.tasks import Task, new_task_id

    project_id = new_id()
    ProjectModel(
        id=project_id, name="P", owner_id="u1", created_at=NOW, updated_at=NOW, version=1
    ).save()
    return Task(
        id=new_task_id(project_id),
        project_id=project_id,
        title="T",
        created_by="u1",
        created_at=NOW,
        updated_at=NOW,
    )


class Crash(Exception):
    """The function stops here (a timeout, an out-of-memory): nothing after runs."""


def tasks_in_table() -> list[str]:
    return sorted(row.title for row in TaskModel.scan())


def expire_lease(user_id: str, key: str) -> None:
    """As if the lease's time had passed."""
    IdempotencyModel(id=record_id(user_id, key)).update(
        actions=[IdempotencyModel.lease_until.set(datetime.now(UTC) - timedelta(seconds=1))]
    )


class TestACrashBetweenTheWorkAndTheAnswer:
    def test_a_route_that_writes_once_never_does_its_work_twice(
        self, http: Http, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        me = http.register("ada@example.com")
        token, user_id = me["access_token"], me["user"]["id"]

        def crash(*_: Any) -> bool:
            raise Crash()

        monkeypatch.setattr(DynamoIdempotencyStore, "complete", crash)
        died = http("POST", "/tasks", {"title": "Once"}, token, Idempotency_Key="k")
        assert died.status_code == 500
        monkeypatch.undo()
        assert tasks_in_table() == ["Once"]
        # While its lease runs: 409, retry later.
        busy = http("POST", "/tasks", {"title": "Once"}, token, Idempotency_Key="k")
        assert (busy.status_code, busy.headers.get("Retry-After") is not None) == (409, True)
        # After it: the work was committed with the claim, so it is not done again.
        expire_lease(user_id, "k")
        lost = http("POST", "/tasks", {"title": "Once"}, token, Idempotency_Key="k")
        assert lost.status_code == 409
        assert "answer was lost" in lost.json["error"]["message"]
        assert "Retry-After" not in lost.headers
        assert tasks_in_table() == ["Once"]

    def test_a_crash_before_the_work_lets_the_retry_do_it_after_the_lease(
        self, http: Http, container: bootstrap.Container
    ) -> None:
        me = http.register("ada@example.com")
        token, user_id = me["access_token"], me["user"]["id"]
        body = {"title": "Later"}
        fp = fingerprint("POST", "/tasks", {}, json.dumps(body).encode())
        container.idempotency.begin(user_id, "k", fp, "POST /tasks")  # claimed, then died
        expire_lease(user_id, "k")
        retried = http("POST", "/tasks", body, token, Idempotency_Key="k")
        assert retried.status_code == 201
        assert tasks_in_table() == ["Later"]
        replayed = http("POST", "/tasks", body, token, Idempotency_Key="k")
        assert replayed.headers["Idempotent-Replayed"] == "true"
        assert tasks_in_table() == ["Later"]

    def test_a_request_that_outlived_its_lease_writes_nothing(
        self, http: Http, container: bootstrap.Container, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        me = http.register("ada@example.com")
        token, user_id = me["access_token"], me["user"]["id"]
        body = {"title": "Slow"}
        fp = fingerprint("POST", "/tasks", {}, json.dumps(body).encode())
        real_create = DynamoTaskRepository.create

        def slow_create(self: Any, *args: Any, **kwargs: Any) -> Any:
            # Meanwhile the lease ran out and a retry took the key over.
            expire_lease(user_id, "k")
            container.idempotency.begin(user_id, "k", fp, "POST /tasks")
            return real_create(self, *args, **kwargs)

        monkeypatch.setattr(DynamoTaskRepository, "create", slow_create)
        slow = http("POST", "/tasks", body, token, Idempotency_Key="k")
        assert slow.status_code == 409, slow.body
        assert "took the key over" in slow.json["error"]["message"]
        assert tasks_in_table() == []

    def test_a_route_outside_transactions_runs_again_after_the_lease(
        self, http: Http, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """POST /notifications/read-all writes one item outside a transaction: after a crash,
        a retry after the lease runs it again (harmless: it sets a mark to now)."""
        me = http.register("ada@example.com")
        token, user_id = me["access_token"], me["user"]["id"]

        def crash(*_: Any) -> bool:
            raise Crash()

        monkeypatch.setattr(DynamoIdempotencyStore, "complete", crash)
        assert (
            http("POST", "/notifications/read-all", token=token, Idempotency_Key="r").status_code
            == 500
        )
        monkeypatch.undo()
        row = IdempotencyModel.get(record_id(user_id, "r"))
        assert row.committed is None  # nothing guarded was written
        expire_lease(user_id, "r")
        again = http("POST", "/notifications/read-all", token=token, Idempotency_Key="r")
        assert again.status_code == 204
        assert "Idempotent-Replayed" not in again.headers


class TestFailures:
    def test_dynamodb_failing_the_claim_is_503_and_keeps_nothing(
        self, http: Http, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        token = http.register("ada@example.com")["access_token"]

        def unavailable(*_: Any) -> None:
            raise Unavailable()

        monkeypatch.setattr(DynamoIdempotencyStore, "claim", unavailable)
        refused = http("POST", "/tasks", {"title": "A"}, token, Idempotency_Key="k")
        assert (refused.status_code, refused.headers["Retry-After"]) == (503, "2")
        monkeypatch.undo()
        assert tasks_in_table() == []
        assert list(IdempotencyModel.scan()) == []
        assert http("POST", "/tasks", {"title": "A"}, token, Idempotency_Key="k").status_code == 201

    def test_a_503_of_the_route_is_not_kept_and_the_retry_runs(
        self, http: Http, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        token = http.register("ada@example.com")["access_token"]

        def unavailable(*_: Any, **__: Any) -> None:
            raise Unavailable()

        monkeypatch.setattr(DynamoTaskRepository, "create", unavailable)
        assert http("POST", "/tasks", {"title": "A"}, token, Idempotency_Key="k").status_code == 503
        monkeypatch.undo()
        retried = http("POST", "/tasks", {"title": "A"}, token, Idempotency_Key="k")
        assert retried.status_code == 201
        assert "Idempotent-Replayed" not in retried.headers
        assert tasks_in_table() == ["A"]


def test_a_key_costs_two_calls_and_a_replay_one(http: Http) -> None:
    token = http.register("ada@example.com")["access_token"]
    http("POST", "/tasks", {"title": "plain"}, token)
    plain = len(http.calls)
    http("POST", "/tasks", {"title": "keyed"}, token, Idempotency_Key="k")
    keyed = list(http.calls)
    http("POST", "/tasks", {"title": "keyed"}, token, Idempotency_Key="k")
    replay = list(http.calls)
    assert len(keyed) == plain + 2, keyed
    assert keyed.count("TransactWriteItems") == 1  # the claim's check rides in the task's
    assert replay == ["BatchGetItem", "PutItem"], replay


class TestTheStoreUnderFailures:
    @pytest.fixture
    def throttle(self, moto_aws: None) -> Any:
        from chalicelib.adapters.dynamodb import connection
        from chalicelib.adapters.dynamodb.tables import bind
        from tests.faults.throttling import Throttle

        bind("test-", "us-east-1")
        injected = Throttle(
            connection.root().client,
            share=1.0,
            seed=1,
            operations=frozenset({"UpdateItem", "DeleteItem"}),
        )
        yield injected
        injected.remove()

    def test_keeping_or_releasing_a_claim_while_throttled_is_unavailable(
        self, throttle: Any
    ) -> None:
        store = DynamoIdempotencyStore()
        first = record()
        store.claim(first, NOW)
        throttle.on = True
        with pytest.raises(Unavailable):
            store.complete(first, b"answer", False)
        with pytest.raises(Unavailable):
            store.release(first, NOW)
        throttle.operations = frozenset({"UpdateItem"})  # the delete's condition fails first
        throttle.on = False
        with store.guarded(first):
            DynamoTaskRepository().create(new_task(), None)
        throttle.on = True
        with pytest.raises(Unavailable):
            store.release(first, NOW)

    def test_a_guarded_transaction_failing_on_its_own_condition_says_so(
        self, moto_aws: None
    ) -> None:
        from chalicelib.domain.errors import NotFound

        store = DynamoIdempotencyStore()
        first = record()
        store.claim(first, NOW)
        orphan = new_task().with_changes(project_id="01J0000000000000000000000X")
        with pytest.raises(NotFound), store.guarded(first):
            DynamoTaskRepository().create(orphan, None)
        assert IdempotencyModel.get(record_id("u1", "k")).committed is None

    def test_a_guarded_workflow_run_with_a_taken_id_is_stale(self, moto_aws: None) -> None:
        from chalicelib.adapters.dynamodb.workflow_runs import DynamoWorkflowRunRepository
        from chalicelib.domain.errors import StaleVersion
        from tests.integration.test_moto_differential import scheduled_run

        store = DynamoIdempotencyStore()
        first = record()
        store.claim(first, NOW)
        run = scheduled_run()
        runs = DynamoWorkflowRunRepository()
        with store.guarded(first):
            runs.create(run)
            with pytest.raises(StaleVersion):
                runs.create(run)


class TestTheHttpSideUnderFailures:
    def test_a_crash_inside_the_route_gives_the_key_up(
        self, http: Http, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        token = http.register("ada@example.com")["access_token"]

        def broken(*_: Any, **__: Any) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(DynamoTaskRepository, "create", broken)
        assert http("POST", "/tasks", {"title": "A"}, token, Idempotency_Key="k").status_code == 500
        monkeypatch.undo()
        retried = http("POST", "/tasks", {"title": "A"}, token, Idempotency_Key="k")
        assert retried.status_code == 201
        assert "Idempotent-Replayed" not in retried.headers

    def test_an_answer_that_cannot_be_kept_is_sent_all_the_same(
        self, http: Http, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        token = http.register("ada@example.com")["access_token"]

        def unavailable(*_: Any) -> bool:
            raise Unavailable()

        monkeypatch.setattr(DynamoIdempotencyStore, "complete", unavailable)
        sent = http("POST", "/tasks", {"title": "A"}, token, Idempotency_Key="k")
        assert sent.status_code == 201
        monkeypatch.undo()
        # Not kept: the claim stays in progress until its lease is over (then: answer lost).
        assert http("POST", "/tasks", {"title": "A"}, token, Idempotency_Key="k").status_code == 409
        assert tasks_in_table() == ["A"]
