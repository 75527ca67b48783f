"""Response bodies. Request bodies are the `Input` models of the domain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain import schedules
from chalicelib.domain.activity import NotificationType
from chalicelib.domain.executions import ExecutionStatus, Trigger
from chalicelib.domain.realtime import EventType as ProjectEventType
from chalicelib.domain.tasks import Priority, Status
from chalicelib.domain.users import Role
from chalicelib.domain.workflows import OnFailure

# What the `of` constructors take: for annotations only, so a route serving tasks does not
# import the comments, executions or workflow runs (bench/coldstart.py). The fields' own types
# are imported above: pydantic resolves them when a model is first used.
if TYPE_CHECKING:
    from chalicelib.domain.activity import Notification
    from chalicelib.domain.comments import Comment
    from chalicelib.domain.executions import Execution
    from chalicelib.domain.realtime import Event
    from chalicelib.domain.tasks import Task
    from chalicelib.domain.users import User
    from chalicelib.domain.workflow_runs import WorkflowRun
    from chalicelib.domain.workflows import Step, Workflow
    from chalicelib.services.workflow_runs import RunView

T = TypeVar("T")


class Out(BaseModel):
    """Base of response bodies: a serializer is built when its model is first used, not at
    import; a request uses one or two of them (see bench/coldstart.py)."""

    model_config = ConfigDict(defer_build=True)


class ErrorDetail(Out):
    loc: list[str | int]
    message: str


class ErrorBody(Out):
    code: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(Out):
    error: ErrorBody
    request_id: str


class PageOut(Out, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class HealthOut(Out):
    status: Literal["ok", "degraded"]
    version: str
    checks: dict[str, str]


class UserOut(Out):
    id: str
    email: str
    name: str
    role: Role
    timezone: str
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            timezone=user.timezone,
            created_at=user.created_at,
            updated_at=user.updated_at,
            version=user.version,
        )


class AuthOut(Out):
    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Lifetime of the access token in seconds.")


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


class TaskOut(Out):
    id: str
    project_id: str
    title: str
    description: str
    status: Status
    priority: Priority
    due_date: datetime | None
    assignee_id: str | None
    tags: list[str]
    parent_id: str | None
    depends_on: list[str]
    schedule: dict[str, Any] | None
    action: dict[str, Any] | None
    retry: dict[str, Any] | None
    next_run_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    version: int

    @classmethod
    def of(cls, task: Task, now: datetime | None = None) -> TaskOut:
        """The task as the API shows it, at `now` (the time of the answer by default: its
        `next_run_at` is the next firing still to come then)."""
        return cls(
            id=task.id,
            project_id=task.project_id,
            title=task.title,
            description=task.description,
            status=task.status,
            priority=task.priority,
            due_date=task.due_date,
            assignee_id=task.assignee_id,
            tags=list(task.tags),
            parent_id=task.parent_id,
            depends_on=list(task.depends_on),
            schedule=schedules.to_public(task.schedule) if task.schedule else None,
            action=task.action.model_dump(mode="json") if task.action else None,
            retry=task.retry.model_dump(mode="json") if task.retry else None,
            next_run_at=schedules.upcoming(
                task.schedule, task.next_run_at, now or datetime.now(UTC)
            ),
            created_by=task.created_by,
            created_at=task.created_at,
            updated_at=task.updated_at,
            completed_at=task.completed_at,
            version=task.version,
        )


class StepOut(Out):
    key: str
    task_id: str
    depends_on: list[str]

    @classmethod
    def of(cls, step: Step) -> StepOut:
        return cls(key=step.key, task_id=step.task_id, depends_on=list(step.depends_on))


class WorkflowOut(Out):
    id: str
    project_id: str
    name: str
    steps: list[StepOut]
    max_concurrency: int
    on_failure: OnFailure
    schedule: dict[str, Any] | None
    next_run_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, workflow: Workflow, now: datetime | None = None) -> WorkflowOut:
        return cls(
            id=workflow.id,
            project_id=workflow.project_id,
            name=workflow.name,
            steps=[StepOut.of(step) for step in workflow.steps],
            max_concurrency=workflow.max_concurrency,
            on_failure=workflow.on_failure,
            schedule=schedules.to_public(workflow.schedule) if workflow.schedule else None,
            next_run_at=schedules.upcoming(
                workflow.schedule, workflow.next_run_at, now or datetime.now(UTC)
            ),
            created_by=workflow.created_by,
            created_at=workflow.created_at,
            updated_at=workflow.updated_at,
            version=workflow.version,
        )


class CommentOut(Out):
    id: str
    task_id: str
    author_id: str
    body: str
    created_at: datetime

    @classmethod
    def of(cls, comment: Comment) -> CommentOut:
        return cls(
            id=comment.id,
            task_id=comment.task_id,
            author_id=comment.author_id,
            body=comment.body,
            created_at=comment.created_at,
        )


class ExecutionResultOut(Out):
    status_code: int
    duration_ms: int
    body_excerpt: str


class ExecutionOut(Out):
    id: str
    task_id: str
    project_id: str
    workflow_run_id: str | None
    trigger: Trigger
    scheduled_for: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    status: ExecutionStatus
    attempts: int
    result: ExecutionResultOut | None
    error: str | None
    version: int

    @classmethod
    def of(cls, execution: Execution) -> ExecutionOut:
        result = execution.result
        return cls(
            id=execution.id,
            task_id=execution.task_id,
            project_id=execution.project_id,
            workflow_run_id=execution.workflow_run_id,
            trigger=execution.trigger,
            scheduled_for=execution.scheduled_for,
            started_at=execution.started_at,
            finished_at=execution.finished_at,
            status=execution.status,
            attempts=execution.attempts,
            result=ExecutionResultOut(
                status_code=result.status_code,
                duration_ms=result.duration_ms,
                body_excerpt=result.body_excerpt,
            )
            if result
            else None,
            error=execution.error,
            version=execution.version,
        )


class NotificationOut(Out):
    id: str
    type: NotificationType
    task_id: str | None
    project_id: str | None
    message: str
    read: bool
    created_at: datetime

    @classmethod
    def of(cls, notification: Notification) -> NotificationOut:
        return cls(
            id=notification.id,
            type=notification.type,
            task_id=notification.task_id,
            project_id=notification.project_id,
            message=notification.message,
            read=notification.read,
            created_at=notification.created_at,
        )


class ProjectEventOut(Out):
    """One event of a project, as its WebSocket subscribers got it."""

    id: str = Field(description="Orderable within the project: pass it as `after` to go on.")
    type: ProjectEventType
    at: datetime
    data: dict[str, Any] = Field(description="The resource as the HTTP API returns it.")
    truncated: bool | None = Field(
        None,
        description="true: `data` holds only the resource's ids (it was over 128 KiB); "
        "absent otherwise, as in the WebSocket frame.",
        exclude_if=lambda value: not value,
    )

    @classmethod
    def of(cls, event: Event) -> ProjectEventOut:
        return cls.model_validate(event.frame())


class RunStepOut(Out):
    key: str
    task_id: str
    status: ExecutionStatus
    execution_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


class WorkflowRunOut(Out):
    id: str
    workflow_id: str
    project_id: str
    trigger: str
    status: ExecutionStatus
    scheduled_for: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    max_concurrency: int
    on_failure: str
    steps: list[RunStepOut]

    @classmethod
    def of(cls, view: RunView, *, brief: bool = False) -> WorkflowRunOut:
        """With `brief`, the started steps show the status the run's last round recorded
        (their executions are not read); otherwise their executions' own."""
        run = view.run
        steps = []
        for step in run.steps:
            execution = view.step_execution(step)
            if execution is not None:
                status = execution.status
            elif step.outcome is not None:
                status = step.outcome
            elif step.execution_id is not None:
                status = ExecutionStatus.RUNNING if brief else ExecutionStatus.CANCELLED
            elif run.status is ExecutionStatus.CANCELLED:
                status = ExecutionStatus.CANCELLED
            else:
                status = ExecutionStatus.QUEUED
            steps.append(
                RunStepOut(
                    key=step.key,
                    task_id=step.task_id,
                    status=status,
                    execution_id=step.execution_id,
                    started_at=execution.started_at if execution else None,
                    finished_at=execution.finished_at if execution else None,
                    error=execution.error if execution else None,
                )
            )
        return cls(
            id=run.id,
            workflow_id=run.workflow_id,
            project_id=run.project_id,
            trigger=run.trigger,
            status=run.status,
            scheduled_for=run.scheduled_for,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            max_concurrency=run.max_concurrency,
            on_failure=run.on_failure.value,
            steps=steps,
        )

    @classmethod
    def brief(cls, run: WorkflowRun) -> WorkflowRunOut:
        """A run in a list: its steps without reading their executions."""
        from chalicelib.services.workflow_runs import RunView

        return cls.of(RunView(run, {}), brief=True)
