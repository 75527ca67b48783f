"""Turn AWS failures into domain errors, in one place.

Throttling, timeouts and 5xx from any AWS service become `Unavailable` (503 + Retry-After), and
so does a DynamoDB transaction cancelled only because an item was throttled or met another
transaction (`TransactionCanceledException` with reasons `ThrottlingError`,
`ProvisionedThroughputExceeded` or `TransactionConflict`: how DynamoDB throttles a
transaction). Everything else propagates: it is a bug, and the API answers 500 without leaking
it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from chalicelib.domain.errors import Unavailable

RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "LimitExceededException",
        "InternalServerError",
        "InternalFailure",
        "InternalServiceError",
        "InternalServiceErrorException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionInProgressException",
        # A single-item write to an item a transaction is writing at that moment.
        "TransactionConflictException",
    }
)

# Cancellation reasons of a transaction that the same transaction, retried, can get past.
TRANSIENT_CANCELLATIONS = frozenset(
    {"ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict"}
)

F = TypeVar("F", bound=Callable[..., Any])


def _client_error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code"))
    if isinstance(exc, PynamoDBException):
        return exc.cause_response_code
    return None


def _cancellation_codes(exc: BaseException) -> set[str]:
    """The codes of a cancelled transaction's reasons (items without a reason left out)."""
    cause = exc.cause if isinstance(exc, PynamoDBException) else exc
    reasons = getattr(cause, "cancellation_reasons", None)  # PynamoDB's VerboseClientError
    if reasons is not None:
        return {str(reason.code) for reason in reasons if reason is not None}
    if isinstance(cause, ClientError):
        raw = cause.response.get("CancellationReasons") or []
        return {str(r.get("Code")) for r in raw if r.get("Code") not in (None, "None")}
    return set()


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, BotoCoreError):  # connection refused, timeouts, ...
        return True
    if isinstance(exc, PynamoDBException) and isinstance(exc.cause, BotoCoreError):
        return True
    code = _client_error_code(exc)
    if code in RETRYABLE_CODES:
        return True
    if code == "TransactionCanceledException":
        reasons = _cancellation_codes(exc)
        return bool(reasons) and reasons <= TRANSIENT_CANCELLATIONS
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return int(status) >= 500
    return False


@contextmanager
def aws_failures() -> Iterator[None]:
    try:
        yield
    except (BotoCoreError, ClientError, PynamoDBException) as exc:
        if is_retryable(exc):
            raise Unavailable() from exc
        raise


def translate_aws_failures(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with aws_failures():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
