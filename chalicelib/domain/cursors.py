"""Opaque cursors for paginated lists.

A cursor carries where the previous page ended and a fingerprint of the query that made it, so
a cursor replayed against another query (or edited) is refused with 400 instead of silently
misbehaving.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from chalicelib.domain.errors import BadRequest


def _fingerprint(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:16]


def encode_cursor(last_key: dict[str, Any], scope: str) -> str:
    raw = json.dumps({"q": _fingerprint(scope), "k": last_key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, scope: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or not isinstance(data.get("k"), dict):
            raise ValueError
    except ValueError:
        raise BadRequest("cursor is not valid") from None
    if data.get("q") != _fingerprint(scope):
        raise BadRequest("cursor belongs to another query")
    key: dict[str, Any] = data["k"]
    return key
