"""Real time beyond what the Chalice app declares: the `fan_out` function that pushes shares
of a large WebSocket fan-out (see `chalicelib/services/realtime.py`), invoked by the stream
consumer, and an alarm when pushes keep failing.

The WebSocket API, its three routes and `execute-api:ManageConnections` on its
`@connections` come with the Chalice app (`components/api.py`); the `connections` and
`subscriptions` tables with the models (`components/data.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigatewayv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infrastructure.components.roles import PolicyTarget

# Chalice's logical id of `@app.lambda_function(name="fan_out")`.
FAN_OUT = "FanOut"
# One JSON line per WebSocket event: no message bodies, no query strings (the token is there).
WEBSOCKET_ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "connectionId": "$context.connectionId",
    "eventType": "$context.eventType",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "ip": "$context.identity.sourceIp",
    "time": "$context.requestTimeEpoch",
    "error": "$context.error.message",
    "integrationError": "$context.integration.error",
}


class Realtime(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        fan_out: cdk.CfnResource,
        functions: Iterable[cdk.CfnResource],
        function_role: PolicyTarget,
        websocket_stage: cdk.CfnResource,
        retain_logs: bool = True,
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
        # Who connected, sent and was refused: API Gateway's access log of the WebSocket stage.
        self.access_logs = logs.LogGroup(
            self,
            "WebSocketAccessLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.RETAIN if retain_logs else cdk.RemovalPolicy.DESTROY,
        )
        # Set on the L1 itself (not as an override), so checks that read it (cdk-nag) see it.
        assert isinstance(websocket_stage, apigatewayv2.CfnStage), type(websocket_stage)
        websocket_stage.access_log_settings = apigatewayv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn,
            format=json.dumps(WEBSOCKET_ACCESS_LOG_FORMAT, separators=(",", ":")),
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
