"""moto-backed fixtures: real adapters against moto's in-memory AWS, no network."""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb import tables
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
    """Every table and the JWT secret, in moto."""
    with mock_aws():
        tables.bind(settings.table_prefix, settings.aws_region)
        tables.create_all(boto3.client("dynamodb", region_name=REGION), settings.table_prefix)
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=settings.jwt_secret_id, SecretString=os.urandom(32).hex()
        )
        yield


@pytest.fixture
def container(moto_aws: None, settings: Settings) -> Iterator[bootstrap.Container]:
    built = bootstrap.build(settings, hasher=fast_hasher())
    bootstrap.override(built)
    yield built
    bootstrap.override(None)
