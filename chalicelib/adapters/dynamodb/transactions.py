"""DynamoDB transactions whose items are named, so a cancellation says which condition failed."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb import connection

CONDITION_FAILED = "ConditionalCheckFailed"  # a cancellation reason of a transaction item
# DynamoDB's limit on the items of one transaction.
MAX_TRANSACTION_ITEMS = 100


def condition_failed(exc: PynamoDBException) -> bool:
    """Did a single-item write fail on its condition (as opposed to anything else)?"""
    return exc.cause_response_code == "ConditionalCheckFailedException"


# The request's idempotency guard (adapters/dynamodb/idempotency.py), when it has one: it adds its
# claim's check to each transaction, and says whether a cancellation was its own.
Guard = Callable[["Transaction"], None]
GUARD_LABEL = "idempotency"
_guard: ContextVar[tuple[Guard, Callable[[], Exception]] | None] = ContextVar(
    "idempotency_guard", default=None
)


# PynamoDB sends a transaction's items grouped by kind, in this order, whatever order they
# were added in; cancellation reasons follow the order sent.
_SENT_ORDER = ("check", "delete", "put", "update")


class Transaction:
    """A TransactWrite that names its items, so a cancellation says which condition failed."""

    def __init__(self) -> None:
        self._labels: dict[str, list[str]] = {kind: [] for kind in _SENT_ORDER}
        self._tx = TransactWrite(connection=connection.root())

    @property
    def labels(self) -> list[str]:
        """The items' labels in the order DynamoDB gets (and answers about) them."""
        return [label for kind in _SENT_ORDER for label in self._labels[kind]]

    def __enter__(self) -> Transaction:
        self._tx.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        guard = _guard.get()
        if guard is None or exc[0] is not None:
            self._tx.__exit__(*exc)  # type: ignore[no-untyped-call]
            return
        add, lost = guard
        add(self)  # the claim's condition rides in this TransactWriteItems
        try:
            self._tx.__exit__(*exc)  # type: ignore[no-untyped-call]
        except TransactWriteError as failure:
            if GUARD_LABEL in self.failed(failure):
                raise lost() from failure
            raise

    def check(self, label: str, model: Any, key: str, condition: Condition) -> None:
        self._labels["check"].append(label)
        self._tx.condition_check(model, key, condition=condition)

    def save(self, label: str, item: Any, condition: Condition | None = None) -> None:
        self._labels["put"].append(label)
        self._tx.save(item, condition=condition)

    def update(
        self, label: str, item: Any, actions: list[Any], condition: Condition | None = None
    ) -> None:
        self._labels["update"].append(label)
        self._tx.update(item, actions=actions, condition=condition)

    def delete(self, label: str, item: Any, condition: Condition | None = None) -> None:
        self._labels["delete"].append(label)
        self._tx.delete(item, condition=condition)

    def failed(self, exc: TransactWriteError) -> set[str]:
        return {
            label
            for label, reason in zip(self.labels, exc.cancellation_reasons, strict=False)
            if reason is not None and reason.code == CONDITION_FAILED
        }


def set_guard(guard: tuple[Guard, Callable[[], Exception]] | None) -> Any:
    """Install the request's idempotency guard (None: no guard); the token resets it."""
    return _guard.set(guard)


def reset_guard(token: Any) -> None:
    _guard.reset(token)


def guarded() -> bool:
    """Is an idempotency guard active? A single-item write that is a route's one write goes
    through a transaction then, so the claim's check rides with it."""
    return _guard.get() is not None
