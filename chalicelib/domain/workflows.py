"""Workflows: steps that run tasks in dependency order, their rules, and the request bodies.

A workflow is a graph of steps. Each step names a task of the workflow's project (`task_id`)
and the keys of the steps that must succeed before it starts (`depends_on`). The rules:

- 1..`STEPS_MAX` steps. A step key is 1..64 letters, digits, `_` or `-`, starting with a
  letter or digit, and unique within the workflow.
- `depends_on` names keys of the same workflow, never the step itself, and the steps form no
  cycle (422 naming it).
- Every `task_id` is a task of the workflow's project (the service checks it with one batch
  read). The same task may serve several steps.
- `max_concurrency` 1..40 (default 10): how many steps of one run may go at once.
- `on_failure`: `stop` (default) starts no new step after a failure; `continue` skips only the
  steps downstream of it.

`STEPS_MAX` is 100: checking every step's task is then at most one BatchGetItem of 100 keys,
so writes stay within the call budget of `docs/data-model.md` (and a workflow item stays far
below DynamoDB's 400 KB).

Ids: a workflow id is its own ULID followed by its project's ULID, like a task id, so a request
about a workflow reads it, its project and the caller's membership with the session.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from chalicelib.domain import graphs
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.ids import ScopedId
from chalicelib.domain.model import Input
from chalicelib.domain.schedules import Schedule, ScheduleInput

NAME_MAX = 200
STEPS_MAX = 100
STEP_KEY_MAX = 64
STEP_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
MAX_CONCURRENCY_MAX = 40
MAX_CONCURRENCY_DEFAULT = 10

_STEPS_LOC: tuple[str, ...] = ("body", "steps")


class OnFailure(enum.StrEnum):
    STOP = "stop"
    CONTINUE = "continue"


@dataclass(frozen=True)
class Step:
    key: str
    task_id: str
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class Workflow:
    id: str
    project_id: str
    name: str
    steps: tuple[Step, ...]
    created_by: str
    created_at: datetime
    updated_at: datetime
    max_concurrency: int = MAX_CONCURRENCY_DEFAULT
    on_failure: OnFailure = OnFailure.STOP
    # Stored and shown with its next firing; nothing fires it yet (the scheduler sync of
    # workflows comes with workflow runs).
    schedule: Schedule | None = None
    next_run_at: datetime | None = None
    version: int = 1

    def with_changes(self, **changes: Any) -> Workflow:
        return replace(self, **changes)

    @property
    def task_ids(self) -> list[str]:
        """The distinct tasks of the steps, in step order."""
        return list(dict.fromkeys(step.task_id for step in self.steps))


# ---- ids --------------------------------------------------------------------------------------


def new_workflow_id(project_id: str) -> str:
    return str(ScopedId.new(project_id))


# ---- rules ------------------------------------------------------------------------------------


def _detail(loc: Sequence[str | int], message: str) -> dict[str, Any]:
    return {"loc": [*_STEPS_LOC, *loc], "message": message}


def check_steps(steps: Sequence[Step]) -> None:
    """422 unless the steps form a valid graph: unique keys, dependencies on other steps of
    the same workflow, no cycle. Every problem found is one detail pointing at its field
    (`["body", "steps", <index>, "key" | "depends_on", ...]`); a cycle is reported alone, once
    the rest is right, and named in the message."""
    details: list[dict[str, Any]] = []
    first_index: dict[str, int] = {}
    for index, step in enumerate(steps):
        if step.key in first_index:
            details.append(
                _detail(
                    [index, "key"],
                    f"duplicate step key {step.key!r} (also step {first_index[step.key]})",
                )
            )
        else:
            first_index[step.key] = index
    for index, step in enumerate(steps):
        for position, key in enumerate(step.depends_on):
            if key == step.key:
                details.append(
                    _detail([index, "depends_on", position], "a step cannot depend on itself")
                )
            elif key not in first_index:
                details.append(
                    _detail([index, "depends_on", position], f"no step has the key {key!r}")
                )
    if details:
        raise ValidationFailed(
            f"steps are not valid: {len(details)} problem{'s' if len(details) > 1 else ''}",
            details,
        )
    cycle = graphs.find_cycle({step.key: step.depends_on for step in steps})
    if cycle:
        raise graphs.cycle_error(
            "steps have a dependency cycle",
            cycle,
            [*_STEPS_LOC, first_index[cycle[0]], "depends_on"],
        )


def wrong_task_error(steps: Sequence[Step], wrong_task_ids: set[str]) -> ValidationFailed:
    """422 naming each step whose task is missing or of another project (the two are not told
    apart: a task of a project the caller cannot see must look like no task at all)."""
    details = [
        _detail(
            [index, "task_id"],
            f"step {step.key!r}: no task {step.task_id!r} in the workflow's project",
        )
        for index, step in enumerate(steps)
        if step.task_id in wrong_task_ids
    ]
    named = ", ".join(repr(step.key) for step in steps if step.task_id in wrong_task_ids)
    return ValidationFailed(
        f"every step's task must be a task of the workflow's project; not so for {named}",
        details,
    )


# ---- request bodies -------------------------------------------------------------------------


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX)]
StepKey = Annotated[
    str, StringConstraints(min_length=1, max_length=STEP_KEY_MAX, pattern=STEP_KEY_PATTERN)
]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class StepInput(Input):
    key: StepKey
    task_id: Id
    depends_on: Annotated[list[StepKey], Field(max_length=STEPS_MAX), AfterValidator(_unique)] = (
        Field(default_factory=list)
    )

    def to_step(self) -> Step:
        return Step(self.key, self.task_id, tuple(self.depends_on))


Steps = Annotated[list[StepInput], Field(min_length=1, max_length=STEPS_MAX)]
MaxConcurrency = Annotated[int, Field(ge=1, le=MAX_CONCURRENCY_MAX, strict=True)]


class WorkflowCreate(Input):
    project_id: Id | None = None
    name: Name
    steps: Steps
    max_concurrency: MaxConcurrency = MAX_CONCURRENCY_DEFAULT
    on_failure: OnFailure = OnFailure.STOP
    schedule: ScheduleInput | None = None


class WorkflowUpdate(Input):
    """Fields present are applied (`steps` replaces the whole list); null clears `schedule`."""

    name: Name | None = None
    steps: Steps | None = None
    max_concurrency: MaxConcurrency | None = None
    on_failure: OnFailure | None = None
    schedule: ScheduleInput | None = None

    @field_validator("name", "steps", "max_concurrency", "on_failure")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value
