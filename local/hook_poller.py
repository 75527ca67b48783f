"""The hook delivery queue, consumed locally as Lambda's SQS event source mapping would.

On AWS an event source mapping (ReportBatchItemFailures) long-polls the queue and invokes
`deliver_hooks` with up to 10 messages; it deletes the messages the function did not report in
`batchItemFailures`, and leaves the others, which SQS hands out again when their visibility
timeout ends (the function sets it to the backoff delay with ChangeMessageVisibility). Locally
a thread of its own does the same against moto's SQS (server mode): ReceiveMessage with a short
long-poll, the SQS event the mapping sends, DeleteMessageBatch for the succeeded ones. moto
keeps the visibility timeout a ChangeMessageVisibility sets, and moves a message past the
queue's maxReceiveCount to the dead-letter queue on receive (tests/integration/
test_local_hooks.py checks both), so the poller adds no timing of its own.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from local.lambdas import ACCOUNT_ID, FunctionRegistry

log = logging.getLogger("taskbeat.local.hooks")

HOOKS_FUNCTION = "deliver_hooks"
WAIT_SECONDS = 1  # the long poll (AWS's mapping waits up to 20 s; shorter stops faster)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """What the SQS event source mapping hands the function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def queue_arn(queue_url: str, region: str) -> str:
    return f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{queue_url.rsplit('/', 1)[-1]}"


class HookPoller:
    def __init__(
        self,
        registry: FunctionRegistry,
        region: str,
        queue_url: str,
        function_name: str = HOOKS_FUNCTION,
        batch_size: int = 10,
    ) -> None:
        import boto3

        self._registry = registry
        self._region = region
        self._url = queue_url
        self._arn = queue_arn(queue_url, region)
        self._function = function_name
        self._batch = batch_size
        self._sqs = boto3.client("sqs", region_name=region)
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.invocations = 0
        self.deleted = 0

    def start(self) -> None:
        self._stopped.clear()
        self._thread = threading.Thread(target=self._loop, name="hook-deliveries", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("polling the hook delivery queue failed")
                self._stopped.wait(1.0)

    def poll_once(self, wait_seconds: int = WAIT_SECONDS) -> int:
        """One receive and, if it got messages, one invocation; how many were received."""
        answer = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=self._batch,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
        )
        messages = answer.get("Messages") or []
        if not messages:
            return 0
        payload, errored, _ = self._registry.invoke_as_lambda(
            self._function, sqs_event(messages, self._arn, self._region)
        )
        self.invocations += 1
        if errored:  # the whole batch comes back after the visibility timeout
            log.error("%s failed: %s", self._function, payload)
            return len(messages)
        failed = {
            f.get("itemIdentifier") for f in json.loads(payload).get("batchItemFailures") or ()
        }
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)
                ],
            )
            self.deleted += len(done)
        return len(messages)
