"""Patches to moto for the local stack and the concurrency tests (which take only the
thread-safety ones: `install(speedups=False)`); what each is for:

- Write lock (thread safety). moto runs a transaction by deep-copying every table it touches,
  applying the writes, and on a failed condition putting the copies back: any write another
  thread made meanwhile is lost (seen as a registration that vanished when two people
  registered at once). DynamoDB never loses a write, so moto's DynamoDB writes take one lock.
  Reads stay concurrent.
- TransactWriteItems (thread safety, and speed). moto writes each item as soon as its own
  condition passes, so until a later item's condition fails and the copies go back, other
  threads' reads see writes of a transaction that is cancelled; and it copies the whole table
  once per item. Under the write lock the conditions are checked first and nothing is written
  when one fails; only the touched items are copied, to undo the writes if one of them raises.
  `tests/integration/test_moto_differential.py` holds its outcome (success and items, or the
  cancellation reasons) equal to stock moto's for every transaction shape the adapters send.
- DynamoDB answers (speed). moto encodes each item through botocore's generic shape walker,
  member by member; that was the stack's largest CPU cost under load (a workflow run's poll
  reads a hundred executions). Items are plain JSON already, so the item operations' answers
  are dumped as they are (`tests/integration/test_moto_patches.py` holds them equal to moto's).
- Step Functions (speed): moto's interpreter parses every JSONPath again each time a state
  reads one (a parser generator per call) and parses the whole definition (ANTLR, in Python)
  for every execution; the parsed paths and the definitions' syntax trees are kept (each
  execution still gets its own evaluation components). Its Lambda tasks are routed in process
  by `local.lambdas`.
- The server (speed): to route each request, moto lists its package directory and tries every
  service's URL patterns, under one lock shared by all requests; the answer per host is kept.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
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


def _key_of(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    attributes = op["Item"]
    key = {table.hash_key_attr: attributes[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attributes[table.range_key_attr]
    return key


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems without copying whole tables (runs under the write lock)."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    if any(len(item) != 1 for item in transact_items):
        _originals["transact_write_items"](self, transact_items)  # moto's own error
        return
    planned: list[tuple[str, dict[str, Any], str, dict[str, Any], Any]] = []
    reasons: list[tuple[Any, Any, Any]] = []
    seen: set[tuple[str, str]] = set()
    for item in transact_items:
        op_type, op = next(iter(item.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            _originals["transact_write_items"](self, transact_items)  # moto's own error
            return
        table_name = op["TableName"]
        key = _key_of(self.get_table(table_name), op_type, op)
        identity = (str(table_name), str(dict(sorted(key.items()))))
        if identity in seen:
            raise MultipleTransactionsException()
        seen.add(identity)
        current = self.get_item(table_name, key)
        condition = op.get("ConditionExpression")
        if condition is not None and not get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        ).expr(current):
            wants_old = op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
            old = current.to_json()["Attributes"] if wants_old and current else None
            reasons.append(("ConditionalCheckFailed", "The conditional request failed", old))
        else:
            reasons.append((None, None, None))
        planned.append((op_type, op, table_name, key, current))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)

    undo: list[tuple[str, dict[str, Any], Any]] = []
    try:
        for op_type, op, table_name, key, current in planned:
            if op_type == "ConditionCheck":
                continue
            before = copy.deepcopy(current)
            if op_type == "Put":
                self.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                self.delete_item(table_name, key)
            else:
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=op.get("ExpressionAttributeNames"),
                    expression_attribute_values=op.get("ExpressionAttributeValues"),
                )
            undo.append((table_name, key, before))
    except Exception:
        for table_name, key, before in reversed(undo):
            if before is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before.to_json()["Attributes"])
        raise


# Operations whose answers hold only items, keys, counts and consumed capacity: no timestamps
# or shapes that need botocore's serializer.
PLAIN_JSON_OPERATIONS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)


def _plain(value: Any) -> Any:
    """The wire JSON of a moto DynamoDB answer: None members dropped, binary in base64."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    return value


def _dynamo_result(self: Any, context: Any) -> Any:
    """`DynamoResult.execute_result`, with item operations' answers dumped as JSON."""
    operation = str(context.operation_model.name)
    if operation not in PLAIN_JSON_OPERATIONS or not isinstance(self.result, dict):
        return _originals["dynamo_result"](self, context)
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-requestid": uuid.uuid4().hex,
    }
    return 200, headers, json.dumps(_plain(self.result))


