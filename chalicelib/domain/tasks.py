"""Tasks: fields, the rules of status, subtasks and dependencies, and the request bodies."""

from __future__ import annotations

import enum
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
)

from chalicelib.domain import graphs
from chalicelib.domain.errors import Conflict, ValidationFailed
from chalicelib.domain.ids import ScopedId
from chalicelib.domain.model import Input
from chalicelib.domain.schedules import Schedule, ScheduleInput
from chalicelib.domain.webhooks import RetryPolicy, WebhookAction

TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
TAGS_MAX = 20
TAG_MAX = 40
DEPENDS_ON_MAX = 20
SUBTASKS_MAX = 50


class Status(enum.StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def rank(self) -> int:
        return list(Status).index(self)

    @property
    def closed(self) -> bool:
        return self in (Status.COMPLETED, Status.CANCELLED)

    @property
    def needs_prerequisites(self) -> bool:
        """Starting or finishing work needs dependencies and subtasks completed first."""
        return self in (Status.IN_PROGRESS, Status.COMPLETED)


class Priority(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return list(Priority).index(self)


@dataclass(frozen=True)
class Task:
    id: str
    project_id: str
    title: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    description: str = ""
    status: Status = Status.PENDING
    priority: Priority = Priority.MEDIUM
    due_date: datetime | None = None
    assignee_id: str | None = None
    tags: tuple[str, ...] = ()
    parent_id: str | None = None
    depends_on: tuple[str, ...] = ()
    completed_at: datetime | None = None
    # Kept by the repository in the writes of the subtasks themselves, so the parent's rules
    # and the cascade on delete need no query.
    subtask_ids: tuple[str, ...] = ()
    open_subtask_ids: tuple[str, ...] = ()
    schedule: Schedule | None = None
    action: WebhookAction | None = None
    retry: RetryPolicy | None = None
    next_run_at: datetime | None = None
    version: int = 1
    # Set only on a task an automation rule writes (the rule's id): the write carries it for
    # the stream to see, so the rule's own change sets off no rule. Never read back.
    changed_by_rule: str | None = None

    def with_changes(self, **changes: Any) -> Task:
        return replace(self, **changes)


# ---- ids --------------------------------------------------------------------------------------
# A task id is a scoped id (chalicelib.domain.ids): its own ULID followed by its project's.


def new_task_id(project_id: str) -> str:
    return str(ScopedId.new(project_id))


# ---- rules ------------------------------------------------------------------------------------


def end_of_day(day: date, timezone: str) -> datetime:
    """A plain date means the end of that day in the caller's time zone."""
    local = datetime.combine(day, time(23, 59, 59), tzinfo=zoneinfo.ZoneInfo(timezone))
    return local.astimezone(UTC)


def resolve_due(value: date | datetime | None, timezone: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
        return value.astimezone(UTC)
    return end_of_day(value, timezone)


def find_cycle(
    edges: Mapping[str, Sequence[str]], task_id: str, depends_on: Sequence[str]
) -> list[str] | None:
    """The cycle `task_id -> ... -> task_id` that giving it `depends_on` would close, if any.

    `edges` maps each task to the tasks it depends on (the project's dependency graph, kept
    free of cycles by this very check, so any cycle found runs through `task_id`).
    """
    return graphs.find_cycle({**edges, task_id: list(depends_on)}, [task_id])


def check_prerequisites(
    task: Task, new_status: Status, dependency_statuses: Mapping[str, Status]
) -> None:
    """409 listing what blocks `task` from becoming `new_status`."""
    if not new_status.needs_prerequisites:
        return
    open_dependencies = sorted(
        dep
        for dep in task.depends_on
        if dependency_statuses.get(dep, Status.COMPLETED) != Status.COMPLETED
    )
    open_subtasks = sorted(task.open_subtask_ids)
    if open_dependencies or open_subtasks:
        details = [
            {"loc": ["depends_on", dep], "message": "not completed"} for dep in open_dependencies
        ]
        details += [{"loc": ["subtasks", sub], "message": "not completed"} for sub in open_subtasks]
        raise Conflict(
            f"cannot become {new_status.value} while {len(open_dependencies)} dependencies "
            f"and {len(open_subtasks)} subtasks are not completed",
            details,
        )


def cycle_error(cycle: list[str]) -> ValidationFailed:
    return graphs.cycle_error(
        "depends_on would create a dependency cycle", cycle, ["body", "depends_on"]
    )


# ---- request bodies -------------------------------------------------------------------------


def _tags(values: list[str]) -> list[str]:
    cleaned = []
    for value in values:
        value = value.strip()
        if not 1 <= len(value) <= TAG_MAX:
            raise ValueError(f"each tag is 1..{TAG_MAX} characters")
        if value not in cleaned:
            cleaned.append(value)
    return cleaned


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _due(value: Any) -> Any:
    # A bare "YYYY-MM-DD" stays a date (end of day in the caller's zone, resolved by the service).
    if isinstance(value, str) and len(value) == 10:
        return date.fromisoformat(value)
    return value


Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)]
Description = Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX)]
# Each tag is checked once stripped (_tags); the schema says so for the document.
TAG_SCHEMA = {"type": "string", "minLength": 1, "maxLength": TAG_MAX, "pattern": r"\S"}
Tags = Annotated[
    list[str],
    Field(max_length=TAGS_MAX, json_schema_extra={"items": TAG_SCHEMA}),
    AfterValidator(_tags),
]
Ids = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=64)]],
    Field(max_length=DEPENDS_ON_MAX),
    AfterValidator(_unique),
]
Due = Annotated[datetime | date, BeforeValidator(_due)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class TaskCreate(Input):
    project_id: Id | None = None
    title: Title
    description: Description = ""
    status: Status = Status.PENDING
    priority: Priority = Priority.MEDIUM
    due_date: Due | None = None
    assignee_id: Id | None = None
    tags: Tags = Field(default_factory=list)
    parent_id: Id | None = None
    depends_on: Ids = Field(default_factory=list)
    schedule: ScheduleInput | None = None
    action: WebhookAction | None = None
    retry: RetryPolicy | None = None


class TaskUpdate(Input):
    """Fields present are applied; null clears an optional one."""

    title: Title | None = None
    description: Description | None = None
    status: Status | None = None
    priority: Priority | None = None
    due_date: Due | None = None
    assignee_id: Id | None = None
    tags: Tags | None = None
    parent_id: Id | None = None
    depends_on: Ids | None = None
    schedule: ScheduleInput | None = None
    action: WebhookAction | None = None
    retry: RetryPolicy | None = None

    @field_validator("title", "status", "priority")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class AssignInput(Input):
    assignee_id: Id | None
