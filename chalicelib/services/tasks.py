"""Tasks: create, read, change, assign, complete, delete, list and subtasks.

Each use case reads what it needs in at most two round trips (the first comes with the session,
see `prefetch`) and writes in one transaction, so every route stays within the call budget of
`docs/data-model.md`.
"""

from __future__ import annotations

import enum
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel

from chalicelib.domain import schedules
from chalicelib.domain.activity import (
    EventType,
    HistoryEvent,
    Notification,
    NotificationType,
    Record,
)
from chalicelib.domain.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    StaleVersion,
)
from chalicelib.domain.errors import validation_error as invalid
from chalicelib.domain.ids import ScopedId
from chalicelib.domain.model import Page, PageRequest, new_id, rfc3339
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import ProjectRole
from chalicelib.domain.schedules import (
    CronScheduleInput,
    OnceScheduleInput,
    RateScheduleInput,
    Schedule,
)
from chalicelib.domain.tasks import (
    AssignInput,
    Priority,
    Status,
    Task,
    TaskCreate,
    TaskUpdate,
    check_prerequisites,
    cycle_error,
    find_cycle,
    new_task_id,
    resolve_due,
)
from chalicelib.domain.users import User
from chalicelib.ports import (
    Clock,
    Prefetcher,
    PrefetchKey,
    ProjectRepository,
    TaskQuery,
    TaskRepository,
    UserRepository,
    reads,
)
from chalicelib.services.access import ProjectAccess, TaskReach

DueFilter = Literal["overdue", "today", "future", "none"]
SORTS = ("due_date", "-due_date", "priority", "-priority", "status", "created_at", "-created_at")
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class TaskFilters:
    project_id: str | None = None
    statuses: frozenset[Status] = frozenset()
    priorities: frozenset[Priority] = frozenset()
    assignee_id: str | None = None  # "me" allowed
    due: DueFilter | None = None
    tag: str | None = None
    parent_id: str | None = None
    sort: str = "-created_at"


