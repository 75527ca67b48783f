"""Idempotency-Key: the service on the in-memory store (replay, reuse, in flight, expiry, per
user, a crash and its lease), sealed answers, the fingerprint, and what routes declare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.api.errors import CODE_BY_ERROR
from chalicelib.domain.errors import Conflict, IdempotencyKeyReused
from chalicelib.domain.idempotency import (
    LEASE,
    ClaimLost,
    RequestInFlight,
    StoredAnswer,
    decode_answer,
    encode_answer,
    fingerprint,
    valid_key,
)
from chalicelib.services.idempotency import Claimed, IdempotencyService, Replay
from tests.fakes import FakeClock, InMemoryIdempotencyStore

ROOT = Path(__file__).resolve().parents[2]
ANSWER = StoredAnswer(201, (("ETag", '"1"'), ("Content-Type", "application/json")), b'{"id":1}')


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> InMemoryIdempotencyStore:
    return InMemoryIdempotencyStore()


@pytest.fixture
def service(store: InMemoryIdempotencyStore, clock: FakeClock) -> IdempotencyService:
    return IdempotencyService(store, clock, lambda: b"k" * 32)


def claimed(service: IdempotencyService, user: str = "u1", fp: str = "fp") -> Claimed:
    begun = service.begin(user, "key", fp, "POST /tasks")
    assert isinstance(begun, Claimed)
    return begun


def test_the_first_answer_is_replayed(service: IdempotencyService) -> None:
    first = claimed(service)
    assert service.finish(first, ANSWER, sealed=False)
    again = service.begin("u1", "key", "fp", "POST /tasks")
    assert again == Replay(ANSWER)


def test_another_body_or_route_is_a_reuse(service: IdempotencyService) -> None:
    service.finish(claimed(service), ANSWER, sealed=False)
    with pytest.raises(IdempotencyKeyReused, match="another body") as body:
        service.begin("u1", "key", "other", "POST /tasks")
    assert CODE_BY_ERROR[type(body.value)] == "idempotency_key_reused"
    with pytest.raises(IdempotencyKeyReused, match=r"another route \(POST /tasks\)"):
        service.begin("u1", "key", "other", "POST /projects")


def test_in_flight_is_409_with_the_time_left(service: IdempotencyService, clock: FakeClock) -> None:
    claimed(service)
    clock.advance(seconds=10)
    with pytest.raises(RequestInFlight) as busy:
        service.begin("u1", "key", "fp", "POST /tasks")
    assert busy.value.retry_after_seconds == LEASE.total_seconds() - 10


def test_keys_are_per_user(service: IdempotencyService) -> None:
    service.finish(claimed(service, "u1"), ANSWER, sealed=False)
    assert isinstance(service.begin("u2", "key", "other", "POST /tasks"), Claimed)


def test_a_key_expires_after_24_hours(service: IdempotencyService, clock: FakeClock) -> None:
    service.finish(claimed(service), ANSWER, sealed=False)
    clock.advance(hours=23, minutes=59)
    assert isinstance(service.begin("u1", "key", "fp", "POST /tasks"), Replay)
    clock.advance(minutes=1)
    assert isinstance(service.begin("u1", "key", "another body", "POST /tasks"), Claimed)


def test_after_a_crash_the_lease_decides(
    service: IdempotencyService, store: InMemoryIdempotencyStore, clock: FakeClock
) -> None:
    """Uncommitted: the next request takes over once the lease is over; committed: never."""
    claimed(service)  # and the function died
    clock.advance(seconds=LEASE.total_seconds())
    retry = claimed(service)
    with service.guarded(retry):
        store.guarded_write()  # its work commits
    clock.advance(seconds=LEASE.total_seconds())  # and it died too, before its answer
    with pytest.raises(Conflict, match="answer was lost"):
        service.begin("u1", "key", "fp", "POST /tasks")


def test_a_taken_over_claim_writes_nothing(
    service: IdempotencyService, store: InMemoryIdempotencyStore, clock: FakeClock
) -> None:
    slow = claimed(service)
    clock.advance(seconds=LEASE.total_seconds() + 1)
    claimed(service)
    with pytest.raises(ClaimLost), service.guarded(slow):
        store.guarded_write()
    assert not service.finish(slow, ANSWER, sealed=False)


def test_abandon_frees_an_uncommitted_key_and_ends_a_committed_ones_lease(
    service: IdempotencyService, store: InMemoryIdempotencyStore
) -> None:
    first = claimed(service)
    service.abandon(first)
    second = claimed(service)  # at once
    with service.guarded(second):
        store.guarded_write()
    service.abandon(second)
    with pytest.raises(Conflict, match="answer was lost"):
        service.begin("u1", "key", "fp", "POST /tasks")
    service.abandon(first)  # not the holder: nothing happens


class TestSealed:
    def test_a_sealed_answer_is_replayed_and_not_kept_in_clear(
        self, service: IdempotencyService, store: InMemoryIdempotencyStore
    ) -> None:
        secret = StoredAnswer(200, (), b'{"calendar_token":"s3cr3t-token-value"}')
        service.finish(claimed(service), secret, sealed=True)
        (kept,) = store.records.values()
        assert kept.sealed
        assert kept.answer is not None
        assert b"s3cr3t" not in kept.answer
        assert service.begin("u1", "key", "fp", "POST /tasks") == Replay(secret)

    def test_a_tampered_or_foreign_seal_is_refused(
        self, store: InMemoryIdempotencyStore, clock: FakeClock
    ) -> None:
        mine = IdempotencyService(store, clock, lambda: b"k" * 32)
        mine.finish(claimed(mine), ANSWER, sealed=True)
        other_secret = IdempotencyService(store, clock, lambda: b"x" * 32)
        with pytest.raises(ValueError, match="authentication"):
            other_secret.begin("u1", "key", "fp", "POST /tasks")
        (key,) = store.records
        kept = store.records[key]
        assert kept.answer is not None
        flipped = bytes([kept.answer[20] ^ 1])
        store.records[key] = type(kept)(
            **{**kept.__dict__, "answer": kept.answer[:20] + flipped + kept.answer[21:]}
        )
        with pytest.raises(ValueError, match="authentication"):
            mine.begin("u1", "key", "fp", "POST /tasks")


class TestTheRequest:
    def test_the_fingerprint_ignores_key_order_and_white_space_only(self) -> None:
        base = fingerprint("POST", "/tasks", {}, b'{"a": 1, "b": [1, 2]}')
        assert fingerprint("POST", "/tasks", {}, b'{"b":[1,2],"a":1}') == base
        assert fingerprint("POST", "/tasks", {}, b'{"b":[2,1],"a":1}') != base
        assert fingerprint("POST", "/projects", {}, b'{"a": 1, "b": [1, 2]}') != base
        path = "/tasks/{task_id}/run"
        assert fingerprint("POST", path, {"task_id": "A"}, b"") != fingerprint(
            "POST", path, {"task_id": "B"}, b""
        )
        assert fingerprint("POST", "/x", {}, b"not json") != fingerprint("POST", "/x", {}, b"")

    def test_a_key_is_1_to_255_printable_ascii_characters(self) -> None:
        for good in ("a", "~" * 255, "order 42/retry"):
            assert valid_key(good), good
        for bad in ("", " ", "x" * 256, "caf\u00e9", "line\nbreak", "nul\0", "trailing\n"):
            assert not valid_key(bad), bad

    def test_an_answer_round_trips(self) -> None:
        assert decode_answer(encode_answer(ANSWER)) == ANSWER
        empty = StoredAnswer(204, (), b"")
        assert decode_answer(encode_answer(empty)) == empty


class TestTheRoutes:
    def test_answers_with_a_secret_are_sealed_and_sign_in_routes_off(self) -> None:
        """A route whose answer has a token must not keep it in clear: this catches a new one
        (e.g. POST /users/profile/tokens) that forgets `idempotency="sealed"`."""
        from chalicelib.api import all_routes

        for spec in all_routes():
            if "POST" not in spec.methods or not spec.auth:
                continue
            fields = set(spec.response.model_fields) if spec.response else set()
            secret = any(name == "token" or name.endswith("_token") for name in fields)
            assert spec.idempotency == ("sealed" if secret else "store"), spec.path

    def test_the_lease_outlasts_the_api_function(self) -> None:
        config = json.loads((ROOT / ".chalice" / "config.json").read_text())
        timeout = config["lambda_functions"]["api_handler"]["lambda_timeout"]
        assert LEASE.total_seconds() > timeout

    def test_the_document_names_the_header_on_every_post(self) -> None:
        from chalicelib.api.openapi import document

        for path, operations in document("test")["paths"].items():
            post = operations.get("post")
            if post is None:
                continue
            (header,) = [p for p in post["parameters"] if p["name"] == "Idempotency-Key"]
            if post["security"]:  # authenticated: kept, replayed, refused when reused
                assert header["schema"]["maxLength"] == 255, path
                assert {"409", "422"} <= set(post["responses"]), path
                success = min(post["responses"])
                assert "Idempotent-Replayed" in post["responses"][success]["headers"], path
            else:
                assert "Ignored" in header["description"], path


def test_a_lease_over_that_another_request_takes_first_is_in_flight(
    service: IdempotencyService, store: InMemoryIdempotencyStore, clock: FakeClock
) -> None:
    """The claim was refused on a record whose lease is over and that nothing committed:
    another request took it over between the two (a race): retry shortly."""
    stale = claimed(service).record
    clock.advance(seconds=LEASE.total_seconds() + 1)

    class Raced(InMemoryIdempotencyStore):
        def claim(self, record: object, now: object) -> object:
            return stale

    raced = IdempotencyService(Raced(), clock, lambda: b"k" * 32)
    with pytest.raises(RequestInFlight) as busy:
        raced.begin("u1", "key", "fp", "POST /tasks")
    assert busy.value.retry_after_seconds == 1
