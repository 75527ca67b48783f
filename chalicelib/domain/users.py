"""Users, roles and the rules of credentials and profiles."""

from __future__ import annotations

import enum
import zoneinfo
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from chalicelib.domain.model import Input

PASSWORD_MIN = 8
PASSWORD_MAX = 128


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _check_email(value: str) -> str:
    value = normalise_email(value)
    local, _, domain = value.partition("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
        raise ValueError("must be an email address")
    if any(ch.isspace() for ch in value):
        raise ValueError("must be an email address")
    return value


def _check_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone name, e.g. Europe/Paris") from None
    return value


Email = Annotated[
    str,
    StringConstraints(max_length=254),
    AfterValidator(_check_email),
    Field(json_schema_extra={"format": "email"}),
]
Password = Annotated[str, StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_check_timezone)]


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    role: Role
    timezone: str
    password_hash: str = field(repr=False)
    personal_project_id: str
    created_at: datetime
    updated_at: datetime
    version: int = 1
    # The calendar token's nonce (domain/calendars.py): the token derives from it and the
    # user id, and a rotation replaces it. None on accounts made before calendar feeds.
    calendar_nonce: str | None = field(default=None, repr=False)

    def with_changes(self, **changes: Any) -> User:
        return replace(self, **changes)


@dataclass(frozen=True)
class Session:
    """One login: the chain of refresh tokens it issued, of which only the newest is valid."""

    id: str
    user_id: str
    refresh_jti: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


# ---- request bodies -------------------------------------------------------------------------
# Passwords are never stripped: leading/trailing spaces are part of them.


class RegisterInput(Input):
    email: Email
    password: Annotated[Password, Field(json_schema_extra={"format": "password"})]
    name: Name


class LoginInput(Input):
    email: Annotated[str, StringConstraints(max_length=254)]
    password: Annotated[str, StringConstraints(max_length=PASSWORD_MAX * 4)]


class RefreshInput(Input):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class LogoutInput(Input):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None


class ProfileUpdate(Input):
    name: Name | None = None
    timezone: TimeZoneName | None = None
    password: Password | None = None
    current_password: Annotated[str, StringConstraints(max_length=PASSWORD_MAX * 4)] | None = None

    @field_validator("name", "timezone", "password")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # These fields are not optional on a user: absent keeps them, null is an error.
        if value is None:
            raise ValueError("may not be null")
        return value

    @model_validator(mode="after")
    def _password_needs_current(self) -> ProfileUpdate:
        if self.password is not None and self.current_password is None:
            raise ValueError("current_password is required to change the password")
        return self


class RoleUpdate(Input):
    role: Role
