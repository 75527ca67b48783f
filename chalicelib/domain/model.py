"""Shared building blocks of the domain: ids, time, pages and the input-model base."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


def new_id() -> str:
    # Imported on first use: python-ulid reads its package metadata when imported.
    from ulid import ULID

    return str(ULID())


def utc(dt: datetime) -> datetime:
    """Normalise to an aware UTC datetime (naive values are taken as UTC)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def rfc3339(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return utc(dt).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True)
class PageRequest:
    limit: int = 25
    cursor: str | None = None


class Input(BaseModel):
    """Base of request bodies: unknown fields are rejected. Validators are built when a model
    is first used, not at import: a request or a function uses a few of them, and building
    all of them was a large part of a cold start (bench/coldstart.py)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
