"""DynamoDB throttling, injected into a share of the app's DynamoDB calls.

`Throttle` hooks `before-call.dynamodb` on the shared botocore client and, for a seeded random
share of the calls while it is on, answers the call itself with an error DynamoDB really sends
when it throttles: `ProvisionedThroughputExceededException` or `ThrottlingException` (HTTP
400), or, for `TransactWriteItems`, a `TransactionCanceledException` whose cancellation
reasons name `ThrottlingError`, `ProvisionedThroughputExceeded` or `TransactionConflict` for
one item (what DynamoDB answers when one item of a transaction runs out of capacity or collides
with another transaction).
Returning a response from `before-call` skips the request (and botocore's own retries): the
error reaches the app as botocore would raise it, as the modeled exception class.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from typing import Any

from botocore.awsrequest import AWSResponse

THROTTLED_SINGLE = {
    "ProvisionedThroughputExceededException": "The level of configured provisioned throughput "
    "for the table was exceeded. Consider increasing your provisioning level with the "
    "UpdateTable API.",
    "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
    # A single-item write to an item that a transaction is writing at that moment.
    "TransactionConflictException": "Transaction is ongoing for the item",
}
THROTTLED_ITEM = {
    "ThrottlingError": "Throughput exceeds the current capacity of your table or index.",
    "ProvisionedThroughputExceeded": "The level of configured provisioned throughput for the "
    "table was exceeded.",
    "TransactionConflict": "Transaction is ongoing for the item",
}


class Throttle:
    """Fails `share` of the DynamoDB calls made while `on` (seeded, so a run can be replayed),
    or only of the `operations` named; `cancellations` is the share of throttled transactions
    answered as a cancellation (with one of the `reasons`), the others get one of the `codes`."""

    def __init__(
        self,
        client: Any,
        share: float,
        seed: int,
        *,
        operations: frozenset[str] | None = None,
        cancellations: float = 0.5,
        reasons: tuple[str, ...] = tuple(sorted(THROTTLED_ITEM)),
        codes: tuple[str, ...] = ("ProvisionedThroughputExceededException", "ThrottlingException"),
    ) -> None:
        self.share = share
        self.codes = codes
        self.operations = operations
        self.cancellations = cancellations
        self.reasons = reasons
        self.on = False
        self.injected: Counter[str] = Counter()  # "<operation>:<code>" -> how many
        self.calls = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._client = client
        client.meta.events.register("before-call.dynamodb", self._before_call, "faults-throttle")

    def remove(self) -> None:
        self._client.meta.events.unregister("before-call.dynamodb", unique_id="faults-throttle")

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        operation = model.name
        if not self.on or (self.operations is not None and operation not in self.operations):
            return None
        with self._lock:
            self.calls += 1
            if self._random.random() >= self.share:
                return None
            pick, which = self._random.random(), self._random.randrange(1 << 16)
        if operation == "TransactWriteItems" and pick < self.cancellations:
            return self._cancelled(operation, params, which)
        code = self.codes[which % len(self.codes)]
        return self._error(operation, code, THROTTLED_SINGLE[code])

    def _cancelled(self, operation: str, params: dict[str, Any], which: int) -> Any:
        items = json.loads(params["body"])["TransactItems"]
        code = self.reasons[which % len(self.reasons)]
        culprit = (which >> 1) % len(items)
        reasons: list[dict[str, str]] = [{"Code": "None"} for _ in items]
        reasons[culprit] = {"Code": code, "Message": THROTTLED_ITEM[code]}
        message = "Transaction cancelled, please refer cancellation reasons for specific reasons ["
        message += ", ".join(r["Code"] for r in reasons) + "]"
        return self._error(
            operation, "TransactionCanceledException", message, CancellationReasons=reasons
        )

    def _error(self, operation: str, code: str, message: str, **extra: Any) -> Any:
        with self._lock:
            self.injected[f"{operation}:{code}"] += 1
        headers = {"x-amzn-requestid": "throttled", "content-type": "application/x-amz-json-1.0"}
        parsed = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {
                "RequestId": "throttled",
                "HTTPStatusCode": 400,
                "HTTPHeaders": headers,
                "RetryAttempts": 0,
            },
            **extra,
        }
        http = AWSResponse("https://dynamodb.us-east-1.amazonaws.com/", 400, headers, None)
        return http, parsed
