"""Assertions on the synthesized CloudFormation template."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chalicelib.adapters.dynamodb import tables
from chalicelib.settings import Settings, environment_variable
from infrastructure.access import ROTATION_ACTIONS
from infrastructure.components.api import ENTRY_POINTS
from infrastructure.packaging import LAMBDA_RUNTIME
from tests.infra.conftest import (
    FIGURES,
    LOG_DELIVERY_ACTIONS,
    STAGE,
    TABLE_PREFIX,
    TRACING_ACTIONS,
    CloudAssembly,
)

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _table_named(cloud_assembly: CloudAssembly, name: str) -> dict[str, Any]:
    matches = [
        resource
        for resource in cloud_assembly.resources("AWS::DynamoDB::Table").values()
        if resource["Properties"]["TableName"] == name
    ]
    assert len(matches) == 1, f"{len(matches)} tables named {name}"
    return matches[0]


def _key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


@pytest.mark.parametrize("spec", tables.specs(), ids=lambda spec: spec.base_name)
def test_every_table_spec_has_an_on_demand_encrypted_table_with_recovery(
    template: Any, spec: tables.TableSpec
) -> None:
    from aws_cdk.assertions import Match

    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": Match.object_like(
                {
                    "TableName": f"{TABLE_PREFIX}{spec.base_name}",
                    "KeySchema": _key_schema(spec.hash_key, spec.range_key),
                    "BillingMode": "PAY_PER_REQUEST",
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "DeletionProtectionEnabled": True,
                    "SSESpecification": {"SSEEnabled": True},  # KMS, aws/dynamodb key
                }
            ),
            # Retained by default; only `-c destroy_data=true` dev stacks delete their data.
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_tables_agree_with_the_pynamodb_models(cloud_assembly: CloudAssembly) -> None:
    """Read every table back into a TableSpec: the template must declare exactly the models."""
    from_template = []
    for resource in cloud_assembly.resources("AWS::DynamoDB::Table").values():
        properties = resource["Properties"]
        assert properties["TableName"].startswith(TABLE_PREFIX)
        hash_key, range_key = _keys(properties["KeySchema"])
        ttl = properties.get("TimeToLiveSpecification")
        from_template.append(
            tables.TableSpec(
                base_name=properties["TableName"].removeprefix(TABLE_PREFIX),
                hash_key=hash_key,
                range_key=range_key,
                attribute_types={
                    a["AttributeName"]: a["AttributeType"]
                    for a in properties["AttributeDefinitions"]
                },
                indexes=tuple(
                    tables.IndexSpec(
                        index["IndexName"],
                        *_keys(index["KeySchema"]),
                        projection=index["Projection"]["ProjectionType"],
                    )
                    for index in properties.get("GlobalSecondaryIndexes", [])
                ),
                ttl_attribute=ttl["AttributeName"] if ttl and ttl["Enabled"] else None,
                stream="StreamSpecification" in properties,
            )
        )

    def by_name(spec: tables.TableSpec) -> str:
        return spec.base_name

    def normalized(spec: tables.TableSpec) -> tables.TableSpec:
        return tables.TableSpec(
            **{**spec.__dict__, "indexes": tuple(sorted(spec.indexes, key=lambda i: i.name))}
        )

    assert sorted(map(normalized, from_template), key=by_name) == sorted(
        map(normalized, tables.specs()), key=by_name
    )


def _keys(key_schema: list[dict[str, str]]) -> tuple[str, str | None]:
    keys = {k["KeyType"]: k["AttributeName"] for k in key_schema}
    return keys["HASH"], keys.get("RANGE")


def test_the_event_log_expires_its_events_and_is_not_streamed(
    cloud_assembly: CloudAssembly,
) -> None:
    """Its events are written by the stream consumer: a stream of its own would feed it back."""
    properties = _table_named(cloud_assembly, f"{TABLE_PREFIX}project_events")["Properties"]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert _keys(properties["KeySchema"]) == ("project_id", "seq")
    assert "StreamSpecification" not in properties


def test_streamed_tables_carry_both_images(cloud_assembly: CloudAssembly) -> None:
    for spec in tables.specs():
        properties = _table_named(cloud_assembly, f"{TABLE_PREFIX}{spec.base_name}")["Properties"]
        if spec.stream:
            assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
        else:
            assert "StreamSpecification" not in properties


def test_jwt_signing_key_is_generated_at_deploy_time(cloud_assembly: CloudAssembly) -> None:
    # The JWT signing key and the derivation key (tests/infra/test_secrets.py).
    secrets = cloud_assembly.resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 2
    for secret in secrets.values():
        generator = secret["Properties"]["GenerateSecretString"]
        assert generator["PasswordLength"] >= 32
        assert "SecretString" not in secret["Properties"]
        assert "SecretStringTemplate" not in generator  # the whole string is the key, not JSON


def test_every_function_runs_the_target_runtime(cloud_assembly: CloudAssembly) -> None:
    functions = cloud_assembly.functions()
    FIGURES["functions"] = str(len(functions))
    assert {f["Properties"]["Runtime"] for f in functions.values()} == {LAMBDA_RUNTIME}


def test_only_the_rest_api_runs_the_chalice_app(cloud_assembly: CloudAssembly) -> None:
    """The other functions each run their own entry point in chalicelib.functions."""
    from chalicelib import functions as entry_points

    handlers = {
        logical_id: f["Properties"]["Handler"]
        for logical_id, f in cloud_assembly.functions().items()
    }
    assert handlers.pop("APIHandler") == "app.app"
    assert handlers == {
        logical_id: f"chalicelib.functions.{name}" for logical_id, name in ENTRY_POINTS.items()
    }
    assert set(ENTRY_POINTS.values()) == set(entry_points.HANDLED_BY)
    for logical_id, name in ENTRY_POINTS.items():  # Chalice's id of the function of that name
        assert logical_id.lower() == name.replace("ws_", "websocket_").replace("_", "")


def test_functions_are_traced_and_sized(cloud_assembly: CloudAssembly) -> None:
    functions = cloud_assembly.functions()
    for function in functions.values():
        assert function["Properties"]["Tracing"] == "Active"
    api_handler = functions["APIHandler"]["Properties"]
    # API Gateway's integration timeout is 29 s: a longer Lambda timeout would never be used.
    assert (api_handler["MemorySize"], api_handler["Timeout"]) == (512, 29)


def test_functions_log_to_groups_with_retention(cloud_assembly: CloudAssembly) -> None:
    log_groups = cloud_assembly.resources("AWS::Logs::LogGroup")
    for function in cloud_assembly.functions().values():
        log_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert log_groups[log_group]["Properties"]["RetentionInDays"] == 30


def _secret_id(cloud_assembly: CloudAssembly, construct_id: str) -> str:
    (secret_id,) = (
        logical_id
        for logical_id in cloud_assembly.resources("AWS::SecretsManager::Secret")
        if logical_id.startswith(f"Secrets{construct_id}")
    )
    return secret_id


def test_functions_get_their_settings(cloud_assembly: CloudAssembly) -> None:
    secret_id = _secret_id(cloud_assembly, "JwtSigningKey")
    derivation_key_id = _secret_id(cloud_assembly, "DerivationKey")
    settings_variables = {environment_variable(name) for name in Settings.model_fields}
    for logical_id, function in cloud_assembly.functions().items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["TASKBEAT_STAGE"] == STAGE
        assert variables["TASKBEAT_TABLE_PREFIX"] == TABLE_PREFIX
        assert variables["TASKBEAT_JWT_SECRET_ID"] == {"Ref": secret_id}
        assert variables["TASKBEAT_DERIVATION_SECRET_ID"] == {"Ref": derivation_key_id}
        assert variables["TASKBEAT_ALLOW_PRIVATE_WEBHOOKS"] == "false"
        assert variables["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
        assert variables["POWERTOOLS_SERVICE_NAME"] == "taskbeat"
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Taskbeat"
        assert _rendered(variables["TASKBEAT_WS_MANAGEMENT_URL"]) == (
            "https://{WebsocketAPI}.execute-api.{AWS::Region}.{AWS::URLSuffix}/api"
        )
        # A misspelt name would be silently ignored by Settings.
        unknown = {name for name in variables if name.startswith("TASKBEAT_")}
        assert unknown <= settings_variables, f"{logical_id}: {unknown - settings_variables}"


def _rendered(value: Any) -> str:
    """A string or Fn::Join of strings and Refs, with each Ref shown as `{Name}`."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"{{{value['Ref']}}}"
    separator, parts = value["Fn::Join"]
    return str(separator).join(_rendered(part) for part in parts)


