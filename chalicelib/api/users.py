"""/users: the caller's profile, and the admin's user list and role changes."""

from __future__ import annotations

from pydantic import Field

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, from_params, route
from chalicelib.domain.users import ProfileUpdate, RoleUpdate, User
from chalicelib.representations.schemas import PageOut, UserOut
from chalicelib.services.users import UserService

TAG = "users"


class ProfileOut(UserOut):
    """The caller's own user, with what only its user may see."""

    calendar_token: str = Field(
        description="The secret of your calendar feeds' URLs (`GET /calendar/{token}.ics`); "
        "`POST /users/profile/calendar-token` replaces it."
    )

    @classmethod
    def of_profile(cls, user: User, calendar_token: str) -> ProfileOut:
        return cls(**UserOut.of(user).model_dump(), calendar_token=calendar_token)


def _profile(user: User) -> ProfileOut:
    stored, token = bootstrap.container().calendars.token_of(user)
    return ProfileOut.of_profile(stored, token)


class UserListQuery(PageQuery):
    q: str = Field("", max_length=254, description="Email prefix (case-insensitive).")


@route(
    "/users/profile",
    "GET",
    tag=TAG,
    summary="The caller's profile",
    response=ProfileOut,
    prefetch=from_params(UserService.reads_for_caller),
)
def get_profile(call: Call) -> ProfileOut:
    return _profile(bootstrap.container().users.profile(call.principal))


@route(
    "/users/profile",
    ["PUT", "PATCH"],
    session_only=True,  # password (and, issue 19, email): no API token changes a profile
    tag=TAG,
    summary="Change name, timezone or password (the password needs current_password)",
    body=ProfileUpdate,
    response=ProfileOut,
    errors=(401, 412, 422),
    prefetch=from_params(UserService.reads_for_caller),
)
def update_profile(call: Call) -> ProfileOut:
    user = bootstrap.container().users.update_profile(call.principal, call.body, call.if_match)
    return _profile(user)


@route(
    "/users",
    "GET",
    tag=TAG,
    summary="Users whose email starts with q (admin only)",
    query=UserListQuery,
    response=PageOut[UserOut],
    errors=(400, 403, 422),
    prefetch=from_params(UserService.reads_for_caller),
)
def list_users(call: Call) -> PageOut[UserOut]:
    page = bootstrap.container().users.list_users(call.principal, call.query.q, call.query.page())
    return PageOut[UserOut](items=[UserOut.of(u) for u in page.items], next_cursor=page.next_cursor)


@route(
    "/users/{user_id}/role",
    "PUT",
    session_only=True,
    tag=TAG,
    summary="Change a user's role (admin only)",
    body=RoleUpdate,
    response=UserOut,
    errors=(403, 404, 409, 412, 422),
    prefetch=from_params(UserService.reads_for_role_change, "user_id"),
)
def set_role(call: Call) -> UserOut:
    user = bootstrap.container().users.set_role(
        call.principal, call.params["user_id"], call.body, call.if_match
    )
    return UserOut.of(user)
