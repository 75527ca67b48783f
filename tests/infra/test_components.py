"""The tables construct and the packaging helpers on their own, without synthesizing the app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.tables import IndexSpec, TableSpec
from infrastructure.packaging import lambda_requirements

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

EVENTS = TableSpec(
    base_name="events",
    hash_key="pk",
    range_key="at",
    attribute_types={"pk": "S", "at": "N", "kind": "S"},
    indexes=(IndexSpec("by_kind", "kind", None, "KEYS_ONLY"),),
    ttl_attribute="expires_at",
    stream=True,
)


def _synth_tables(specs: list[TableSpec], *, retain: bool) -> Any:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infrastructure.components.data import Tables

    stack = cdk.Stack(cdk.App(), "Test")
    Tables(stack, "Tables", table_prefix="p-", specs=specs, retain=retain)
    return Template.from_stack(stack)


def test_a_streamed_spec_gets_a_stream_with_both_images_and_its_ttl() -> None:
    template = _synth_tables([EVENTS], retain=True)
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "p-events",
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "at", "AttributeType": "N"},
                {"AttributeName": "kind", "AttributeType": "S"},
            ],
            "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "by_kind",
                    "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
        },
    )


def test_dev_stacks_can_delete_their_tables() -> None:
    template = _synth_tables([EVENTS], retain=False)
    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Delete",
            "Properties": {"DeletionProtectionEnabled": False, "TableName": "p-events"},
        },
    )


def test_an_index_projection_the_specs_cannot_describe_is_refused() -> None:
    spec = TableSpec(**{**EVENTS.__dict__, "indexes": (IndexSpec("x", "kind", None, "INCLUDE"),)})
    with pytest.raises(ValueError, match="unsupported projection"):
        _synth_tables([spec], retain=True)


def test_lambda_requirements_leave_out_the_sdk_and_chalice(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# comment\nchalice==1.34.0\nboto3==1.0  # runtime\n"
        "pydantic==2.14.3\n\nPyJWT[crypto]==2.15.1\n"
    )
    assert [str(r) for r in lambda_requirements(requirements)] == [
        "pydantic==2.14.3",
        "PyJWT[crypto]==2.15.1",
    ]


def test_lambda_requirements_refuse_pip_options(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("-r other.txt\n")
    with pytest.raises(ValueError, match="options are not supported"):
        lambda_requirements(requirements)