def _statements(cloud_assembly: CloudAssembly) -> list[dict[str, Any]]:
    statements = []
    # CDK moves statements beyond a role's inline size limit into "overflow" managed policies.
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in cloud_assembly.resources(kind).values():
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    for role in cloud_assembly.resources("AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            statements += policy["PolicyDocument"]["Statement"]
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# Actions IAM cannot scope to a resource: "*" is the only resource they accept. Step Functions
# needs the log delivery and X-Ray ones to log and trace the run state machine.
UNSCOPABLE_ACTIONS = {"dynamodb:ListStreams"} | LOG_DELIVERY_ACTIONS | TRACING_ACTIONS
STREAM_READ_ACTIONS = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}


def test_no_policy_grants_wildcards(cloud_assembly: CloudAssembly) -> None:
    statements = _statements(cloud_assembly)
    assert statements
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        actions = _as_list(statement["Action"])
        for action in actions:
            assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z]+", action), f"wildcard action {action}"
        if set(actions) <= UNSCOPABLE_ACTIONS:
            continue
        assert "*" not in _as_list(statement["Resource"]), statement


def test_tables_are_reachable_only_through_their_own_arns(cloud_assembly: CloudAssembly) -> None:
    table_ids = set(cloud_assembly.resources("AWS::DynamoDB::Table"))
    dynamodb_statements = [
        s
        for s in _statements(cloud_assembly)
        if any(a.startswith("dynamodb:") for a in _as_list(s["Action"]))
    ]
    stream_statements = [
        s for s in dynamodb_statements if set(_as_list(s["Action"])) <= STREAM_READ_ACTIONS
    ]
    for stream_statement in stream_statements:
        for resource in _as_list(stream_statement["Resource"]):
            # The change feed reads streams only: their ARNs, or "*" for ListStreams alone.
            assert resource == "*" or resource["Fn::GetAtt"][1] == "StreamArn", resource
    table_statements = [s for s in dynamodb_statements if s not in stream_statements]
    # One statement per function role and access kind (tests/infra/test_roles.py checks which).
    assert table_statements
    named = set()
    for statement in table_statements:
        assert "dynamodb:Scan" not in statement["Action"]
        for resource in statement["Resource"]:
            if "Fn::GetAtt" in resource:
                assert resource["Fn::GetAtt"][1] == "Arn"
                named.add(resource["Fn::GetAtt"][0])
            else:
                table_arn, suffix = resource["Fn::Join"][1]
                assert suffix == "/index/*"
                named.add(table_arn["Fn::GetAtt"][0])
    assert named <= table_ids


