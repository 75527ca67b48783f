from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from chalicelib.services.auth import AuthService, LoginPolicy
from chalicelib.services.tokens import TokenCodec
from chalicelib.services.users import UserService
from tests.fakes import (
    FakeClock,
    FakeSigningKeys,
    InMemoryLoginAttempts,
    InMemorySessionRepository,
    InMemoryUserRepository,
    fast_hasher,
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
    clock = FakeClock()
    sessions = InMemorySessionRepository()
    users_repo = InMemoryUserRepository(sessions)
    failures = InMemoryLoginAttempts(users_repo)
    hasher = fast_hasher()
    tokens = make_tokens(clock)
    auth = AuthService(users_repo, sessions, failures, hasher, tokens, clock, LoginPolicy())
    return World(
        clock,
        users_repo,
        sessions,
        failures,
        tokens,
        auth,
        UserService(users_repo, sessions, hasher, clock),
    )
