"""Synthesizes the CDK app once per session, the way `cdk synth` does, into a temporary dir.

The app has two stacks per stage, the data stack (stateful) and the service stack (stateless).
Most tests ask questions across both ("may this function's role read that table?"), so
`cloud_assembly.template` is one view of the two: the service stack with the data stack's
resources added and each `Fn::ImportValue` replaced by the expression the data stack exports,
as CloudFormation would resolve it. `cloud_assembly.stacks` holds the templates as deployed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGE = "citest"
STACK_NAME = f"taskbeat-{STAGE}"
DATA_STAGE = f"{STAGE}-data"  # the data stack's artifact (construct) id
DATA_STACK_NAME = f"taskbeat-{STAGE}-data"
TABLE_PREFIX = f"{STACK_NAME}-"

# What Step Functions needs to deliver a state machine's logs and traces: IAM accepts only "*"
# for these actions.
LOG_DELIVERY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
}
TRACING_ACTIONS = {
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
}

# Figures shown at the end of the run (see pytest_terminal_summary).
FIGURES: dict[str, str] = {}


@dataclass(frozen=True)
class CloudAssembly:
    outdir: Path
    # Templates as synthesized, by artifact id (STAGE, DATA_STAGE).
    stacks: dict[str, dict[str, Any]]
    # The two as one (see the module's docstring).
    template: dict[str, Any]

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type
        }

    def functions(self) -> dict[str, dict[str, Any]]:
        """The app's functions (not aws-cdk-lib's own deploy-time handlers, `Custom*`)."""
        return {
            **self.resources("AWS::Serverless::Function"),
            **{
                logical_id: function
                for logical_id, function in self.resources("AWS::Lambda::Function").items()
                if not logical_id.startswith("Custom")
            },
        }

    def file_asset(self, object_key: str) -> Path:
        """The staged file of the asset uploaded under `object_key`."""
        manifest = json.loads((self.outdir / f"{STAGE}.assets.json").read_text())
        for asset in manifest["files"].values():
            for destination in asset["destinations"].values():
                if destination["objectKey"] == object_key:
                    return self.outdir / str(asset["source"]["path"])
        raise LookupError(f"no file asset uploaded as {object_key}")


SYNTH_TIMEOUT = 300


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The first infra test of a worker waits for the synth in its setup, which pytest-timeout
    # counts against the test: give them the synth's own limit (a loaded machine is slow).
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.timeout(SYNTH_TIMEOUT + 60))


@pytest.fixture(scope="session")
def cloud_assembly(tmp_path_factory: pytest.TempPathFactory) -> CloudAssembly:
    outdir = tmp_path_factory.mktemp("cdk.out")
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps({"stage": STAGE}),
        "AWS_DEFAULT_REGION": "us-east-1",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO_ROOT / "infrastructure",
        env=env,
        capture_output=True,
        text=True,
        timeout=SYNTH_TIMEOUT,
        check=False,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        pytest.fail(f"synth failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    FIGURES["synth time"] = f"{elapsed:.1f} s"
    stacks = {
        artifact: json.loads((outdir / f"{artifact}.template.json").read_text())
        for artifact in (STAGE, DATA_STAGE)
    }
    return CloudAssembly(outdir=outdir, stacks=stacks, template=combined(stacks))


def combined(stacks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The service stack's template with the data stack's resources and its imports resolved."""
    service, data = stacks[STAGE], stacks[DATA_STAGE]
    exports = {
        output["Export"]["Name"]: output["Value"]
        for output in data.get("Outputs", {}).values()
        if "Export" in output
    }

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Fn::ImportValue"}:
                return exports[node["Fn::ImportValue"]]
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    overlap = set(service["Resources"]) & set(data["Resources"])
    assert not overlap, f"logical ids in both stacks: {sorted(overlap)}"
    view = resolve(service)
    view["Resources"] = {**data["Resources"], **view["Resources"]}
    return dict(view)


@pytest.fixture(scope="session")
def template(cloud_assembly: CloudAssembly) -> Any:
    """The template as `aws_cdk.assertions.Template` (starts the jsii runtime on first use)."""
    from aws_cdk.assertions import Template

    return Template.from_json(cloud_assembly.template)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("infrastructure figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
