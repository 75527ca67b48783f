"""The local stack as `make run` starts it: one `python -m local` subprocess for the session,
talked to over real HTTP and WebSocket, stopped with SIGINT and required to exit cleanly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local.testing import StackProcess, register_user, running_stack

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Under xdist, keep every e2e test on one worker, so the session starts one stack.
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("local-stack-e2e"))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """The running stack: `.api` (http://127.0.0.1:PORT/api/v1), `.ws` (ws://127.0.0.1:PORT),
    `.docs`, and `.output()` for what it printed."""
    with running_stack(tmp_path_factory.mktemp("local-stack")) as running:
        yield running
    output = running.output()
    assert "Traceback" not in output.partition("Stopping...")[2], output


@pytest.fixture
def new_user(stack: StackProcess) -> Callable[..., dict[str, Any]]:
    """Registers a user over HTTP; returns the 201 body (`user`, `access_token`, ...)."""

    def register(**fields: Any) -> dict[str, Any]:
        return register_user(stack.api, **fields)

    return register
