"""Projects, their members and the rights of each project role."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

PERSONAL_PROJECT_NAME = "Personal"


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
