"""Suite-wide settings: keep Powertools quiet, and keep expensive fixtures on one xdist worker."""

from __future__ import annotations

import os

import pytest
from _pytest.nodeid import coerce_node_id

# Tests never reach AWS: no tracing daemon, no metrics on stdout.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

# Session fixtures that are slow to build (the CDK synth, the local stack subprocess) are built
# once per worker; grouping their tests sends each group to a single worker.
GROUPS = {"infra": "infra", "e2e": "e2e"}


@pytest.hookimpl(trylast=True)  # after the other conftests have added their groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        area = item.path.parent.name
        if area in GROUPS:
            item.add_marker(pytest.mark.xdist_group(GROUPS[area]))
    if getattr(config.option, "loadgroup", False):
        for item in items:
            _join_group(item)


def _join_group(item: pytest.Item) -> None:
    """xdist (3.8) tells the controller a test's group by renaming it `<nodeid>@<group>`
    through `item._nodeid`, which pytest 9 no longer reads (the id is `item._id`): without
    this, `--dist loadgroup` spreads every group over the workers, and each starts its own
    local stack and CDK synth."""
    names = sorted(
        {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
    )
    if names and "@" not in item.nodeid:
        item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(names)}")
