"""Where the records of `Idempotency-Key`s are kept (chalicelib/services/idempotency.py)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from chalicelib.domain.idempotency import IdempotencyRecord


class IdempotencyStore(Protocol):
    def claim(self, record: IdempotencyRecord, now: datetime) -> IdempotencyRecord | None:
        """Put `record` (in progress) in one conditional write, unless a live record holds its
        key: None when claimed (no record, an expired one, or one whose lease is over, whose
        work was not committed and whose fingerprint is the same); else the holding record."""

    def complete(self, record: IdempotencyRecord, answer: bytes, sealed: bool) -> bool:
        """Keep the answer, on condition that `record`'s claim still holds; False if not."""

    def release(self, record: IdempotencyRecord, now: datetime) -> None:
        """Give the key up after an answer that is not kept (5xx): the record goes, unless its
        work was committed; then its lease ends now (the next request learns it at once)."""

    def guarded(self, record: IdempotencyRecord) -> AbstractContextManager[None]:
        """Within this block, each transaction the adapters write also checks that `record`'s
        claim still holds and marks it committed: a request whose claim was taken over
        writes nothing (`ClaimLost`), and a committed claim is never taken over."""
