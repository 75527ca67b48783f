"""The stage's two stacks: state in the data stack only, and no reference from it to the other.

The service stack must be safe to destroy and re-create (nothing in it holds data), and the
data stack must deploy on its own (it imports nothing, so it never waits on the service).
"""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import DATA_STACK_NAME, DATA_STAGE, STACK_NAME, STAGE, CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

# Resource types that hold data a deploy must not lose.
STATEFUL_TYPES = {
    "AWS::DynamoDB::Table",
    "AWS::DynamoDB::GlobalTable",
    "AWS::SecretsManager::Secret",
}


def _types(template: dict[str, object]) -> set[str]:
    resources = template["Resources"]
    assert isinstance(resources, dict)
    return {resource["Type"] for resource in resources.values()}


def test_state_lives_in_the_data_stack_only(cloud_assembly: CloudAssembly) -> None:
    assert _types(cloud_assembly.stacks[DATA_STAGE]) == {
        "AWS::DynamoDB::Table",
        "AWS::SecretsManager::Secret",
    }
    assert not _types(cloud_assembly.stacks[STAGE]) & STATEFUL_TYPES


def test_the_data_stack_refers_to_nothing_of_the_service_stack(
    cloud_assembly: CloudAssembly,
) -> None:
    data = json.dumps(cloud_assembly.stacks[DATA_STAGE])
    assert "Fn::ImportValue" not in data
    manifest = json.loads((cloud_assembly.outdir / "manifest.json").read_text())
    assert manifest["artifacts"][STAGE]["dependencies"].count(DATA_STAGE) == 1
    assert STAGE not in manifest["artifacts"][DATA_STAGE].get("dependencies", [])


def test_the_service_stack_uses_the_data_through_exports(cloud_assembly: CloudAssembly) -> None:
    """Every export is imported (none left dangling), and CloudFormation then refuses to drop a
    table or secret the service still uses (docs/operations.md: removing one)."""
    exports = {
        output["Export"]["Name"]
        for output in cloud_assembly.stacks[DATA_STAGE]["Outputs"].values()
        if "Export" in output
    }
    service = json.dumps(cloud_assembly.stacks[STAGE])
    assert exports
    assert all(f'{{"Fn::ImportValue": "{name}"}}' in service for name in exports)
    assert all(name.startswith(f"{DATA_STACK_NAME}:") for name in exports)


def test_stacks_are_named_after_the_stage_and_the_data_one_is_protected(
    cloud_assembly: CloudAssembly,
) -> None:
    manifest = json.loads((cloud_assembly.outdir / "manifest.json").read_text())
    service = manifest["artifacts"][STAGE]["properties"]
    data = manifest["artifacts"][DATA_STAGE]["properties"]
    assert service["stackName"] == STACK_NAME
    assert data["stackName"] == DATA_STACK_NAME
    assert data["terminationProtection"] is True
    assert not service.get("terminationProtection", False)
