"""Browser tests start their own local stack: under xdist they stay on one worker."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent == HERE and item.path.name == "test_dashboard.py":
            item.add_marker(pytest.mark.xdist_group("browser"))
