"""Who may see and do what in a project: the one place that answers it.

A caller who is not a member gets NotFound for the project and everything in it (existence is
never revealed); a member whose role is too low gets Forbidden.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.domain.errors import Forbidden, NotFound
from chalicelib.domain.ids import ScopedId
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import Membership, Project, ProjectRole, plausible_id
from chalicelib.domain.tasks import Task
from chalicelib.ports import Prefetcher, PrefetchKey, ProjectRepository, TaskRepository, reads


@dataclass(frozen=True)
class ProjectContext:
    project: Project
    membership: Membership

    @property
    def role(self) -> ProjectRole:
        return self.membership.role


def project_reads(principal: Principal, project_id: str) -> list[PrefetchKey]:
    """The first reads of a use case on a project (or its list of items): the project and the
    caller's membership; none for an id that cannot name a project, which the use case answers
    with its 404."""
    if not plausible_id(project_id):
        return []
    return [reads.project(project_id), reads.member(project_id, principal.user_id)]


def scoped_reads(
    principal: Principal, scoped_id: str, item: Callable[[str], PrefetchKey]
) -> list[PrefetchKey]:
    """The first reads of reaching an item of a project (a task, workflow, rule, ...): the item,
    its project and the caller's membership, all named by the item's scoped id; none for an id
    that names no item, which the use case answers with its 404."""
    scoped = ScopedId.parse(scoped_id)
    if scoped is None:
        return []
    project_id = scoped.project_id
    return [
        item(str(scoped)),
        reads.project(project_id),
        reads.member(project_id, principal.user_id),
    ]


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


class TaskReach:
    """A task as one caller may reach it: 404 unless the caller is a member of its project."""

    def __init__(
        self, tasks: TaskRepository, projects: ProjectRepository, prefetcher: Prefetcher
    ) -> None:
        self._tasks = tasks
        self._access = ProjectAccess(projects)
        self._prefetch = prefetcher

    @staticmethod
    def reads(principal: Principal, task_id: str) -> list[PrefetchKey]:
        """The first reads of reaching a task."""
        return scoped_reads(principal, task_id, reads.task)

    def require(
        self, principal: Principal, task_id: str, at_least: ProjectRole
    ) -> tuple[Task, ProjectContext]:
        self._prefetch.warm(self.reads(principal, task_id))
        task = self._tasks.get(task_id)
        if task is None:
            raise NotFound("task not found")
        try:
            return task, self._access.require(principal.user_id, task.project_id, at_least)
        except NotFound:
            raise NotFound("task not found") from None
