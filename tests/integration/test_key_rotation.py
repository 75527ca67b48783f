"""The `rotate_jwt_key` function on moto: Secrets Manager's rotation protocol, step by step.

moto's `rotate_secret` does what Secrets Manager does: it stages a new version AWSPENDING
(without a value), invokes the rotation function for `createSecret`, `setSecret`, `testSecret`
and `finishSecret`, and labels the new version AWSCURRENT. Its Lambda invocations are routed
here to the handler in this process (moto would need Docker to run the function).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from moto.awslambda.models import LambdaBackend

from app import rotate_jwt_key
from chalicelib.adapters.aws.key_rotation import RotationRefused, SigningKeyRotation
from chalicelib.adapters.aws.secrets import SecretsManagerSigningKeys
from chalicelib.settings import Settings
from infrastructure.access import ROTATION_ACTIONS
from tests.integration.conftest import REGION

FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:taskbeat-rotate_jwt_key"
STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]


class Interrupted(Exception):
    pass


@pytest.fixture
def secretsmanager(moto_aws: None, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TASKBEAT_JWT_SECRET_ID", settings.jwt_secret_id)
    return boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def invocations(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every event the rotation function got; `route` decides what each invocation does."""
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(LambdaBackend, "get_function", lambda self, arn, qualifier=None: arn)
    return events


def route(
    monkeypatch: pytest.MonkeyPatch,
    events: list[dict[str, Any]],
    handle: Callable[[dict[str, Any]], Any] = lambda event: rotate_jwt_key(event, None),
) -> None:
    def invoke(self: Any, function_name: str, qualifier: Any, body: Any, **_: Any) -> bytes:
        assert function_name == FUNCTION_ARN
        event = json.loads(body)
        events.append(event)
        return json.dumps(handle(event)).encode()

    monkeypatch.setattr(LambdaBackend, "invoke", invoke)


def stages(client: Any, settings: Settings) -> dict[str, list[str]]:
    described = client.describe_secret(SecretId=settings.jwt_secret_id)
    return {v: sorted(s) for v, s in described["VersionIdsToStages"].items() if s}


def value(client: Any, settings: Settings, **version: str) -> str:
    return str(client.get_secret_value(SecretId=settings.jwt_secret_id, **version)["SecretString"])


def start_rotation(client: Any, settings: Settings) -> None:
    client.rotate_secret(
        SecretId=settings.jwt_secret_id,
        RotationLambdaARN=FUNCTION_ARN,
        RotationRules={"AutomaticallyAfterDays": 35},
    )


