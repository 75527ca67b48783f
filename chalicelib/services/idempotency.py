"""Idempotent POSTs: claim a key, run the route under the claim, keep its answer for a replay.

The protocol (docs/idempotency.md):
1. `begin`: one conditional write claims (user, key) for this request: state in progress, a
   lease as long as the API function may run. If another record holds the key, no write is
   made and the answer comes from it: the first answer again (`Replay`), 422 for another body
   or route, 409 while the first request runs.
2. The route runs inside `guarded`: each DynamoDB transaction it writes also checks that the
   claim still holds and marks it committed, in the same TransactWriteItems. A request whose
   claim was taken over (it outlived its lease) writes nothing; a committed claim is never
   taken over. So a route that writes once, in one transaction, does its work at most once.
3. `finish` keeps the answer (one conditional write); `abandon` gives the key up when the
   answer must not be kept (5xx, 401, 429): the client retries with the same key.

A crash between 2 and 3 leaves the claim in progress: 409 until its lease is over; then, if the
work was committed, 409 saying so (its answer is lost, the work is never redone); if not, the
next request takes the claim over and runs the route.

Answers that carry a secret (a calendar token, an API token) are kept sealed: encrypted and
authenticated under a key derived from the deployment's derivation secret, the user and the
idempotency key, so the table alone reveals nothing and only the same user with the same key
gets the answer back.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from chalicelib.domain.errors import Conflict, IdempotencyKeyReused
from chalicelib.domain.idempotency import (
    LEASE,
    RETENTION,
    IdempotencyRecord,
    RequestInFlight,
    State,
    StoredAnswer,
    decode_answer,
    encode_answer,
)
from chalicelib.ports import Clock, IdempotencyStore

# The derivation secret's purpose for sealed answers (services/derived_keys.py).
SEALING_PURPOSE = b"idempotent-answers"
_NONCE = 16
_TAG = 32


@dataclass(frozen=True)
class Claimed:
    """This request holds the key: run the route, then `finish` or `abandon`."""

    record: IdempotencyRecord


@dataclass(frozen=True)
class Replay:
    """The key's first answer, to be sent again."""

    answer: StoredAnswer


class IdempotencyService:
    def __init__(
        self,
        store: IdempotencyStore,
        clock: Clock,
        sealing_key: Callable[[], bytes],
        new_lease_id: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        self._store = store
        self._clock = clock
        self._sealing_key = sealing_key
        self._new_lease_id = new_lease_id

    def begin(self, user_id: str, key: str, fingerprint: str, route: str) -> Claimed | Replay:
        now = self._clock.now()
        record = IdempotencyRecord(
            user_id=user_id,
            key=key,
            fingerprint=fingerprint,
            route=route,
            state=State.IN_PROGRESS,
            lease_id=self._new_lease_id(),
            lease_until=now + LEASE,
            expires_at=now + RETENTION,
        )
        held = self._store.claim(record, now)
        if held is None:
            return Claimed(record)
        if held.fingerprint != fingerprint:
            where = "body" if held.route == route else f"route ({held.route})"
            raise IdempotencyKeyReused(
                f"this Idempotency-Key was used with another {where} within 24 hours",
                [{"loc": ["header", "Idempotency-Key"], "message": "reused with another request"}],
            )
        if held.state is State.DONE and held.answer is not None:
            data = self._unseal(held, held.answer) if held.sealed else held.answer
            return Replay(decode_answer(data))
        if not held.lease_over(now):
            wait = math.ceil((held.lease_until - now).total_seconds())
            raise RequestInFlight(
                "a request with this Idempotency-Key is still being handled; retry later", wait
            )
        if held.committed:
            raise Conflict(
                "the request with this Idempotency-Key was carried out, but its answer was lost "
                "(the server stopped before sending it); it will not be carried out again: "
                "read the resource instead, or send a new key"
            )
        # Its lease is over and nothing was committed, but another request took it over first.
        raise RequestInFlight(
            "a request with this Idempotency-Key is still being handled; retry later", 1
        )

    def guarded(self, claimed: Claimed) -> AbstractContextManager[None]:
        return self._store.guarded(claimed.record)

    def finish(self, claimed: Claimed, answer: StoredAnswer, *, sealed: bool) -> bool:
        """Keep the answer; False if the claim was lost meanwhile (nothing kept)."""
        data = encode_answer(answer)
        if sealed:
            data = self._seal(claimed.record, data)
        return self._store.complete(claimed.record, data, sealed)

    def abandon(self, claimed: Claimed) -> None:
        self._store.release(claimed.record, self._clock.now())

    # ---- sealing: SHAKE-256 keystream (encrypt), then HMAC-SHA256 over nonce and ciphertext

    def _keys(self, record: IdempotencyRecord) -> tuple[bytes, bytes]:
        base = hmac.new(
            self._sealing_key(), f"{record.user_id}\0{record.key}".encode(), "sha256"
        ).digest()
        return (
            hmac.new(base, b"encrypt", "sha256").digest(),
            hmac.new(base, b"authenticate", "sha256").digest(),
        )

    def _seal(self, record: IdempotencyRecord, data: bytes) -> bytes:
        encrypt, authenticate = self._keys(record)
        nonce = secrets.token_bytes(_NONCE)
        stream = hashlib.shake_256(encrypt + nonce).digest(len(data))
        sealed = nonce + _xor(data, stream)
        return sealed + hmac.new(authenticate, sealed, "sha256").digest()

    def _unseal(self, record: IdempotencyRecord, data: bytes) -> bytes:
        encrypt, authenticate = self._keys(record)
        sealed, tag = data[:-_TAG], data[-_TAG:]
        if not hmac.compare_digest(tag, hmac.new(authenticate, sealed, "sha256").digest()):
            raise ValueError("a sealed idempotent answer failed its authentication")
        nonce, cipher = sealed[:_NONCE], sealed[_NONCE:]
        stream = hashlib.shake_256(encrypt + nonce).digest(len(cipher))
        return _xor(cipher, stream)


def _xor(data: bytes, stream: bytes) -> bytes:
    size = len(data)
    return (int.from_bytes(data) ^ int.from_bytes(stream)).to_bytes(size)
