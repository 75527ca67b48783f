"""API tokens: long-lived credentials for scripts, limited to scopes, stored as a hash.

A token is `tb_<token id><personal project id>_<secret>`:
- the token id (52 characters) is the token's own ULID followed by its user's id: the request's
  first reads (which name the caller) and the token's item come back in the one BatchGetItem
  that reads a JWT's session today, since the user is known before anything is read;
- the personal project id (26) is there for the same reason (routes default to it); both ids
  are checked against the stored token, so a forged one finds nothing;
- the secret is 32 random bytes (256 bits), URL-safe base64: only its SHA-256 is stored.

Why SHA-256 and not argon2 (as passwords): a slow, salted hash is there to make guessing a
low-entropy human password expensive. A 256-bit random secret cannot be guessed at any hash
speed, so the slow hash would only cost every request ~50 ms and a Lambda's memory for no
gain; a salt guards against precomputed tables, which cannot exist for random 256-bit
inputs. A plain SHA-256 of the secret is what stolen-table resistance needs here (GitHub
and others store their tokens the same way), and needs no key that could be lost or rotated.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from chalicelib.domain.ids import ULID_LENGTH, ScopedId
from chalicelib.domain.model import Input

PREFIX = "tb_"
SECRET_BYTES = 32
# How many tokens one user may hold (revoke one to make another): a leak through a script that
# mints tokens in a loop stays bounded, and the list stays one page of the dashboard.
MAX_TOKENS_PER_USER = 50
# `prefix` in answers: the token's first characters, enough to tell tokens apart in a list.
SHOWN_PREFIX_LENGTH = len(PREFIX) + 12
_IDS_LENGTH = 3 * ULID_LENGTH


class Scope(enum.StrEnum):
    READ = "read"  # every GET
    WRITE = "write"  # create, change and delete
    RUN = "run"  # run tasks and workflows, cancel and retry runs


ALL_SCOPES: frozenset[Scope] = frozenset(Scope)

TokenName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class TokenCreate(Input):
    name: TokenName = Field(description="What the token is for (1..100 characters).")
    scopes: list[Scope] = Field(
        min_length=1,
        max_length=len(Scope),
        description="What the token may do: `read` (every GET), `write` (create, change, "
        "delete), `run` (run tasks and workflows, cancel and retry runs). No duplicates.",
    )
    expires_at: datetime | None = Field(
        None, description="When the token stops working (in the future); none: it never expires."
    )

    @field_validator("scopes")
    @classmethod
    def _unique(cls, value: list[Scope]) -> list[Scope]:
        if len(set(value)) != len(value):
            raise ValueError("scopes may not repeat")
        return value

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a time zone (e.g. 2030-01-01T00:00:00Z)")
        return value


@dataclass(frozen=True)
class ApiToken:
    """A stored token: everything but its secret (`secret_hash` is the secret's SHA-256)."""

    id: str  # the token's ULID followed by its user's id
    user_id: str
    personal_project_id: str
    name: str
    scopes: frozenset[Scope]
    prefix: str
    secret_hash: str = field(repr=False)
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def local_id(self) -> str:
        """The token's own ULID (its sort key under its user)."""
        return self.id[:ULID_LENGTH]

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def with_changes(self, **changes: Any) -> ApiToken:
        return replace(self, **changes)


@dataclass(frozen=True)
class PresentedToken:
    """A bearer `tb_...` string taken apart (nothing checked against storage yet)."""

    token_id: str
    user_id: str
    personal_project_id: str
    secret: str = field(repr=False)


def is_api_token(bearer: str | None) -> bool:
    return bearer is not None and bearer.startswith(PREFIX)


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    """The stored form of a secret (see the module's docstring for why SHA-256)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of the presented secret's hash with the stored one."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def format_token(token_id: str, personal_project_id: str, secret: str) -> str:
    return f"{PREFIX}{token_id}{personal_project_id}_{secret}"


def parse_token(bearer: str) -> PresentedToken | None:
    """The parts of a `tb_` token, or None if it is not shaped like one."""
    body = bearer[len(PREFIX) :]
    ids, sep, secret = body[:_IDS_LENGTH], body[_IDS_LENGTH:][:1], body[_IDS_LENGTH + 1 :]
    if sep != "_" or not (40 <= len(secret) <= 64):
        return None
    # Two ULIDs make a scoped id: the shape check of the token id, then of the project's.
    token_id = ScopedId.parse(ids[: 2 * ULID_LENGTH])
    project = ScopedId.parse(ids[ULID_LENGTH:])
    if token_id is None or project is None:
        return None
    return PresentedToken(str(token_id), token_id.project_id, project.project_id, secret)


def new_token_id(user_id: str) -> str:
    """A fresh token id of the user: a ULID (time-ordered) followed by the user's id."""
    return str(ScopedId.new(user_id))


def user_of(token_id: str) -> str | None:
    """The user a token id names, or None if it is not a token id."""
    parsed = ScopedId.parse(token_id)
    return parsed.project_id if parsed else None
