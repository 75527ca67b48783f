"""Accounts, sessions, logins and the keys and hashes that guard them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from chalicelib.ports.reads import PrefetchKey

# The domain's types are for annotations only (see the package's docstring).
if TYPE_CHECKING:
    from chalicelib.domain.api_tokens import ApiToken
    from chalicelib.domain.model import Page, PageRequest
    from chalicelib.domain.projects import Membership, Project
    from chalicelib.domain.users import Session, User


@dataclass(frozen=True)
class SigningKey:
    """One version of the JWT signing key: `kid` names it in token headers (never the key)."""

    kid: str
    secret: str = field(repr=False)


class SigningKeys(Protocol):
    """The JWT signing keys: the one to sign with, and the ones tokens may still carry."""

    def current(self) -> SigningKey: ...

    def find(self, kid: str) -> SigningKey | None:
        """The key named `kid` if it still verifies tokens (current or previous), else None."""
        ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class UserRepository(Protocol):
    def create_account(
        self,
        user: User,
        personal_project: Project,
        owner: Membership,
        session: Session,
        *,
        first_admin: bool,
        calendar_lookup: str | None = None,
    ) -> None:
        """Write the user, its email claim, personal project, membership and first session at once
        (and, with `calendar_lookup`, the lookup item of the user's calendar token).

        Raises `EmailTaken` if the email is claimed, `FirstAdminTaken` if `first_admin` was asked
        for but another account got there first. Nothing is written in either case.
        """
        ...

    def first_admin_exists(self) -> bool: ...

    def get(self, user_id: str) -> User | None: ...

    def get_by_email(self, email: str) -> User | None: ...

    def save(self, user: User) -> User:
        """Write `user` if the stored version is still `user.version`; return it with version + 1.

        Raises `StaleVersion` otherwise.
        """
        ...

    def list_by_email_prefix(self, prefix: str, page: PageRequest) -> Page[User]: ...


class SessionRepository(Protocol):
    def create(self, session: Session) -> None: ...

    def get(self, session_id: str, prefetch: Sequence[PrefetchKey] = ()) -> Session | None:
        """The session; `prefetch` items come back in the same round trip for later reads."""
        ...

    def rotate(self, session_id: str, presented_jti: str, new_jti: str) -> bool:
        """Swap the session's refresh jti if `presented_jti` is still the current one.

        False (and nothing written) if it is not, or if the session is revoked or gone.
        """
        ...

    def revoke(self, session_id: str, at: datetime) -> None: ...

    def revoke_all_for_user(
        self, user_id: str, at: datetime, *, keep: str | None = None
    ) -> None: ...


@dataclass(frozen=True)
class LoginState:
    """What a login needs first, read in one round trip: who owns the email, and its failures."""

    user_id: str | None
    failures: list[datetime]  # oldest first


class LoginAttempts(Protocol):
    def lookup(self, email: str) -> LoginState: ...

    def record_failure(self, email: str, at: datetime, keep_since: datetime) -> None:
        """Add a failure; failures before `keep_since` may be dropped."""
        ...

    def clear(self, email: str) -> None: ...


class EmailDirectory(Protocol):
    def user_ids(self, emails: Sequence[str]) -> dict[str, str]:
        """{email: user id} of the (normalised) addresses that belong to an account."""
        ...


class ApiTokenRepository(Protocol):
    """API tokens, keyed by user and token (see chalicelib/domain/api_tokens.py)."""

    def create(self, token: ApiToken, max_per_user: int) -> None:
        """Store `token` unless its user holds `max_per_user` tokens already (`TooManyTokens`,
        nothing written). The count and the token are written at once."""
        ...

    def lookup(
        self, token_id: str, user_id: str, prefetch: Sequence[PrefetchKey] = ()
    ) -> tuple[ApiToken | None, User | None]:
        """The token and its user, read with the `prefetch` items in one round trip (as
        `SessionRepository.get`). The user stays prefetched for the request's own read."""
        ...

    def get(self, token_id: str) -> ApiToken | None: ...

    def list_for_user(self, user_id: str, page: PageRequest) -> Page[ApiToken]:
        """The user's tokens, newest first."""
        ...

    def delete(self, token_id: str) -> bool:
        """Delete the token (and count it out); False if there was none."""
        ...

    def touch(self, token_id: str, minute: datetime) -> None:
        """Set `last_used_at` to `minute` if the stored one is older (or unset) and the token
        still exists; otherwise write nothing."""
        ...
