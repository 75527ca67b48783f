"""cdk-nag's AWS Solutions checks pass on the synthesized stack: no finding is left that is not
suppressed with its reason in `infrastructure/nag.py`."""

from __future__ import annotations

import json

import pytest

from infrastructure.nag import SUPPRESSIONS
from tests.infra.conftest import STAGE, CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _findings(cloud_assembly: CloudAssembly) -> list[str]:
    manifest = json.loads((cloud_assembly.outdir / "manifest.json").read_text())
    metadata = manifest["artifacts"][STAGE].get("metadata", {})
    return [
        f"{path}: {entry['data']}"
        for path, entries in metadata.items()
        for entry in entries
        if entry["type"] in ("aws:cdk:error", "aws:cdk:warning")
        and "AwsSolutions" in str(entry["data"])
    ]


def test_no_unsuppressed_aws_solutions_findings(cloud_assembly: CloudAssembly) -> None:
    assert _findings(cloud_assembly) == []


def test_the_checks_ran_and_suppressions_are_recorded(cloud_assembly: CloudAssembly) -> None:
    """Suppressed findings leave their reasons in the template's metadata: proof the pack ran
    (an empty findings list above could also mean no checks at all)."""
    recorded = json.dumps(cloud_assembly.template.get("Metadata", {}))
    assert "cdk_nag" in recorded
    for rule, reason, _ in SUPPRESSIONS:
        assert rule in recorded
        assert reason[:40] in recorded


def test_every_suppression_gives_a_reason() -> None:
    for rule, reason, _ in SUPPRESSIONS:
        assert rule.startswith("AwsSolutions-")
        assert len(reason) >= 60, rule
