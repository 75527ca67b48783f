"""cfn-lint on each synthesized template, as deployed: no errors (warnings shown, not failed)."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import DATA_STAGE, FIGURES, STAGE, CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


@pytest.mark.parametrize("artifact", [STAGE, DATA_STAGE])
def test_template_has_no_cfn_lint_errors(cloud_assembly: CloudAssembly, artifact: str) -> None:
    from cfnlint.api import ManualArgs, lint

    matches = lint(
        json.dumps(cloud_assembly.stacks[artifact]),
        config=ManualArgs(regions=["us-east-1", "eu-west-1"]),
    )
    for match in matches:
        print(match)  # shown with -rA or -s; warnings are worth a look
    FIGURES[f"cfn-lint {artifact}"] = (
        f"{len(matches)} findings ({', '.join(sorted({m.rule.id for m in matches})) or 'none'})"
    )
    errors = [str(match) for match in matches if match.rule.id.startswith("E")]
    assert errors == []
