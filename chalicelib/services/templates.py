"""Task templates: create, read, list, change and delete them; make tasks from them.

Who may do what (API.md): a caller who is not a member of the template's project gets 404;
viewers read; members create and change; members delete the templates they created and admins
delete any.

Making tasks from a template (`instantiate`) goes through `TaskService.create` for the task
and then for each subtask (with `parent_id` set), so history, notifications, search and the
stream see them as any other tasks, and every task rule is checked in one place. Everything is
validated before the first write (placeholders, field limits); if a later write fails anyway,
the task made so far is deleted again (with its subtasks) and the error is raised.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from chalicelib.domain.errors import (
    DomainError,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from chalicelib.domain.ids import project_of
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import ProjectRole
from chalicelib.domain.tasks import Task
from chalicelib.domain.templates import (
    FromTemplate,
    Template,
    TemplateCreate,
    TemplateUpdate,
    instantiate,
    new_template_id,
)
from chalicelib.ports import (
    Clock,
    Prefetcher,
    PrefetchKey,
    ProjectRepository,
    TemplateRepository,
    reads,
)
from chalicelib.services.access import ProjectAccess, ProjectContext, project_reads, scoped_reads
from chalicelib.services.common import require_version, with_version_retries
from chalicelib.services.tasks import TaskService

READ_ROLE = ProjectRole.VIEWER
WRITE_ROLE = ProjectRole.MEMBER
DELETE_ANY_ROLE = ProjectRole.ADMIN  # members delete the templates they created


@dataclass(frozen=True)
class Instantiated:
    task: Task
    subtasks: list[Task]


class TemplateService:
    def __init__(
        self,
        templates: TemplateRepository,
        tasks: TaskService,
        projects: ProjectRepository,
        prefetcher: Prefetcher,
        clock: Clock,
    ) -> None:
        self._templates = templates
        self._tasks = tasks
        self._projects = projects
        self._access = ProjectAccess(projects)
        self._prefetch = prefetcher
        self._clock = clock

    # ---- first reads: what each use case reads before anything else ------------------------------
    # The route hands the same declaration to authentication, which fetches these items with the
    # caller's session; the use case warms it again: a no-op then, one round trip for any other
    # caller.

    # Listing and creating a project's templates: the project and the caller's membership.
    reads_for_project = staticmethod(project_reads)

    @staticmethod
    def reads_for_template(principal: Principal, template_id: str) -> list[PrefetchKey]:
        """Reading, changing, deleting or instantiating a template: it, its project and the
        caller's membership (`_require` warms them)."""
        return scoped_reads(principal, template_id, reads.template)

    @classmethod
    def reads_for_instantiate(
        cls, principal: Principal, command: FromTemplate
    ) -> list[PrefetchKey]:
        """Making tasks from a template, from the body: the template's reads."""
        return cls.reads_for_template(principal, command.template_id)

    # ---- reading -------------------------------------------------------------------------------

    def get(self, principal: Principal, template_id: str) -> Template:
        return self._require(principal, template_id, READ_ROLE)[0]

    def find(self, principal: Principal, project_id: str, page: PageRequest) -> Page[Template]:
        self._prefetch.warm(self.reads_for_project(principal, project_id))
        self._access.require(principal.user_id, project_id, READ_ROLE)
        return self._templates.find(project_id, page)

    # ---- writing -------------------------------------------------------------------------------

    def create(self, principal: Principal, project_id: str, command: TemplateCreate) -> Template:
        self._prefetch.warm(self.reads_for_project(principal, project_id))
        self._access.require(principal.user_id, project_id, WRITE_ROLE)
        now = self._clock.now()
        template = Template(
            id=new_template_id(project_id),
            project_id=project_id,
            name=command.name,
            task=command.task.to_blueprint(),
            subtasks=tuple(sub.to_blueprint() for sub in command.subtasks),
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
        )
        self._check_assignees(template, None)
        return self._templates.create(template)

    def update(
        self,
        principal: Principal,
        template_id: str,
        update: TemplateUpdate,
        expected_version: int | None = None,
    ) -> Template:
        """Apply the fields present. With `expected_version`, a stale version is 412; without,
        a lost race is retried."""

        def attempt() -> Template:
            before, _context = self._require(principal, template_id, WRITE_ROLE)
            require_version("template", before.version, expected_version)
            changes: dict[str, object] = {}
            if update.name is not None:
                changes["name"] = update.name
            if update.task is not None:
                changes["task"] = update.task.to_blueprint()
            if update.subtasks is not None:
                changes["subtasks"] = tuple(sub.to_blueprint() for sub in update.subtasks)
            after = before.with_changes(**changes)
            if after == before:
                return before
            self._check_assignees(after, before)
            after = after.with_changes(updated_at=self._clock.now())
            return self._templates.update(before, after)

        return with_version_retries("template", expected_version, attempt)

    def delete(
        self, principal: Principal, template_id: str, expected_version: int | None = None
    ) -> None:
        def attempt() -> None:
            template, context = self._require(principal, template_id, WRITE_ROLE)
            if template.created_by != principal.user_id and not context.role.at_least(
                DELETE_ANY_ROLE
            ):
                raise Forbidden("members delete their own templates; admins delete any")
            require_version("template", template.version, expected_version)
            self._templates.delete(template)

        with_version_retries("template", expected_version, attempt)

    def purge_project(self, project_id: str) -> int:
        """After a project's deletion (the stream consumer): its templates go."""
        return self._templates.purge_project(project_id)

    # ---- making tasks --------------------------------------------------------------------------

    def instantiate(self, principal: Principal, command: FromTemplate) -> Instantiated:
        """`POST /tasks/from-template`: the task and its subtasks, made from the template with
        `values`, in the template's project unless `project_id` names another one (where the
        caller must be able to create tasks)."""
        template = self._require(principal, command.template_id, READ_ROLE)[0]
        project_id = command.project_id or template.project_id
        plan = instantiate(template, command.values, project_id)
        task = self._tasks.create(principal, plan.task)
        subtasks: list[Task] = []
        try:
            for sub in plan.subtasks:
                subtasks.append(
                    self._tasks.create(principal, sub.model_copy(update={"parent_id": task.id}))
                )
        except Exception:
            # All or nothing as far as we can: deleting the task deletes its subtasks.
            with contextlib.suppress(DomainError):
                self._tasks.delete(principal, task.id)
            raise
        return Instantiated(task, subtasks)

    # ---- helpers -------------------------------------------------------------------------------

    def _require(
        self, principal: Principal, template_id: str, at_least: ProjectRole
    ) -> tuple[Template, ProjectContext]:
        """The template as this caller may reach it: 404 unless a member of its project."""
        self._prefetch.warm(self.reads_for_template(principal, template_id))
        template = self._templates.get(template_id) if project_of(template_id) else None
        if template is None:
            raise NotFound("template not found")
        project_id = template.project_id
        try:
            return template, self._access.require(principal.user_id, project_id, at_least)
        except NotFound:
            raise NotFound("template not found") from None

    def _check_assignees(self, template: Template, before: Template | None) -> None:
        """422 for an assignee who is not a member of the project (only new ones are read)."""
        known = set(before.assignee_ids) if before else set()
        new = [a for a in template.assignee_ids if a not in known]
        if not new:
            return
        self._prefetch.warm([reads.member(template.project_id, a) for a in new])
        wrong = {a for a in new if self._projects.membership(template.project_id, a) is None}
        if not wrong:
            return
        details = []
        blueprints = [(["body", "task"], template.task)] + [
            (["body", "subtasks", index], sub) for index, sub in enumerate(template.subtasks)
        ]
        for loc, blueprint in blueprints:
            if blueprint.assignee_id in wrong:
                details.append(
                    {
                        "loc": [*loc, "assignee_id"],
                        "message": "the assignee must be a member of the project",
                    }
                )
        raise ValidationFailed("the assignee must be a member of the project", details)
