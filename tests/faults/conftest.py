"""Fault injection (issue 8). In-process tests run the app on moto with the fixtures of
`tests/integration`; tests that need the running stack (`@pytest.mark.usefixtures("stack")`
or a `stack` argument) share one `python -m local` subprocess, kept on one xdist worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local import moto_patches
from local.testing import StackProcess, running_stack
from tests.integration.conftest import aws_env, container, moto_aws, settings

__all__ = ["aws_env", "container", "moto_aws", "settings"]  # fixtures, shared

HERE = Path(__file__).parent
STACK_GROUP = "faults-local-stack"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of the running stack goes to one xdist worker (tests/conftest.py makes the
    group count), so the session starts one stack; the in-process tests spread over the rest."""
    for item in items:
        if HERE in item.path.parents and "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(STACK_GROUP))


@pytest.fixture
def serialized_moto(moto_aws: None) -> Iterator[None]:
    """moto's DynamoDB with the local stack's thread-safety patches (`local.moto_patches`):
    writes serialized (as atomic as DynamoDB's, for the concurrent tests) and transactions that
    write nothing when a condition fails; none of the patches that only buy speed, so the rest
    is moto's own behaviour."""
    moto_patches.install(speedups=False)
    try:
        yield
    finally:
        moto_patches.uninstall()


@pytest.fixture
def whole_requests_serialized(serialized_moto: None) -> Iterator[None]:
    """moto answers a read from the stored item itself, after its backend call: an update on
    another thread changes that item in place meanwhile (`dictionary changed size during
    iteration`). DynamoDB reads are atomic per item, so here each request runs whole, one at a
    time; our calls still interleave between requests, which is what this test is about."""
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action
    lock = threading.RLock()

    def one_at_a_time(self: Any) -> Any:
        with lock:
            return original(self)

    DynamoHandler.call_action = one_at_a_time  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoHandler.call_action = original  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """The local stack as `make run` starts it (see tests/e2e/conftest.py)."""
    with running_stack(tmp_path_factory.mktemp("faults-stack")) as running:
        yield running
