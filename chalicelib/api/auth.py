"""/auth: register, login, refresh, logout."""

from __future__ import annotations

from chalicelib import bootstrap
from chalicelib.api.routing import Call, Reply, route
from chalicelib.domain.users import LoginInput, LogoutInput, RefreshInput, RegisterInput
from chalicelib.representations.schemas import AuthOut, UserOut
from chalicelib.services.auth import AuthResult

TAG = "auth"


def _out(result: AuthResult) -> AuthOut:
    return AuthOut(
        user=UserOut.of(result.user),
        access_token=result.access_token,
        refresh_token=result.refresh_token,
        expires_in=result.expires_in,
    )


@route(
    "/auth/register",
    "POST",
    tag=TAG,
    auth=False,
    status=201,
    summary="Create an account (the first one is admin) and its personal project",
    body=RegisterInput,
    response=AuthOut,
    errors=(409, 422),
)
def register(call: Call) -> Reply:
    result = bootstrap.container().auth.register(call.body)
    return Reply(_out(result), 201, {"Location": "/api/v1/users/profile"})


@route(
    "/auth/login",
    "POST",
    tag=TAG,
    auth=False,
    summary="Log in with email and password",
    body=LoginInput,
    response=AuthOut,
    errors=(401, 422, 429),
)
def login(call: Call) -> AuthOut:
    return _out(bootstrap.container().auth.login(call.body))


@route(
    "/auth/refresh",
    "POST",
    tag=TAG,
    auth=False,
    summary="Trade a refresh token for new tokens (each refresh token works once)",
    body=RefreshInput,
    response=AuthOut,
    errors=(401, 422),
)
def refresh(call: Call) -> AuthOut:
    return _out(bootstrap.container().auth.refresh(call.body))


@route(
    "/auth/logout",
    "POST",
    session_only=True,
    tag=TAG,
    status=204,
    summary="End the session: its access and refresh tokens stop working at once",
    body=LogoutInput,
    errors=(401, 422),
)
def logout(call: Call) -> None:
    bootstrap.container().auth.logout(call.principal, call.body.refresh_token)
