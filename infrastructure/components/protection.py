"""Protection of the REST API: a WAF web ACL on its stage, stage and `/auth/*` throttling, and
the CORS allow-list handed to the API function.

Limits and origins are per stage, from CDK context (see `ProtectionSettings.from_context` and
docs/protection.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct, Node

# The routes that hash passwords or mint tokens: throttled tighter than the rest of the stage.
# Chalice paths (the stage name is not part of them); tests/infra checks they are app routes.
AUTH_ROUTES = (
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/register"),
    ("POST", "/v1/auth/refresh"),
)
# What the per-address auth rule of the web ACL matches in the request's URI path.
AUTH_PATH_PART = "/v1/auth/"

# AWS managed rule groups, in evaluation order, each with the rules set to count instead of
# block. SizeRestrictions_BODY blocks bodies over 8 KB; the API accepts up to 256 KiB
# (API.md: 413 above that, answered by the app) and task descriptions and comments reach
# 10,000 characters, so it only counts. The body's first 16 KB are still inspected by the
# other rules.
MANAGED_RULE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AWSManagedRulesAmazonIpReputationList", ()),
    ("AWSManagedRulesCommonRuleSet", ("SizeRestrictions_BODY",)),
    ("AWSManagedRulesKnownBadInputsRuleSet", ()),
)

_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?|\*")
RATE_LIMITED_BODY = "rate_limited"


@dataclass(frozen=True)
class ProtectionSettings:
    """One stage's limits. Context keys are the field names."""

    # Requests one client address may make in any 5 minutes before WAF answers 429.
    waf_rate_limit: int = 2000
    # The same for the auth routes (password guessing, sign-up floods), per address.
    waf_auth_rate_limit: int = 300
    # API Gateway stage throttling (all clients together): steady requests/s and burst.
    throttle_rate: float = 100.0
    throttle_burst: int = 200
    # Tighter, per auth route (login, register, refresh), all clients together.
    auth_throttle_rate: float = 10.0
    auth_throttle_burst: int = 20
    # Browser origins allowed by CORS (TASKBEAT_CORS_ORIGINS); empty: no CORS headers.
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("waf_rate_limit", "waf_auth_rate_limit"):
            if not 10 <= getattr(self, name) <= 2_000_000_000:
                raise ValueError(f"{name}: WAF accepts 10 to 2,000,000,000 requests")
        if min(self.throttle_rate, self.throttle_burst) <= 0:
            raise ValueError("throttle_rate and throttle_burst must be positive")
        if min(self.auth_throttle_rate, self.auth_throttle_burst) <= 0:
            raise ValueError("auth_throttle_rate and auth_throttle_burst must be positive")
        if (
            self.auth_throttle_rate > self.throttle_rate
            or self.auth_throttle_burst > self.throttle_burst
        ):
            raise ValueError("the auth routes' throttling must not be looser than the stage's")
        for origin in self.cors_origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"cors_origins: {origin!r} is not an origin (https://host[:port])")

    @classmethod
    def from_context(cls, node: Node, stage: str | None = None) -> ProtectionSettings:
        """Defaults, then `protection.<stage>` (an object, e.g. in cdk.json), then a flat key
        of the same name (`cdk deploy -c throttle_rate=50`): the last one wins."""
        stage = stage or str(node.try_get_context("stage") or "dev")
        per_stage = node.try_get_context("protection") or {}
        if not isinstance(per_stage, Mapping):
            raise ValueError("context `protection` must map stage names to settings")
        values: dict[str, Any] = dict(per_stage.get(stage) or {})
        known = {field.name for field in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"context protection.{stage}: unknown {', '.join(sorted(unknown))}")
        for name in known:
            flat = node.try_get_context(name)
            if flat is not None:
                values[name] = flat
        return replace(cls(), **{name: _parse(name, value) for name, value in values.items()})


def _parse(name: str, value: Any) -> Any:
    # `-c` passes strings; cdk.json and CDK_CONTEXT_JSON may hold numbers and lists.
    if name == "cors_origins":
        items = value.split(",") if isinstance(value, str) else list(value)
        stripped = (str(item).strip().rstrip("/").lower() for item in items)
        return tuple(origin for origin in stripped if origin)
    if name in {"throttle_rate", "auth_throttle_rate"}:
        return float(value)
    return int(value)


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True,
        metric_name=metric_name,
        sampled_requests_enabled=True,
    )


def resource_path_key(path: str) -> str:
    """A method setting's ResourcePath: `/v1/auth/login` is `/~1v1~1auth~1login`."""
    return "/" + path.replace("/", "~1")


