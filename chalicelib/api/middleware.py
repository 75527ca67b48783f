"""Chalice middleware: correlation id, access log, metrics, tracing, the error body for
errors Chalice produces itself (415, 500) so every error has the contract's shape, security
headers on every response, and CORS for the origins of `TASKBEAT_CORS_ORIGINS`."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Callable

from chalice.app import Chalice, Request, Response

from chalicelib import bootstrap
from chalicelib.api.errors import error_body
from chalicelib.api.request_ids import request_id_of
from chalicelib.api.route_table import API_PREFIX
from chalicelib.observability import log_request, logger, tracer

# On every response (API Gateway's own gateway responses too, see
# infrastructure/components/api.py); a response that sets one itself keeps its value (the
# docs page and its assets set their own Cache-Control).
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    # JSON never needs to load anything or be framed.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
DOCS_ROUTE = f"{API_PREFIX}/docs"

# CORS: what a browser page of an allowed origin may send and read.
CORS_ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match"
CORS_EXPOSE_HEADERS = (
    "ETag, Idempotent-Replayed, Location, Retry-After, WWW-Authenticate, X-Request-Id"
)
CORS_MAX_AGE_SECONDS = 600


@functools.cache
def docs_content_security_policy() -> str:
    """The Swagger UI page: its script and styles from its own path, its one inline script
    by hash, and the document (openapi.json) and "try it out" calls to this API only."""
    from chalicelib.api.service import DOCS_PAGE

    inline = re.findall(r"<script>(.*?)</script>", DOCS_PAGE, flags=re.DOTALL)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in inline
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _allowed_origin(origin: str, allowed: tuple[str, ...]) -> str | None:
    """The Access-Control-Allow-Origin value for a request from `origin`, or None."""
    if origin.rstrip("/").lower() in allowed:
        return origin
    return "*" if "*" in allowed else None


def _add_vary(response: Response, header: str) -> None:
    present = [v.strip() for v in str(response.headers.get("Vary", "")).split(",") if v.strip()]
    if header not in present:
        response.headers["Vary"] = ", ".join([*present, header])


def _protect(request: Request, response: Response, route: str) -> None:
    """Security headers, and the CORS headers for an allowed `Origin` (none for the others)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if route == DOCS_ROUTE:
        response.headers["Content-Security-Policy"] = docs_content_security_policy()
    origin = request.headers.get("origin")
    if not origin:  # not a browser's cross-origin call: no settings needed
        return
    allowed = bootstrap.container().settings.cors_origins
    if not allowed:
        return
    _add_vary(response, "Origin")
    allow_origin = _allowed_origin(origin, allowed)
    if allow_origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = allow_origin
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = str(response.headers.get("Allow", ""))
        response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE_SECONDS)
    else:
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS


def _contract_error(response: Response, request_id: str) -> Response:
    """Chalice answers some errors before any view runs, with `{"Code", "Message"}` bodies."""
    if (
        response.status_code < 400
        or not isinstance(response.body, dict)
        or "Code" not in response.body
    ):
        return response
    message = (
        "internal error" if response.status_code >= 500 else str(response.body.get("Message", ""))
    )
    headers = dict(response.headers) | {"Content-Type": "application/json"}
    return Response(
        body=json.dumps(error_body(response.status_code, message, request_id)),
        status_code=response.status_code,
        headers=headers,
    )


def _sampled() -> bool:
    """Whether X-Ray records this invocation: Lambda puts its trace header, with the sampling
    decision, in `_X_AMZN_TRACE_ID` for each one. An unsampled request would only get dummy
    subsegments, so it neither loads the X-Ray SDK (~40 ms of a cold start, bench/coldstart.py)
    nor opens one; the first sampled request loads it and patches botocore then."""
    return "Sampled=1" in os.environ.get("_X_AMZN_TRACE_ID", "")


def http_middleware(event: Request, get_response: Callable[[Request], Response]) -> Response:
    request_id = request_id_of(event)
    log = logger()
    log.set_correlation_id(request_id)
    route = (event.context or {}).get("resourcePath", event.path)
    started = time.perf_counter()
    tracing = tracer() if _sampled() else None
    if tracing is None or tracing.disabled:  # nothing would record the subsegment
        response = _contract_error(get_response(event), request_id)
    else:
        with tracing.provider.in_subsegment(f"## {event.method} {route}") as subsegment:
            subsegment.put_annotation("route", route)
            response = _contract_error(get_response(event), request_id)
    elapsed_ms = (time.perf_counter() - started) * 1000
    response.headers["X-Request-Id"] = request_id
    _protect(event, response, route)
    # Never log headers or bodies: they carry tokens and passwords.
    log_request(
        {
            "method": event.method,
            "route": route,
            "status": response.status_code,
            "ms": round(elapsed_ms, 1),
        },
        elapsed_ms,
        server_error=response.status_code >= 500,
    )
    return response


def register_preflight_routes(app: Chalice) -> None:
    """`OPTIONS` on every path, answered by the app (204, `Allow`) so the middleware adds the
    CORS headers for allowed origins. Chalice's own `cors=` is one static origin, and its local
    server answers OPTIONS itself unless the app declares it. Call after every blueprint."""

    def cors_preflight(**params: str) -> Response:
        request = app.current_request
        resource = (request.context or {}).get("resourcePath", "") if request else ""
        methods = sorted(app.routes.get(resource, {}))
        return Response(body="", status_code=204, headers={"Allow": ", ".join(methods)})

    for path, methods in list(app.routes.items()):
        if "OPTIONS" not in methods:
            app.route(
                path,
                methods=["OPTIONS"],
                content_types=["application/json", "text/plain", "application/octet-stream"],
            )(cors_preflight)


def register_middleware(app: Chalice) -> None:
    register_preflight_routes(app)
    app.register_middleware(http_middleware, "http")
