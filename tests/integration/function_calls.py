"""Which AWS operations each Lambda function makes, observed on moto.

`record(name)` attributes every botocore call made inside it to the function `name`; the
calls are reduced to IAM terms: (action, resource) where resource is a table's base name (with
`/index` for an index), or the service's own resource kind. The least-privilege test compares
what each function did with what its role allows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from botocore.client import BaseClient

_acting: ContextVar[str | None] = ContextVar("acting_function", default=None)
CALLS: dict[str, set[tuple[str, str]]] = defaultdict(set)
_TRANSACT_ACTIONS = {
    "ConditionCheck": "ConditionCheckItem",
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "Get": "GetItem",
}


@contextmanager
def record(function: str) -> Iterator[None]:
    token = _acting.set(function)
    try:
        yield
    finally:
        _acting.reset(token)


def _table(name: str, prefix: str) -> str:
    return name.removeprefix(prefix)


def iam_terms(
    service: str, operation: str, params: dict[str, Any], prefix: str
) -> set[tuple[str, str]]:
    """The (IAM action, resource) pairs one API call needs."""
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            return {
                (f"dynamodb:{_TRANSACT_ACTIONS[kind]}", _table(op["TableName"], prefix))
                for item in params.get("TransactItems", [])
                for kind, op in item.items()
            }
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return {
                (f"dynamodb:{operation}", _table(name, prefix))
                for name in params.get("RequestItems", {})
            }
        table = _table(str(params.get("TableName", "")), prefix)
        if operation == "Query" and params.get("IndexName"):
            table = f"{table}/index"
        return {(f"dynamodb:{operation}", table)}
    if service == "execute-api":
        return {("execute-api:ManageConnections", "@connections")}
    if service == "sqs":  # a batch call needs its single call's action
        action = operation.removesuffix("Batch")
        return {(f"sqs:{action}", "queue")}
    if service == "lambda" and operation == "Invoke":  # which function: the name in its ARN
        name = str(params.get("FunctionName", "")).rsplit(":", 1)[-1]
        return {("lambda:InvokeFunction", f"function:{name}")}
    resource = {
        "secretsmanager": "secret",
        "states": "state-machine",
        "scheduler": "schedule",
        "lambda": "function",
    }.get(service, service)
    return {(f"{service}:{operation}", resource)}


class Recorder:
    """Patches botocore for the life of a test (moto's mock sits below this layer).

    Asynchronous invocations of the app's functions are recorded and kept in `dispatched`
    (function name, event) instead of reaching moto, which would run them in Docker: the
    workload runs them itself, as the function they name."""

    def __init__(self, table_prefix: str) -> None:
        self.prefix = table_prefix
        self._original = BaseClient._make_api_call
        self.dispatched: list[tuple[str, Any]] = []

    def __enter__(self) -> Recorder:
        original, prefix = self._original, self.prefix

        def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            function = _acting.get()
            service = client.meta.service_model.signing_name
            if function is not None:
                CALLS[function] |= iam_terms(service, operation, params, prefix)
            if service == "lambda" and params.get("InvocationType") == "Event":
                name = str(params.get("FunctionName", "")).rsplit(":", 1)[-1]
                self.dispatched.append((name, json.loads(params.get("Payload") or b"{}")))
                return {"StatusCode": 202}
            return original(client, operation, params)

        BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        BaseClient._make_api_call = self._original  # type: ignore[method-assign]
