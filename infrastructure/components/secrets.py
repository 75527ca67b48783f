"""Secrets Taskbeat generates at deploy time; their values never appear in the template."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct


class Secrets(Construct):
    """The JWT signing key (more secrets, such as webhook signing keys, belong here too)."""

    def __init__(self, scope: Construct, construct_id: str, *, retain: bool) -> None:
        super().__init__(scope, construct_id)
        # The whole SecretString is the HS256 key. No fixed name: a deleted secret's name stays
        # taken for its recovery window, which would block re-creating the stack.
        self.jwt_signing_key = secretsmanager.Secret(
            self,
            "JwtSigningKey",
            description=f"JWT signing key of {cdk.Stack.of(self).stack_name}",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
        )