_syntax_trees: dict[str, Any] = {}


def _parse_definition(definition: str) -> tuple[Any, Any]:
    """`AmazonStateLanguageParser.parse`, with the syntax tree of each definition kept."""
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    tree = _syntax_trees.get(definition)
    if tree is None:
        program, tree = _originals["asl.parse"](definition)
        _syntax_trees[definition] = tree
        return program, tree
    return Preprocessor().visit(tree), tree


def _backend_for_host(self: Any, host: str | None) -> Any:
    """`DomainDispatcherApplication.get_backend_for_host`, remembered per host."""
    known: dict[str | None, Any] = self.__dict__.setdefault("_taskbeat_backends", {})
    if host not in known:
        known[host] = _originals["get_backend_for_host"](self, host)
    return known[host]


def install(*, speedups: bool = True) -> None:
    """The thread-safety patches (write lock, transactions), and with `speedups` the ones
    that only buy speed. The local stack takes them all (`make run`: 64 against 36 requests a
    second in bench/throughput.py without them, a 100-step workflow 3.5 against 6.1 s); the
    tests' in-process moto takes only the first, so what they check is moto's own behaviour
    wherever we changed nothing but speed (without the speedups the fault and e2e tests ran
    in the same time, 177 s)."""
    from jsonpath_ng.ext.parser import parse as extended_parse
    from jsonpath_ng.parser import parse as plain_parse
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoResult
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.utils import json_path

    with _lock:
        for name in WRITES:
            if name not in _originals:
                _originals[name] = getattr(DynamoDBBackend, name)
                replacement = _transact_write_items if name == "transact_write_items" else None
                setattr(DynamoDBBackend, name, _serialized(replacement or _originals[name]))
        if not speedups:
            return
        if "dynamo_result" not in _originals:
            _originals["dynamo_result"] = DynamoResult.execute_result
            DynamoResult.execute_result = _dynamo_result  # type: ignore[method-assign]
        if "json_path.parse" not in _originals:
            _originals["json_path.parse"] = getattr(json_path, "parse")  # noqa: B009
            _originals["result_path.parse"] = getattr(result_path, "parse")  # noqa: B009
            setattr(json_path, "parse", functools.lru_cache(maxsize=4096)(extended_parse))  # noqa: B010
            setattr(result_path, "parse", functools.lru_cache(maxsize=4096)(plain_parse))  # noqa: B010
        if "get_backend_for_host" not in _originals:
            _originals["get_backend_for_host"] = DomainDispatcherApplication.get_backend_for_host
            DomainDispatcherApplication.get_backend_for_host = _backend_for_host  # type: ignore[method-assign]
        if "asl.parse" not in _originals:
            _originals["asl.parse"] = AmazonStateLanguageParser.parse
            AmazonStateLanguageParser.parse = staticmethod(_parse_definition)  # type: ignore[method-assign]


@contextmanager
def installed(*, speedups: bool = True) -> Iterator[None]:
    """The patches in place for a block: tests compare moto with and without them."""
    install(speedups=speedups)
    try:
        yield
    finally:
        uninstall()


def uninstall() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoResult
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.utils import json_path

    with _lock:
        if "dynamo_result" in _originals:
            DynamoResult.execute_result = _originals.pop("dynamo_result")  # type: ignore[method-assign]
        if "get_backend_for_host" in _originals:
            DomainDispatcherApplication.get_backend_for_host = _originals.pop(  # type: ignore[method-assign]
                "get_backend_for_host"
            )
        if "asl.parse" in _originals:
            AmazonStateLanguageParser.parse = staticmethod(_originals.pop("asl.parse"))  # type: ignore[method-assign]
            _syntax_trees.clear()
        if "json_path.parse" in _originals:
            setattr(json_path, "parse", _originals.pop("json_path.parse"))  # noqa: B010
            setattr(result_path, "parse", _originals.pop("result_path.parse"))  # noqa: B010
        for name, original in _originals.items():
            setattr(DynamoDBBackend, name, original)
        _originals.clear()
