"""DynamoDB repository of task templates: one item per template, listed through `by_project`.

Creating and changing a template is one transaction with a check that its project still exists;
changes and deletions are conditional on the version read.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from pynamodb.exceptions import DeleteError, TransactWriteError

from chalicelib.adapters.dynamodb import prefetch
from chalicelib.adapters.dynamodb.models import ProjectModel, TemplateModel
from chalicelib.adapters.dynamodb.pagination import key_of, paginate
from chalicelib.adapters.dynamodb.prefetch import ItemKey
from chalicelib.adapters.dynamodb.tasks import BATCH_WRITE_SIZE
from chalicelib.adapters.dynamodb.transactions import Transaction, condition_failed
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.errors import NotFound, StaleVersion
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.projects import plausible_id
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
        task=json.dumps(_blueprint_data(template.task), separators=(",", ":")),
        subtasks=json.dumps(
            [_blueprint_data(sub) for sub in template.subtasks], separators=(",", ":")
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


def _raise_for(exc: TransactWriteError, tx: Transaction) -> NoReturn:
    failed = tx.failed(exc)
    if "project" in failed:
        raise NotFound("project not found") from exc
    if "template" in failed:
        raise StaleVersion("template") from exc
    raise exc


class DynamoTemplateRepository:
    @translate_aws_failures
    def get(self, template_id: str) -> Template | None:
        if not plausible_id(template_id):
            return None
        row = prefetch.get(ItemKey(TemplateModel, template_id), TemplateModel)
        return template_from_model(row) if row else None

    @translate_aws_failures
    def create(self, template: Template) -> Template:
        try:
            with Transaction() as tx:
                tx.check("project", ProjectModel, template.project_id, ProjectModel.id.exists())
                tx.save("template", template_to_model(template), TemplateModel.id.does_not_exist())
        except TransactWriteError as exc:
            _raise_for(exc, tx)
        return template

    @translate_aws_failures
    def update(self, before: Template, after: Template) -> Template:
        saved = after.with_changes(version=before.version + 1)
        try:
            with Transaction() as tx:
                tx.check("project", ProjectModel, after.project_id, ProjectModel.id.exists())
                # Always written whole (a few KB at most): a put conditional on the version.
                tx.save(
                    "template", template_to_model(saved), TemplateModel.version == before.version
                )
        except TransactWriteError as exc:
            _raise_for(exc, tx)
        return saved

    @translate_aws_failures
    def delete(self, template: Template) -> None:
        try:
            TemplateModel(id=template.id).delete(
                condition=TemplateModel.version == template.version
            )
        except DeleteError as exc:
            if condition_failed(exc):
                raise StaleVersion(template.id) from exc
            raise

    @translate_aws_failures
    def find(self, project_id: str, page: PageRequest) -> Page[Template]:
        return paginate(
            lambda limit, start: TemplateModel.by_project.query(
                project_id,
                scan_index_forward=False,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start,
            ),
            lambda row: key_of(row, "id", "project_id"),
            template_from_model,
            page,
            scope=f"templates:{project_id}",
        )

    @translate_aws_failures
    def purge_project(self, project_id: str) -> int:
        deleted = 0
        while True:
            rows = list(
                TemplateModel.by_project.query(
                    project_id, limit=BATCH_WRITE_SIZE, attributes_to_get=["id"]
                )
            )
            if not rows:
                return deleted
            with TemplateModel.batch_write() as batch:
                for row in rows:
                    batch.delete(TemplateModel(id=row.id))
            deleted += len(rows)
