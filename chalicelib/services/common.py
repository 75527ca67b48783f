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


def update_versioned(
    load: Callable[[], T | None],
    change: Callable[[T], T],
    save: Callable[[T], T],
    expected_version: int | None,
    what: str = "resource",
) -> T:
    """Read, change and conditionally write one item, honouring `If-Match`.

    With `expected_version` a stale version is 412; without it, a lost race is retried against
    the newer version (the write "applies to the current version"), a few times at most.
    """
    for _ in range(MAX_WRITE_ATTEMPTS):
        current = load()
        if current is None:
            raise NotFound(f"{what} not found")
        version = current.version
        if expected_version is not None and version != expected_version:
            raise PreconditionFailed(f"{what} is at version {version}, not {expected_version}")
        try:
            return save(change(current))
        except StaleVersion:
            if expected_version is not None:
                raise PreconditionFailed(f"{what} was changed concurrently") from None
    raise Conflict(f"{what} is being changed concurrently; retry")
