"""Declaring a route once: request parsing, auth, errors and OpenAPI. `route` records the view
(`VIEWS`) and its declaration (`ROUTES`); Chalice knows the route from `route_table`, and
`chalicelib.api.register_api` hands its requests to the view here.

A view is a plain function of one `Call` (the parsed request). It returns a pydantic model
(200/201 JSON, with `ETag` when the model has a `version`), a `Reply`, or None (204).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalice.app import Request, Response
from pydantic import BaseModel, ValidationError

from chalicelib import bootstrap
from chalicelib.api import errors as api_errors
from chalicelib.api import idempotency as idempotent
from chalicelib.api.request_ids import request_id_of
from chalicelib.api.route_table import API_PREFIX
from chalicelib.domain.errors import (
    BadRequest,
    DomainError,
    NotFound,
    PayloadTooLarge,
    ValidationFailed,
)
from chalicelib.domain.ids import ScopedId
from chalicelib.domain.principals import Principal
from chalicelib.observability import logger
from chalicelib.ports import PrefetchKey

MAX_BODY_BYTES = 256 * 1024

# Path parameters that hold a scoped id (chalicelib.domain.ids), with the item each names. A
# malformed one names nothing: the route answers 404 as for a missing item, and reads nothing
# for it (the caller is authenticated first all the same: 401 comes before 404).
SCOPED_ID_PARAMS = {
    "task_id": "task",
    "execution_id": "execution",
    "workflow_id": "workflow",
    "run_id": "workflow run",
    "template_id": "template",
    "rule_id": "rule",
    "token_id": "token",  # an API token's: its ULID and its user's (domain/api_tokens.py)
    "hook_id": "hook",
    "delivery_id": "delivery",
}


@dataclass(frozen=True)
class RouteSpec:
    path: str  # under /api/v1, e.g. "/users/{id}/role"
    methods: tuple[str, ...]
    summary: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    auth: bool
    errors: tuple[int, ...]
    content_type: str = "application/json"
    # The operation's longer description in the OpenAPI document.
    description: str = ""
    # A body that is not JSON but is documented (as a string of `content_type`): what it is.
    text_body: str | None = None
    # Response headers the document names for the success status: {name: description}.
    headers: tuple[tuple[str, str], ...] = ()
    # What path parameters hold, for the document: {name: description}.
    param_docs: tuple[tuple[str, str], ...] = ()
    # Takes `If-None-Match` and may answer 304 (documented as such).
    conditional: bool = False
    # Items the view reads first, fetched with the caller's session in one round trip.
    prefetch: Callable[[Principal, dict[str, str]], Sequence[PrefetchKey]] | None = None
    # The same for items the (valid) body names, e.g. the user to add to a project.
    prefetch_body: Callable[[Principal, Any], Sequence[PrefetchKey]] | None = None
    # How a POST's `Idempotency-Key` is kept: "store", "sealed" (the answer carries a
    # secret: kept encrypted) or "off" (chalicelib/api/idempotency.py).
    idempotency: idempotent.Mode = "store"
    # API tokens: the scope the route needs (None: `read` for GET, `write` for the other
    # methods; see `required_scope`), and whether no API token may call it at all (managing
    # tokens, credentials, roles, sessions: only a signed-in person may).
    scope: str | None = None
    session_only: bool = False


def required_scope(spec: RouteSpec, method: str) -> str:
    """The API token scope a request to `spec` with `method` needs."""
    if spec.scope is not None:
        return spec.scope
    return "read" if method in ("GET", "HEAD") else "write"


# Filled as blueprints are imported; the OpenAPI document is built from it.
ROUTES: list[RouteSpec] = []
# The same, by Chalice path and method: what `chalicelib.api.register_api` dispatches to.
VIEWS: dict[tuple[str, str], tuple[RouteSpec, Callable[[Call], Any]]] = {}


@dataclass(frozen=True)
class Reply:
    """A response other than one model with status 200/201."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    request: Request
    request_id: str
    params: dict[str, str]
    body: Any
    query: Any
    principal_or_none: Principal | None

    @property
    def principal(self) -> Principal:
        assert self.principal_or_none is not None, "route declared auth=False"
        return self.principal_or_none

    @property
    def if_match(self) -> int | None:
        return parse_if_match(self.request.headers.get("if-match"))


