from __future__ import annotations

import base64
import json

import pytest

from chalicelib.domain import cursors
from chalicelib.domain.errors import BadRequest


def test_round_trip() -> None:
    cursor = cursors.encode_cursor({"id": {"S": "01ABC"}}, "tasks?p=1")
    assert cursors.decode_cursor(cursor, "tasks?p=1") == {"id": {"S": "01ABC"}}
    assert cursors.decode_cursor(None, "tasks?p=1") is None


def test_a_cursor_of_another_query_is_refused() -> None:
    cursor = cursors.encode_cursor({"id": {"S": "01ABC"}}, "tasks?p=1")
    with pytest.raises(BadRequest, match="another query"):
        cursors.decode_cursor(cursor, "tasks?p=2")


def test_an_edited_cursor_is_refused() -> None:
    cursor = cursors.encode_cursor({"id": {"S": "01ABC"}}, "tasks?p=1")
    payload_text, signature = cursor.split(".")
    payload = json.loads(base64.urlsafe_b64decode(payload_text + "=" * (-len(payload_text) % 4)))
    payload["k"]["id"]["S"] = "01ZZZ"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    with pytest.raises(BadRequest, match="not valid"):
        cursors.decode_cursor(f"{forged}.{signature}", "tasks?p=1")
    for garbage in ("garbage", "a.b", "!!!.???", cursor + "x"):
        with pytest.raises(BadRequest):
            cursors.decode_cursor(garbage, "tasks?p=1")


def test_a_cursor_signed_with_another_key_is_refused() -> None:
    cursors.use_signing_key(lambda: b"k" * 32)
    try:
        cursor = cursors.encode_cursor({"id": {"S": "1"}}, "s")
        cursors.use_signing_key(lambda: b"other" * 8)
        with pytest.raises(BadRequest):
            cursors.decode_cursor(cursor, "s")
    finally:
        cursors.use_signing_key(lambda: b"k" * 32)
