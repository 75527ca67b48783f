"""Workflows: create, read, list, change and delete them (their runs come separately).

Who may do what, as for tasks: a caller who is not a member of the workflow's project gets 404;
viewers read; members create and change; members delete the workflows they created and admins
delete any.

Each use case reads what it needs in one round trip (the route prefetches the workflow, its
project, the caller's membership and the steps' tasks with the session) and writes one
conditional item (the workflow, with a check that its project still exists), so every route
stays within the call budget of `docs/data-model.md`.

A workflow's `schedule` is validated, stored and shown with its `next_run_at` like a task's;
the scheduler sync that makes it fire (one EventBridge Scheduler schedule per scheduled
workflow) is added with workflow runs, so for now nothing fires it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from chalicelib.domain import schedules
from chalicelib.domain.errors import (
    Forbidden,
    NotFound,
)
from chalicelib.domain.ids import project_of
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import ProjectRole
from chalicelib.domain.schedules import (
    CronScheduleInput,
    OnceScheduleInput,
    RateScheduleInput,
    Schedule,
)
from chalicelib.domain.workflows import (
    Step,
    Workflow,
    WorkflowCreate,
    WorkflowUpdate,
    check_steps,
    new_workflow_id,
    wrong_task_error,
)
from chalicelib.ports import (
    Clock,
    Prefetcher,
    PrefetchKey,
    ProjectRepository,
    TaskRepository,
    UserRepository,
    WorkflowRepository,
    reads,
)
from chalicelib.services.access import ProjectAccess, ProjectContext, project_reads, scoped_reads
from chalicelib.services.common import require_version, with_version_retries

READ_ROLE = ProjectRole.VIEWER
WRITE_ROLE = ProjectRole.MEMBER
DELETE_ANY_ROLE = ProjectRole.ADMIN  # members delete the workflows they created


def task_keys(project_id: str | None, steps: Sequence[Step]) -> list[PrefetchKey]:
    """The steps' tasks worth reading: only ids that name the project can be its tasks."""
    ids = dict.fromkeys(step.task_id for step in steps)
    return [reads.task(task_id) for task_id in ids if project_of(task_id) == project_id]


# A BatchGetItem takes 100 keys: the session and a route's own keys fit beside this many tasks of
# a body; the service reads any others (at most 10, see STEPS_MAX) in one more batch.
BODY_TASKS_PREFETCHED = 90


def _body_reads(
    principal: Principal,
    project_id: str | None,
    task_ids: Iterable[str],
    schedule: OnceScheduleInput | RateScheduleInput | CronScheduleInput | None,
) -> list[PrefetchKey]:
    """The tasks a body's steps name (ids of the project; of any project while it is unknown),
    and the caller when the schedule takes the caller's time zone."""
    wanted = dict.fromkeys(
        t for t in task_ids if (project_of(t) == project_id if project_id else project_of(t))
    )
    keys = [reads.task(task_id) for task_id in wanted][:BODY_TASKS_PREFETCHED]
    if schedule is not None and schedule.timezone is None:
        keys.append(reads.user(principal.user_id))
    return keys


