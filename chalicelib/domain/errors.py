"""The one hierarchy of domain errors. Only `chalicelib.api.errors` turns them into HTTP."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a use case raises on purpose."""

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class BadRequest(DomainError):
    """The request cannot be parsed (bad JSON, unparsable query parameter, foreign cursor)."""


class Unauthorized(DomainError):
    """No, expired, revoked or forged credentials."""


class Forbidden(DomainError):
    """The caller can see the resource but may not do this."""


class NotFound(DomainError):
    """No such resource, or the caller may not see it."""


class InsufficientScope(Forbidden):
    """An API token called a route outside its scopes (or one no API token may call)."""


class Conflict(DomainError):
    """A uniqueness or state conflict."""


class Gone(DomainError):
    """What the request names existed once but is no longer kept (e.g. an event past the
    event log's retention)."""


class PreconditionFailed(DomainError):
    """`If-Match` does not match the current version."""


class PayloadTooLarge(DomainError):
    """The body is over the size limit."""


class ValidationFailed(DomainError):
    """The input is well-formed but invalid; `details` is a list of {loc, message}."""


class IdempotencyKeyReused(ValidationFailed):
    """An `Idempotency-Key` used again with another body or on another route (422
    `idempotency_key_reused`; docs/idempotency.md)."""


class RateLimited(DomainError):
    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = max(1, retry_after_seconds)


class Unavailable(DomainError):
    """A dependency (AWS) is throttling or down; safe to retry later."""

    def __init__(
        self,
        message: str = "A dependency is unavailable, retry later.",
        retry_after_seconds: int = 2,
    ) -> None:
        super().__init__(message)
        self.retry_after_seconds = max(1, retry_after_seconds)


def validation_error(loc: list[str | int], message: str) -> ValidationFailed:
    return ValidationFailed(message, details=[{"loc": loc, "message": message}])


class StaleVersion(Exception):
    """Raised by repositories when a conditional write lost to a concurrent one."""


class EmailTaken(Exception):
    """Raised by the user repository when the email is already claimed."""


class FirstAdminTaken(Exception):
    """Raised when another account became the first admin concurrently."""


class MemberExists(Exception):
    """Raised by the project repository when the user is a member already."""


class NotAMember(Exception):
    """Raised by the project repository when the user is not a member."""


class TooManyTokens(Exception):
    """Raised by the API token repository when the user holds the most tokens allowed."""
