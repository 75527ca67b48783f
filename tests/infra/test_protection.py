"""Protection on the synthesized template: the web ACL on the REST stage, stage and auth
throttling, security headers on gateway responses, CORS origins on the API function; and the
settings from context."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.api.middleware import SECURITY_HEADERS
from infrastructure.components.protection import (
    AUTH_ROUTES,
    MANAGED_RULE_GROUPS,
    ProtectionSettings,
    resource_path_key,
)
from tests.infra.conftest import CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

DEFAULTS = ProtectionSettings()


def _only(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    assert len(resources) == 1, list(resources)
    return next(iter(resources.values()))


def _web_acl(cloud_assembly: CloudAssembly) -> tuple[str, dict[str, Any]]:
    acls = cloud_assembly.resources("AWS::WAFv2::WebACL")
    assert len(acls) == 1, list(acls)
    return next(iter(acls.items()))


def test_the_web_acl_is_regional_allows_by_default_and_records_metrics_and_samples(
    cloud_assembly: CloudAssembly,
) -> None:
    _, acl = _web_acl(cloud_assembly)
    properties = acl["Properties"]
    assert properties["Scope"] == "REGIONAL"
    assert properties["DefaultAction"] == {"Allow": {}}
    configs = [
        properties["VisibilityConfig"],
        *(r["VisibilityConfig"] for r in properties["Rules"]),
    ]
    for config in configs:
        assert config["CloudWatchMetricsEnabled"] is True
        assert config["SampledRequestsEnabled"] is True
    names = [rule["Name"] for rule in properties["Rules"]]
    assert len(set(names)) == len(names)
    assert len({rule["Priority"] for rule in properties["Rules"]}) == len(names)


def test_a_rate_based_rule_per_client_address_answers_429(cloud_assembly: CloudAssembly) -> None:
    _, acl = _web_acl(cloud_assembly)
    rules = {rule["Name"]: rule for rule in acl["Properties"]["Rules"]}
    every = rules["RatePerAddress"]["Statement"]["RateBasedStatement"]
    assert every == {
        "AggregateKeyType": "IP",
        "Limit": DEFAULTS.waf_rate_limit,
        "EvaluationWindowSec": 300,
    }
    auth = rules["AuthRatePerAddress"]["Statement"]["RateBasedStatement"]
    assert auth["AggregateKeyType"] == "IP"
    assert auth["Limit"] == DEFAULTS.waf_auth_rate_limit < DEFAULTS.waf_rate_limit
    match = auth["ScopeDownStatement"]["ByteMatchStatement"]
    assert match["FieldToMatch"] == {"UriPath": {}}
    assert match["SearchString"] == "/v1/auth/"
    for name in ("RatePerAddress", "AuthRatePerAddress"):
        response = rules[name]["Action"]["Block"]["CustomResponse"]
        assert response["ResponseCode"] == 429
        body = acl["Properties"]["CustomResponseBodies"][response["CustomResponseBodyKey"]]
        assert body["ContentType"] == "APPLICATION_JSON"
        assert '"code": "rate_limited"' in body["Content"]


def test_aws_managed_rule_groups_block_except_the_8_kb_body_rule(
    cloud_assembly: CloudAssembly,
) -> None:
    _, acl = _web_acl(cloud_assembly)
    managed = {
        rule["Statement"]["ManagedRuleGroupStatement"]["Name"]: rule
        for rule in acl["Properties"]["Rules"]
        if "ManagedRuleGroupStatement" in rule["Statement"]
    }
    assert set(managed) == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    }
    assert {name for name, _ in MANAGED_RULE_GROUPS} == set(managed)
    for rule in managed.values():
        assert rule["OverrideAction"] == {"None": {}}  # the groups' own actions: block
        assert rule["Statement"]["ManagedRuleGroupStatement"]["VendorName"] == "AWS"
    overrides = managed["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"][
        "RuleActionOverrides"
    ]
    # Bodies up to 256 KiB are the API's (API.md); the group would block any over 8 KB.
    assert overrides == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]
    # Known bad addresses go before the rate rules, so they never count against anyone.
    ip_reputation = managed["AWSManagedRulesAmazonIpReputationList"]["Priority"]
    rate_rules = [r for r in acl["Properties"]["Rules"] if "RateBasedStatement" in r["Statement"]]
    assert all(ip_reputation < rule["Priority"] for rule in rate_rules)


def test_the_web_acl_is_associated_with_the_rest_api_stage(cloud_assembly: CloudAssembly) -> None:
    acl_id, _ = _web_acl(cloud_assembly)
    association = _only(cloud_assembly.resources("AWS::WAFv2::WebACLAssociation"))["Properties"]
    assert association["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    # SAM resolves `RestAPI.Stage` to the stage it generates (and so orders the two).
    assert association["ResourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${RestAPI}"
        "/stages/${RestAPI.Stage}"
    }
    assert cloud_assembly.template["Resources"]["RestAPI"]["Type"] == "AWS::Serverless::Api"


def test_the_stage_is_throttled_and_the_auth_routes_tighter(cloud_assembly: CloudAssembly) -> None:
    settings = cloud_assembly.template["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    by_key = {(s["ResourcePath"], s["HttpMethod"]): s for s in settings}
    assert by_key[("/*", "*")]["ThrottlingRateLimit"] == DEFAULTS.throttle_rate
    assert by_key[("/*", "*")]["ThrottlingBurstLimit"] == DEFAULTS.throttle_burst
    assert len(AUTH_ROUTES) == 3
    for method, path in AUTH_ROUTES:
        setting = by_key[(resource_path_key(path), method)]
        assert setting["ThrottlingRateLimit"] == DEFAULTS.auth_throttle_rate
        assert setting["ThrottlingBurstLimit"] == DEFAULTS.auth_throttle_burst
    assert DEFAULTS.auth_throttle_rate < DEFAULTS.throttle_rate
    assert DEFAULTS.auth_throttle_burst < DEFAULTS.throttle_burst
    assert resource_path_key("/v1/auth/login") == "/~1v1~1auth~1login"


def test_the_throttled_auth_routes_are_routes_of_the_app() -> None:
    from app import app

    for method, path in AUTH_ROUTES:
        assert method in app.routes[path], path
    assert {path.rsplit("/", 1)[1] for _, path in AUTH_ROUTES} == {"login", "register", "refresh"}


def test_gateway_responses_carry_the_security_headers(cloud_assembly: CloudAssembly) -> None:
    responses = cloud_assembly.resources("AWS::ApiGateway::GatewayResponse")
    types = {r["Properties"]["ResponseType"] for r in responses.values()}
    assert {"WAF_FILTERED", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"} <= types
    for response in responses.values():
        parameters = response["Properties"]["ResponseParameters"]
        for name, value in SECURITY_HEADERS.items():
            assert parameters[f"gatewayresponse.header.{name}"] == f"'{value}'"


def _distribution_id(cloud_assembly: CloudAssembly) -> str:
    (logical_id,) = cloud_assembly.resources("AWS::CloudFront::Distribution")
    return logical_id


def test_the_api_function_gets_the_cors_origins(cloud_assembly: CloudAssembly) -> None:
    variables = cloud_assembly.template["Resources"]["APIHandler"]["Properties"]["Environment"][
        "Variables"
    ]
    # By default only the stack's own dashboard (tests/infra/test_web.py) is an allowed origin.
    assert variables["TASKBEAT_CORS_ORIGINS"] == {
        "Fn::Join": [
            "",
            ["https://", {"Fn::GetAtt": [_distribution_id(cloud_assembly), "DomainName"]}],
        ]
    }


# --- settings from context, and the construct on its own ---------------------------------------


def _settings(context: dict[str, Any], stage: str | None = None) -> ProtectionSettings:
    import aws_cdk as cdk

    return ProtectionSettings.from_context(cdk.App(context=context).node, stage)


def test_settings_default_without_context() -> None:
    assert _settings({}) == DEFAULTS
    assert DEFAULTS.cors_origins == ()


def test_settings_per_stage_then_flat_keys_win() -> None:
    context = {
        "stage": "prod",
        "protection": {
            "prod": {
                "throttle_rate": 500,
                "throttle_burst": 1000,
                "cors_origins": ["https://app.example.com/"],
            },
            "dev": {"throttle_rate": 1},
        },
        "waf_rate_limit": "5000",  # `-c` passes strings
        "cors_origins": "https://app.example.com, http://localhost:3000",
    }
    settings = _settings(context)
    assert settings.throttle_rate == 500.0
    assert settings.throttle_burst == 1000
    assert settings.waf_rate_limit == 5000
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:3000")
    assert _settings({"protection": {"dev": {"auth_throttle_rate": 2}}}).auth_throttle_rate == 2.0
    assert _settings({"protection": {"dev": {"auth_throttle_rate": 2}}}, "prod") == DEFAULTS


@pytest.mark.parametrize(
    "context",
    [
        {"waf_rate_limit": 5},
        {"throttle_rate": 0},
        {"auth_throttle_rate": 1000},  # looser than the stage
        {"cors_origins": "app.example.com"},
        {"protection": {"dev": {"throttle_rat": 5}}},
        {"protection": ["dev"]},
    ],
)
def test_settings_refuse_bad_values(context: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (each case has its own message)
        _settings(context)


def test_the_construct_hands_the_configured_origins_to_the_api_function() -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_sam as sam
    from aws_cdk.assertions import Template

    from infrastructure.components.protection import Protection

    stack = cdk.Stack(cdk.App(), "Test")
    rest_api = sam.CfnApi(stack, "RestAPI", stage_name="api")
    handler = sam.CfnFunction(stack, "APIHandler", code_uri="s3://b/k", handler="app.app")
    Protection(
        stack,
        "Protection",
        rest_api=rest_api,
        api_handler=handler,
        settings=ProtectionSettings(
            cors_origins=("https://app.example.com", "http://localhost:3000"),
            throttle_rate=50,
            throttle_burst=60,
            auth_throttle_rate=5,
            auth_throttle_burst=6,
        ),
    )
    template = Template.from_stack(stack).to_json()
    variables = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["TASKBEAT_CORS_ORIGINS"] == "https://app.example.com,http://localhost:3000"
    method_settings = template["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert method_settings[0] == {
        "ResourcePath": "/*",
        "HttpMethod": "*",
        "ThrottlingRateLimit": 50,
        "ThrottlingBurstLimit": 60,
    }
    assert {(s["ThrottlingRateLimit"], s["ThrottlingBurstLimit"]) for s in method_settings[1:]} == {
        (5, 6)
    }
