"""Task templates: a task and its subtasks to create again and again, with `{{name}}` holes.

A template holds the fields of one task (`title`, `description`, `priority`, `tags`,
`assignee_id`) and of up to `SUBTASKS_MAX` subtasks. Its text fields (title, description and
each tag) may contain placeholders `{{name}}` (a name is a letter or `_` followed by letters,
digits or `_`; spaces inside the braces are allowed: `{{ name }}`). Anything else between
braces is plain text.

Instantiating it (`POST /tasks/from-template`) fills every placeholder from `values`. A
placeholder the template uses without a value is a 422 naming each missing one
(`loc: ["body", "values", <name>]`): a created task never keeps a `{{name}}` it was meant to
lose. Values the template does not use are ignored (a client may send one set of values to
several templates). The filled tasks are then checked exactly like `POST /tasks` bodies (title
1..200 characters, ...), before anything is written; a filled field that fails is a 422 whose
`loc` points into the template (`["template", "task", "title"]`,
`["template", "subtasks", 2, "tags"]`).

Ids: a template id is its own ULID followed by its project's, like a task id, so a request
about a template reads it, its project and the caller's membership with the session.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints, ValidationError, field_validator

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.ids import ScopedId
from chalicelib.domain.model import Input
from chalicelib.domain.tasks import Description, Id, Priority, Tags, TaskCreate

NAME_MAX = 200
SUBTASKS_MAX = 20
VALUES_MAX = 50
VALUE_MAX = 10_000
PLACEHOLDER_NAME_MAX = 64
PLACEHOLDER_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# `{{ name }}`: the only syntax; anything else between braces is text.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
# A raw title may be longer than a task's (200) only through its placeholders; this bounds it.
RAW_TITLE_MAX = 1_000


@dataclass(frozen=True)
class TaskBlueprint:
    """The fields of one task a template creates (text may hold placeholders)."""

    title: str
    description: str = ""
    priority: Priority = Priority.MEDIUM
    tags: tuple[str, ...] = ()
    assignee_id: str | None = None

    @property
    def texts(self) -> list[str]:
        return [self.title, self.description, *self.tags]


@dataclass(frozen=True)
class Template:
    id: str
    project_id: str
    name: str
    task: TaskBlueprint
    created_by: str
    created_at: datetime
    updated_at: datetime
    subtasks: tuple[TaskBlueprint, ...] = ()
    version: int = 1

    def with_changes(self, **changes: Any) -> Template:
        return replace(self, **changes)

    @property
    def placeholders(self) -> list[str]:
        """Every placeholder name the template uses, in order of first appearance."""
        names: dict[str, None] = {}
        for blueprint in (self.task, *self.subtasks):
            for text in blueprint.texts:
                names.update(dict.fromkeys(placeholders_in(text)))
        return list(names)

    @property
    def assignee_ids(self) -> list[str]:
        """The distinct assignees of the task and subtasks."""
        return list(
            dict.fromkeys(b.assignee_id for b in (self.task, *self.subtasks) if b.assignee_id)
        )


# ---- ids --------------------------------------------------------------------------------------


def new_template_id(project_id: str) -> str:
    return str(ScopedId.new(project_id))


# ---- placeholders -----------------------------------------------------------------------------


def placeholders_in(text: str) -> list[str]:
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def fill(text: str, values: Mapping[str, str]) -> str:
    """`text` with each placeholder replaced by its value (every one must have a value)."""
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def missing_values_error(
    missing: Sequence[str], loc: Sequence[str] = ("body", "values")
) -> ValidationFailed:
    return ValidationFailed(
        "the template uses placeholders without a value: "
        + ", ".join("{{" + name + "}}" for name in missing),
        [
            {"loc": [*loc, name], "message": f"the template uses {{{{{name}}}}}; give it a value"}
            for name in missing
        ],
    )


def _task_create(
    blueprint: TaskBlueprint,
    values: Mapping[str, str],
    loc: list[str | int],
    project_id: str,
    parent_id: str | None,
) -> TaskCreate:
    data: dict[str, Any] = {
        "project_id": project_id,
        "title": fill(blueprint.title, values),
        "description": fill(blueprint.description, values),
        "priority": blueprint.priority.value,
        "tags": [fill(tag, values) for tag in blueprint.tags],
        "assignee_id": blueprint.assignee_id,
        "parent_id": parent_id,
    }
    try:
        return TaskCreate.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(
            "the template, filled with these values, is not a valid task",
            [
                {
                    "loc": [*loc, *error["loc"]],
                    "message": f"after filling in the values: {error['msg']}",
                }
                for error in exc.errors(include_url=False)
            ],
        ) from None


@dataclass(frozen=True)
class Instance:
    """What instantiating a template creates: the task, then each subtask under it (their
    `parent_id` is set once the task exists)."""

    task: TaskCreate
    subtasks: tuple[TaskCreate, ...]


def instantiate(
    template: Template,
    values: Mapping[str, str],
    project_id: str,
    values_loc: Sequence[str] = ("body", "values"),
) -> Instance:
    """The task bodies the template makes with `values`: 422 for missing values, or for a
    filled field a task may not have. Nothing is written here."""
    missing = [name for name in template.placeholders if name not in values]
    if missing:
        raise missing_values_error(missing, values_loc)
    task = _task_create(template.task, values, ["template", "task"], project_id, None)
    subtasks = tuple(
        # The parent is not known yet: a placeholder id of the right shape passes validation.
        _task_create(sub, values, ["template", "subtasks", index], project_id, None)
        for index, sub in enumerate(template.subtasks)
    )
    return Instance(task, subtasks)


# ---- request bodies -------------------------------------------------------------------------

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX)]
RawTitle = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=RAW_TITLE_MAX)
]
PlaceholderName = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=PLACEHOLDER_NAME_MAX, pattern=PLACEHOLDER_NAME_PATTERN
    ),
]
Value = Annotated[str, StringConstraints(max_length=VALUE_MAX)]
Values = Annotated[dict[PlaceholderName, Value], Field(max_length=VALUES_MAX)]


class TaskBlueprintInput(Input):
    title: RawTitle
    description: Description = ""
    priority: Priority = Priority.MEDIUM
    tags: Tags = Field(default_factory=list)
    assignee_id: Id | None = None

    def to_blueprint(self) -> TaskBlueprint:
        return TaskBlueprint(
            title=self.title,
            description=self.description,
            priority=self.priority,
            tags=tuple(self.tags),
            assignee_id=self.assignee_id,
        )


Subtasks = Annotated[list[TaskBlueprintInput], Field(max_length=SUBTASKS_MAX)]


class TemplateCreate(Input):
    name: Name
    task: TaskBlueprintInput
    subtasks: Subtasks = Field(default_factory=list)


class TemplateUpdate(Input):
    """Fields present are applied; `task` and `subtasks` replace the whole value."""

    name: Name | None = None
    task: TaskBlueprintInput | None = None
    subtasks: Subtasks | None = None

    @field_validator("name", "task", "subtasks")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class FromTemplate(Input):
    template_id: Id
    project_id: Id | None = None
    values: Values = Field(default_factory=dict)
