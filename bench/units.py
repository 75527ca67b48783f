"""DynamoDB calls, the time spent in them, and the request units on-demand billing would charge.

`Meter` hooks the botocore client every PynamoDB model and transaction shares
(chalicelib/adapters/dynamodb/connection.py) and records each call: operation, parameters,
response, and wall time. Units are worked out afterwards, outside any timing, by DynamoDB's
rules (docs/benchmarks.md):

- reads: 4 KB units, per item for GetItem/BatchGetItem (a missing item still costs one), summed
  over the items evaluated for Query/Scan; eventually consistent reads are half, transactional
  ones double;
- writes: 1 KB units of the larger of the item before and after the write (PutItem, UpdateItem;
  the deleted item for DeleteItem; the before-image is read just before the call, the
  after-image just after it), plus, per global secondary index: one write of the projected
  size where the item enters the index or its projected attributes change, one where it
  leaves the index (a sparse index's attribute removed, or the item deleted), two where an
  index key changes (a delete and a put), none where the index's keys and projected
  attributes are unchanged; a transactional write doubles the table's units, not its indexes'
  (an index write costs what it costs outside a transaction: measured against DynamoDB by
  the maintainers of an emulator, see docs/benchmarks.md), and a ConditionCheck is charged
  like a transactional write of the item it checks. A write whose condition failed is charged
  the table units only.

moto's own `ConsumedCapacity` is a constant, so sizes are computed here from the items (the
DynamoDB item size: attribute names plus values). Indexes are read from the table's
description (created from the PynamoDB models).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

READ_UNIT, WRITE_UNIT = 4096, 1024
# Where an item's size cannot be known (a Query filtered every item out, a Select COUNT).
FALLBACK_ITEM_BYTES = 512


def attribute_value_size(value: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for one attribute value (DynamoDB JSON)."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = str(inner).lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(inner) if isinstance(inner, bytes) else len(str(inner)) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(v).encode()) for v in inner)
    if kind == "NS":
        return sum(attribute_value_size({"N": v}) for v in inner)
    if kind == "BS":
        return sum(attribute_value_size({"B": v}) for v in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_value_size(v) for k, v in inner.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + attribute_value_size(value) for name, value in item.items())


def units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


@dataclass
class Call:
    operation: str
    params: dict[str, Any]
    parsed: dict[str, Any] | None = None
    seconds: float = 0.0
    # The items a write replaces, changes or deletes, read just before the call, one per
    # entry of `written(call)`; None when not read (each write then counts as on a new item).
    before: list[dict[str, Any] | None] | None = None


@dataclass(frozen=True)
class Written:
    """One item a write call touches: its table, its key (None for a Put: taken from the
    item), what is done to it, and the item written (Put)."""

    table: str
    action: str  # put | update | delete | check
    key: dict[str, Any] | None = None
    item: dict[str, Any] | None = None


WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)


def written(call: Call) -> list[Written]:
    """The items a write call touches, in a fixed order (empty for a read)."""
    params, operation = call.params, call.operation
    if operation == "PutItem":
        return [Written(params["TableName"], "put", item=params["Item"])]
    if operation == "UpdateItem":
        return [Written(params["TableName"], "update", key=params["Key"])]
    if operation == "DeleteItem":
        return [Written(params["TableName"], "delete", key=params["Key"])]
    if operation == "BatchWriteItem":
        found = []
        for table, requests in params.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    found.append(Written(table, "put", item=request["PutRequest"]["Item"]))
                else:
                    found.append(Written(table, "delete", key=request["DeleteRequest"]["Key"]))
        return found
    if operation == "TransactWriteItems":
        found = []
        for entry in params.get("TransactItems", []):
            for name, action in (
                ("Put", "put"),
                ("Update", "update"),
                ("Delete", "delete"),
                ("ConditionCheck", "check"),
            ):
                if name in entry:
                    request = entry[name]
                    found.append(
                        Written(
                            request["TableName"], action, request.get("Key"), request.get("Item")
                        )
                    )
        return found
    return []


@dataclass(frozen=True)
class Index:
    keys: tuple[str, ...]
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    included: tuple[str, ...] = ()


@dataclass
class Usage:
    calls: int = 0
    seconds: float = 0.0
    rru: float = 0.0
    wru: float = 0.0
    operations: dict[str, int] = field(default_factory=dict)


class Meter:
    """Records the DynamoDB calls made while `recording()` is open (this thread only)."""

    def __init__(self, client: Any, lookup: Any, *, before_images: bool = True) -> None:
        """`client`: the botocore client to watch; `lookup`: a client on the same endpoint to
        read item sizes and table descriptions with (calls it makes are not recorded).
        `before_images`: read each written item just before the write (what updates, puts
        over an item and deletes are charged on); its time counts as time in DynamoDB."""
        self._client = client
        self._lookup = lookup
        self._before_images = before_images
        self._local = threading.local()
        self._indexes: dict[str, list[Index]] = {}
        self._table_keys: dict[str, list[str]] = {}
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)

    def close(self) -> None:
        events = self._client.meta.events
        events.unregister("before-parameter-build.dynamodb", self._before)
        events.unregister("after-call.dynamodb", self._after)

    def _calls(self) -> list[Call] | None:
        if getattr(self._local, "looking_up", False):
            return None  # the meter's own reads (when `lookup` is the watched client)
        calls: list[Call] | None = getattr(self._local, "calls", None)
        return calls

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        calls = self._calls()
        if calls is None:
            return
        call = Call(model.name, dict(params), seconds=-time.perf_counter())
        calls.append(call)
        if self._before_images and call.operation in WRITE_OPERATIONS:
            call.before = [self._stored(entry) for entry in written(call)]

    def _after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        calls = self._calls()
        if calls:
            call = calls[-1]
            call.parsed = parsed
            call.seconds += time.perf_counter()

    @contextmanager
    def recording(self) -> Iterator[list[Call]]:
        calls: list[Call] = []
        self._local.calls = calls
        try:
            yield calls
        finally:
            self._local.calls = None

    def usage(self, calls: list[Call]) -> Usage:
        """Calls, time in DynamoDB and request units of what was recorded (reads back item
        sizes where needed: call this after the timed work)."""
        usage = Usage(calls=len(calls), seconds=sum(c.seconds for c in calls))
        for call in calls:
            usage.operations[call.operation] = usage.operations.get(call.operation, 0) + 1
            rru, wru = self._units(call)
            usage.rru += rru
            usage.wru += wru
        return usage

    # ---- the billing rules ---------------------------------------------------------------

    def _units(self, call: Call) -> tuple[float, float]:
        params, parsed = call.params, call.parsed or {}
        operation = call.operation
        factor = 1.0 if params.get("ConsistentRead") else 0.5
        if operation == "GetItem":
            return units(item_size(parsed.get("Item")), READ_UNIT) * factor, 0.0
        if operation == "BatchGetItem":
            rru = 0.0
            for table, request in params.get("RequestItems", {}).items():
                table_factor = 1.0 if request.get("ConsistentRead") else 0.5
                found = parsed.get("Responses", {}).get(table, [])
                sizes = [item_size(item) for item in found]
                sizes += [0] * max(0, len(request.get("Keys", [])) - len(found))
                rru += sum(units(size, READ_UNIT) for size in sizes) * table_factor
            return rru, 0.0
        if operation in ("Query", "Scan"):
            items = parsed.get("Items", [])
            returned = sum(item_size(item) for item in items)
            scanned = int(parsed.get("ScannedCount", len(items)))
            average = returned / len(items) if items else FALLBACK_ITEM_BYTES
            evaluated = average * scanned
            return units(int(evaluated), READ_UNIT) * factor, 0.0
        if operation == "TransactGetItems":
            responses = parsed.get("Responses", [])
            return sum(2 * units(item_size(r.get("Item")), READ_UNIT) for r in responses), 0.0
        entries = written(call)
        if not entries:
            return 0.0, 0.0  # DescribeTable and the like: not billed as request units
        befores = call.before if call.before is not None else [None] * len(entries)
        failed = "Error" in parsed  # a condition failed (or the transaction was cancelled)
        factor = 2.0 if operation == "TransactWriteItems" else 1.0
        wru = 0.0
        for entry, before in zip(entries, befores, strict=True):
            if entry.action == "check":
                checked = before if call.before is not None else self._current(entry)
                wru += factor * units(item_size(checked), WRITE_UNIT)
                continue
            if entry.action == "put":
                after = entry.item
            elif entry.action == "update":
                after = before if failed else self._current(entry)
            else:
                after = None
            wru += self._write(entry.table, after, before, failed=failed, factor=factor)
        return 0.0, wru

    def _stored(self, entry: Written) -> dict[str, Any] | None:
        """The item as stored now (before the write)."""
        if entry.key is None and entry.item is not None:
            self._table_indexes(entry.table)  # reads the key schema
            names = self._table_keys[entry.table]
            entry = Written(entry.table, entry.action, {k: entry.item[k] for k in names})
        return self._current(entry)

    def _current(self, entry: Written) -> dict[str, Any] | None:
        self._local.looking_up = True
        try:
            found = self._lookup.get_item(TableName=entry.table, Key=entry.key, ConsistentRead=True)
        finally:
            self._local.looking_up = False
        item: dict[str, Any] | None = found.get("Item")
        return item

    def _write(
        self,
        table: str,
        after: dict[str, Any] | None,
        before: dict[str, Any] | None = None,
        *,
        failed: bool = False,
        factor: float = 1.0,
    ) -> float:
        """Write units of one item's write: the table's (the larger of the item before and
        after, times `factor`: 2 in a transaction), and each index's (see the module's
        docstring)."""
        total = factor * units(max(item_size(after), item_size(before)), WRITE_UNIT)
        if failed:
            return total
        for index in self._table_indexes(table):
            old = self._projected(table, index, before)
            new = self._projected(table, index, after)
            if old is None and new is None:
                continue
            if new is None or old is None:  # leaves the index, or enters it
                total += units(item_size(old if new is None else new), WRITE_UNIT)
            elif any(old[key] != new[key] for key in index.keys):  # moved: delete and put
                total += units(item_size(old), WRITE_UNIT) + units(item_size(new), WRITE_UNIT)
            elif old != new:
                total += units(item_size(new), WRITE_UNIT)
        return total

    def _projected(
        self, table: str, index: Index, item: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The item's entry in the index, or None if it is not in it (sparse)."""
        if not item or not all(key in item for key in index.keys):
            return None
        if index.projection == "ALL":
            return item
        kept = {*index.keys, *self._table_keys[table], *index.included}
        return {k: v for k, v in item.items() if k in kept}

    def _table_indexes(self, table: str) -> list[Index]:
        if table not in self._indexes:
            self._local.looking_up = True
            try:
                description = self._lookup.describe_table(TableName=table)["Table"]
            finally:
                self._local.looking_up = False
            self._table_keys[table] = [k["AttributeName"] for k in description["KeySchema"]]
            self._indexes[table] = [
                Index(
                    keys=tuple(k["AttributeName"] for k in index["KeySchema"]),
                    projection=index["Projection"]["ProjectionType"],
                    included=tuple(index["Projection"].get("NonKeyAttributes", ())),
                )
                for index in description.get("GlobalSecondaryIndexes", [])
            ]
        return self._indexes[table]
