"""Settings read from the environment (chalicelib/settings.py reads it itself, without
pydantic-settings): each field from TASKBEAT_<FIELD> in any case, `aws_region` from AWS_REGION,
a value given to the constructor first, strings turned into the fields' types, bad values
refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chalicelib.settings import Settings, environment_variable


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TASKBEAT_TABLE_PREFIX", "TASKBEAT_JWT_KEYS_CACHE_SECONDS", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)


def test_each_field_comes_from_its_variable_as_its_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKBEAT_TABLE_PREFIX", "prod-")
    monkeypatch.setenv("taskbeat_jwt_keys_cache_seconds", "60")  # any case
    monkeypatch.setenv("TASKBEAT_ALLOW_PRIVATE_WEBHOOKS", "true")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    settings = Settings()
    assert settings.table_prefix == "prod-"
    assert settings.jwt_keys_cache_seconds == 60
    assert settings.allow_private_webhooks is True
    assert settings.aws_region == "eu-west-1"


def test_a_value_given_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKBEAT_TABLE_PREFIX", "prod-")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    settings = Settings(table_prefix="test-", aws_region="us-west-2")
    assert (settings.table_prefix, settings.aws_region) == ("test-", "us-west-2")


def test_defaults_without_variables() -> None:
    settings = Settings()
    assert (settings.table_prefix, settings.aws_region) == ("taskbeat-local-", "us-east-1")


def test_a_bad_value_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKBEAT_JWT_KEYS_CACHE_SECONDS", "a while")
    with pytest.raises(ValidationError):
        Settings()


def test_the_variable_of_each_field() -> None:
    assert environment_variable("table_prefix") == "TASKBEAT_TABLE_PREFIX"
    assert environment_variable("aws_region") == "AWS_REGION"
