"""Helpers shared by use cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from chalicelib.domain.errors import Conflict, NotFound, PreconditionFailed, StaleVersion


class HasVersion(Protocol):
    @property
    def version(self) -> int: ...


T = TypeVar("T", bound=HasVersion)

MAX_WRITE_ATTEMPTS = 3


R = TypeVar("R")


def with_version_retries(what: str, expected_version: int | None, attempt: Callable[[], R]) -> R:
    """Run `attempt` (read, check, write conditionally on the version read) until its write
    is not stale. With `expected_version` (`If-Match`) a stale write is 412 at once; without
    it, a lost race is retried against the newer version (the write "applies to the current
    version"), a few times at most."""
    for _ in range(MAX_WRITE_ATTEMPTS):
        try:
            return attempt()
        except StaleVersion:
            if expected_version is not None:
                raise PreconditionFailed(f"{what} was changed concurrently") from None
    raise Conflict(f"{what} is being changed concurrently; retry")


def require_version(what: str, current: int, expected: int | None) -> None:
    """`If-Match`: 412 unless the item is at the version the caller read."""
    if expected is not None and current != expected:
        raise PreconditionFailed(f"{what} is at version {current}, not {expected}")


def update_versioned(
    load: Callable[[], T | None],
    change: Callable[[T], T],
    save: Callable[[T], T],
    expected_version: int | None,
    what: str = "resource",
) -> T:
    """Read, change and conditionally write one item, honouring `If-Match`."""

    def attempt() -> T:
        current = load()
        if current is None:
            raise NotFound(f"{what} not found")
        require_version(what, current.version, expected_version)
        return save(change(current))

    return with_version_retries(what, expected_version, attempt)
