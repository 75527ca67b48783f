"""Response bodies. Request bodies are the `Input` models of the domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from chalicelib.domain.users import Role, User

T = TypeVar("T")


class ErrorDetail(BaseModel):
    loc: list[str | int]
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorBody
    request_id: str


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    checks: dict[str, str]


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    role: Role
    timezone: str
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            timezone=user.timezone,
            created_at=user.created_at,
            updated_at=user.updated_at,
            version=user.version,
        )


class AuthOut(BaseModel):
    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Lifetime of the access token in seconds.")


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
