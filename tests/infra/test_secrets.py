"""The JWT signing key's rotation (schedule, function, permissions) and the derivation key."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.settings import Settings
from infrastructure.access import ROTATION_ACTIONS
from infrastructure.components.secrets import ROTATE_JWT_KEY, rotation_days
from tests.infra.conftest import CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _secret_id(cloud_assembly: CloudAssembly, construct_id: str) -> str:
    (secret_id,) = (
        logical_id
        for logical_id in cloud_assembly.resources("AWS::SecretsManager::Secret")
        if logical_id.startswith(f"Secrets{construct_id}")
    )
    return secret_id


def _role_statements(cloud_assembly: CloudAssembly, role_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in cloud_assembly.resources(kind).values():
            if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _rotation_role(cloud_assembly: CloudAssembly) -> str:
    function = cloud_assembly.functions()[ROTATE_JWT_KEY]
    role_id, attribute = function["Properties"]["Role"]["Fn::GetAtt"]
    assert attribute == "Arn"
    return str(role_id)


def test_the_jwt_key_rotates_with_the_rotation_function(cloud_assembly: CloudAssembly) -> None:
    (schedule,) = cloud_assembly.resources("AWS::SecretsManager::RotationSchedule").values()
    properties = schedule["Properties"]
    assert properties["SecretId"] == {"Ref": _secret_id(cloud_assembly, "JwtSigningKey")}
    assert properties["RotationLambdaARN"] == {"Fn::GetAtt": [ROTATE_JWT_KEY, "Arn"]}
    assert properties["RotationRules"] == {"AutomaticallyAfterDays": rotation_days()}
    assert properties["RotateImmediatelyOnUpdate"] is False
    assert "HostedRotationLambda" not in properties


def test_a_refresh_token_outlives_at_most_one_rotation() -> None:
    # AWSPREVIOUS must still hold the key of every unexpired refresh token (docs/keys.md).
    ttl_days = Settings().refresh_token_ttl_seconds / 86400
    assert rotation_days() >= ttl_days + 3
    assert rotation_days(90 * 86400) >= 93


def test_only_secrets_manager_may_invoke_the_rotation_for_this_secret(
    cloud_assembly: CloudAssembly,
) -> None:
    permissions = [
        p["Properties"]
        for p in cloud_assembly.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [ROTATE_JWT_KEY, "Arn"]}
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [ROTATE_JWT_KEY, "Arn"]},
            "Principal": "secretsmanager.amazonaws.com",
            "SourceAccount": {"Ref": "AWS::AccountId"},
            "SourceArn": {"Ref": _secret_id(cloud_assembly, "JwtSigningKey")},
        }
    ]
    (schedule_id,) = cloud_assembly.resources("AWS::SecretsManager::RotationSchedule")
    depends_on = cloud_assembly.template["Resources"][schedule_id].get("DependsOn", [])
    assert any(d.startswith("KeyRotationInvokeRotation") for d in depends_on)


def test_the_rotation_function_has_its_own_role_writing_this_secret_only(
    cloud_assembly: CloudAssembly,
) -> None:
    role_id = _rotation_role(cloud_assembly)
    other_roles = {
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for logical_id, f in cloud_assembly.functions().items()
        if logical_id != ROTATE_JWT_KEY
    }
    assert role_id not in other_roles
    role = cloud_assembly.template["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ]
    assert "Policies" not in role
    assert _role_statements(cloud_assembly, role_id) == [
        {
            "Action": list(ROTATION_ACTIONS),
            "Effect": "Allow",
            "Resource": {"Ref": _secret_id(cloud_assembly, "JwtSigningKey")},
            "Sid": "RotateJwtSigningKey",
        }
    ]
    # Nobody else may write any secret.
    for other in other_roles:
        for statement in _role_statements(cloud_assembly, other):
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            assert not any(
                a.startswith("secretsmanager:") and a != "secretsmanager:GetSecretValue"
                for a in actions
            )


def test_functions_read_the_derivation_key_which_never_rotates(
    cloud_assembly: CloudAssembly,
) -> None:
    derivation_key = _secret_id(cloud_assembly, "DerivationKey")
    schedules = cloud_assembly.resources("AWS::SecretsManager::RotationSchedule").values()
    assert all(s["Properties"]["SecretId"] != {"Ref": derivation_key} for s in schedules)
    for logical_id, function in cloud_assembly.functions().items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["TASKBEAT_DERIVATION_SECRET_ID"] == {"Ref": derivation_key}, logical_id
    # Kept when the stack goes, like the tables: webhook secrets derive from it.
    secret = cloud_assembly.template["Resources"][derivation_key]
    assert secret["DeletionPolicy"] == "Retain"