_IF_MATCH = re.compile(r'^(?:W/)?"?(\d{1,18})"?$')


def parse_if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    match = _IF_MATCH.match(value.strip())
    if not match:
        raise BadRequest('If-Match must be a version such as "3"')
    return int(match.group(1))


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _details(exc: ValidationError, prefix: str) -> list[dict[str, Any]]:
    return [
        {"loc": [prefix, *error["loc"]], "message": error["msg"]}
        for error in exc.errors(include_url=False)
    ]


def _parse_body(request: Request, model: type[BaseModel] | None) -> Any:
    raw = request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body is over {MAX_BODY_BYTES // 1024} KiB")
    if model is None:
        return None
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body is not valid JSON") from None
    except RecursionError:  # nested deeper than the parser goes: refused, not a crash
        raise BadRequest("body is not valid JSON: nested too deeply") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("body is not valid", _details(exc, "body")) from None


def _parse_body_first(
    request: Request, model: type[BaseModel] | None
) -> tuple[Any, DomainError | None]:
    """The body, or the error it gives: raised after authentication, so 401 still comes first."""
    try:
        return _parse_body(request, model), None
    except DomainError as exc:
        return None, exc


def _malformed_id(params: dict[str, str]) -> NotFound | None:
    """The 404 of the first path parameter that should hold a scoped id and does not."""
    for name, value in params.items():
        item = SCOPED_ID_PARAMS.get(name)
        if item is not None and ScopedId.parse(value) is None:
            return NotFound(f"{item} not found")
    return None


def _with_body_keys(
    spec: RouteSpec, body: Any, keys: Callable[[Principal], Sequence[PrefetchKey]] | None
) -> Callable[[Principal], Sequence[PrefetchKey]] | None:
    named = spec.prefetch_body
    if named is None or body is None:
        return keys
    return lambda caller: [*(keys(caller) if keys else ()), *named(caller, body)]


def _not_modified(request: Request, version: int) -> bool:
    """`If-None-Match` of a GET names the current version (or is `*`)."""
    header = request.headers.get("if-none-match")
    if request.method != "GET" or not header:
        return False
    for tag in header.split(","):
        match = _IF_MATCH.match(tag.strip())
        if tag.strip() == "*" or (match and int(match.group(1)) == version):
            return True
    return False


def _parse_query(request: Request, model: type[BaseModel] | None) -> Any:
    if model is None:
        return None
    try:
        return model.model_validate(dict(request.query_params or {}))
    except ValidationError as exc:
        # A value that is not even of the right type cannot be parsed: 400; out of range: 422.
        if any(e["type"].endswith(("_parsing", "_type")) for e in exc.errors()):
            raise BadRequest("a query parameter cannot be parsed", _details(exc, "query")) from None
        raise ValidationFailed("query parameters are not valid", _details(exc, "query")) from None


def _to_response(result: Any, spec: RouteSpec, request: Request) -> Response:
    if result is None:
        return Response(body="", status_code=204, headers={})
    reply = result if isinstance(result, Reply) else Reply(result, spec.status)
    body = reply.body
    headers: dict[str, str | list[str]] = dict(reply.headers)
    if isinstance(body, BaseModel):
        version = getattr(body, "version", None)
        if isinstance(version, int):
            headers.setdefault("ETag", f'"{version}"')
            if reply.status == 200 and _not_modified(request, version):
                return Response(body="", status_code=304, headers={"ETag": headers["ETag"]})
        body = body.model_dump_json()  # pydantic-core writes the JSON itself
    elif isinstance(body, dict | list):
        body = json.dumps(body)
    headers.setdefault("Content-Type", spec.content_type)
    return Response(body=body, status_code=reply.status, headers=headers)


def handle(
    spec: RouteSpec, view: Callable[[Call], Any], request: Request, params: dict[str, str]
) -> Response:
    request_id = request_id_of(request)
    try:
        container = bootstrap.container()
        with container.request_scope():
            body, body_error = _parse_body_first(request, spec.body)
            id_error = _malformed_id(params)
            principal = None
            if spec.auth:
                prefetch = spec.prefetch
                # Prefetch sees path and query parameters (the path's win on a clash).
                known = {**(request.query_params or {}), **params}
                keys = _with_body_keys(
                    spec, body, (lambda caller: prefetch(caller, known)) if prefetch else None
                )
                # Nothing is read beside the session for a request that will answer 404.
                principal = container.auth.authenticate(
                    bearer_token(request), keys if id_error is None else None
                )
                # API tokens: the route's scope, and no token on a session-only route (403
                # `insufficient_scope`), before the view runs and before anything is written.
                container.auth.admit(
                    principal, required_scope(spec, request.method), spec.session_only
                )
            if body_error is not None:
                raise body_error
            query = _parse_query(request, spec.query)
            # Where a missing item's 404 would come from: after the body's and query's errors.
            if id_error is not None:
                raise id_error
            call = Call(request, request_id, params, body, query, principal)
            return _idempotent(container, spec, view, call)
    except DomainError as exc:
        return api_errors.to_response(exc, request_id)
    except Exception:
        # The log keeps the trace for us; the caller gets no detail of it.
        logger().exception("unhandled error", extra={"route": spec.path})
        return api_errors.internal_error(request_id)


def _idempotent(
    container: bootstrap.Container, spec: RouteSpec, view: Callable[[Call], Any], call: Call
) -> Response:
    """The view's answer, through the request's Idempotency-Key when it has one (its domain
    errors answered here, so that a POST's 4xx is kept like any other answer)."""

    def respond() -> Response:
        try:
            return _to_response(view(call), spec, call.request)
        except DomainError as exc:
            return api_errors.to_response(exc, call.request_id)

    mode = spec.idempotency if spec.auth else "off"
    return idempotent.answer(
        container, mode, spec.path, call.request, call.params, call.principal_or_none, respond
    )


def from_params(
    declaration: Callable[..., Sequence[PrefetchKey]], *names: str
) -> Callable[[Principal, dict[str, str]], Sequence[PrefetchKey]]:
    """A route's `prefetch`: the first reads its use case declares (next to it, in its service),
    given the caller and these path or query parameters (None for an absent one)."""
    return lambda principal, params: declaration(principal, *(params.get(n) for n in names))


def route(
    path: str,
    methods: list[str] | str = "GET",
    *,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    auth: bool = True,
    errors: tuple[int, ...] = (),
    content_type: str = "application/json",
    description: str = "",
    text_body: str | None = None,
    headers: dict[str, str] | None = None,
    param_docs: dict[str, str] | None = None,
    conditional: bool = False,
    prefetch: Callable[[Principal, dict[str, str]], Sequence[PrefetchKey]] | None = None,
    prefetch_body: Callable[[Principal, Any], Sequence[PrefetchKey]] | None = None,
    scope: str | None = None,
    session_only: bool = False,
    idempotency: idempotent.Mode = "store",
) -> Callable[[Callable[[Call], Any]], Callable[[Call], Any]]:
    spec = RouteSpec(
        path=path,
        methods=tuple([methods] if isinstance(methods, str) else methods),
        summary=summary,
        tag=tag,
        body=body,
        query=query,
        response=response,
        status=status,
        auth=auth,
        errors=errors,
        content_type=content_type,
        description=description,
        text_body=text_body,
        headers=tuple((headers or {}).items()),
        param_docs=tuple((param_docs or {}).items()),
        conditional=conditional,
        prefetch=prefetch,
        prefetch_body=prefetch_body,
        scope=scope,
        session_only=session_only,
        idempotency=idempotency,
    )

    def decorator(view: Callable[[Call], Any]) -> Callable[[Call], Any]:
        ROUTES.append(spec)
        VIEWS.update({(API_PREFIX + path, method): (spec, view) for method in spec.methods})
        return view

    return decorator
