"""Synthesizing leaves nothing in the repository that git would pick up."""

from __future__ import annotations

import subprocess

import pytest

from tests.infra.conftest import REPO_ROOT, CloudAssembly

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def test_synth_leaves_no_untracked_build_files(cloud_assembly: CloudAssembly) -> None:
    status = subprocess.run(
        [
            "git",
            "status",
            "--porcelain",
            "--untracked-files=all",
            "--",
            ".chalice",
            "infrastructure",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    generated = ("/.build/", "/cdk.out/", "chalice.out/", "/deployments/", "__pycache__")
    assert [line for line in status.splitlines() if any(g in line for g in generated)] == []
    assert (REPO_ROOT / "infrastructure" / ".build").is_dir()  # the cache exists, ignored
