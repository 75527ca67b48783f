"""`Idempotency-Key` on POSTs, the HTTP side (the protocol is chalicelib/services/idempotency.py,
the whole story docs/idempotency.md).

`routing.handle` hands each request here once it is authenticated and its body, query and path
parameters have passed (so a 401, 400 or 422 of a bad request is never kept: nothing ran). A
POST with the header on a route that takes it is then claimed, run under the claim's guard,
and its answer kept, except the answers a retry with the same key must be able to change:
5xx (503 tells the client to retry), 401 (credentials decided inside the route) and 429. A POST
without the header costs nothing here.

Routes declare how (`RouteSpec.idempotency`):
- "store": the answer is kept as sent;
- "sealed": the answer carries a secret (a calendar token, an API token): it is kept encrypted
  under a key derived from the deployment's derivation secret, the user and the key;
- "off": the header is ignored. Every unauthenticated route is "off": with no user there is no
  one to key the record on (register is unique by email anyway, login makes one more session,
  and refresh keeps its own reuse rule, API.md).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Literal

from chalice.app import Request, Response

from chalicelib.bootstrap import Container
from chalicelib.domain.errors import Unavailable, validation_error
from chalicelib.domain.idempotency import (
    MAX_KEY_LENGTH,
    REPLAYED_HEADERS,
    StoredAnswer,
    fingerprint,
    valid_key,
)
from chalicelib.domain.principals import Principal
from chalicelib.observability import logger
from chalicelib.services.idempotency import Claimed, IdempotencyService, Replay

Mode = Literal["store", "sealed", "off"]
HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
# Statuses whose answers are not kept: a retry with the same key runs the route again.
NOT_KEPT = frozenset({401, 429})


def kept(status: int) -> bool:
    return status < 500 and status not in NOT_KEPT


def key_of(request: Request) -> str | None:
    """The request's Idempotency-Key, or None; a malformed one is a 422."""
    value = request.headers.get(HEADER.lower())
    if value is None:
        return None
    if not valid_key(value):
        raise validation_error(
            ["header", HEADER],
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
        )
    return str(value)


def answer(
    container: Container,
    mode: Mode,
    route: str,
    request: Request,
    params: dict[str, str],
    principal: Principal | None,
    respond: Callable[[], Response],
) -> Response:
    """`respond()`'s answer, or the key's first answer again (see the module's docstring)."""
    if request.method != "POST" or mode == "off" or principal is None:
        return respond()
    key = key_of(request)
    if key is None:
        return respond()
    service = container.idempotency
    raw = request.raw_body or b""
    raw = raw.encode() if isinstance(raw, str) else raw
    begun = service.begin(
        principal.user_id,
        key,
        fingerprint(request.method, route, params, raw),
        f"{request.method} {route}",
    )
    if isinstance(begun, Replay):
        return replay(begun.answer)
    try:
        with service.guarded(begun):
            response = respond()
    except BaseException:
        _abandon(service, begun)
        raise
    if not kept(response.status_code):
        _abandon(service, begun)
    elif not _finish(service, begun, response, sealed=mode == "sealed"):
        logger().warning("idempotent answer not kept: the claim was taken over")
    return response


def _finish(
    service: IdempotencyService, begun: Claimed, response: Response, *, sealed: bool
) -> bool:
    body = response.body
    data = body if isinstance(body, bytes) else str(body or "").encode()
    headers = tuple(
        (name, str(response.headers[name])) for name in REPLAYED_HEADERS if name in response.headers
    )
    stored = StoredAnswer(response.status_code, headers, data)
    try:
        return service.finish(begun, stored, sealed=sealed)
    except Unavailable:
        # The work is done and this is its answer: it is sent all the same. The claim stays
        # in progress; after its lease a retry learns that the work was done (if its writes
        # were guarded) or runs the route again (docs/idempotency.md).
        logger().warning("idempotent answer not kept: DynamoDB unavailable")
        return False


def _abandon(service: IdempotencyService, begun: Claimed) -> None:
    with suppress(Unavailable):  # the lease ends by itself
        service.abandon(begun)


def replay(stored: StoredAnswer) -> Response:
    headers: dict[str, str | list[str]] = dict(stored.headers)
    headers[REPLAYED] = "true"
    body = stored.body.decode() if stored.body else ""
    return Response(body=body, status_code=stored.status, headers=headers)
