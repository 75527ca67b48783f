"""The Prefetcher port on DynamoDB: one BatchGetItem whose items the repositories then take."""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.adapters.dynamodb import prefetch
from chalicelib.adapters.dynamodb.identity import item_key
from chalicelib.ports import PrefetchKey


class DynamoPrefetcher:
    def warm(self, keys: Sequence[PrefetchKey]) -> None:
        if keys:
            prefetch.get_many([item_key(key) for key in keys])
