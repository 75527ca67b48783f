"""Projects, their members and the rights of each project role.

The rules (the services enforce them; `ProjectAccess` answers "may this caller see it"):

- Roles rank owner > admin > member > viewer; each has the rights of the ones below it.
  Every member may read the project and its member list; admin+ may change the project's name
  and description and manage members; only the owner may delete the project.
- A project has exactly one owner, for its whole life (ownership transfer is not offered).
  `owner` is therefore not a role anyone can grant: a body that asks for it fails validation
  (422). Changing the owner's role or removing the owner is a state conflict (409), whoever asks.
- Admins manage every member but the owner: add (as admin, member or viewer), change roles
  (their own included) and remove.
- Any member but the owner may leave the project (remove themselves).
- The personal project (made at registration, `personal=True`) belongs to its owner alone:
  adding a member to it is 409 and deleting it is 409. Its name and description may change.
- Callers who are not members get 404 for the project and everything in it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from chalicelib.domain.model import Input
from chalicelib.domain.users import Email

PERSONAL_PROJECT_NAME = "Personal"
# Ids are ULIDs; anything much longer cannot name an item (and must not reach DynamoDB's key
# size limits): it is simply not found.
MAX_ID_LENGTH = 128


class ProjectRole(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: ProjectRole) -> bool:
        return self.rank >= other.rank


_RANK = {ProjectRole.VIEWER: 0, ProjectRole.MEMBER: 1, ProjectRole.ADMIN: 2, ProjectRole.OWNER: 3}

# Who may do what: the minimum role of each project operation.
READ_ROLE = ProjectRole.VIEWER
EDIT_PROJECT_ROLE = ProjectRole.ADMIN
MANAGE_MEMBERS_ROLE = ProjectRole.ADMIN
DELETE_PROJECT_ROLE = ProjectRole.OWNER


def plausible_id(value: str) -> bool:
    """Whether `value` could be an id at all (empty or oversized ones name nothing)."""
    return 0 < len(value) <= MAX_ID_LENGTH


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    description: str
    owner_id: str
    created_at: datetime
    updated_at: datetime
    personal: bool = False
    version: int = 1


@dataclass(frozen=True)
class Membership:
    project_id: str
    user_id: str
    role: ProjectRole
    added_at: datetime
    # Copies of the user's, so a member list is one query (the name may lag a rename).
    email: str = ""
    name: str = ""


@dataclass(frozen=True)
class ProjectWithRole:
    """A project as one user sees it: with that user's role in it (`my_role`)."""

    project: Project
    role: ProjectRole


# ---- request bodies -------------------------------------------------------------------------

ProjectName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Description = Annotated[str, StringConstraints(max_length=2000)]
# The roles that can be granted: a project's one owner is its creator.
GrantableRole = Literal["admin", "member", "viewer"]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]


class ProjectCreate(Input):
    name: ProjectName
    description: Description | None = None


class ProjectUpdate(Input):
    """Absent fields keep their value; `description: null` clears it; `name` cannot be null."""

    name: ProjectName | None = None
    description: Description | None = None

    @field_validator("name")
    @classmethod
    def _name_not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class MemberAdd(Input):
    """Add a user, named by exactly one of `email` or `user_id`."""

    email: Email | None = None
    user_id: UserId | None = None
    role: GrantableRole = Field(description="owner cannot be granted: a project has one owner.")

    @model_validator(mode="after")
    def _exactly_one_target(self) -> MemberAdd:
        if (self.email is None) == (self.user_id is None):
            raise ValueError("give exactly one of email or user_id")
        return self


class MemberRoleUpdate(Input):
    role: GrantableRole = Field(description="owner cannot be granted: a project has one owner.")
