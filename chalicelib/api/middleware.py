"""Chalice middleware: correlation id, access log, metrics, tracing, and the error body for
errors Chalice produces itself (415, 500) so every error has the contract's shape."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from chalice.app import Chalice, Request, Response

from chalicelib.api.errors import error_body
from chalicelib.api.routing import request_id_of
from chalicelib.observability import logger, metrics, tracer


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


def http_middleware(event: Request, get_response: Callable[[Request], Response]) -> Response:
    request_id = request_id_of(event)
    log = logger()
    log.set_correlation_id(request_id)
    route = (event.context or {}).get("resourcePath", event.path)
    started = time.perf_counter()
    with tracer().provider.in_subsegment(f"## {event.method} {route}") as subsegment:
        subsegment.put_annotation("route", route)
        response = _contract_error(get_response(event), request_id)
    elapsed_ms = (time.perf_counter() - started) * 1000
    response.headers["X-Request-Id"] = request_id
    # Never log headers or bodies: they carry tokens and passwords.
    log.info(
        "request",
        extra={
            "method": event.method,
            "route": route,
            "status": response.status_code,
            "ms": round(elapsed_ms, 1),
        },
    )
    recorder = metrics()
    recorder.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    recorder.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=elapsed_ms)
    if response.status_code >= 500:
        recorder.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
    _flush_if_recorded()
    return response


def _flush_if_recorded() -> None:
    recorder = metrics()
    if recorder.metric_set:  # an empty flush only warns
        recorder.flush_metrics()
        # With POWERTOOLS_METRICS_DISABLED a flush publishes nothing and keeps the buffer,
        # which would then spill out once it reaches 100 values.
        recorder.clear_metrics()


def event_middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Non-HTTP entry points: a correlation id per invocation and metrics flushed after it."""
    context = getattr(event, "context", None)
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        logger().set_correlation_id(request_id)
    try:
        return get_response(event)
    finally:
        _flush_if_recorded()


def register_middleware(app: Chalice) -> None:
    app.register_middleware(http_middleware, "http")
    app.register_middleware(event_middleware, "websocket")
    app.register_middleware(event_middleware, "pure_lambda")
