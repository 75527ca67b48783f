"""Fixes for moto's DynamoDB under concurrency, for the local stack only.

moto runs a transaction by deep-copying every table it touches, applying the writes, and on a
failed condition restoring the copies: any write another thread made meanwhile is lost (seen as
a registration that vanished when two people registered at once). DynamoDB itself never loses
a write, so the local stack serializes moto's DynamoDB writes with one lock. Reads stay
concurrent.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_lock = threading.RLock()
_originals: dict[str, Callable[..., Any]] = {}


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(*args, **kwargs)

    return locked


def install() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    with _lock:
        for name in WRITES:
            if name not in _originals:
                _originals[name] = getattr(DynamoDBBackend, name)
                setattr(DynamoDBBackend, name, _serialized(_originals[name]))


def uninstall() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    with _lock:
        for name, original in _originals.items():
            setattr(DynamoDBBackend, name, original)
        _originals.clear()
