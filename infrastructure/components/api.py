"""The Chalice app (REST API, WebSocket API, their functions) and what its functions may touch."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from chalice.cdk import Chalice
from constructs import Construct

from chalicelib.api.middleware import SECURITY_HEADERS
from infrastructure.components.roles import LOGICAL_IDS, FunctionRoles, PolicyTarget
from infrastructure.packaging import LAMBDA_RUNTIME, LambdaProject

# Chalice's logical id of each function but the REST API's -> its entry point in
# `chalicelib.functions`, the handler it runs deployed: that module imports neither Chalice nor
# the routes, which `app.<name>` (Chalice's handler) would load for a function serving no HTTP.
ENTRY_POINTS = {
    "WebsocketConnect": "ws_connect",
    "WebsocketMessage": "ws_message",
    "WebsocketDisconnect": "ws_disconnect",
    "FanOut": "fan_out",
    "OnChange": "on_change",
    "Fire": "fire",
    "Plan": "plan",
    "RunStep": "run_step",
    "Sweep": "sweep",
    "RotateJwtKey": "rotate_jwt_key",
    "DeliverHooks": "deliver_hooks",
}

# Errors API Gateway answers itself, before the app runs, in the contract's error body.
# (status, code, message) by gateway response type. An unknown route is "missing
# authentication token" to API Gateway; to callers it is a 404.
GATEWAY_ERRORS = {
    "MISSING_AUTHENTICATION_TOKEN": ("404", "not_found", "no such route"),
    "RESOURCE_NOT_FOUND": ("404", "not_found", "no such route"),
    "REQUEST_TOO_LARGE": ("413", "payload_too_large", "body is too large"),
    "THROTTLED": ("429", "rate_limited", "too many requests"),
    "WAF_FILTERED": ("403", "forbidden", "the request was refused by the firewall"),
    "DEFAULT_4XX": ("400", "bad_request", "the request was refused"),
    "DEFAULT_5XX": ("503", "unavailable", "the service is unavailable, retry later"),
}


def gateway_error_template(code: str, message: str) -> str:
    return (
        f'{{"error": {{"code": "{code}", "message": "{message}", "details": []}}, '
        '"request_id": "$context.requestId"}'
    )


class Api(Construct):
    """The Chalice app under the stack, its functions' role, settings and logs, and the URLs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project: LambdaProject,
        stage: str,
        table_prefix: str,
        tables: Iterable[dynamodb.ITable],
        jwt_signing_key: secretsmanager.ISecret,
        retain_logs: bool,
        roles: FunctionRoles,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)

        # Grants go to the roles of the functions declared to need them (components/roles.py).
        self.role: PolicyTarget = roles.router

        # chalice.cdk names the Chalice stage after its scope's construct path, and
        # `.chalice/config.json` keys stages by Taskbeat's stage names: the stack's id is the
        # stage, so the Chalice construct sits directly under the stack.
        self.chalice = Chalice(
            stack,
            "Chalice",
            source_dir=str(project.source_dir),
            stage_config={
                # Chalice needs one role for its functions; each gets its own just below.
                "iam_role_arn": roles.roles["api_handler"].role_arn,
                "environment_variables": {
                    "TASKBEAT_STAGE": stage,
                    "TASKBEAT_TABLE_PREFIX": table_prefix,
                    # Forced here whatever config.json says: deployed webhooks stay public.
                    "TASKBEAT_ALLOW_PRIVATE_WEBHOOKS": "false",
                    # No pydantic plugins are used; looking for them scans every installed
                    # distribution's entry points when the first validator is built (~10 ms of
                    # a cold start, bench/coldstart.py).
                    "PYDANTIC_DISABLE_PLUGINS": "__all__",
                },
            },
        )
        rest_api = self.chalice.get_resource("RestAPI")
        rest_api.add_property_override("TracingEnabled", True)  # traces start at the gateway
        websocket_api = self.chalice.get_resource("WebsocketAPI")
        websocket_stage = self.chalice.get_resource("WebsocketAPIStage").stage_name
        domain = f"execute-api.{stack.region}.{stack.url_suffix}"
        self.rest_api_url = f"https://{rest_api.ref}.{domain}/{rest_api.stage_name}/v1"
        for response_type, (status, code, message) in GATEWAY_ERRORS.items():
            headers = {"gatewayresponse.header.Content-Type": "'application/json'"} | {
                f"gatewayresponse.header.{name}": f"'{value}'"
                for name, value in SECURITY_HEADERS.items()
            }
            if status in {"429", "503"}:
                headers["gatewayresponse.header.Retry-After"] = "'5'"
            apigateway.CfnGatewayResponse(
                self,
                f"GatewayResponse{response_type.title().replace('_', '')}",
                rest_api_id=rest_api.ref,
                response_type=response_type,
                # DEFAULT_4XX keeps the status API Gateway chose (403, 415, ...).
                status_code=None if response_type == "DEFAULT_4XX" else status,
                response_parameters=headers,
                response_templates={"application/json": gateway_error_template(code, message)},
            )
        self.websocket_url = f"wss://{websocket_api.ref}.{domain}/{websocket_stage}"
        websocket_management_url = f"https://{websocket_api.ref}.{domain}/{websocket_stage}"

        logs_removal_policy = cdk.RemovalPolicy.RETAIN if retain_logs else cdk.RemovalPolicy.DESTROY
        for function in self.functions():
            # Chalice writes the packaging interpreter's version; the dependencies in the
            # package are built for LAMBDA_RUNTIME (see infrastructure/packaging.py).
            function.add_property_override("Runtime", LAMBDA_RUNTIME)
            for name, value in {
                "TASKBEAT_JWT_SECRET_ID": jwt_signing_key.secret_arn,
                "TASKBEAT_WS_MANAGEMENT_URL": websocket_management_url,
            }.items():
                function.add_property_override(f"Environment.Variables.{name}", value)
            # Here rather than Chalice's `log_retention_in_days`, whose SAM output names the
            # API handler's log group after a resource that does not exist (`ApiHandler`).
            # Created before the function, so Lambda never creates one without retention.
            log_group = logs.LogGroup(
                self,
                f"{function.node.id}Logs",
                retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=logs_removal_policy,
            )
            function.add_property_override("LoggingConfig.LogGroup", log_group.log_group_name)

        for logical_id, entry_point in ENTRY_POINTS.items():
            self.chalice.get_resource(logical_id).add_property_override(
                "Handler", f"chalicelib.functions.{entry_point}"
            )
        for name, logical_id in LOGICAL_IDS.items():
            self.chalice.get_resource(logical_id).add_property_override(
                "Role", roles.roles[name].role_arn
            )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="JwtSigningKey",
                actions=["secretsmanager:GetSecretValue"],
                resources=[jwt_signing_key.secret_arn],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PushToWebSockets",
                actions=["execute-api:ManageConnections"],
                resources=[
                    stack.format_arn(
                        service="execute-api",
                        resource=websocket_api.ref,
                        resource_name=f"{websocket_stage}/POST/@connections/*",
                        arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
                    )
                ],
            )
        )

        for output_id, value, description in (
            ("RestApiUrl", self.rest_api_url, "Base URL of the REST API"),
            ("WebSocketUrl", self.websocket_url, "URL of the WebSocket API"),
        ):
            output = cdk.CfnOutput(self, output_id, value=value, description=description)
            output.override_logical_id(output_id)

    def functions(self) -> list[cdk.CfnResource]:
        """Every Lambda function of the Chalice app, as included from its SAM template."""
        children: list[Any] = self.chalice.sam_template.node.children
        return [
            child
            for child in children
            if isinstance(child, cdk.CfnResource)
            and child.cfn_resource_type == "AWS::Serverless::Function"
        ]
