"""Executions: the scheduler's firings (`fire`), manual runs, and reading them back.

`fire` is the entry of every EventBridge Scheduler delivery. Delivery is at least once, so a
firing `(task, scheduled time)` is claimed in the transaction that creates its execution: a
second delivery writes nothing and gets the execution of the first. If that execution is still
`queued` (the first delivery may have died between the write and the start), the runner is asked
again; runners are idempotent on the execution (Step Functions: the execution name), so it runs
once.

What a firing does when its task changed meanwhile:
- the task (or its project) is gone, or the firing names another project: nothing is recorded
  (there is no task to hang an execution on; the schedule itself is removed with the task);
- the task is still there but has no schedule any more, or its schedule is paused: a `skipped`
  execution is recorded (idempotently, like any firing), so the task's history shows the
  delivery and why it did nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain.activity import EventType, HistoryEvent
from chalicelib.domain.errors import NotFound
from chalicelib.domain.executions import (
    Execution,
    ExecutionStatus,
    Trigger,
    firing_key,
    new_execution_id,
    project_of_execution,
)
from chalicelib.domain.model import Page, PageRequest, new_id, utc
from chalicelib.domain.projects import ProjectRole
from chalicelib.domain.tasks import Task, project_of
from chalicelib.ports import (
    Clock,
    ExecutionRepository,
    ExecutionRunner,
    Prefetcher,
    ProjectRepository,
    TaskRepository,
)
from chalicelib.services.access import ProjectAccess, TaskReach
from chalicelib.services.auth import Principal

RUN_ROLE = ProjectRole.MEMBER  # POST /tasks/{id}/run
READ_ROLE = ProjectRole.VIEWER
SCHEDULER_ACTOR = "scheduler"  # the actor of history events of scheduled firings


@dataclass(frozen=True)
class Delivery:
    """One delivery of a firing by the scheduler (the target input of the schedule)."""

    project_id: str | None = None
    attempt: int = 1
    delivery_id: str | None = None  # the scheduler's id of this delivery, for the logs


@dataclass(frozen=True)
class FireOutcome:
    """What a delivery did: the firing's execution (None if nothing was recorded), and whether
    this delivery created it (False for a repeated delivery)."""

    execution: Execution | None
    created: bool
    reason: str = ""


def _skip_reason(task: Task) -> str | None:
    """Why a firing of this task does nothing, or None if it runs."""
    schedule: object = task.schedule
    if schedule is None:
        return "the task is no longer scheduled"
    paused = (
        schedule.get("paused")
        if isinstance(schedule, Mapping)
        else getattr(schedule, "paused", False)
    )
    return "the schedule is paused" if paused else None


def _history(execution: Execution, actor_id: str, at: datetime) -> HistoryEvent:
    kind = EventType.EXECUTION_FINISHED if execution.status.finished else EventType.EXECUTION_QUEUED
    changes: dict[str, tuple[object, object]] = {
        "execution_id": (None, execution.id),
        "trigger": (None, execution.trigger.value),
        "status": (None, execution.status.value),
    }
    return HistoryEvent(new_id(), execution.task_id, kind, actor_id, at, changes)


class ExecutionService:
    def __init__(
        self,
        executions: ExecutionRepository,
        tasks: TaskRepository,
        projects: ProjectRepository,
        prefetcher: Prefetcher,
        clock: Clock,
        runner: ExecutionRunner | None = None,
    ) -> None:
        self._executions = executions
        self._tasks = tasks
        self._projects = projects
        self._reach = TaskReach(tasks, projects, prefetcher)
        self._access = ProjectAccess(projects)
        self._prefetch = prefetcher
        self._clock = clock
        # None: executions stay `queued` until a runner is configured (a later step).
        self._runner = runner

    # ---- the scheduler's entry ------------------------------------------------------------------

    def fire(self, task_id: str, scheduled_time: datetime, delivery: Delivery) -> FireOutcome:
        project_id = project_of(task_id)
        if project_id is None or (delivery.project_id and delivery.project_id != project_id):
            return FireOutcome(None, False, "the firing names no task of its project")
        # The task and its project in one round trip.
        self._prefetch.warm([("task", task_id), ("project", project_id)])
        task = self._tasks.get(task_id)
        if task is None or self._projects.get(project_id) is None:
            return FireOutcome(None, False, "the task is gone")
        now = self._clock.now()
        reason = _skip_reason(task)
        execution = Execution(
            id=new_execution_id(task.project_id),
            task_id=task.id,
            project_id=task.project_id,
            trigger=Trigger.SCHEDULE,
            status=ExecutionStatus.SKIPPED if reason else ExecutionStatus.QUEUED,
            created_at=now,
            scheduled_for=utc(scheduled_time),
            finished_at=now if reason else None,
            error=reason,
        )
        records = [_history(execution, SCHEDULER_ACTOR, now)]
        key = firing_key(task.id, scheduled_time)
        stored, created = self._executions.create_for_firing(key, execution, records)
        if stored.status is ExecutionStatus.QUEUED:
            self._start(stored)
        return FireOutcome(stored, created, reason or "")

    # ---- HTTP -----------------------------------------------------------------------------------

    def run_now(self, principal: Principal, task_id: str) -> Execution:
        """A manual run of the task's action, outside its schedule (member+)."""
        task, _ = self._reach.require(principal, task_id, RUN_ROLE)
        now = self._clock.now()
        execution = Execution(
            id=new_execution_id(task.project_id),
            task_id=task.id,
            project_id=task.project_id,
            trigger=Trigger.MANUAL,
            status=ExecutionStatus.QUEUED,
            created_at=now,
        )
        stored = self._executions.create(execution, [_history(execution, principal.user_id, now)])
        self._start(stored)
        return stored

    def list_for_task(
        self, principal: Principal, task_id: str, page: PageRequest
    ) -> Page[Execution]:
        self._reach.require(principal, task_id, READ_ROLE)
        return self._executions.find_for_task(task_id, page)

    def get(self, principal: Principal, execution_id: str) -> Execution:
        project_id = project_of_execution(execution_id)
        if project_id is None:
            raise NotFound("execution not found")
        execution = self._executions.get(execution_id)
        if execution is None or execution.project_id != project_id:
            raise NotFound("execution not found")
        try:
            self._access.require(principal.user_id, project_id, READ_ROLE)
        except NotFound:
            raise NotFound("execution not found") from None
        return execution

    def _start(self, execution: Execution) -> None:
        if self._runner is not None:
            self._runner.start(execution)
