"""Request-scoped prefetching: one BatchGetItem for the first reads of a request.

Authentication reads the caller's session on every request. Rather than paying a call for it,
the route names the items it will read first (its project, task, user, ...); the session and
those items come back in one consistent BatchGetItem, and repositories take each prefetched item
once (the first `get` of that key in the request). Later reads of the same key go to DynamoDB,
so a retry after a lost conditional write never sees a stale copy.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from pynamodb.models import Model

from chalicelib.adapters.dynamodb import connection
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.errors import Unavailable

M = TypeVar("M", bound=Model)

_scope: ContextVar[dict[ItemKey, Any] | None] = ContextVar("prefetched", default=None)
MAX_BATCH_ATTEMPTS = 5


@dataclass(frozen=True)
class ItemKey:
    model: type[Model]
    hash_key: str
    range_key: str | None = None

    def raw(self) -> dict[str, dict[str, str]]:
        key = {str(self.model._hash_keyname): {"S": self.hash_key}}
        range_name = self.model._range_keyname
        if range_name is not None and self.range_key is not None:
            key[range_name] = {"S": self.range_key}
        return key


@contextmanager
def request_scope() -> Iterator[None]:
    token = _scope.set({})
    try:
        yield
    finally:
        _scope.reset(token)


class _Missing:
    pass


MISSING = _Missing()


def take(key: ItemKey) -> Any:
    """The prefetched item (or None if it does not exist), once; MISSING if not prefetched."""
    scope = _scope.get()
    if scope is None or key not in scope:
        return MISSING
    return scope.pop(key)


def _identify(model: type[Model], item: dict[str, Any]) -> tuple[str, str | None]:
    range_name = model._range_keyname
    hash_value = item[str(model._hash_keyname)]["S"]
    return hash_value, item[range_name]["S"] if range_name else None


@translate_aws_failures
def get_many(keys: Sequence[ItemKey]) -> dict[ItemKey, Any]:
    """Read `keys` (from any tables) in one consistent BatchGetItem; missing items map to None.

    The results are also kept for the current request scope, to be `take`n by repositories.
    """
    scope = _scope.get()
    # Items this request already holds are not read again (a service may warm what the route
    # prefetched with the session).
    keys = [key for key in dict.fromkeys(keys) if scope is None or key not in scope]
    found: dict[ItemKey, Any] = dict.fromkeys(keys)
    if not keys:
        return found
    by_table: dict[str, type[Model]] = {k.model.Meta.table_name: k.model for k in keys}
    lookup = {(k.model.Meta.table_name, k.hash_key, k.range_key): k for k in keys}
    request: dict[str, Any] = {}
    for key in keys:
        table = request.setdefault(key.model.Meta.table_name, {"Keys": [], "ConsistentRead": True})
        table["Keys"].append(key.raw())
    client = connection.root().client
    for attempt in range(MAX_BATCH_ATTEMPTS):
        response = client.batch_get_item(RequestItems=request)
        for table_name, items in response.get("Responses", {}).items():
            model = by_table[table_name]
            for item in items:
                hash_value, range_value = _identify(model, item)
                found[lookup[(table_name, hash_value, range_value)]] = model.from_raw_data(item)
        request = response.get("UnprocessedKeys") or {}
        if not request:
            break
        time.sleep(0.02 * 2**attempt)  # DynamoDB asks us to back off when it leaves keys out
    else:
        raise Unavailable("DynamoDB left keys unprocessed; retry")
    if scope is not None:
        scope.update(found)
    return found


def get(key: ItemKey, model: type[M]) -> M | None:
    """Read one item: the prefetched copy if there is one, else a consistent GetItem."""
    prefetched = take(key)
    if prefetched is not MISSING:
        return prefetched  # type: ignore[no-any-return]
    try:
        if key.range_key is None:
            return model.get(key.hash_key, consistent_read=True)
        return model.get(key.hash_key, key.range_key, consistent_read=True)
    except model.DoesNotExist:
        return None
