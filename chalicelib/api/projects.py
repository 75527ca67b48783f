"""/projects: projects the caller belongs to, and their members.

Each route names what it reads first (`prefetch=`): the project and the caller's membership come
back with the session in one BatchGetItem, so reads cost 1-2 DynamoDB calls and writes 2-3.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, route
from chalicelib.domain.model import Page
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import (
    MemberAdd,
    MemberRoleUpdate,
    Membership,
    ProjectCreate,
    ProjectRole,
    ProjectUpdate,
    ProjectWithRole,
    plausible_id,
)
from chalicelib.ports import PrefetchKey, reads
from chalicelib.representations.schemas import Out, PageOut

TAG = "projects"


class ProjectOut(Out):
    id: str
    name: str
    description: str | None
    owner_id: str
    my_role: ProjectRole
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, view: ProjectWithRole) -> ProjectOut:
        project = view.project
        return cls(
            id=project.id,
            name=project.name,
            description=project.description or None,
            owner_id=project.owner_id,
            my_role=view.role,
            created_at=project.created_at,
            updated_at=project.updated_at,
            version=project.version,
        )


class MemberOut(Out):
    user_id: str
    email: str
    name: str
    role: ProjectRole
    added_at: datetime

    @classmethod
    def of(cls, membership: Membership) -> MemberOut:
        return cls(
            user_id=membership.user_id,
            email=membership.email,
            name=membership.name,
            role=membership.role,
            added_at=membership.added_at,
        )


# ---- what each route reads first ------------------------------------------------------------


def _ids(*ids: str) -> bool:
    return all(plausible_id(i) for i in ids)


def caller(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    return [reads.user(principal.user_id)]


def caller_index(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    return [reads.user_projects(principal.user_id)]


def project_and_me(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    project_id = params["project_id"]
    if not _ids(project_id):
        return []  # cannot exist: the service answers 404 without reading
    return [reads.project(project_id), reads.member(project_id, principal.user_id)]


def project_me_and_member(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    keys = project_and_me(principal, params)
    if keys and _ids(params["user_id"]):
        keys.append(reads.member(params["project_id"], params["user_id"]))
    return keys


def user_to_add(principal: Principal, body: MemberAdd) -> list[PrefetchKey]:
    if body.user_id is not None:
        return [reads.user(body.user_id)]
    return [reads.user_email(body.email or "")]


def _page(page: Page[ProjectWithRole]) -> PageOut[ProjectOut]:
    return PageOut[ProjectOut](
        items=[ProjectOut.of(p) for p in page.items], next_cursor=page.next_cursor
    )


# ---- projects -------------------------------------------------------------------------------


@route(
    "/projects",
    "POST",
    tag=TAG,
    summary="Create a project; the caller is its owner",
    body=ProjectCreate,
    response=ProjectOut,
    status=201,
    prefetch=caller,
)
def create_project(call: Call) -> ProjectOut:
    return ProjectOut.of(bootstrap.container().projects.create(call.principal, call.body))


@route(
    "/projects",
    "GET",
    tag=TAG,
    summary="The projects the caller belongs to, in id (creation) order",
    query=PageQuery,
    response=PageOut[ProjectOut],
    errors=(400, 422),
    prefetch=caller_index,
)
def list_projects(call: Call) -> PageOut[ProjectOut]:
    return _page(bootstrap.container().projects.list_mine(call.principal, call.query.page()))


@route(
    "/projects/{project_id}",
    "GET",
    tag=TAG,
    summary="A project (any member); If-None-Match with its ETag answers 304",
    response=ProjectOut,
    errors=(404,),
    prefetch=project_and_me,
)
def get_project(call: Call) -> ProjectOut:
    project = bootstrap.container().projects.get(call.principal, call.params["project_id"])
    return ProjectOut.of(project)


@route(
    "/projects/{project_id}",
    ["PUT", "PATCH"],
    tag=TAG,
    summary="Change the name or description (admin+); description null clears it",
    body=ProjectUpdate,
    response=ProjectOut,
    errors=(403, 404, 409, 412),
    prefetch=project_and_me,
)
def update_project(call: Call) -> ProjectOut:
    project = bootstrap.container().projects.update(
        call.principal, call.params["project_id"], call.body, call.if_match
    )
    return ProjectOut.of(project)


@route(
    "/projects/{project_id}",
    "DELETE",
    tag=TAG,
    summary="Delete the project and everything in it (owner only; not the personal project)",
    response=ProjectOut,  # documents If-Match; the answer itself is 204
    status=204,
    errors=(403, 404, 409, 412),
    prefetch=project_and_me,
)
def delete_project(call: Call) -> None:
    bootstrap.container().projects.delete(call.principal, call.params["project_id"], call.if_match)


# ---- members --------------------------------------------------------------------------------


@route(
    "/projects/{project_id}/members",
    "GET",
    tag=TAG,
    summary="The project's members (any member)",
    query=PageQuery,
    response=PageOut[MemberOut],
    errors=(400, 404, 422),
    prefetch=project_and_me,
)
def list_members(call: Call) -> PageOut[MemberOut]:
    page = bootstrap.container().projects.members(
        call.principal, call.params["project_id"], call.query.page()
    )
    return PageOut[MemberOut](
        items=[MemberOut.of(m) for m in page.items], next_cursor=page.next_cursor
    )


@route(
    "/projects/{project_id}/members",
    "POST",
    tag=TAG,
    summary="Add a user by email or user_id as admin, member or viewer (admin+)",
    body=MemberAdd,
    response=MemberOut,
    status=201,
    errors=(403, 404, 409),
    prefetch=project_and_me,
    prefetch_body=user_to_add,
)
def add_member(call: Call) -> MemberOut:
    member = bootstrap.container().projects.add_member(
        call.principal, call.params["project_id"], call.body
    )
    return MemberOut.of(member)


@route(
    "/projects/{project_id}/members/{user_id}",
    ["PUT", "PATCH"],
    tag=TAG,
    summary="Change a member's role (admin+; the owner's role cannot change: 409)",
    body=MemberRoleUpdate,
    response=MemberOut,
    errors=(403, 404, 409),
    prefetch=project_me_and_member,
)
def set_member_role(call: Call) -> MemberOut:
    member = bootstrap.container().projects.set_member_role(
        call.principal, call.params["project_id"], call.params["user_id"], call.body
    )
    return MemberOut.of(member)


@route(
    "/projects/{project_id}/members/{user_id}",
    "DELETE",
    tag=TAG,
    summary="Remove a member (admin+), or leave (any member but the owner; the owner: 409)",
    status=204,
    errors=(403, 404, 409),
    prefetch=project_me_and_member,
)
def remove_member(call: Call) -> None:
    bootstrap.container().projects.remove_member(
        call.principal, call.params["project_id"], call.params["user_id"]
    )


class WebhookSecretOut(Out):
    secret: str = Field(
        description="Key of the X-Taskbeat-Signature HMAC of this project's webhooks."
    )


@route(
    "/projects/{project_id}/webhook-secret",
    "GET",
    tag=TAG,
    summary="The secret that signs this project's webhook requests (admin+)",
    response=WebhookSecretOut,
    errors=(403, 404),
    prefetch=project_and_me,
)
def webhook_secret(call: Call) -> WebhookSecretOut:
    secret = bootstrap.container().webhook_secrets.get(call.principal, call.params["project_id"])
    return WebhookSecretOut(secret=secret)
