"""DynamoDB calls, the time spent in them, and the request units on-demand billing would charge.

`Meter` hooks the botocore client every PynamoDB model and transaction shares
(chalicelib/adapters/dynamodb/connection.py) and records each call: operation, parameters,
response, and wall time. Units are worked out afterwards, outside any timing, by DynamoDB's
rules (docs/benchmarks.md):

- reads: 4 KB units, per item for GetItem/BatchGetItem (a missing item still costs one), summed
  over the items evaluated for Query/Scan; eventually consistent reads are half, transactional
  ones double;
- writes: 1 KB units of the item (the item after the write for UpdateItem, read back here),
  plus one write per global secondary index the written item appears in (its key attributes
  present) with the projected size; transactional writes double, and a ConditionCheck is
  charged like a write of the item it checks.

moto's own `ConsumedCapacity` is a constant, so sizes are computed here from the items (the
DynamoDB item size: attribute names plus values). Not modelled: an update that changes an
index key costs that index a delete and a put (counted once), and deletes are counted as one
unit without index writes.
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

    def __init__(self, client: Any, lookup: Any) -> None:
        """`client`: the botocore client to watch; `lookup`: another client on the same
        endpoint (unwatched) to read item sizes and table descriptions with."""
        self._client = client
        self._lookup = lookup
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
        calls: list[Call] | None = getattr(self._local, "calls", None)
        return calls

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        calls = self._calls()
        if calls is not None:
            calls.append(Call(model.name, dict(params), seconds=-time.perf_counter()))

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
        if operation == "PutItem":
            return 0.0, self._write(params["TableName"], params["Item"])
        if operation == "UpdateItem":
            return 0.0, self._write(params["TableName"], self._current(params))
        if operation == "DeleteItem":
            return 0.0, 1.0
        if operation == "BatchWriteItem":
            wru = 0.0
            for table, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        wru += self._write(table, request["PutRequest"]["Item"])
                    else:
                        wru += 1.0
            return 0.0, wru
        if operation == "TransactWriteItems":
            wru = 0.0
            for entry in params.get("TransactItems", []):
                if "Put" in entry:
                    wru += 2 * self._write(entry["Put"]["TableName"], entry["Put"]["Item"])
                elif "Update" in entry:
                    wru += 2 * self._write(
                        entry["Update"]["TableName"], self._current(entry["Update"])
                    )
                elif "ConditionCheck" in entry:
                    checked = item_size(self._current(entry["ConditionCheck"]))
                    wru += 2 * units(checked, WRITE_UNIT)
                else:
                    wru += 2.0
            return 0.0, wru
        return 0.0, 0.0  # DescribeTable and the like: not billed as request units

    def _current(self, request: dict[str, Any]) -> dict[str, Any] | None:
        found = self._lookup.get_item(
            TableName=request["TableName"], Key=request["Key"], ConsistentRead=True
        )
        item: dict[str, Any] | None = found.get("Item")
        return item

    def _write(self, table: str, item: dict[str, Any] | None) -> float:
        size = item_size(item)
        total = float(units(size, WRITE_UNIT))
        if not item:
            return total
        for index in self._table_indexes(table):
            if all(key in item for key in index.keys):
                if index.projection == "ALL":
                    projected = size
                else:
                    kept = {*index.keys, *self._table_keys[table], *index.included}
                    projected = item_size({k: v for k, v in item.items() if k in kept})
                total += units(projected, WRITE_UNIT)
        return total

    def _table_indexes(self, table: str) -> list[Index]:
        if table not in self._indexes:
            description = self._lookup.describe_table(TableName=table)["Table"]
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