def _json_ready(value: object) -> object:
    if isinstance(value, Schedule):
        return schedules.to_public(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


RECORDED_FIELDS = (
    "title", "description", "status", "priority", "due_date", "assignee_id", "tags", "parent_id",
    "depends_on", "completed_at", "schedule", "action", "retry",
)  # fmt: skip


def recorded_changes(before: Task, after: Task) -> dict[str, tuple[object, object]]:
    """The fields a history event records, as (old, new) JSON-ready pairs."""
    return {
        name: (_json_ready(getattr(before, name)), _json_ready(getattr(after, name)))
        for name in RECORDED_FIELDS
        if getattr(before, name) != getattr(after, name)
    }


def activity_of(before: Task | None, after: Task, actor: User) -> list[Record]:
    """The history event of a change, and the notifications it sends (never to the actor)."""
    at = after.updated_at
    changes: dict[str, tuple[object, object]]
    if before is None:
        changes = {
            name: (None, _json_ready(getattr(after, name)))
            for name in RECORDED_FIELDS
            if getattr(after, name) not in (None, "", ())
        }
        kind = EventType.TASK_CREATED
    else:
        changes = recorded_changes(before, after)
        if after.status == Status.COMPLETED and before.status != Status.COMPLETED:
            kind = EventType.TASK_COMPLETED
        elif set(changes) == {"assignee_id"}:
            kind = EventType.TASK_ASSIGNED
        else:
            kind = EventType.TASK_UPDATED
    records: list[Record] = [HistoryEvent(new_id(), after.id, kind, actor.id, at, changes)]

    def notify(user_id: str | None, kind: NotificationType, message: str) -> None:
        if user_id and user_id != actor.id:
            records.append(
                Notification(new_id(), user_id, kind, message, at, after.id, after.project_id)
            )

    if after.assignee_id and (before is None or before.assignee_id != after.assignee_id):
        notify(
            after.assignee_id,
            NotificationType.TASK_ASSIGNED,
            f'{actor.name} assigned you "{after.title}"',
        )
    if before is not None and before.status != after.status:
        message = f'{actor.name} moved "{after.title}" to {after.status.value}'
        for user_id in dict.fromkeys([after.created_by, after.assignee_id]):
            notify(user_id, NotificationType.TASK_STATUS_CHANGED, message)
    return records


class TaskService:
    def __init__(
        self,
        tasks: TaskRepository,
        projects: ProjectRepository,
        users: UserRepository,
        prefetcher: Prefetcher,
        clock: Clock,
        check_webhook_url: Callable[[str], None],
    ) -> None:
        self._tasks = tasks
        self._projects = projects
        self._users = users
        self._prefetch = prefetcher
        self._access = ProjectAccess(projects)
        self._reach = TaskReach(tasks, projects, prefetcher)
        self._clock = clock
        # Refuses (422) a webhook URL that resolves to a private address where that is not
        # allowed; an adapter, since it resolves DNS.
        self._check_webhook_url = check_webhook_url

    # ---- first reads: what each use case reads before anything else ------------------------------
    # The route hands the same declaration to authentication, which fetches these items with the
    # caller's session; the use case warms it again (get and preview through TaskReach.require):
    # a no-op then, one round trip for any other caller.

    # Reading one task (get, preview, subtasks): the task, its project and the caller's
    # membership, all named by the task's id.
    reads_for_task = staticmethod(TaskReach.reads)

    @classmethod
    def reads_for_change(cls, principal: Principal, task_id: str) -> list[PrefetchKey]:
        """Changing a task (update, assign, complete): those of reading it, and the caller, whose
        zone and name the change needs."""
        return [*cls.reads_for_task(principal, task_id), reads.user(principal.user_id)]

    @classmethod
    def reads_for_delete(cls, principal: Principal, task_id: str) -> list[PrefetchKey]:
        """Deleting a task: those of reading it, and its project's dependency graph."""
        scoped = ScopedId.parse(task_id)
        graph = [reads.graph(scoped.project_id)] if scoped else []
        return [*cls.reads_for_task(principal, task_id), *graph]

    @staticmethod
    def reads_for_create(principal: Principal) -> list[PrefetchKey]:
        """Creating a task: the caller (the project, members and tasks it names come second)."""
        return [reads.user(principal.user_id)]

    @staticmethod
    def reads_for_find(
        principal: Principal, project_id: str | None, assignee_id: str | None
    ) -> list[PrefetchKey]:
        """Listing tasks: the caller, and the project listed and the caller's membership, or the
        caller's projects for their tasks across projects (`assignee_id=me` without a project)."""
        caller = reads.user(principal.user_id)
        if assignee_id == "me" and not project_id:
            return [caller, reads.user_projects(principal.user_id)]
        project_id = project_id or principal.personal_project_id
        if not project_id:  # the caller's own record names their personal project
            return [caller]
        return [caller, reads.project(project_id), reads.member(project_id, principal.user_id)]

    # ---- reading -------------------------------------------------------------------------------

    def preview(self, principal: Principal, task_id: str, count: int) -> list[datetime]:
        """The next `count` firings of the task's schedule (none without a schedule)."""
        task = self._reach.require(principal, task_id, ProjectRole.VIEWER)[0]
        if task.schedule is None:
            return []
        return schedules.preview(task.schedule, self._clock.now(), count)

    def get(self, principal: Principal, task_id: str) -> Task:
        return self._reach.require(principal, task_id, ProjectRole.VIEWER)[0]

    def subtasks(self, principal: Principal, task_id: str, page: PageRequest) -> Page[Task]:
        self._prefetch.warm(self.reads_for_task(principal, task_id))
        task = self._tasks.get(task_id)
        if task is None:
            raise NotFound("task not found")
        ids = sorted(task.subtask_ids)
        # A bad cursor is refused only after the access check: a non-member must get the 404
        # of a missing task, not learn from a 400 that this one exists.
        cursor_ok = not page.cursor or page.cursor in ids
        if page.cursor and cursor_ok:
            ids = ids[ids.index(page.cursor) + 1 :]
        window = ids[: page.limit] if cursor_ok else []
        self._prefetch.warm([reads.task(sub) for sub in window])
        try:
            self._access.require(principal.user_id, task.project_id, ProjectRole.VIEWER)
        except NotFound:
            raise NotFound("task not found") from None
        if not cursor_ok:
            raise BadRequest("cursor is not valid for this list")
        found = self._tasks.get_many(window)
        items = [found[sub] for sub in window if sub in found]
        next_cursor = window[-1] if len(ids) > page.limit else None
        return Page(items=items, next_cursor=next_cursor)

    def find(self, principal: Principal, filters: TaskFilters, page: PageRequest) -> Page[Task]:
        if filters.sort not in SORTS:
            raise invalid(["query", "sort"], f"sort must be one of {', '.join(SORTS)}")
        self._prefetch.warm(self.reads_for_find(principal, filters.project_id, filters.assignee_id))
        user = self._caller(principal)
        assignee = principal.user_id if filters.assignee_id == "me" else filters.assignee_id
        across = filters.assignee_id == "me" and filters.project_id is None
        if across:
            if filters.sort.lstrip("-") not in ("created_at", "due_date"):
                raise invalid(
                    ["query", "sort"],
                    "across projects, tasks sort by created_at or due_date",
                )
            project_ids = frozenset(self._projects.roles_of(principal.user_id))
        else:
            project_id = (
                filters.project_id or principal.personal_project_id or user.personal_project_id
            )
            self._access.require(principal.user_id, project_id, ProjectRole.VIEWER)
            project_ids = frozenset({project_id})
        statuses = set(filters.statuses)
        due_after = due_before = None
        now = self._clock.now()
        if filters.due == "overdue":
            due_before = now
            open_statuses = {Status.PENDING, Status.IN_PROGRESS}
            statuses = statuses & open_statuses if statuses else open_statuses
            if not statuses:
                return Page(items=[])
        elif filters.due == "today":
            zone = zoneinfo.ZoneInfo(user.timezone)
            start = datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone)
            due_after = start - timedelta(microseconds=1)
            due_before = start + timedelta(days=1)
        elif filters.due == "future":
            due_after = now
        query = TaskQuery(
            project_ids=project_ids,
            page=page,
            sort=filters.sort,
            across_projects_of_assignee=principal.user_id if across else None,
            statuses=frozenset(statuses),
            priorities=filters.priorities,
            assignee_id=None if across else assignee,
            tag=filters.tag,
            parent_id=filters.parent_id,
            due_after=due_after,
            due_before=due_before,
            no_due_date=filters.due == "none",
        )
        return self._tasks.find(query)

    def _caller(self, principal: Principal) -> User:
        user = self._users.get(principal.user_id)
        if user is None:
            raise NotFound("user not found")
        return user

    # ---- writing -------------------------------------------------------------------------------

    def create(self, principal: Principal, command: TaskCreate) -> Task:
        self._prefetch.warm(self.reads_for_create(principal))
        user = self._caller(principal)
        project_id = command.project_id or user.personal_project_id
        keys: list[PrefetchKey] = [
            reads.project(project_id),
            reads.member(project_id, principal.user_id),
        ]
        keys += self._related_keys(
            project_id, command.assignee_id, command.parent_id, command.depends_on
        )
        if command.depends_on:
            keys.append(reads.graph(project_id))
        self._prefetch.warm(keys)
        self._access.require(principal.user_id, project_id, ProjectRole.MEMBER)
        now = self._clock.now()
        schedule = self._schedule(command.schedule, user, now)
        if command.action is not None:
            self._check_webhook_url(command.action.url)
        task = Task(
            id=new_task_id(project_id),
            project_id=project_id,
            title=command.title,
            description=command.description,
            status=command.status,
            priority=command.priority,
            due_date=resolve_due(command.due_date, user.timezone),
            assignee_id=command.assignee_id,
            tags=tuple(command.tags),
            parent_id=command.parent_id,
            depends_on=tuple(command.depends_on),
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
            completed_at=now if command.status == Status.COMPLETED else None,
            schedule=schedule,
            action=command.action,
            retry=command.retry,
            next_run_at=schedules.next_run(schedule, now) if schedule else None,
        )
        dependency_statuses = self._check_related(task, None)
        check_prerequisites(task, task.status, dependency_statuses)
        graph = self._tasks.graph(project_id) if task.depends_on else None
        records = activity_of(None, task, user)
        try:
            return self._tasks.create(task, graph, records)
        except StaleVersion:
            # The dependency graph moved under us: a new task closes no cycle, so retry once
            # against the fresh graph.
            return self._tasks.create(task, self._tasks.graph(project_id), records)

    def update(
        self,
        principal: Principal,
        task_id: str,
        update: TaskUpdate,
        expected_version: int | None = None,
    ) -> Task:
        fields = update.model_fields_set
        for _ in range(MAX_ATTEMPTS):
            # Again on each attempt: a retry reads the task (and the rest) afresh, in one call.
            self._prefetch.warm(self.reads_for_change(principal, task_id))
            user = self._caller(principal)
            before = self._tasks.get(task_id)
            if before is None:
                raise NotFound("task not found")
            project_id = before.project_id
            keys = self._related_keys(
                project_id,
                update.assignee_id if "assignee_id" in fields else None,
                update.parent_id if "parent_id" in fields else None,
                self._dependencies_to_check(before, update),
            )
            if "depends_on" in fields:
                keys.append(reads.graph(project_id))
            self._prefetch.warm(keys)
            try:
                self._access.require(principal.user_id, project_id, ProjectRole.MEMBER)
            except NotFound:
                raise NotFound("task not found") from None
            if expected_version is not None and before.version != expected_version:
                raise PreconditionFailed(
                    f"task is at version {before.version}, not {expected_version}"
                )
            after = self._apply(before, update, user)
            dependency_statuses = self._check_related(after, before)
            if after.status != before.status:
                check_prerequisites(after, after.status, dependency_statuses)
            graph = None
            if after.depends_on != before.depends_on:
                graph = self._tasks.graph(project_id)
                cycle = find_cycle(graph.edges, after.id, after.depends_on)
                if cycle:
                    raise cycle_error(cycle)
            if after == before:
                return before
            try:
                return self._tasks.update(before, after, graph, activity_of(before, after, user))
            except StaleVersion:
                if expected_version is not None:
                    raise PreconditionFailed("task was changed concurrently") from None
        raise Conflict("task is being changed concurrently; retry")

    def assign(
        self,
        principal: Principal,
        task_id: str,
        command: AssignInput,
        expected_version: int | None = None,
    ) -> Task:
        return self.update(
            principal, task_id, TaskUpdate(assignee_id=command.assignee_id), expected_version
        )

    def complete(
        self, principal: Principal, task_id: str, expected_version: int | None = None
    ) -> Task:
        return self.update(
            principal, task_id, TaskUpdate(status=Status.COMPLETED), expected_version
        )

    def delete(
        self, principal: Principal, task_id: str, expected_version: int | None = None
    ) -> None:
        self._prefetch.warm(self.reads_for_delete(principal, task_id))
        task = self._tasks.get(task_id)
        if task is None:
            raise NotFound("task not found")
        try:
            context = self._access.require(principal.user_id, task.project_id, ProjectRole.MEMBER)
        except NotFound:
            raise NotFound("task not found") from None
        if task.created_by != principal.user_id and not context.role.at_least(ProjectRole.ADMIN):
            raise Forbidden("members delete their own tasks; admins delete any")
        if expected_version is not None and task.version != expected_version:
            raise PreconditionFailed(f"task is at version {task.version}, not {expected_version}")
        try:
            self._tasks.delete(task, self._tasks.graph(task.project_id))
        except StaleVersion:
            raise PreconditionFailed("task was changed concurrently; read it again") from None

    # ---- rules needing other items --------------------------------------------------------------

    @staticmethod
    def _related_keys(
        project_id: str, assignee_id: str | None, parent_id: str | None, depends_on: Sequence[str]
    ) -> list[PrefetchKey]:
        keys: list[PrefetchKey] = []
        if assignee_id:
            keys.append(reads.member(project_id, assignee_id))
        if parent_id:
            keys.append(reads.task(parent_id))
        keys += [reads.task(dep) for dep in depends_on]
        return keys

    @staticmethod
    def _dependencies_to_check(before: Task, update: TaskUpdate) -> Sequence[str]:
        fields = update.model_fields_set
        deps = (
            update.depends_on
            if "depends_on" in fields and update.depends_on is not None
            else before.depends_on
        )
        if "depends_on" in fields or (
            "status" in fields and update.status and update.status.needs_prerequisites
        ):
            return deps
        return ()

    def _check_related(self, task: Task, before: Task | None) -> dict[str, Status]:
        """422 for an invalid assignee, parent or dependency; the dependencies' statuses."""
        new_assignee = task.assignee_id and (
            before is None or task.assignee_id != before.assignee_id
        )
        if (
            new_assignee
            and self._projects.membership(task.project_id, str(task.assignee_id)) is None
        ):
            raise invalid(["body", "assignee_id"], "the assignee must be a member of the project")
        if task.parent_id and (before is None or task.parent_id != before.parent_id):
            if task.parent_id == task.id:
                raise invalid(["body", "parent_id"], "a task cannot be its own parent")
            parent = self._tasks.get(task.parent_id)
            if parent is None or parent.project_id != task.project_id:
                raise invalid(
                    ["body", "parent_id"], "the parent must be a task of the same project"
                )
            if parent.parent_id is not None:
                raise invalid(["body", "parent_id"], "subtasks cannot have subtasks (one level)")
            if task.subtask_ids:
                raise invalid(["body", "parent_id"], "a task with subtasks cannot become a subtask")
        statuses: dict[str, Status] = {}
        needs_deps = (
            before is None or task.depends_on != before.depends_on or task.status != before.status
        )
        if task.depends_on and needs_deps:
            if task.id in task.depends_on:
                raise invalid(["body", "depends_on"], "a task cannot depend on itself")
            found = self._tasks.get_many(task.depends_on)
            wrong = [
                dep
                for dep in task.depends_on
                if dep not in found or found[dep].project_id != task.project_id
            ]
            if wrong:
                raise invalid(
                    ["body", "depends_on"],
                    "dependencies must be tasks of the same project: " + ", ".join(wrong),
                )
            statuses = {dep: found[dep].status for dep in task.depends_on}
        return statuses

    @staticmethod
    def _schedule(
        data: OnceScheduleInput | RateScheduleInput | CronScheduleInput | None,
        user: User,
        now: datetime,
    ) -> Schedule | None:
        """The stored schedule (in the caller's zone unless it names one), or None."""
        if data is None:
            return None
        return schedules.build_schedule(data, default_timezone=user.timezone, now=now)

    def _apply(self, task: Task, update: TaskUpdate, user: User) -> Task:
        fields = update.model_fields_set
        changes: dict[str, object] = {}
        for name in ("title", "priority", "status"):
            if name in fields:
                changes[name] = getattr(update, name)
        if "description" in fields:
            changes["description"] = update.description or ""
        if "due_date" in fields:
            changes["due_date"] = resolve_due(update.due_date, user.timezone)
        for name in ("assignee_id", "parent_id"):
            if name in fields:
                changes[name] = getattr(update, name)
        if "tags" in fields:
            changes["tags"] = tuple(update.tags or ())
        if "depends_on" in fields:
            changes["depends_on"] = tuple(update.depends_on or ())
        now = self._clock.now()
        if "schedule" in fields:
            schedule = self._schedule(update.schedule, user, now)
            changes["schedule"] = schedule
            changes["next_run_at"] = schedules.next_run(schedule, now) if schedule else None
        if "action" in fields:
            if update.action is not None and update.action != task.action:
                self._check_webhook_url(update.action.url)
            changes["action"] = update.action
        if "retry" in fields:
            changes["retry"] = update.retry
        after = task.with_changes(**changes)
        if after.status != task.status:
            completed = after.status == Status.COMPLETED
            after = after.with_changes(completed_at=self._clock.now() if completed else None)
        if after != task:
            after = after.with_changes(updated_at=self._clock.now())
        return after
