"""cdk-nag's AWS Solutions checks pass on the synthesized stack: no finding is left that is not
suppressed with its reason in `infrastructure/nag.py`."""

from __future__ import annotations

import json
import re

import pytest

from infrastructure.nag import RESOURCE_SUPPRESSIONS, SUPPRESSIONS
from tests.infra.conftest import DATA_STAGE, STAGE, CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _findings(cloud_assembly: CloudAssembly) -> list[str]:
    manifest = json.loads((cloud_assembly.outdir / "manifest.json").read_text())
    return [
        f"{path}: {entry['data']}"
        for artifact in (STAGE, DATA_STAGE)
        for path, entries in manifest["artifacts"][artifact].get("metadata", {}).items()
        for entry in entries
        if entry["type"] in ("aws:cdk:error", "aws:cdk:warning")
        and "AwsSolutions" in str(entry["data"])
    ]


def test_no_unsuppressed_aws_solutions_findings(cloud_assembly: CloudAssembly) -> None:
    assert _findings(cloud_assembly) == []


def test_the_checks_ran_and_suppressions_are_recorded(cloud_assembly: CloudAssembly) -> None:
    """Suppressed findings leave their reasons in the template's metadata: proof the pack ran
    (an empty findings list above could also mean no checks at all)."""
    for artifact in (STAGE, DATA_STAGE):
        recorded = json.dumps(cloud_assembly.stacks[artifact].get("Metadata", {}))
        assert "cdk_nag" in recorded, artifact
        for rule, reason, _ in SUPPRESSIONS:
            assert rule in recorded
            assert reason[:40] in recorded


def test_resource_suppressions_sit_on_their_resources_only(cloud_assembly: CloudAssembly) -> None:
    """A rule accepted for one resource stays a finding for every other one."""
    resources = cloud_assembly.template["Resources"]  # both stacks
    for path, rule, reason in RESOURCE_SUPPRESSIONS:
        construct_id = re.sub(r"[^A-Za-z0-9]", "", path)
        suppressed = [
            logical_id
            for logical_id, resource in resources.items()
            if reason[:40] in json.dumps(resource.get("Metadata", {}))
        ]
        assert suppressed, (rule, path)
        assert all(s.startswith(construct_id) for s in suppressed), (rule, path, suppressed)


def test_every_suppression_gives_a_reason() -> None:
    for rule, reason in [(r, why) for r, why, _ in SUPPRESSIONS] + [
        (r, why) for _, r, why in RESOURCE_SUPPRESSIONS
    ]:
        assert rule.startswith("AwsSolutions-")
        assert len(reason) >= 60, rule
