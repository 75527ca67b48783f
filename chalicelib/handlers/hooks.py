"""The `deliver_hooks` function: consumes the hook delivery queue (SQS), one attempt per message.

Each message names a delivery (`{"delivery_id": ...}`) that the stream consumer made
(`HookService.dispatch`). For each record the attempt runs (`HookService.attempt`); a delivery
that succeeded, or is settled for good, is acknowledged (SQS deletes the message). One that
must be tried again gets its message's visibility timeout set to the backoff delay
(ChangeMessageVisibility) and is reported in `batchItemFailures` (the event source mapping has
ReportBatchItemFailures): SQS keeps the message and hands it out again after the delay. A
message that cannot even be attempted (unparsable, or the attempt raised) is reported failed
without a new delay: it comes back after the queue's visibility timeout, and after
`maxReceiveCount` receives it goes to the dead-letter queue, whose alarm tells the operators.

Why the queue's visibility is the retry timer (docs/hooks.md has the figures):
- Step Functions: a Standard execution per delivery costs $0.025 per 1,000 state transitions; a
  Wait-and-retry loop is 5+ transitions even when the first attempt succeeds: over $125 per
  million deliveries before any retry (docs/benchmarks.md's price), against ~$0.80 for SQS.
- The stream's own retry: a failing record blocks its shard (records after it wait) and the
  stream keeps records 24 hours at most; a slow hook would hold up every other consumer.
- SQS visibility: a retry costs one ChangeMessageVisibility and one more receive (~$0.40 per
  million requests each), waits up to 12 hours per step, survives any crash (the message stays
  until deleted), and needs no scheduler of our own.
"""

from __future__ import annotations

from typing import Any

from chalicelib import bootstrap


def deliver_hooks(event: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.domain.hooks import delivery_of
    from chalicelib.observability import logger

    container = bootstrap.container()
    failures: list[dict[str, str]] = []
    settled = retried = 0
    for record in event.get("Records", []):
        message_id = str(record.get("messageId", ""))
        delivery_id = delivery_of(str(record.get("body", "")))
        if delivery_id is None:
            logger().error("hook queue message names no delivery", extra={"message_id": message_id})
            failures.append({"itemIdentifier": message_id})
            continue
        try:
            with container.request_scope():
                outcome = container.hooks.attempt(delivery_id)
            if outcome.retry_in is not None:
                container.hooks.retry_later(str(record.get("receiptHandle", "")), outcome.retry_in)
                failures.append({"itemIdentifier": message_id})
                retried += 1
            else:
                settled += 1
        except Exception:
            logger().exception("hook delivery attempt failed", extra={"delivery": delivery_id})
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures, "settled": settled, "retried": retried}
