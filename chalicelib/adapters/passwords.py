"""argon2id password hashing (argon2-cffi)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher as _Argon2


class Argon2PasswordHasher:
    """argon2id with argon2-cffi's RFC 9106 low-memory profile unless told otherwise.

    Tests pass cheaper parameters; production uses the defaults. argon2-cffi (and its compiled
    bindings) is loaded on the first hash or check: most requests carry a token, not a
    password, and the auth service that holds this hasher serves them all.
    """

    def __init__(
        self, time_cost: int = 3, memory_cost_kib: int = 64 * 1024, parallelism: int = 4
    ) -> None:
        self._parameters = (time_cost, memory_cost_kib, parallelism)

    @cached_property
    def _hasher(self) -> _Argon2:
        from argon2 import PasswordHasher, Type

        time_cost, memory_cost_kib, parallelism = self._parameters
        return PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism, type=Type.ID
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