class WorkflowService:
    def __init__(
        self,
        workflows: WorkflowRepository,
        tasks: TaskRepository,
        projects: ProjectRepository,
        users: UserRepository,
        prefetcher: Prefetcher,
        clock: Clock,
    ) -> None:
        self._workflows = workflows
        self._tasks = tasks
        self._users = users
        self._access = ProjectAccess(projects)
        self._prefetch = prefetcher
        self._clock = clock

    # ---- first reads: what each use case reads before anything else ------------------------------
    # The route hands the same declaration to authentication, which fetches these items with the
    # caller's session (those of a body once it is valid); the use case warms it again: a no-op
    # then, one round trip for any other caller.

    @staticmethod
    def reads_for_find(principal: Principal, project_id: str | None) -> list[PrefetchKey]:
        """Listing a project's workflows: the project and the caller's membership."""
        return project_reads(principal, project_id or principal.personal_project_id)

    @staticmethod
    def reads_for_create(principal: Principal, command: WorkflowCreate) -> list[PrefetchKey]:
        """Creating a workflow: its project, the caller's membership, the steps' tasks and the
        caller when the schedule takes the caller's zone."""
        project_id = command.project_id or principal.personal_project_id
        task_ids = (step.task_id for step in command.steps)
        return [
            *project_reads(principal, project_id),
            *_body_reads(principal, project_id, task_ids, command.schedule),
        ]

    @staticmethod
    def reads_for_workflow(principal: Principal, workflow_id: str) -> list[PrefetchKey]:
        """Reading, changing or deleting a workflow: it, its project and the caller's membership
        (`_require` warms them)."""
        return scoped_reads(principal, workflow_id, reads.workflow)

    @staticmethod
    def reads_for_changes(principal: Principal, command: WorkflowUpdate) -> list[PrefetchKey]:
        """Changing a workflow, from the body: the new steps' tasks and the caller when the new
        schedule takes the caller's zone."""
        task_ids = (step.task_id for step in command.steps or ())
        return _body_reads(principal, None, task_ids, command.schedule)

    # ---- reading -------------------------------------------------------------------------------

    def get(self, principal: Principal, workflow_id: str) -> Workflow:
        return self._require(principal, workflow_id, READ_ROLE)[0]

    def find(
        self, principal: Principal, project_id: str | None, page: PageRequest
    ) -> Page[Workflow]:
        """One page of a project's workflows (default: the caller's personal project), newest
        first."""
        self._prefetch.warm(self.reads_for_find(principal, project_id))
        project_id = project_id or self._personal_project(principal)
        self._access.require(principal.user_id, project_id, READ_ROLE)
        return self._workflows.find(project_id, page)

    # ---- writing -------------------------------------------------------------------------------

    def create(self, principal: Principal, command: WorkflowCreate) -> Workflow:
        self._prefetch.warm(self.reads_for_create(principal, command))
        project_id = command.project_id or self._personal_project(principal)
        steps = tuple(step.to_step() for step in command.steps)
        # What the first reads could not name: a personal project the principal does not carry,
        # tasks past the first BODY_TASKS_PREFETCHED.
        self._prefetch.warm([*project_reads(principal, project_id), *task_keys(project_id, steps)])
        self._access.require(principal.user_id, project_id, WRITE_ROLE)
        check_steps(steps)
        self._check_tasks(project_id, steps)
        now = self._clock.now()
        schedule = self._schedule(principal, command.schedule, now)
        workflow = Workflow(
            id=new_workflow_id(project_id),
            project_id=project_id,
            name=command.name,
            steps=steps,
            max_concurrency=command.max_concurrency,
            on_failure=command.on_failure,
            schedule=schedule,
            next_run_at=schedules.next_run(schedule, now) if schedule else None,
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
        )
        return self._workflows.create(workflow)

    def update(
        self,
        principal: Principal,
        workflow_id: str,
        update: WorkflowUpdate,
        expected_version: int | None = None,
    ) -> Workflow:
        """Apply the fields present (`steps` replaces the list; null clears `schedule`). With
        `expected_version`, a stale version is 412; without, a lost race is retried."""
        new_steps = (
            tuple(step.to_step() for step in update.steps) if update.steps is not None else None
        )

        self._prefetch.warm(
            [
                *self.reads_for_workflow(principal, workflow_id),
                *self.reads_for_changes(principal, update),
            ]
        )

        def attempt() -> Workflow:
            before, _context = self._require(
                principal,
                workflow_id,
                WRITE_ROLE,
                lambda project_id: task_keys(project_id, new_steps or ()),
            )
            require_version("workflow", before.version, expected_version)
            if new_steps is not None:
                check_steps(new_steps)
                self._check_tasks(before.project_id, new_steps)
            after = self._apply(principal, before, update, new_steps)
            if after == before:
                return before
            return self._workflows.update(before, after)

        return with_version_retries("workflow", expected_version, attempt)

    def delete(
        self, principal: Principal, workflow_id: str, expected_version: int | None = None
    ) -> None:
        def attempt() -> None:
            workflow, context = self._require(principal, workflow_id, WRITE_ROLE)
            if workflow.created_by != principal.user_id and not context.role.at_least(
                DELETE_ANY_ROLE
            ):
                raise Forbidden("members delete their own workflows; admins delete any")
            require_version("workflow", workflow.version, expected_version)
            self._workflows.delete(workflow)

        with_version_retries("workflow", expected_version, attempt)

    # ---- helpers -------------------------------------------------------------------------------

    def _require(
        self,
        principal: Principal,
        workflow_id: str,
        at_least: ProjectRole,
        more_keys: Callable[[str], list[PrefetchKey]] | None = None,
    ) -> tuple[Workflow, ProjectContext]:
        """The workflow as this caller may reach it: 404 unless a member of its project."""
        self._prefetch.warm(self.reads_for_workflow(principal, workflow_id))
        # An id that names no project names no workflow: not worth a read.
        workflow = self._workflows.get(workflow_id) if project_of(workflow_id) else None
        if workflow is None:
            raise NotFound("workflow not found")
        project_id = workflow.project_id
        if more_keys:
            self._prefetch.warm(more_keys(project_id))
        try:
            return workflow, self._access.require(principal.user_id, project_id, at_least)
        except NotFound:
            raise NotFound("workflow not found") from None

    def _check_tasks(self, project_id: str, steps: Sequence[Step]) -> None:
        """422 naming the steps whose task is missing or of another project (one batch read)."""
        wanted = [key.ids[0] for key in task_keys(project_id, steps)]
        found = self._tasks.get_many(wanted) if wanted else {}
        wrong = {
            step.task_id
            for step in steps
            if step.task_id not in found or found[step.task_id].project_id != project_id
        }
        if wrong:
            raise wrong_task_error(steps, wrong)

    def _personal_project(self, principal: Principal) -> str:
        if principal.personal_project_id:
            return principal.personal_project_id
        user = self._users.get(principal.user_id)
        if user is None:
            raise NotFound("user not found")
        return user.personal_project_id

    def _schedule(
        self,
        principal: Principal,
        data: OnceScheduleInput | RateScheduleInput | CronScheduleInput | None,
        now: datetime,
    ) -> Schedule | None:
        """The stored schedule: in the zone it names, else the caller's."""
        if data is None:
            return None
        timezone = data.timezone
        if timezone is None:
            user = self._users.get(principal.user_id)
            if user is None:
                raise NotFound("user not found")
            timezone = user.timezone
        return schedules.build_schedule(data, default_timezone=timezone, now=now)

    def _apply(
        self,
        principal: Principal,
        workflow: Workflow,
        update: WorkflowUpdate,
        new_steps: tuple[Step, ...] | None,
    ) -> Workflow:
        fields = update.model_fields_set
        changes: dict[str, object] = {}
        if update.name is not None:
            changes["name"] = update.name
        if new_steps is not None:
            changes["steps"] = new_steps
        if update.max_concurrency is not None:
            changes["max_concurrency"] = update.max_concurrency
        if update.on_failure is not None:
            changes["on_failure"] = update.on_failure
        now = self._clock.now()
        if "schedule" in fields:
            schedule = self._schedule(principal, update.schedule, now)
            changes["schedule"] = schedule
            changes["next_run_at"] = schedules.next_run(schedule, now) if schedule else None
        after = workflow.with_changes(**changes)
        if after != workflow:
            after = after.with_changes(updated_at=now)
        return after
