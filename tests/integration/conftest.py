"""moto-backed fixtures: real adapters against moto's in-memory AWS, no network."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.dynamodb import connection, tables
from chalicelib.settings import Settings
from tests.fakes import fast_hasher

REGION = "us-east-1"
TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def settings() -> Settings:
    return Settings(table_prefix="test-", jwt_secret_id="test/jwt", aws_region=REGION)


@pytest.fixture
def moto_aws(aws_env: None, settings: Settings) -> Iterator[None]:
    """Every table, the JWT secret and the derivation key, in moto."""
    with mock_aws():
        tables.bind(settings.table_prefix, settings.aws_region)
        tables.create_all(boto3.client("dynamodb", region_name=REGION), settings.table_prefix)
        for secret_id in (settings.jwt_secret_id, settings.derivation_secret_id):
            boto3.client("secretsmanager", region_name=REGION).create_secret(
                Name=secret_id, SecretString=os.urandom(32).hex()
            )
        yield


@pytest.fixture
def container(moto_aws: None, settings: Settings) -> Iterator[bootstrap.Container]:
    built = bootstrap.build(settings, hasher=fast_hasher())
    bootstrap.override(built)
    yield built
    bootstrap.override(None)


PASSWORD = "correct horse battery"


class Http:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.calls: list[str] = []

    def __call__(
        self, method: str, path: str, body: Any = None, token: str | None = None, **headers: str
    ) -> Any:
        all_headers = {
            "content-type": "application/json",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        }
        if token:
            all_headers["authorization"] = f"Bearer {token}"
        payload = json.dumps(body).encode() if body is not None else b""
        self.calls.clear()
        response = getattr(self.client.http, method.lower())(
            f"/v1{path}", body=payload, headers=all_headers
        )
        response.json = json.loads(response.body) if response.body else None
        return response

    def register(self, email: str) -> dict[str, Any]:
        response = self(
            "POST", "/auth/register", {"email": email, "password": PASSWORD, "name": email[:4]}
        )
        assert response.status_code == 201, response.body
        return response.json  # type: ignore[no-any-return]


@pytest.fixture
def http(container: bootstrap.Container) -> Iterator[Http]:
    with Client(app) as client:
        http = Http(client)
        http.register("first@example.com")  # warms the container and the shared client
        connection.root().client.meta.events.register(
            "before-call.dynamodb",
            lambda event_name, **_: http.calls.append(event_name.rsplit(".", 1)[-1]),
        )
        yield http
