"""Idempotent POSTs (API.md, "Machine access"): what a request's `Idempotency-Key` record holds.

One record per (user, key), kept 24 hours. It is claimed before the route runs (state
`in_progress`, with a lease as long as the API function may run), and completed with the
route's answer (state `done`), which later requests with the same key and the same fingerprint
get again. `committed` says that a write the claim guarded has been made (the work's own
transaction carried the claim's condition, docs/idempotency.md): such a claim is never taken
over, so the work is never done twice.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.errors import Conflict

# How long a key's first answer is replayed.
RETENTION = timedelta(hours=24)
# A claim's lease: the API function's timeout (29 s, .chalice/config.json) and a second. A
# request still running after it has been stopped by Lambda; its claim may then be taken over
# (unless its work was committed, see `IdempotencyRecord.committed`).
LEASE = timedelta(seconds=30)

# 1..255 printable ASCII characters (space included, but not only spaces: header values lose
# their outer white space on the way). The OpenAPI document states the same pattern.
MAX_KEY_LENGTH = 255
KEY_PATTERN = r"^[\x20-\x7e]*[\x21-\x7e][\x20-\x7e]*$"
_KEY = re.compile(KEY_PATTERN)

# Response headers a replay repeats (the others are made for every response anyway).
REPLAYED_HEADERS = ("Content-Type", "ETag", "Location", "Retry-After")


def valid_key(value: str) -> bool:
    return len(value) <= MAX_KEY_LENGTH and bool(_KEY.fullmatch(value))


class State(enum.Enum):
    IN_PROGRESS = "in_progress"
    DONE = "done"


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer, as replayed: status, the headers that matter, the body's bytes."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class IdempotencyRecord:
    user_id: str
    key: str
    fingerprint: str
    route: str  # "POST /tasks": for the message of a reuse on another route
    state: State
    lease_id: str
    lease_until: datetime
    expires_at: datetime
    committed: bool = False
    # The answer once `done`; `sealed` when it is encrypted (an answer that carries a secret).
    answer: bytes | None = None
    sealed: bool = False

    def expired(self, now: datetime) -> bool:
        return self.expires_at <= now

    def lease_over(self, now: datetime) -> bool:
        return self.lease_until <= now


def fingerprint(method: str, route: str, params: dict[str, str], body: bytes) -> str:
    """What "the same request" means: method, route template, path parameters and the body
    as canonical JSON (key order and white space do not matter; a body that is not JSON is
    taken byte for byte)."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, UnicodeDecodeError, RecursionError):
        canonical = body
    head = json.dumps([method, route, sorted(params.items())]).encode()
    digest = hashlib.sha256(head)
    digest.update(b"\0")
    digest.update(canonical)
    return digest.hexdigest()


def encode_answer(answer: StoredAnswer) -> bytes:
    """An answer as bytes: a JSON head (status, headers), a newline, then the body."""
    head = json.dumps({"status": answer.status, "headers": [list(h) for h in answer.headers]})
    return head.encode() + b"\n" + answer.body


def decode_answer(data: bytes) -> StoredAnswer:
    head, _, body = data.partition(b"\n")
    parsed: dict[str, Any] = json.loads(head)
    return StoredAnswer(
        status=int(parsed["status"]),
        headers=tuple((str(name), str(value)) for name, value in parsed["headers"]),
        body=body,
    )


class RequestInFlight(Conflict):
    """The first request with this key is still being handled (409, retry after a while)."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = max(1, retry_after_seconds)


class ClaimLost(Conflict):
    """A guarded write found its claim taken over (the request outlived its lease): nothing
    of it was written."""
