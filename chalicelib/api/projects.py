"""/projects: projects the caller belongs to, and their members.

Each route names what it reads first (`prefetch=`, what its use case declares in
`chalicelib.services.projects`): the project and the caller's membership come back with the
session in one BatchGetItem, so reads cost 1-2 DynamoDB calls and writes 2-3.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, from_params, route
from chalicelib.domain.model import Page
from chalicelib.domain.projects import (
    MemberAdd,
    MemberRoleUpdate,
    Membership,
    ProjectCreate,
    ProjectRole,
    ProjectUpdate,
    ProjectWithRole,
)
from chalicelib.representations.schemas import Out, PageOut
from chalicelib.services.projects import ProjectService
from chalicelib.services.webhook_secrets import WebhookSecrets

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
    prefetch=from_params(ProjectService.reads_for_create),
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
    prefetch=from_params(ProjectService.reads_for_list_mine),
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
    prefetch=from_params(ProjectService.reads_for_project, "project_id"),
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
    prefetch=from_params(ProjectService.reads_for_project, "project_id"),
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
    prefetch=from_params(ProjectService.reads_for_project, "project_id"),
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
    prefetch=from_params(ProjectService.reads_for_project, "project_id"),
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
    prefetch=from_params(ProjectService.reads_for_project, "project_id"),
    prefetch_body=ProjectService.reads_for_new_member,
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
    prefetch=from_params(ProjectService.reads_for_member, "project_id", "user_id"),
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
    prefetch=from_params(ProjectService.reads_for_member, "project_id", "user_id"),
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
    prefetch=from_params(WebhookSecrets.reads_for_get, "project_id"),
)
def webhook_secret(call: Call) -> WebhookSecretOut:
    secret = bootstrap.container().webhook_secrets.get(call.principal, call.params["project_id"])
    return WebhookSecretOut(secret=secret)
