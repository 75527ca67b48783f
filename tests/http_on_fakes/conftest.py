"""The HTTP API on the in-memory adapters: the deployed wiring (bootstrap.wire) on
tests/fakes.py's InMemoryAdapters behind Chalice's test client. The same HTTP tests as the moto
tier, in a fraction of its time; the moto tier keeps what only DynamoDB shows (its calls,
conditions and transactions)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from tests.fakes import InMemoryAdapters, in_memory_settings
from tests.integration.conftest import Http


@pytest.fixture
def adapters() -> InMemoryAdapters:
    return InMemoryAdapters()


@pytest.fixture
def container(adapters: InMemoryAdapters) -> Iterator[bootstrap.Container]:
    built = bootstrap.wire(in_memory_settings(), adapters)
    bootstrap.override(built)
    yield built
    bootstrap.override(None)


@pytest.fixture
def http(container: bootstrap.Container) -> Iterator[Http]:
    with Client(app) as client:
        http = Http(client)
        http.register("first@example.com")
        yield http
