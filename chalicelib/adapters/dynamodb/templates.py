"""DynamoDB repository of task templates: one item per template, listed through `by_project`.

Creating and changing a template is one transaction with a check that its project still exists;
changes (the whole item put again) and deletions are conditional on the version read
(`project_items.py`).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters.dynamodb.models import TemplateModel
from chalicelib.adapters.dynamodb.project_items import ProjectItems
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.tasks import Priority
from chalicelib.domain.templates import TaskBlueprint, Template


def _blueprint_data(blueprint: TaskBlueprint) -> dict[str, Any]:
    return {
        "title": blueprint.title,
        "description": blueprint.description,
        "priority": blueprint.priority.value,
        "tags": list(blueprint.tags),
        "assignee_id": blueprint.assignee_id,
    }


def _blueprint(raw: dict[str, Any]) -> TaskBlueprint:
    return TaskBlueprint(
        title=str(raw["title"]),
        description=str(raw.get("description") or ""),
        priority=Priority(raw.get("priority") or Priority.MEDIUM.value),
        tags=tuple(str(tag) for tag in raw.get("tags") or ()),
        assignee_id=raw.get("assignee_id"),
    )


def template_to_model(template: Template) -> TemplateModel:
    return TemplateModel(
        id=template.id,
        project_id=template.project_id,
        name=template.name,
        # UTF-8 as is: \u escapes would triple wide characters and overflow the 400 KB item.
        task=json.dumps(_blueprint_data(template.task), separators=(",", ":"), ensure_ascii=False),
        subtasks=json.dumps(
            [_blueprint_data(sub) for sub in template.subtasks],
            separators=(",", ":"),
            ensure_ascii=False,
        ),
        created_by=template.created_by,
        created_at=template.created_at,
        updated_at=template.updated_at,
        version=template.version,
    )


def template_from_model(row: TemplateModel) -> Template:
    return Template(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        task=_blueprint(json.loads(row.task)),
        subtasks=tuple(_blueprint(raw) for raw in json.loads(row.subtasks)),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=int(row.version),
    )


_TEMPLATES = ProjectItems(TemplateModel, "template", template_to_model, template_from_model)


class DynamoTemplateRepository:
    @translate_aws_failures
    def get(self, template_id: str) -> Template | None:
        return _TEMPLATES.get(template_id)

    @translate_aws_failures
    def create(self, template: Template) -> Template:
        return _TEMPLATES.create(template)

    @translate_aws_failures
    def update(self, before: Template, after: Template) -> Template:
        return _TEMPLATES.put(before, after)

    @translate_aws_failures
    def delete(self, template: Template) -> None:
        _TEMPLATES.delete(template)

    @translate_aws_failures
    def find(self, project_id: str, page: PageRequest) -> Page[Template]:
        return _TEMPLATES.find(project_id, page)

    @translate_aws_failures
    def purge_project(self, project_id: str) -> int:
        return _TEMPLATES.purge(project_id)
