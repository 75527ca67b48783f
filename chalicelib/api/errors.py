"""The one table of domain error -> HTTP status and error code, and the error body."""

from __future__ import annotations

import json
from typing import Any

from chalice.app import Response

from chalicelib.domain import errors

STATUS_AND_CODE: dict[type[errors.DomainError], tuple[int, str]] = {
    errors.BadRequest: (400, "bad_request"),
    errors.Unauthorized: (401, "unauthorized"),
    errors.Forbidden: (403, "forbidden"),
    errors.NotFound: (404, "not_found"),
    errors.Conflict: (409, "conflict"),
    errors.Gone: (410, "gone"),
    errors.PreconditionFailed: (412, "precondition_failed"),
    errors.PayloadTooLarge: (413, "payload_too_large"),
    errors.ValidationFailed: (422, "validation_error"),
    errors.RateLimited: (429, "rate_limited"),
    errors.Unavailable: (503, "unavailable"),
}

# Codes more precise than their status's (the status is their base class's).
CODE_BY_ERROR: dict[type[errors.DomainError], str] = {
    errors.InsufficientScope: "insufficient_scope",
    errors.IdempotencyKeyReused: "idempotency_key_reused",
}

# Codes for statuses Chalice or API Gateway produce before our code runs.
CODE_BY_STATUS = dict(STATUS_AND_CODE.values()) | {
    405: "method_not_allowed",
    415: "unsupported_media_type",
    500: "internal_error",
}

JSON = "application/json"


def error_body(
    status: int,
    message: str,
    request_id: str,
    details: list[dict[str, Any]] | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    return {
        "error": {
            "code": code or CODE_BY_STATUS.get(status, "error"),
            "message": message,
            "details": details or [],
        },
        "request_id": request_id,
    }


def to_response(exc: errors.DomainError, request_id: str) -> Response:
    status = next(
        (sc[0] for cls, sc in STATUS_AND_CODE.items() if isinstance(exc, cls)),
        500,
    )
    headers: dict[str, str | list[str]] = {"Content-Type": JSON}
    if isinstance(exc, errors.Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="taskbeat"'
    # Errors that say when to retry: 429, 503, and a 409 whose request is still in flight.
    retry_after = getattr(exc, "retry_after_seconds", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Response(
        body=json.dumps(error_body(status, exc.message, request_id, exc.details, _code_of(exc))),
        status_code=status,
        headers=headers,
    )


def _code_of(exc: errors.DomainError) -> str | None:
    return next((code for cls, code in CODE_BY_ERROR.items() if isinstance(exc, cls)), None)


def internal_error(request_id: str) -> Response:
    return Response(
        body=json.dumps(error_body(500, "internal error", request_id)),
        status_code=500,
        headers={"Content-Type": JSON},
    )
