"""Real time beyond what the Chalice app declares: the `fan_out` function that pushes shares
of a large WebSocket fan-out (see `chalicelib/services/realtime.py`), invoked by the stream
consumer, and an alarm when pushes keep failing.

The WebSocket API, its three routes and `execute-api:ManageConnections` on its
`@connections` come with the Chalice app (`components/api.py`); the `connections` and
`subscriptions` tables with the models (`components/data.py`).
"""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from constructs import Construct

# Chalice's logical id of `@app.lambda_function(name="fan_out")`.
FAN_OUT = "FanOut"


class Realtime(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        fan_out: cdk.CfnResource,
        functions: Iterable[cdk.CfnResource],
        function_role: iam.IRole,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        # A fixed name, so its ARN is a setting of every function without a circular reference.
        self.fan_out_function_name = f"{stack.stack_name}-fan_out"
        fan_out.add_property_override("FunctionName", self.fan_out_function_name)
        self.fan_out_function_arn = stack.format_arn(
            service="lambda",
            resource="function",
            resource_name=self.fan_out_function_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        function_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeFanOut",
                actions=["lambda:InvokeFunction"],
                resources=[self.fan_out_function_arn],
            )
        )
        for function in functions:
            function.add_property_override(
                "Environment.Variables.TASKBEAT_FAN_OUT_FUNCTION_ARN", self.fan_out_function_arn
            )
        self.failing_alarm = cloudwatch.Alarm(
            self,
            "FanOutFailingAlarm",
            alarm_description=(
                "Shares of WebSocket fan-outs keep failing: some subscribers miss live updates"
            ),
            metric=cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions_map={"FunctionName": self.fan_out_function_name},
                period=cdk.Duration.minutes(5),
                statistic="Sum",
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