def test_only_the_signing_key_can_be_read(cloud_assembly: CloudAssembly) -> None:
    secret_id = _secret_id(cloud_assembly, "JwtSigningKey")
    derivation_key_id = _secret_id(cloud_assembly, "DerivationKey")
    secret_statements = [
        s
        for s in _statements(cloud_assembly)
        if any(a.startswith("secretsmanager:") for a in _as_list(s["Action"]))
    ]
    # Each reading function's role has the two reads; the rotation function's role its own
    # (tests/infra/test_secrets.py).
    unique = {json.dumps(statement, sort_keys=True) for statement in secret_statements}
    assert sorted((json.loads(u) for u in unique), key=lambda s: str(s["Sid"])) == [
        {
            "Action": "secretsmanager:GetSecretValue",
            "Effect": "Allow",
            "Resource": {"Ref": derivation_key_id},
            "Sid": "DerivationKey",
        },
        {
            "Action": "secretsmanager:GetSecretValue",
            "Effect": "Allow",
            "Resource": {"Ref": secret_id},
            "Sid": "JwtSigningKey",
        },
        {
            "Action": sorted(ROTATION_ACTIONS),
            "Effect": "Allow",
            "Resource": {"Ref": secret_id},
            "Sid": "RotateJwtSigningKey",
        },
    ]


def test_sockets_can_be_pushed_to_only_on_the_websocket_api(
    cloud_assembly: CloudAssembly,
) -> None:
    statements = [
        s for s in _statements(cloud_assembly) if s["Action"] == "execute-api:ManageConnections"
    ]
    assert statements  # one per pushing function's role
    for statement in statements:
        assert _rendered(statement["Resource"]) == (
            "arn:{AWS::Partition}:execute-api:{AWS::Region}:{AWS::AccountId}:"
            "{WebsocketAPI}/api/POST/@connections/*"
        )