def test_a_rotation_runs_the_four_steps_and_keeps_the_old_key_as_previous(
    secretsmanager: Any,
    settings: Settings,
    invocations: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    route(monkeypatch, invocations)
    keys = SecretsManagerSigningKeys(secretsmanager, settings.jwt_secret_id, ttl=0)
    old = keys.current()

    start_rotation(secretsmanager, settings)

    assert [event["Step"] for event in invocations] == STEPS
    token = invocations[0]["ClientRequestToken"]
    assert {event["ClientRequestToken"] for event in invocations} == {token}
    assert stages(secretsmanager, settings) == {
        old.kid: ["AWSPREVIOUS"],
        token: ["AWSCURRENT", "AWSPENDING"],
    }
    new = keys.current()
    assert new.kid == token
    assert len(new.secret) == 64
    assert new.secret != old.secret
    assert keys.find(old.kid) == old


def test_every_step_may_run_again(
    secretsmanager: Any,
    settings: Settings,
    invocations: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pending: list[str] = []

    def twice(event: dict[str, Any]) -> Any:
        rotate_jwt_key(event, None)
        if event["Step"] == "createSecret":
            pending.append(value(secretsmanager, settings, VersionStage="AWSPENDING"))
        return rotate_jwt_key(event, None)  # a retry by Secrets Manager

    route(monkeypatch, invocations, twice)
    start_rotation(secretsmanager, settings)
    token = invocations[0]["ClientRequestToken"]
    # The key made by the first createSecret was kept, and is the one in use.
    assert value(secretsmanager, settings, VersionStage="AWSCURRENT") == pending[0]
    assert stages(secretsmanager, settings)[token] == ["AWSCURRENT", "AWSPENDING"]
    # Every step of a finished rotation is a no-op.
    for step in STEPS:
        rotate_jwt_key(
            {"Step": step, "SecretId": settings.jwt_secret_id, "ClientRequestToken": token}, None
        )
    assert value(secretsmanager, settings, VersionStage="AWSCURRENT") == pending[0]


def test_nothing_changes_for_readers_until_finish_secret(
    secretsmanager: Any,
    settings: Settings,
    invocations: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def until_finish(event: dict[str, Any]) -> Any:
        if event["Step"] == "finishSecret":
            raise Interrupted
        return rotate_jwt_key(event, None)

    route(monkeypatch, invocations, until_finish)
    keys = SecretsManagerSigningKeys(secretsmanager, settings.jwt_secret_id, ttl=0)
    old = keys.current()
    with pytest.raises(Interrupted):
        start_rotation(secretsmanager, settings)
    token = invocations[0]["ClientRequestToken"]
    assert stages(secretsmanager, settings) == {old.kid: ["AWSCURRENT"], token: ["AWSPENDING"]}
    assert keys.current() == old  # AWSPENDING signs and verifies nothing
    assert keys.find(token) is None

    rotation = SigningKeyRotation(secretsmanager, settings.jwt_secret_id)
    rotation.run("finishSecret", settings.jwt_secret_id, token)
    rotation.run("finishSecret", settings.jwt_secret_id, token)
    assert stages(secretsmanager, settings) == {
        old.kid: ["AWSPREVIOUS"],
        token: ["AWSCURRENT", "AWSPENDING"],
    }
    assert keys.current().kid == token


def test_test_secret_refuses_a_bad_pending_key(
    secretsmanager: Any,
    settings: Settings,
    invocations: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def short_key(event: dict[str, Any]) -> Any:
        if event["Step"] == "createSecret":
            secretsmanager.put_secret_value(
                SecretId=settings.jwt_secret_id,
                ClientRequestToken=event["ClientRequestToken"],
                SecretString="too-short",
                VersionStages=["AWSPENDING"],
            )
            return {}
        return rotate_jwt_key(event, None)

    route(monkeypatch, invocations, short_key)
    current = value(secretsmanager, settings, VersionStage="AWSCURRENT")
    with pytest.raises(RotationRefused, match="too short"):
        start_rotation(secretsmanager, settings)
    assert value(secretsmanager, settings, VersionStage="AWSCURRENT") == current


@pytest.mark.parametrize(
    ("step", "token", "message"),
    [
        ("createSecret", "00000000-0000-4000-8000-000000000000", "not a version"),
        ("createSecret", "current", "no-op"),
        ("rotateEverything", "current", "unknown step"),
    ],
)
def test_events_that_are_not_a_rotation_are_refused(
    secretsmanager: Any, settings: Settings, step: str, token: str, message: str
) -> None:
    current = secretsmanager.get_secret_value(SecretId=settings.jwt_secret_id)
    token = current["VersionId"] if token == "current" else token
    event = {"Step": step, "SecretId": settings.jwt_secret_id, "ClientRequestToken": token}
    if message == "no-op":
        rotate_jwt_key(event, None)  # the current version: a finished rotation, nothing to do
        assert value(secretsmanager, settings, VersionStage="AWSCURRENT") == current["SecretString"]
        return
    with pytest.raises(RotationRefused, match=message):
        rotate_jwt_key(event, None)


def test_a_version_that_is_not_pending_is_refused(secretsmanager: Any, settings: Settings) -> None:
    old = secretsmanager.get_secret_value(SecretId=settings.jwt_secret_id)["VersionId"]
    secretsmanager.put_secret_value(SecretId=settings.jwt_secret_id, SecretString="n" * 64)
    event = {"Step": "finishSecret", "SecretId": settings.jwt_secret_id, "ClientRequestToken": old}
    with pytest.raises(RotationRefused, match="not staged AWSPENDING"):
        rotate_jwt_key(event, None)


def test_only_the_jwt_secret_is_rotated(secretsmanager: Any, settings: Settings) -> None:
    other = secretsmanager.get_secret_value(SecretId=settings.derivation_secret_id)
    event = {
        "Step": "createSecret",
        "SecretId": settings.derivation_secret_id,
        "ClientRequestToken": other["VersionId"],
    }
    with pytest.raises(RotationRefused, match="rotates"):
        rotate_jwt_key(event, None)


def test_the_rotation_does_exactly_what_its_role_allows(
    secretsmanager: Any,
    settings: Settings,
    invocations: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its role (infrastructure/access.py) grants ROTATION_ACTIONS on the JWT secret
    and nothing else: a full rotation uses each of them, on that secret only."""
    calls: set[tuple[str, str]] = set()
    original = BaseClient._make_api_call
    rotating = [False]

    def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if rotating[0]:
            service = client.meta.service_model.signing_name
            calls.add((f"{service}:{operation}", str(params.get("SecretId"))))
        return original(client, operation, params)

    def handle(event: dict[str, Any]) -> Any:
        rotating[0] = True
        try:
            return rotate_jwt_key(event, None)
        finally:
            rotating[0] = False

    monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)
    route(monkeypatch, invocations, handle)
    start_rotation(secretsmanager, settings)

    assert [event["Step"] for event in invocations] == STEPS
    assert {action for action, _ in calls} == set(ROTATION_ACTIONS)
    assert {secret for _, secret in calls} == {settings.jwt_secret_id}