class Protection(Construct):
    """WAF on the REST API stage, its throttling, and the API function's CORS origins.

    `rest_api` is Chalice's `AWS::Serverless::Api` (SAM makes the stage from it), `api_handler`
    the function behind it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rest_api: cdk.CfnResource,
        api_handler: cdk.CfnResource,
        settings: ProtectionSettings,
        # Origins of this stack's own browser clients (the dashboard's distribution).
        own_origins: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.settings = settings

        # Stage throttling: `/*/*` for every method, then each auth route on its own. SAM hands
        # MethodSettings to the AWS::ApiGateway::Stage it generates.
        method_settings: list[dict[str, Any]] = [
            {
                "ResourcePath": "/*",
                "HttpMethod": "*",
                "ThrottlingRateLimit": settings.throttle_rate,
                "ThrottlingBurstLimit": settings.throttle_burst,
            },
            *(
                {
                    "ResourcePath": resource_path_key(path),
                    "HttpMethod": method,
                    "ThrottlingRateLimit": settings.auth_throttle_rate,
                    "ThrottlingBurstLimit": settings.auth_throttle_burst,
                }
                for method, path in AUTH_ROUTES
            ),
        ]
        rest_api.add_property_override("MethodSettings", method_settings)

        api_handler.add_property_override(
            "Environment.Variables.TASKBEAT_CORS_ORIGINS",
            ",".join((*settings.cors_origins, *own_origins)),
        )

        rate_limited = wafv2.CfnWebACL.RuleActionProperty(
            block=wafv2.CfnWebACL.BlockActionProperty(
                custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                    response_code=429, custom_response_body_key=RATE_LIMITED_BODY
                )
            )
        )
        rules: list[wafv2.CfnWebACL.RuleProperty] = []
        managed = iter(MANAGED_RULE_GROUPS)
        # Known bad addresses first: they should not even count against the rate rules.
        rules.append(self._managed_rule(*next(managed), priority=0))
        rules.append(
            wafv2.CfnWebACL.RuleProperty(
                name="RatePerAddress",
                priority=1,
                action=rate_limited,
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        aggregate_key_type="IP",
                        limit=settings.waf_rate_limit,
                        evaluation_window_sec=300,
                    )
                ),
                visibility_config=_visibility("RatePerAddress"),
            )
        )
        rules.append(
            wafv2.CfnWebACL.RuleProperty(
                name="AuthRatePerAddress",
                priority=2,
                action=rate_limited,
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        aggregate_key_type="IP",
                        limit=settings.waf_auth_rate_limit,
                        evaluation_window_sec=300,
                        scope_down_statement=wafv2.CfnWebACL.StatementProperty(
                            byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                                field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                                positional_constraint="CONTAINS",
                                search_string=AUTH_PATH_PART,
                                text_transformations=[
                                    wafv2.CfnWebACL.TextTransformationProperty(
                                        priority=0, type="NONE"
                                    )
                                ],
                            )
                        ),
                    )
                ),
                visibility_config=_visibility("AuthRatePerAddress"),
            )
        )
        for priority, (group, counted) in enumerate(managed, start=3):
            rules.append(self._managed_rule(group, counted, priority=priority))

        metric_prefix = re.sub(r"[^A-Za-z0-9]", "", stack.stack_name) or "Taskbeat"
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            description=f"{stack.stack_name}: rate per address and AWS managed rules",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            rules=rules,
            custom_response_bodies={
                RATE_LIMITED_BODY: wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON",
                    # WAF answers before API Gateway: no request id exists to put here.
                    content=(
                        '{"error": {"code": "rate_limited", "message": "too many requests '
                        'from this address, retry in a few minutes", "details": []}, '
                        '"request_id": null}'
                    ),
                )
            },
            visibility_config=_visibility(f"{metric_prefix}WebAcl"),
        )

        # SAM generates the stage: `${RestAPI.Stage}` is SAM's reference to it, which also makes
        # the association wait for the stage.
        self.stage_arn = cdk.Fn.sub(
            "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/"
            f"${{{rest_api.node.id}}}/stages/${{{rest_api.node.id}.Stage}}"
        )
        wafv2.CfnWebACLAssociation(
            self, "StageAssociation", resource_arn=self.stage_arn, web_acl_arn=self.web_acl.attr_arn
        )
        output = cdk.CfnOutput(
            self, "WebAclArn", value=self.web_acl.attr_arn, description="WAF web ACL of the API"
        )
        output.override_logical_id("WebAclArn")

    @staticmethod
    def _managed_rule(
        group: str, counted: tuple[str, ...], *, priority: int
    ) -> wafv2.CfnWebACL.RuleProperty:
        return wafv2.CfnWebACL.RuleProperty(
            name=group,
            priority=priority,
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS",
                    name=group,
                    rule_action_overrides=[
                        wafv2.CfnWebACL.RuleActionOverrideProperty(
                            name=rule,
                            action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}),
                        )
                        for rule in counted
                    ]
                    or None,
                )
            ),
            visibility_config=_visibility(group),
        )
