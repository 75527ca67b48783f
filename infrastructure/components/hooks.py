"""Project hook deliveries: the SQS queue deliveries wait in, its dead-letter queue, the
`deliver_hooks` function's SQS event source (ReportBatchItemFailures), the grants, and an alarm
on the dead letters.

Who may do what on the queue (least privilege, routed by sid in components/roles.py):
- `on_change` (the stream consumer makes the deliveries) and `api_handler` (`POST
  /deliveries/{id}/redeliver`) send (`HookQueueSend`);
- `deliver_hooks` receives, deletes and changes visibility (`HookQueueConsume`): the event
  source mapping receives and deletes with the function's role, the function itself sets a
  failed delivery's message visibility to the backoff delay (ChangeMessageVisibility).

A message is received once per attempt (about 14 in 24 hours); one received `MAX_RECEIVES`
times is a delivery the function keeps failing on (a poison message): it goes to the dead-letter
queue, and the alarm fires on any message visible there. docs/hooks.md says why the queue's
visibility is the retry timer (not a Step Functions execution, nor the stream's retry).
"""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from chalicelib.adapters.aws.hook_queue import (
    CONSUMER_BATCH_SIZE,
    CONSUMER_TIMEOUT_SECONDS,
    DLQ_RETENTION_SECONDS,
    MAX_RECEIVES,
    VISIBILITY_TIMEOUT_SECONDS,
)
from infrastructure.components.roles import PolicyTarget

# Chalice's logical id of `@app.lambda_function(name="deliver_hooks")`.
DELIVER_HOOKS = "DeliverHooks"
SEND_ACTIONS = ("sqs:SendMessage",)
CONSUME_ACTIONS = (
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
)


class HookDeliveries(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        consumer: cdk.CfnResource,
        functions: Iterable[cdk.CfnResource],
        function_role: PolicyTarget,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.seconds(DLQ_RETENTION_SECONDS),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # A delivery is retried for 24 hours; a message lives a little longer than that.
            retention_period=cdk.Duration.days(2),
            visibility_timeout=cdk.Duration.seconds(VISIBILITY_TIMEOUT_SECONDS),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVES
            ),
        )
        consumer.add_property_override("Timeout", CONSUMER_TIMEOUT_SECONDS)
        self.mapping = lambda_.CfnEventSourceMapping(
            self,
            "Consumer",
            function_name=consumer.ref,
            event_source_arn=self.queue.queue_arn,
            batch_size=CONSUMER_BATCH_SIZE,
            maximum_batching_window_in_seconds=0,
            function_response_types=["ReportBatchItemFailures"],
        )
        function_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="HookQueueSend", actions=list(SEND_ACTIONS), resources=[self.queue.queue_arn]
            )
        )
        function_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="HookQueueConsume",
                actions=list(CONSUME_ACTIONS),
                resources=[self.queue.queue_arn],
            )
        )
        for function in functions:
            function.add_property_override(
                "Environment.Variables.TASKBEAT_HOOK_QUEUE_URL", self.queue.queue_url
            )
        self.dead_letter_alarm = cloudwatch.Alarm(
            self,
            "DeadLetterAlarm",
            alarm_description=(
                "Hook deliveries the deliver_hooks function failed on every time (poison "
                "messages): they are in the hook dead-letter queue"
            ),
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5), statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