def test_rest_api_is_served_under_stage_api(cloud_assembly: CloudAssembly) -> None:
    (rest_api,) = cloud_assembly.resources("AWS::Serverless::Api").values()
    assert rest_api["Properties"]["StageName"] == "api"
    assert rest_api["Properties"]["TracingEnabled"] is True
    paths = rest_api["Properties"]["DefinitionBody"]["paths"]
    assert paths
    assert all(path.startswith("/v1/") for path in paths)


def test_websocket_api_routes_to_its_three_handlers(cloud_assembly: CloudAssembly) -> None:
    (api_id,) = cloud_assembly.resources("AWS::ApiGatewayV2::Api")
    (stage,) = cloud_assembly.resources("AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["StageName"] == "api"
    integrations = cloud_assembly.resources("AWS::ApiGatewayV2::Integration")
    handlers = {}
    for route in cloud_assembly.resources("AWS::ApiGatewayV2::Route").values():
        assert route["Properties"]["ApiId"] == {"Ref": api_id}
        _, target = route["Properties"]["Target"]["Fn::Join"][1]
        uri = integrations[target["Ref"]]["Properties"]["IntegrationUri"]["Fn::Sub"]
        function = uri[1]["WebsocketHandler"]["Ref"]
        handlers[route["Properties"]["RouteKey"]] = cloud_assembly.functions()[function][
            "Properties"
        ]["Handler"]
    assert handlers == {
        "$connect": "chalicelib.functions.ws_connect",
        "$default": "chalicelib.functions.ws_message",
        "$disconnect": "chalicelib.functions.ws_disconnect",
    }


def test_outputs_give_the_public_urls(cloud_assembly: CloudAssembly) -> None:
    outputs = cloud_assembly.template["Outputs"]
    assert _rendered(outputs["RestApiUrl"]["Value"]) == (
        "https://{RestAPI}.execute-api.{AWS::Region}.{AWS::URLSuffix}/api/v1"
    )
    assert _rendered(outputs["WebSocketUrl"]["Value"]) == (
        "wss://{WebsocketAPI}.execute-api.{AWS::Region}.{AWS::URLSuffix}/api"
    )


def test_gateway_errors_have_the_contract_body(cloud_assembly: CloudAssembly) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in cloud_assembly.resources("AWS::ApiGateway::GatewayResponse").values()
    }
    # An unknown route must read as a 404, not API Gateway's 403 "Missing Authentication Token".
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    for response_type in (
        "MISSING_AUTHENTICATION_TOKEN",
        "THROTTLED",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    ):
        template = responses[response_type]["ResponseTemplates"]["application/json"]
        # What API Gateway will render, with its variable filled in, is our error body.
        body = json.loads(template.replace("$context.requestId", "req-1"))
        assert set(body) == {"error", "request_id"}
        assert set(body["error"]) == {"code", "message", "details"}
    assert "gatewayresponse.header.Retry-After" in responses["THROTTLED"]["ResponseParameters"]


def test_every_streamed_table_feeds_the_change_consumer(cloud_assembly: CloudAssembly) -> None:
    resources = cloud_assembly.template["Resources"]
    streamed = {
        logical_id
        for logical_id, resource in cloud_assembly.resources("AWS::DynamoDB::Table").items()
        if "StreamSpecification" in resource["Properties"]
    }
    assert streamed, "no table streams: the change feed has nothing to read"
    mappings = [  # the hook delivery queue's mapping is tests/infra/test_hooks.py's
        m
        for m in cloud_assembly.resources("AWS::Lambda::EventSourceMapping").values()
        if "DeliverHooks" not in json.dumps(m["Properties"]["FunctionName"])
    ]
    fed = {m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0] for m in mappings}
    assert fed == streamed
    for mapping in mappings:
        properties = mapping["Properties"]
        assert properties["BisectBatchOnFunctionError"] is True
        assert properties["MaximumRetryAttempts"] <= 10
        target = json.dumps(properties["FunctionName"])
        assert "OnChange" in target, target
    assert resources["OnChange"]["Properties"]["Runtime"] == LAMBDA_RUNTIME
    policies = json.dumps(cloud_assembly.resources("AWS::IAM::Policy"))
    assert "dynamodb:GetRecords" in policies
