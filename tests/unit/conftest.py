from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from chalicelib import bootstrap
from chalicelib.services.auth import AuthService
from chalicelib.services.tokens import TokenCodec
from chalicelib.services.users import UserService
from tests.fakes import (
    FakeClock,
    FakeSigningKeys,
    InMemoryAdapters,
    InMemoryLoginAttempts,
    InMemorySessionRepository,
    InMemoryUserRepository,
    in_memory_settings,
)

SIGNING_KEY = "unit-test-signing-key-that-is-long-enough-for-hs256"


@dataclass
class World:
    clock: FakeClock
    users_repo: InMemoryUserRepository
    sessions: InMemorySessionRepository
    failures: InMemoryLoginAttempts
    tokens: TokenCodec
    auth: AuthService
    users: UserService


def make_tokens(clock: FakeClock, keys: FakeSigningKeys | None = None) -> TokenCodec:
    return TokenCodec(
        keys=keys or FakeSigningKeys(SIGNING_KEY),
        clock=clock,
        issuer="taskbeat",
        audience="taskbeat-api",
        access_ttl=timedelta(minutes=15),
        refresh_ttl=timedelta(days=30),
    )


# The token codec's, for tests/unit/test_tokens.py and test_verified_tokens.py.
@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keys() -> FakeSigningKeys:
    return FakeSigningKeys()


@pytest.fixture
def codec(clock: FakeClock, keys: FakeSigningKeys) -> TokenCodec:
    return make_tokens(clock, keys)


@pytest.fixture
def world() -> World:
    """The auth and user services as the deployed container wires them (bootstrap.wire), on
    the in-memory adapters."""
    clock = FakeClock()
    adapters = InMemoryAdapters(clock)
    container = bootstrap.wire(in_memory_settings(), adapters)
    return World(
        clock,
        adapters.users,
        adapters.sessions,
        adapters.login_attempts,
        container.auth.tokens,
        container.auth,
        container.users,
    )
