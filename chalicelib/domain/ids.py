"""Scoped ids: the id of an item that lives in one project names that project too.

Tasks, executions, workflows, workflow runs, templates and rules have ids made of the item's
own ULID followed by its project's (52 characters). They stay opaque and time-sortable, and a
request about one item reads the item, its project and the caller's membership in one round
trip (see docs/data-model.md). Items never move between projects. On the wire and in storage a
scoped id is that string; `ScopedId` is the string parsed, in this one place.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

ULID_LENGTH = 26
# Crockford's base 32 as ULIDs write it (upper case; no I, L, O, U).
_CROCKFORD = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
# A ULID is 128 bits in 26 characters of 5 bits: its first character holds 3 (0 to 7).
_FIRST = frozenset("01234567")


def _is_ulid(value: str) -> bool:
    return len(value) == ULID_LENGTH and value[0] in _FIRST and set(value) <= _CROCKFORD


@dataclass(frozen=True, slots=True)
class ScopedId:
    item: str  # the item's own ULID
    project_id: str  # the ULID of the project it lives in

    def __post_init__(self) -> None:
        if not (_is_ulid(self.item) and _is_ulid(self.project_id)):
            raise ValueError(f"not a scoped id: {self.item!r} + {self.project_id!r}")

    @classmethod
    def new(cls, project_id: str) -> ScopedId:
        """A fresh id for an item of the project."""
        from ulid import ULID  # as domain.model.new_id: on first use

        return cls(str(ULID()), project_id)

    @classmethod
    def parse(cls, value: str) -> ScopedId | None:
        """The scoped id `value` writes, or None if it is not one (it then names nothing)."""
        return _parse(value)

    def __str__(self) -> str:
        return self.item + self.project_id


# A request parses its id several times (the route's check, its first reads, the service):
# the answer for a string never changes, and a hit costs a tenth of a parse (bench/warm.py).
@functools.lru_cache(maxsize=4096)
def _parse(value: str) -> ScopedId | None:
    if len(value) != 2 * ULID_LENGTH:
        return None
    try:
        return ScopedId(value[:ULID_LENGTH], value[ULID_LENGTH:])
    except ValueError:
        return None


def project_of(scoped_id: str) -> str | None:
    """The project a scoped id names, or None if it is not a scoped id."""
    parsed = ScopedId.parse(scoped_id)
    return parsed.project_id if parsed else None
