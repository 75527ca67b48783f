"""Monitoring: the stage's alarm topic, a CloudWatch dashboard and an alarm per failure mode.

- **Topic**: every alarm of the stack (the ones here and the ones other components create:
  run failures, scheduler dead letters, sweep and fan-out failures) notifies one SNS topic,
  on alarm and when it is OK again. The topic is encrypted with a customer managed KMS key:
  CloudWatch cannot publish to a topic under the AWS managed `alias/aws/sns` key, whose policy
  cannot grant it anything. The topic's policy refuses anything but TLS and lets CloudWatch
  alarms of this account publish. `-c alarm_email=ops@example.com` subscribes an address.
- **Actions by aspect**: an aspect on the stack adds the topic to every `cloudwatch.Alarm` in
  it when the app is synthesized, whoever created it and whenever (also after this construct):
  no component has to remember to call anything, and a test holds every alarm of the template
  to it.
- **Dashboard** (`<stack>-overview`): the REST API (requests, 4xx/5xx, latency p50/p99), the
  WebSocket API, Lambda errors, throttles and durations per function, the stream consumer's
  iterator age, DynamoDB throttles and system errors per table, the run state machine, the
  scheduler's dead letters, and Taskbeat's own metrics (namespace `Taskbeat`: executions
  finished by status, firing lateness, API latency as the app sees it, sweep outcomes).

The REST API is named after the stack: API Gateway's metrics know a REST API only by its name,
and Chalice's is `taskbeat` in every stage, so two stages in one account would share them.

What each alarm means and what to do about it: `docs/operations.md`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import aws_cdk as cdk
import jsii
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from chalicelib.domain.executions import ExecutionStatus
from infrastructure.components.realtime import FAN_OUT
from infrastructure.components.sweep import SWEEP

# The app's own metrics (chalicelib/observability.py): Powertools adds `service`, Taskbeat
# the stage, so stages sharing an account keep their figures apart.
APP_NAMESPACE = "Taskbeat"
APP_SERVICE = "taskbeat"
# Functions whose errors their own component alarms on, with thresholds of their own.
ERRORS_ALARMED_ELSEWHERE = frozenset({SWEEP, FAN_OUT})
# The DynamoDB operations the repositories use (no Scan, no TransactGetItems): SystemErrors
# exists only per operation, and an alarm's expression takes at most 10 metrics.
TABLE_OPERATIONS = (
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
)

PERIOD = cdk.Duration.minutes(5)
# Thresholds (docs/operations.md explains each).
API_5XX_PERCENT = 5  # of requests in 5 minutes, twice in a row ...
API_5XX_MIN_REQUESTS = 20  # ... once there are enough requests for a rate to mean something
API_P99_LATENCY_MS = 3000  # three 5-minute periods in a row
ITERATOR_AGE_MS = 60_000  # the oldest change waited a minute, twice in a row

_FINISHED_STATUSES = [status.value for status in ExecutionStatus if status.finished]


def _id(text: str) -> str:
    """A metric id for math expressions: a lowercase letter, then letters, digits and `_`."""
    cleaned = "".join(c if c.isalnum() else "_" for c in text)
    return f"m_{cleaned}"


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Sequence[cdk.CfnResource],
        stream_consumer: cdk.CfnResource,
        rest_api: cdk.CfnResource,
        rest_api_stage: str,
        websocket_api: cdk.CfnResource,
        websocket_stage: str,
        tables: Mapping[str, dynamodb.ITable],
        state_machine: sfn.IStateMachine,
        dead_letter_queue: sqs.IQueue,
        alarm_email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self._prefix = stack.stack_name
        stage = stack.node.id

        # ---- the topic -------------------------------------------------------------------------
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"Encrypts the alarm topic of {stack.stack_name}",
            enable_key_rotation=True,
            # Nothing outlives the topic: the key may go with the stack.
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"Taskbeat {stage} alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        cdk.Aspects.of(stack).add(_NotifyTopic(cloudwatch_actions.SnsAction(self.topic)))

        # ---- metrics ---------------------------------------------------------------------------
        # Named like the stack, so API Gateway's metrics (by ApiName) are this stage's alone;
        # with an OpenAPI body, API Gateway takes the name from its title.
        rest_api.add_property_override("Name", stack.stack_name)
        rest_api.add_property_override("DefinitionBody.info.title", stack.stack_name)
        api_dimensions = {"ApiName": stack.stack_name, "Stage": rest_api_stage}
        websocket_dimensions = {"ApiId": websocket_api.ref, "Stage": websocket_stage}
        app_dimensions = {"service": APP_SERVICE, "stage": stage}

        def api_metric(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name=name,
                dimensions_map=api_dimensions,
                period=PERIOD,
                statistic=statistic,
            )

        def websocket_metric(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name=name,
                dimensions_map=websocket_dimensions,
                period=PERIOD,
                statistic="Sum",
            )

        def app_metric(
            name: str, statistic: str, label: str | None = None, **dimensions: str
        ) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=APP_NAMESPACE,
                metric_name=name,
                dimensions_map={**app_dimensions, **dimensions},
                period=PERIOD,
                statistic=statistic,
                label=label,
            )

        named = {function.node.id: function for function in functions}
        self.function_alarms: dict[str, list[cloudwatch.Alarm]] = {}
        self.table_alarms: dict[str, list[cloudwatch.Alarm]] = {}

        # ---- alarms: the REST API --------------------------------------------------------------
        self.api_errors_alarm = self._alarm(
            "ApiServerErrors",
            name="api-5xx-rate",
            description=(
                f"More than {API_5XX_PERCENT}% of REST API requests answered 5xx, "
                "two 5-minute periods in a row"
            ),
            metric=cloudwatch.MathExpression(
                expression=(f"IF(requests >= {API_5XX_MIN_REQUESTS}, 100 * errors / requests, 0)"),
                using_metrics={
                    "requests": api_metric("Count", "Sum"),
                    "errors": api_metric("5XXError", "Sum"),
                },
                label="5xx (% of requests)",
                period=PERIOD,
            ),
            threshold=API_5XX_PERCENT,
            evaluation_periods=2,
        )
        self.api_latency_alarm = self._alarm(
            "ApiLatency",
            name="api-p99-latency",
            description=(f"REST API p99 latency above {API_P99_LATENCY_MS} ms for 15 minutes"),
            metric=api_metric("Latency", "p99"),
            threshold=API_P99_LATENCY_MS,
            evaluation_periods=3,
        )

        # ---- alarms: every function ------------------------------------------------------------
        for logical_id, function in named.items():
            alarms = self.function_alarms.setdefault(logical_id, [])
            if logical_id not in ERRORS_ALARMED_ELSEWHERE:
                alarms.append(
                    self._alarm(
                        f"{logical_id}Errors",
                        name=f"{logical_id}-errors",
                        description=(
                            f"The {logical_id} function failed (errors or timeouts) in two "
                            "5-minute periods in a row"
                        ),
                        metric=self._lambda_metric(function, "Errors", "Sum"),
                        threshold=0,
                        evaluation_periods=2,
                    )
                )
            alarms.append(
                self._alarm(
                    f"{logical_id}Throttles",
                    name=f"{logical_id}-throttles",
                    description=f"Lambda throttled invocations of the {logical_id} function",
                    metric=self._lambda_metric(function, "Throttles", "Sum"),
                    threshold=0,
                    evaluation_periods=1,
                )
            )
        self.iterator_age_alarm = self._alarm(
            "ChangeFeedIteratorAge",
            name="change-feed-iterator-age",
            description=(
                f"The stream consumer is behind: the oldest change it read waited more than "
                f"{ITERATOR_AGE_MS // 1000} s, two 5-minute periods in a row"
            ),
            metric=self._lambda_metric(stream_consumer, "IteratorAge", "Maximum"),
            threshold=ITERATOR_AGE_MS,
            evaluation_periods=2,
        )

        # ---- alarms: every table ---------------------------------------------------------------
        for base_name, table in tables.items():
            throttles = {
                _id(f"{base_name}_{name}"): self._table_metric(table, name)
                for name in ("ReadThrottleEvents", "WriteThrottleEvents")
            }
            errors = {
                _id(f"{base_name}_{operation}"): self._table_metric(
                    table, "SystemErrors", Operation=operation
                )
                for operation in TABLE_OPERATIONS
            }
            self.table_alarms[base_name] = [
                self._alarm(
                    f"{_pascal(base_name)}TableThrottles",
                    name=f"table-{base_name}-throttles",
                    description=f"DynamoDB throttled requests to the {base_name} table",
                    metric=cloudwatch.MathExpression(
                        expression=" + ".join(throttles),
                        using_metrics=throttles,
                        label=f"{base_name} throttled",
                        period=PERIOD,
                    ),
                    threshold=0,
                    evaluation_periods=1,
                ),
                self._alarm(
                    f"{_pascal(base_name)}TableSystemErrors",
                    name=f"table-{base_name}-system-errors",
                    description=f"DynamoDB answered requests to the {base_name} table with 500s",
                    metric=cloudwatch.MathExpression(
                        expression=" + ".join(errors),
                        using_metrics=errors,
                        label=f"{base_name} system errors",
                        period=PERIOD,
                    ),
                    threshold=0,
                    evaluation_periods=1,
                ),
            ]

        # ---- the dashboard ---------------------------------------------------------------------
        def per_function(name: str, statistic: str) -> list[cloudwatch.IMetric]:
            return [
                self._lambda_metric(function, name, statistic, label=logical_id)
                for logical_id, function in named.items()
            ]

        def per_table(name: str, **dimensions: str) -> list[cloudwatch.IMetric]:
            return [
                self._table_metric(table, name, label=base_name, **dimensions)
                for base_name, table in tables.items()
            ]

        def graph(
            title: str,
            left: Iterable[cloudwatch.IMetric],
            right: Iterable[cloudwatch.IMetric] = (),
            width: int = 8,
        ) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(
                title=title, left=list(left), right=list(right), width=width, height=6
            )

        def alarm_expression(alarm: cloudwatch.Alarm) -> cloudwatch.IMetric:
            metric = alarm.metric
            assert metric is not None
            return metric

        execution_statuses = [
            app_metric("ExecutionsFinished", "Sum", label=status, status=status)
            for status in _FINISHED_STATUSES
        ]
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{stack.stack_name}-overview",
            default_interval=cdk.Duration.hours(3),
            widgets=[
                [
                    cloudwatch.TextWidget(
                        markdown=(
                            f"# Taskbeat `{stage}`\nEvery alarm notifies the stack's alarm "
                            "topic (output `AlarmTopicArn`); what each one means and what to "
                            "do: `docs/operations.md` in the repository."
                        ),
                        width=24,
                        height=2,
                    )
                ],
                [
                    graph(
                        "REST API requests and errors",
                        [api_metric("Count", "Sum")],
                        [api_metric("4XXError", "Sum"), api_metric("5XXError", "Sum")],
                    ),
                    graph(
                        "REST API latency (ms)",
                        [
                            api_metric("Latency", "p50"),
                            api_metric("Latency", "p99"),
                            api_metric("IntegrationLatency", "p99"),
                        ],
                    ),
                    cloudwatch.AlarmStatusWidget(
                        title="Alarms",
                        alarms=[self.api_errors_alarm, self.api_latency_alarm],
                        width=8,
                        height=6,
                    ),
                ],
                [
                    graph(
                        "WebSocket connections and messages",
                        [websocket_metric("ConnectCount"), websocket_metric("MessageCount")],
                        [
                            websocket_metric("ClientError"),
                            websocket_metric("IntegrationError"),
                            websocket_metric("ExecutionError"),
                        ],
                    ),
                    graph(
                        "Executions finished, by status",
                        execution_statuses,
                    ),
                    graph(
                        "Firing lateness (ms from scheduled time to delivery)",
                        [
                            app_metric("FiringLateness", "p50"),
                            app_metric("FiringLateness", "p99"),
                            app_metric("FiringLateness", "Maximum"),
                        ],
                    ),
                ],
                [
                    graph("Lambda errors", per_function("Errors", "Sum")),
                    graph("Lambda throttles", per_function("Throttles", "Sum")),
                    graph("Lambda duration p99 (ms)", per_function("Duration", "p99")),
                ],
                [
                    graph(
                        "Run state machine",
                        [
                            state_machine.metric_started(period=PERIOD),
                            state_machine.metric_succeeded(period=PERIOD),
                        ],
                        [
                            state_machine.metric_failed(period=PERIOD),
                            state_machine.metric_timed_out(period=PERIOD),
                            state_machine.metric_aborted(period=PERIOD),
                        ],
                    ),
                    graph(
                        "Scheduler dead letters (messages visible)",
                        [
                            dead_letter_queue.metric_approximate_number_of_messages_visible(
                                period=PERIOD, statistic="Maximum"
                            )
                        ],
                    ),
                    graph(
                        "Change feed iterator age (ms)",
                        [alarm_expression(self.iterator_age_alarm)],
                    ),
                ],
                [
                    graph(
                        "DynamoDB throttle events",
                        [
                            *per_table("ReadThrottleEvents"),
                            *per_table("WriteThrottleEvents"),
                        ],
                        width=12,
                    ),
                    graph(
                        "DynamoDB system errors",
                        [alarm_expression(alarms[1]) for alarms in self.table_alarms.values()],
                        width=12,
                    ),
                ],
                [
                    graph(
                        "App: requests, server errors, latency (ms)",
                        [
                            app_metric("Requests", "Sum"),
                            app_metric("ServerErrors", "Sum"),
                        ],
                        [app_metric("Latency", "p99")],
                    ),
                    graph(
                        "Due-date sweep notifications",
                        [
                            app_metric(name, "Sum")
                            for name in (
                                "DueSoonNotifications",
                                "OverdueNotifications",
                                "SweepFailedNotifications",
                                "SweepDeferredNotifications",
                            )
                        ],
                    ),
                ],
            ],
        )
        output = cdk.CfnOutput(
            self,
            "AlarmTopicArn",
            value=self.topic.topic_arn,
            description="SNS topic every alarm notifies",
        )
        output.override_logical_id("AlarmTopicArn")

    def _alarm(
        self,
        construct_id: str,
        *,
        name: str,
        description: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        evaluation_periods: int,
    ) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self._prefix}-{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    @staticmethod
    def _lambda_metric(
        function: cdk.CfnResource, name: str, statistic: str, label: str | None = None
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name=name,
            # Ref of a function is its name (a fixed one where a component set it).
            dimensions_map={"FunctionName": function.ref},
            period=PERIOD,
            statistic=statistic,
            label=label,
        )

    @staticmethod
    def _table_metric(
        table: dynamodb.ITable, name: str, label: str | None = None, **dimensions: str
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/DynamoDB",
            metric_name=name,
            dimensions_map={"TableName": table.table_name, **dimensions},
            period=PERIOD,
            statistic="Sum",
            label=label,
        )


def _pascal(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


@jsii.implements(cdk.IAspect)
class _NotifyTopic:
    """Adds the topic to every alarm's actions (on alarm and back to OK), once per alarm."""

    def __init__(self, action: cloudwatch.IAlarmAction) -> None:
        self._action = action
        self._done: set[str] = set()

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, cloudwatch.Alarm) and node.node.path not in self._done:
            self._done.add(node.node.path)
            node.add_alarm_action(self._action)
            node.add_ok_action(self._action)
