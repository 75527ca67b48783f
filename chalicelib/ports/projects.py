"""Projects and their members."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

# The domain's types are for annotations only (see the package's docstring).
if TYPE_CHECKING:
    from chalicelib.domain.model import Page, PageRequest
    from chalicelib.domain.projects import Membership, Project, ProjectRole, ProjectWithRole


class ProjectRepository(Protocol):
    """Projects, their members, and each user's {project_id: role} index."""

    def create(self, project: Project, owner: Membership) -> None:
        """Write the project, the owner's membership and index entry in one transaction."""
        ...

    def get(self, project_id: str) -> Project | None: ...

    def save(self, project: Project) -> Project:
        """Conditional on `project.version`; returns it with version + 1, else `StaleVersion`."""
        ...

    def delete(self, project: Project) -> None:
        """Remove the project at once (conditional on its version; `StaleVersion` otherwise).

        Its tasks, memberships and index entries go afterwards (asynchronously); every read
        checks the project, so nothing of it is visible from the moment this returns.
        """
        ...

    def membership(self, project_id: str, user_id: str) -> Membership | None: ...

    def members(self, project_id: str, page: PageRequest) -> Page[Membership]: ...

    def add_member(self, membership: Membership) -> None:
        """Write the membership and the user's index entry in one transaction.

        `MemberExists` if the user is already a member; `NotFound` if the project is gone.
        """
        ...

    def set_member_role(self, membership: Membership) -> None:
        """Change the role of an existing member (`NotAMember` if there is none)."""
        ...

    def remove_member(self, project_id: str, user_id: str) -> None:
        """`NotAMember` if there is none."""
        ...

    def roles_of(self, user_id: str) -> dict[str, ProjectRole]:
        """The user's projects and roles (the index; may still name a just-deleted project)."""
        ...

    def get_many(self, project_ids: Sequence[str]) -> list[Project]:
        """The projects that exist among `project_ids`, in that order (one round trip)."""
        ...

    def list_for_user(self, user_id: str, page: PageRequest) -> Page[ProjectWithRole]:
        """One page of the user's projects in id order, with the user's role in each.

        Pages through the index by id and reads the page's projects in one round trip;
        projects deleted meanwhile are left out (a page may then hold fewer than `limit`).
        """
        ...
