"""The change feed: every streamed table feeds the `on_change` function (search index, and
later WebSocket pushes and automation), with retries that never block a shard forever."""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

# Chalice's logical id of `@app.lambda_function(name="on_change")`.
CONSUMER = "OnChange"


class ChangeFeed(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        consumer: lambda_.IFunction,
        role: iam.IRole,
        tables: Iterable[dynamodb.Table],
    ) -> None:
        super().__init__(scope, construct_id)
        self.mappings: list[lambda_.CfnEventSourceMapping] = []
        for table in tables:
            if table.table_stream_arn is None:
                continue
            table.grant_stream_read(role)
            self.mappings.append(
                lambda_.CfnEventSourceMapping(
                    self,
                    f"{table.node.id}Changes",
                    function_name=consumer.function_name,
                    event_source_arn=table.table_stream_arn,
                    starting_position="LATEST",
                    batch_size=100,
                    maximum_batching_window_in_seconds=0,
                    # A failing batch is split to find the bad record, retried a bounded number
                    # of times, then skipped: the consumer is idempotent, a shard never stalls.
                    bisect_batch_on_function_error=True,
                    maximum_retry_attempts=5,
                    maximum_record_age_in_seconds=3600,
                )
            )
