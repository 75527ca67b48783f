"""Suite-wide settings: keep Powertools quiet, and keep expensive fixtures on one xdist worker."""

from __future__ import annotations

import os

import pytest

# Tests never reach AWS: no tracing daemon, no metrics on stdout.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

# Session fixtures that are slow to build (the CDK synth, the local stack subprocess) are built
# once per worker; grouping their tests sends each group to a single worker.
GROUPS = {"infra": "infra", "e2e": "e2e"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        area = item.path.parent.name
        if area in GROUPS:
            item.add_marker(pytest.mark.xdist_group(GROUPS[area]))
