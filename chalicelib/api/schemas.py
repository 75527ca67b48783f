"""Response bodies. Request bodies are the `Input` models of the domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from chalicelib.domain import schedules
from chalicelib.domain.tasks import Priority, Status, Task
from chalicelib.domain.users import Role, User
from chalicelib.domain.workflows import OnFailure, Step, Workflow

T = TypeVar("T")


class ErrorDetail(BaseModel):
    loc: list[str | int]
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorBody
    request_id: str


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    checks: dict[str, str]


class UserOut(BaseModel):
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


class AuthOut(BaseModel):
    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Lifetime of the access token in seconds.")


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


class TaskOut(BaseModel):
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
    def of(cls, task: Task) -> TaskOut:
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
            next_run_at=task.next_run_at,
            created_by=task.created_by,
            created_at=task.created_at,
            updated_at=task.updated_at,
            completed_at=task.completed_at,
            version=task.version,
        )


class StepOut(BaseModel):
    key: str
    task_id: str
    depends_on: list[str]

    @classmethod
    def of(cls, step: Step) -> StepOut:
        return cls(key=step.key, task_id=step.task_id, depends_on=list(step.depends_on))


class WorkflowOut(BaseModel):
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
    def of(cls, workflow: Workflow) -> WorkflowOut:
        return cls(
            id=workflow.id,
            project_id=workflow.project_id,
            name=workflow.name,
            steps=[StepOut.of(step) for step in workflow.steps],
            max_concurrency=workflow.max_concurrency,
            on_failure=workflow.on_failure,
            schedule=schedules.to_public(workflow.schedule) if workflow.schedule else None,
            next_run_at=workflow.next_run_at,
            created_by=workflow.created_by,
            created_at=workflow.created_at,
            updated_at=workflow.updated_at,
            version=workflow.version,
        )
