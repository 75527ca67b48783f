"""Pages of DynamoDB queries, resumed by opaque cursors (`chalicelib.domain.cursors`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.domain.model import Page, PageRequest

T = TypeVar("T")
M = TypeVar("M")


def paginate(
    run_query: Callable[[int, dict[str, Any] | None], Iterable[M]],
    key_of: Callable[[M], dict[str, Any]],
    to_entity: Callable[[M], T],
    page: PageRequest,
    scope: str,
) -> Page[T]:
    """Fetch one page: ask for limit+1 items so `next_cursor` is null exactly on the last page."""
    start = decode_cursor(page.cursor, scope)
    rows = list(run_query(page.limit + 1, start))
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    next_cursor = encode_cursor(key_of(rows[-1]), scope) if has_more and rows else None
    return Page(items=[to_entity(row) for row in rows], next_cursor=next_cursor)


def key_of(item: Any, *names: str) -> dict[str, Any]:
    """The serialized DynamoDB key of `item` made of the attributes `names` (table + index keys)."""
    serialized = item.serialize()
    return {name: serialized[name] for name in names if name in serialized}


def query_one_page(
    model: type[Any],
    run_query: Callable[[int, dict[str, Any] | None], Any],
    key_names: Sequence[str],
    page_limit: int,
    evaluate_at_most: int,
    start: dict[str, Any] | None,
) -> tuple[list[Any], dict[str, Any] | None]:
    """Exactly one Query call: up to `page_limit` items and where to resume (None at the end).

    DynamoDB applies a filter after `Limit`: with a filter, a page may hold fewer items than
    asked (even none) while more follow. That bounds the work of every request.
    """
    raw = next(run_query(evaluate_at_most, start).page_iter)
    rows = [model.from_raw_data(item) for item in raw.get("Items", [])]
    resume: dict[str, Any] | None = raw.get("LastEvaluatedKey")
    if len(rows) > page_limit:
        rows = rows[:page_limit]
        serialized = rows[-1].serialize()
        resume = {name: serialized[name] for name in key_names if name in serialized}
    return rows, resume
