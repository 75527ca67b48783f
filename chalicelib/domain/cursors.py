"""Opaque, tamper-proof cursors for paginated lists.

A cursor carries where the previous page ended and a fingerprint of the query that made it,
signed with HMAC-SHA256: an edited cursor, or one replayed against another query, is a 400
instead of silently reading from somewhere else.

The signing key comes from `use_signing_key` (the composition root derives it from the JWT
signing secret, so every Lambda container agrees); until then a random key of this process
is used, which suits tests and a single local process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable
from typing import Any

from chalicelib.domain.errors import BadRequest

_SIGNATURE_BYTES = 16
_lock = threading.Lock()
_key_provider: Callable[[], bytes] | None = None
_key: bytes | None = None


def use_signing_key(provider: Callable[[], bytes] | None) -> None:
    """Sign cursors with the key `provider` returns (asked once, on first use); None goes back
    to a random key of this process."""
    global _key_provider, _key
    with _lock:
        _key_provider, _key = provider, None


def _signing_key() -> bytes:
    global _key
    with _lock:
        if _key is None:
            _key = _key_provider() if _key_provider else secrets.token_bytes(32)
        return _key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode())


def _fingerprint(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:16]


def _sign(payload: bytes) -> bytes:
    return hmac.new(_signing_key(), payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def encode_cursor(last_key: dict[str, Any], scope: str) -> str:
    payload = json.dumps({"q": _fingerprint(scope), "k": last_key}, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_sign(payload))}"


def decode_cursor(cursor: str | None, scope: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        payload_text, _, signature_text = cursor.partition(".")
        payload, signature = _unb64(payload_text), _unb64(signature_text)
    except ValueError:
        raise BadRequest("cursor is not valid") from None
    if not hmac.compare_digest(signature, _sign(payload)):
        raise BadRequest("cursor is not valid")
    data = json.loads(payload)
    if data.get("q") != _fingerprint(scope):
        raise BadRequest("cursor belongs to another query")
    key: dict[str, Any] = data["k"]
    return key
