"""API tokens: one's own at /users/profile/tokens, anyone's (admin) at /users/{id}/tokens.

Every route here is `session_only`: no API token manages tokens (a leaked token cannot mint
itself a successor or hide its tracks).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, from_params, route
from chalicelib.domain.api_tokens import ApiToken, Scope, TokenCreate
from chalicelib.domain.model import Page
from chalicelib.representations.schemas import Out, PageOut
from chalicelib.services.api_tokens import ApiTokenService

TAG = "api tokens"
TOKEN_ID = {"token_id": "The token's `id`."}


class ApiTokenOut(Out):
    id: str
    name: str
    scopes: list[Scope] = Field(description="Sorted: `read`, `run`, `write`.")
    prefix: str = Field(description="The token's first characters, to recognise it.")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="To the minute; null if never used.")

    @classmethod
    def of(cls, token: ApiToken) -> ApiTokenOut:
        return cls(**_fields(token))


class ApiTokenCreated(ApiTokenOut):
    token: str = Field(
        description="The token itself (`tb_...`), for `Authorization: Bearer`: shown in this "
        "answer only, never again (only its hash is stored)."
    )


def _fields(token: ApiToken) -> dict[str, object]:
    return {
        "id": token.id,
        "name": token.name,
        "scopes": sorted(token.scopes),
        "prefix": token.prefix,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
    }


def _page(page: Page[ApiToken]) -> PageOut[ApiTokenOut]:
    return PageOut[ApiTokenOut](
        items=[ApiTokenOut.of(t) for t in page.items], next_cursor=page.next_cursor
    )


@route(
    "/users/profile/tokens",
    "POST",
    tag=TAG,
    summary="Create an API token (its secret is in this answer only)",
    description="At most 50 tokens per user (409 beyond: revoke one first). "
    "`expires_at` must be in the future (422).",
    body=TokenCreate,
    response=ApiTokenCreated,
    status=201,
    errors=(403, 409, 422),
    prefetch=from_params(ApiTokenService.reads_for_caller),
    session_only=True,
    # A replay gives the same token back: kept encrypted, never as it is (docs/idempotency.md).
    idempotency="sealed",
)
def create_token(call: Call) -> ApiTokenCreated:
    created = bootstrap.container().api_tokens.create(call.principal, call.body)
    return ApiTokenCreated(**_fields(created.token), token=created.secret_token)


@route(
    "/users/profile/tokens",
    "GET",
    tag=TAG,
    summary="Your API tokens, newest first (without their secrets)",
    query=PageQuery,
    response=PageOut[ApiTokenOut],
    errors=(400, 403, 422),
    session_only=True,
)
def list_my_tokens(call: Call) -> PageOut[ApiTokenOut]:
    return _page(bootstrap.container().api_tokens.list_mine(call.principal, call.query.page()))


@route(
    "/users/profile/tokens/{token_id}",
    "DELETE",
    tag=TAG,
    summary="Revoke one of your API tokens (it stops working at once)",
    status=204,
    errors=(403, 404),
    param_docs=TOKEN_ID,
    session_only=True,
)
def revoke_my_token(call: Call) -> None:
    bootstrap.container().api_tokens.revoke_mine(call.principal, call.params["token_id"])


@route(
    "/users/{user_id}/tokens",
    "GET",
    tag=TAG,
    summary="A user's API tokens, newest first (admin only)",
    query=PageQuery,
    response=PageOut[ApiTokenOut],
    errors=(400, 403, 404, 422),
    prefetch=from_params(ApiTokenService.reads_for_user, "user_id"),
    session_only=True,
)
def list_user_tokens(call: Call) -> PageOut[ApiTokenOut]:
    tokens = bootstrap.container().api_tokens
    return _page(tokens.list_for(call.principal, call.params["user_id"], call.query.page()))


@route(
    "/users/{user_id}/tokens/{token_id}",
    "DELETE",
    tag=TAG,
    summary="Revoke a user's API token (admin only; it stops working at once)",
    status=204,
    errors=(403, 404),
    param_docs=TOKEN_ID,
    prefetch=from_params(ApiTokenService.reads_for_caller),
    session_only=True,
)
def revoke_user_token(call: Call) -> None:
    bootstrap.container().api_tokens.revoke_for(
        call.principal, call.params["user_id"], call.params["token_id"]
    )
