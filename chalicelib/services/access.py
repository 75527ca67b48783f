"""Who may see and do what in a project: the one place that answers it.

A caller who is not a member gets NotFound for the project and everything in it (existence is
never revealed); a member whose role is too low gets Forbidden.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.errors import Forbidden, NotFound
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.ports import ProjectRepository


@dataclass(frozen=True)
class ProjectContext:
    project: Project
    membership: Membership

    @property
    def role(self) -> ProjectRole:
        return self.membership.role


class ProjectAccess:
    def __init__(self, projects: ProjectRepository) -> None:
        self._projects = projects

    def require(self, user_id: str, project_id: str, at_least: ProjectRole) -> ProjectContext:
        project = self._projects.get(project_id)
        membership = self._projects.membership(project_id, user_id) if project else None
        if project is None or membership is None:
            raise NotFound("project not found")
        if not membership.role.at_least(at_least):
            raise Forbidden(f"this needs the {at_least.value} role or higher in the project")
        return ProjectContext(project, membership)
