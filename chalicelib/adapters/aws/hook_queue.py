"""The queue project hook deliveries wait in (SQS): one message per delivery, naming it.

`send` batches (10 messages per SendMessageBatch) and raises if any entry failed, so the stream
batch is retried (the deliveries already made are found again and queued again, see
`services/hooks.py`). `retry_later` sets a received message's visibility timeout to the
backoff delay: SQS hands it to the consumer again after it, which is the whole retry timer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.hooks import message_body

BATCH = 10  # SendMessageBatch's limit
# The queue as CDK and the local stack make it. A message is received once per attempt (about
# 14 within 24 hours at a 10-second base); more receives than this means the consumer keeps
# failing on it (a poison message): it goes to the dead-letter queue.
MAX_RECEIVES = 50
# The consumer's timeout: a batch of 10 attempts of at most 10 seconds each, with room.
CONSUMER_TIMEOUT_SECONDS = 120
# SQS wants the queue's visibility timeout at least the consumer's timeout (6x advised): a
# message whose attempt crashed the function comes back after it.
VISIBILITY_TIMEOUT_SECONDS = 6 * CONSUMER_TIMEOUT_SECONDS
CONSUMER_BATCH_SIZE = 10
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


class QueueNotSent(RuntimeError):
    pass


class SqsDeliveryQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client  # botocore "sqs"
        self._url = queue_url

    @translate_aws_failures
    def send(self, delivery_ids: Sequence[str]) -> None:
        failed: list[str] = []
        for start in range(0, len(delivery_ids), BATCH):
            share = delivery_ids[start : start + BATCH]
            answer = self._client.send_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(n), "MessageBody": message_body(d)} for n, d in enumerate(share)
                ],
            )
            failed += [share[int(f["Id"])] for f in answer.get("Failed") or ()]
        if failed:
            raise QueueNotSent(f"{len(failed)} deliveries could not be queued")

    @translate_aws_failures
    def retry_later(self, receipt: str, delay_seconds: int) -> None:
        self._client.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt, VisibilityTimeout=int(delay_seconds)
        )


class UnconfiguredQueue:
    """No queue configured (a deployment without hooks' queue): nothing can be delivered."""

    def send(self, delivery_ids: Sequence[str]) -> None:
        if delivery_ids:
            raise QueueNotSent("no hook delivery queue is configured (TASKBEAT_HOOK_QUEUE_URL)")

    def retry_later(self, receipt: str, delay_seconds: int) -> None:
        raise QueueNotSent("no hook delivery queue is configured (TASKBEAT_HOOK_QUEUE_URL)")
