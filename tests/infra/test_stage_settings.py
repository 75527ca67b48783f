"""A stage's deploy settings from CDK context (infrastructure/settings.py)."""

from __future__ import annotations

from typing import Any

import pytest

from infrastructure.settings import StageSettings

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _settings(context: dict[str, Any]) -> StageSettings:
    import aws_cdk as cdk

    return StageSettings.from_context(cdk.App(context=context).node)


def test_defaults_keep_the_data() -> None:
    settings = _settings({})
    assert settings == StageSettings(stage="dev", destroy_data=False, alarm_email=None)
    assert settings.retain_data is True


def test_the_stage_object_then_flat_keys_win() -> None:
    stages = {
        "prod": {"alarm_email": "ops@example.com"},
        "scratch": {"destroy_data": True, "alarm_email": "dev@example.com"},
    }
    assert _settings({"stage": "prod", "stages": stages}) == StageSettings(
        stage="prod", alarm_email="ops@example.com"
    )
    scratch = _settings({"stage": "scratch", "stages": stages})
    assert scratch.retain_data is False
    assert scratch.alarm_email == "dev@example.com"
    # `-c` passes strings.
    flat = _settings(
        {"stage": "scratch", "stages": stages, "destroy_data": "false", "alarm_email": "a@b.io"}
    )
    assert flat == StageSettings(stage="scratch", destroy_data=False, alarm_email="a@b.io")
    assert _settings({"stage": "other", "stages": stages}) == StageSettings(stage="other")


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"stage": "Prod"}, "stage 'Prod'"),
        ({"stage": "a" * 21}, "1-20 lowercase"),
        ({"stages": {"dev": {"retain": True}}}, "unknown retain"),
        ({"stages": ["dev"]}, "must map stage names"),
        ({"alarm_email": "ops"}, "not an email address"),
    ],
)
def test_bad_settings_stop_the_synth(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _settings(context)
