"""Secrets Taskbeat generates at deploy time; their values never appear in the template.

`Secrets` (the stateful stack) holds the two secrets; `KeyRotation` (the stateless stack) wires
them to the functions and rotates the JWT key, so nothing in the stateful stack refers to a
function and the stateless stack can be replaced without touching a secret.

- The JWT signing key rotates: Secrets Manager invokes the `rotate_jwt_key` function (its own
  role, allowed to write this one secret only) every `rotation_days()` days, which is longer
  than a refresh token lives, so the key that signed any unexpired token is AWSCURRENT or
  AWSPREVIOUS, the two the API verifies with.
- The derivation key never rotates: webhook secrets and the cursors' signing key derive from it,
  so a rotation of the JWT key changes neither. See `docs/keys.md`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from chalicelib.settings import Settings
from infrastructure.access import ROTATION_ACTIONS
from infrastructure.components.roles import PolicyTarget

# Chalice's logical id of `@app.lambda_function(name="rotate_jwt_key")`.
ROTATE_JWT_KEY = "RotateJwtKey"
# Days beyond the refresh token lifetime before the next rotation: a scheduled rotation can
# run up to a day late or early, and a manual one in between shortens the gap (docs/keys.md).
ROTATION_MARGIN_DAYS = 5


def rotation_days(refresh_token_ttl_seconds: int | None = None) -> int:
    """Days between rotations: a refresh token outlives at most one rotation, so AWSPREVIOUS
    always still has the key that signed it."""
    ttl = refresh_token_ttl_seconds
    if ttl is None:  # the functions run with the default (the stack does not set it)
        ttl = int(Settings.model_fields["refresh_token_ttl_seconds"].default)
    return math.ceil(ttl / 86400) + ROTATION_MARGIN_DAYS


class Secrets(Construct):
    """The JWT signing key (rotating) and the derivation key (not rotating)."""

    def __init__(self, scope: Construct, construct_id: str, *, retain: bool) -> None:
        super().__init__(scope, construct_id)
        stack_name = cdk.Stack.of(self).stack_name
        removal_policy = cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY
        # The whole SecretString is the HS256 key. No fixed name: a deleted secret's name stays
        # taken for its recovery window, which would block re-creating the stack.
        self.jwt_signing_key = secretsmanager.Secret(
            self,
            "JwtSigningKey",
            description=f"JWT signing key of {stack_name} (rotated by its rotate_jwt_key function)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
            removal_policy=removal_policy,
        )
        # The master of per-purpose keys (webhook secrets, cursor signatures). Never rotated:
        # customers verify webhook signatures with secrets derived from it.
        self.derivation_key = secretsmanager.Secret(
            self,
            "DerivationKey",
            description=f"Key webhook secrets and cursors of {stack_name} derive from (never "
            "rotated: changing it changes every project's webhook secret)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
            removal_policy=removal_policy,
        )


class KeyRotation(Construct):
    """Gives the functions the derivation key, and rotates the JWT key with `rotate_jwt_key`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        secrets: Secrets,
        functions: Iterable[cdk.CfnResource],
        function_role: PolicyTarget,
        rotate_jwt_key: cdk.CfnResource,
    ) -> None:
        super().__init__(scope, construct_id)
        jwt_signing_key = secrets.jwt_signing_key
        for function in functions:
            function.add_property_override(
                "Environment.Variables.TASKBEAT_DERIVATION_SECRET_ID",
                secrets.derivation_key.secret_arn,
            )
        function_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DerivationKey",
                actions=["secretsmanager:GetSecretValue"],
                resources=[secrets.derivation_key.secret_arn],
            )
        )

        # The rotation function alone may write the JWT key: its own role, not the functions'.
        self.rotation_role = iam.Role(
            self,
            "RotationRole",
            description="Taskbeat's JWT signing key rotation function",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AWSLambdaBasicExecutionRole"
                ),
                iam.ManagedPolicy.from_aws_managed_policy_name("AWSXRayDaemonWriteAccess"),
            ],
        )
        self.rotation_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RotateJwtSigningKey",
                actions=list(ROTATION_ACTIONS),
                resources=[jwt_signing_key.secret_arn],
            )
        )
        rotate_jwt_key.add_property_override("Role", self.rotation_role.role_arn)
        function_arn = rotate_jwt_key.get_att("Arn").to_string()
        stack = cdk.Stack.of(self)
        # Secrets Manager may invoke it for this secret only (no confused deputy).
        self.rotation_permission = lambda_.CfnPermission(
            self,
            "InvokeRotation",
            action="lambda:InvokeFunction",
            function_name=function_arn,
            principal="secretsmanager.amazonaws.com",
            source_arn=jwt_signing_key.secret_arn,
            source_account=stack.account,
        )
        self.rotation_schedule = secretsmanager.CfnRotationSchedule(
            self,
            "JwtSigningKeyRotation",
            secret_id=jwt_signing_key.secret_arn,
            rotation_lambda_arn=function_arn,
            rotation_rules=secretsmanager.CfnRotationSchedule.RotationRulesProperty(
                automatically_after_days=rotation_days()
            ),
            # The first rotation comes on schedule, not with the deploy that sets it up.
            rotate_immediately_on_update=False,
        )
        self.rotation_schedule.add_resource_dependency(self.rotation_permission)
