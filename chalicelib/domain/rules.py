"""Automation rules: when something happens to a task, do something.

A rule belongs to a project and has a trigger and a list of actions:

- `trigger.event`: `task.created`, `task.status_changed`, `task.overdue` or `execution.failed`;
  `trigger.conditions`: fields the task (and the change) must match, all of them:
  `status`, `priority`, `assignee_id` (null: unassigned), `tag` (the task has it),
  `is_subtask` (true/false), and for `task.status_changed` only, `from_status`.
- `actions` (1..`ACTIONS_MAX`, done in order, each independently of the others' outcome):
  `set_field` (`field` one of `SET_FIELDS`, `value` valid for it as in `PATCH /tasks/{id}`),
  `assign` (`assignee_id`, a member of the project, or null to unassign),
  `notify` (`user_id`: a member's id, or `"assignee"` / `"creator"` of the task; optional
  `message`), `create_task` (`template_id` of the same project, optional `values` for its
  placeholders; `task_id`, `task_title` and `rule_name` are filled in from the triggering
  task and the rule), `run_workflow` (`workflow_id` of the same project).

A rule acts as the user who created it, with that user's rights in the project now: a rule
whose author left the project (or became a viewer) fails, and its execution log says why.

Changes a rule makes are marked (the stream sees the rule's id on the written task, and a
workflow run a rule starts has the trigger `rule`), and marked changes trigger no rule: a rule
never sets off itself or another rule. Each (rule, event) acts at most once, however often the
stream delivers the event.

Ids: a rule id is its own ULID followed by its project's, like a task id.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.executions import Execution
from chalicelib.domain.ids import ScopedId
from chalicelib.domain.model import Input
from chalicelib.domain.tasks import Id, Priority, Status, Task, TaskUpdate
from chalicelib.domain.templates import Values

NAME_MAX = 200
ACTIONS_MAX = 10
MESSAGE_MAX = 1_000
# What a `set_field` action may change (assignments have their own action).
SET_FIELDS = ("title", "description", "status", "priority", "due_date", "tags")
# Values a `create_task` action's template gets without asking.
CONTEXT_VALUES = ("task_id", "task_title", "rule_name")
NOTIFY_ASSIGNEE = "assignee"
NOTIFY_CREATOR = "creator"


class TriggerEvent(enum.StrEnum):
    TASK_CREATED = "task.created"
    TASK_STATUS_CHANGED = "task.status_changed"
    TASK_OVERDUE = "task.overdue"
    EXECUTION_FAILED = "execution.failed"


class RuleOutcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # an action with nothing to do (e.g. notify the assignee of none)


# ---- request bodies (also the stored shapes) ----------------------------------------------------


class _Frozen(Input):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Conditions(_Frozen):
    """All present must hold. `assignee_id: null` means unassigned."""

    status: Status | None = None
    from_status: Status | None = None
    priority: Priority | None = None
    assignee_id: Id | None = None
    tag: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    is_subtask: bool | None = None

    @field_validator("status", "from_status", "priority", "tag", "is_subtask")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class TriggerInput(_Frozen):
    event: TriggerEvent
    conditions: Conditions = Field(default_factory=Conditions)


class SetField(_Frozen):
    type: Literal["set_field"]
    field: Literal["title", "description", "status", "priority", "due_date", "tags"]
    value: Any = None


class Assign(_Frozen):
    type: Literal["assign"]
    assignee_id: Id | None


class Notify(_Frozen):
    type: Literal["notify"]
    user_id: Id  # a member's id, "assignee" or "creator"
    message: Annotated[str, StringConstraints(min_length=1, max_length=MESSAGE_MAX)] | None = None


class CreateTask(_Frozen):
    type: Literal["create_task"]
    template_id: Id
    values: Values = Field(default_factory=dict)


class RunWorkflow(_Frozen):
    type: Literal["run_workflow"]
    workflow_id: Id


Action = Annotated[
    SetField | Assign | Notify | CreateTask | RunWorkflow, Field(discriminator="type")
]
Actions = Annotated[list[Action], Field(min_length=1, max_length=ACTIONS_MAX)]
# Built on first use, like the models (domain/model.py: Input).
_ACTIONS: TypeAdapter[list[Action]] = TypeAdapter(list[Action], config=ConfigDict(defer_build=True))
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX)]


def public_action(action: Action) -> dict[str, Any]:
    data = action.model_dump(mode="json", exclude_none=False)
    if isinstance(action, Notify) and action.message is None:
        data.pop("message")
    return data


def actions_from(data: Any) -> tuple[Action, ...]:
    """Stored actions back into their models (stored ones were valid when written)."""
    return tuple(_ACTIONS.validate_python(data))


class RuleCreate(Input):
    name: Name
    enabled: bool = True
    trigger: TriggerInput
    actions: Actions


class RuleUpdate(Input):
    """Fields present are applied; `trigger` and `actions` replace the whole value."""

    name: Name | None = None
    enabled: bool | None = None
    trigger: TriggerInput | None = None
    actions: Actions | None = None

    @field_validator("name", "enabled", "trigger", "actions")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


# ---- entities ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    id: str
    project_id: str
    name: str
    enabled: bool
    event: TriggerEvent
    conditions: Conditions
    actions: tuple[Action, ...]
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int = 1

    def with_changes(self, **changes: Any) -> Rule:
        return replace(self, **changes)


@dataclass(frozen=True)
class ActionResult:
    """What one action of a rule execution did."""

    type: str
    status: RuleOutcome
    detail: str | None = None
    # What it made or touched: the created task, the started run, the notified user, ...
    ref: str | None = None


@dataclass(frozen=True)
class RuleExecution:
    """One firing of a rule (its execution log entry)."""

    id: str
    rule_id: str
    project_id: str
    trigger_event: TriggerEvent
    task_id: str | None
    status: RuleOutcome  # succeeded | failed
    actions: tuple[ActionResult, ...]
    at: datetime
    error: str | None = None


@dataclass(frozen=True)
class RuleEvent:
    """Something that happened which rules may act on, as the stream consumer saw it.

    `key` names what happened (the created task, the task at its new version, the failed
    execution, the overdue task at its due date), so each rule acts on it once. `by_rule` is
    set when a rule made the change: such events trigger nothing."""

    event: TriggerEvent
    key: str
    project_id: str
    task_id: str
    task: Task | None = None  # as the change wrote it; None: read it
    before: Task | None = None  # a status change: the task before it
    execution: Execution | None = None
    by_rule: bool = False


# ---- ids --------------------------------------------------------------------------------------


def new_rule_id(project_id: str) -> str:
    return str(ScopedId.new(project_id))


# ---- rules ------------------------------------------------------------------------------------


def check_trigger(trigger: TriggerInput, loc: Sequence[str | int] = ("body", "trigger")) -> None:
    if (
        "from_status" in trigger.conditions.model_fields_set
        and trigger.event is not TriggerEvent.TASK_STATUS_CHANGED
    ):
        raise ValidationFailed(
            "from_status is a condition of task.status_changed only",
            [
                {
                    "loc": [*loc, "conditions", "from_status"],
                    "message": "only with the event task.status_changed",
                }
            ],
        )


def check_set_fields(actions: Sequence[Action], loc: Sequence[str | int]) -> None:
    """422 for a `set_field` value the field cannot take (as `PATCH /tasks/{id}` would)."""
    details: list[dict[str, Any]] = []
    for index, action in enumerate(actions):
        if not isinstance(action, SetField):
            continue
        try:
            TaskUpdate.model_validate({action.field: action.value})
        except ValidationError as exc:
            details += [
                {"loc": [*loc, index, "value"], "message": error["msg"]}
                for error in exc.errors(include_url=False)
            ]
    if details:
        raise ValidationFailed("a set_field value is not valid for its field", details)


def set_field_update(action: SetField) -> TaskUpdate:
    return TaskUpdate.model_validate({action.field: action.value})


def matches(conditions: Conditions, task: Task, before: Task | None = None) -> bool:
    """Whether the task (and, for a status change, the task before it) meets every condition."""
    given = conditions.model_fields_set
    if "status" in given and task.status != conditions.status:
        return False
    if "from_status" in given and (before is None or before.status != conditions.from_status):
        return False
    if "priority" in given and task.priority != conditions.priority:
        return False
    if "assignee_id" in given and task.assignee_id != conditions.assignee_id:
        return False
    if "tag" in given and conditions.tag not in task.tags:
        return False
    return not ("is_subtask" in given and (task.parent_id is not None) != conditions.is_subtask)


def context_values(rule: Rule, task: Task | None) -> dict[str, str]:
    return {
        "task_id": task.id if task else "",
        "task_title": task.title if task else "",
        "rule_name": rule.name,
    }


def template_values(action: CreateTask, context: Mapping[str, str]) -> dict[str, str]:
    """The values a `create_task` action fills its template with: the context's, then the
    action's own (which win)."""
    return {**context, **action.values}
