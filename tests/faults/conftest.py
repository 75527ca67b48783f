"""Fault injection (issue 8). In-process tests run the app on moto with the fixtures of
`tests/integration`; tests that need the running stack (`@pytest.mark.usefixtures("stack")`
or a `stack` argument) share one `python -m local` subprocess, kept on one xdist worker."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.nodeid import coerce_node_id

from local import moto_patches
from local.testing import StackProcess, free_port
from tests.integration.conftest import aws_env, container, moto_aws, settings

__all__ = ["aws_env", "container", "moto_aws", "settings"]  # fixtures, shared

HERE = Path(__file__).parent
STACK_GROUP = "faults-local-stack"


@pytest.hookimpl(trylast=True)  # after xdist's own hook (see below)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist (`--dist loadgroup`) every test of the running stack goes to one worker, so
    the session starts one stack; the in-process tests spread over the others.

    xdist 3.8 tells the controller a test's group by renaming it `<nodeid>@<group>` through
    `item._nodeid`, which pytest 9 no longer reads (a node id is `item._id` now): its groups
    have no effect. Until xdist follows, the tests of this directory carry the suffix in `_id`.
    """
    for item in items:
        if HERE not in item.path.parents or "stack" not in getattr(item, "fixturenames", ()):
            continue
        item.add_marker(pytest.mark.xdist_group(STACK_GROUP))
        if getattr(config.option, "loadgroup", False) and "@" not in item.nodeid:
            item._id = coerce_node_id(f"{item.nodeid}@{STACK_GROUP}")


@pytest.fixture
def serialized_moto(moto_aws: None) -> Iterator[None]:
    """moto's DynamoDB as the local stack runs it (`local.moto_patches`): writes serialized (as
    atomic as DynamoDB's, for the concurrent tests), transactions that copy only the items they
    touch, and item answers without botocore's shape walker (fast enough for long runs)."""
    moto_patches.install()
    try:
        yield
    finally:
        moto_patches.uninstall()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """The local stack as `make run` starts it (see tests/e2e/conftest.py)."""
    running = StackProcess(
        tmp_path_factory.mktemp("faults-stack") / "stack.log",
        http_port=free_port(),
        ws_port=free_port(),
    )
    try:
        running.start(timeout=60)
        yield running
    finally:
        if running.process is not None:
            exit_code = running.stop(signal.SIGINT)
            assert exit_code == 0, running.output()
