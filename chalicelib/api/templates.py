"""Task templates: /projects/{id}/templates, /templates/{id}, and /tasks/from-template.

A template id names its project the way a task id does, so a route about one template reads the
template, its project and the caller's membership with the session.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, from_params, route
from chalicelib.domain.tasks import Priority
from chalicelib.domain.templates import (
    FromTemplate,
    TaskBlueprint,
    Template,
    TemplateCreate,
    TemplateUpdate,
)
from chalicelib.representations.schemas import Out, PageOut, TaskOut
from chalicelib.services.templates import Instantiated, TemplateService

TAG = "automation"


class TaskBlueprintOut(Out):
    title: str
    description: str
    priority: Priority
    tags: list[str]
    assignee_id: str | None

    @classmethod
    def of(cls, blueprint: TaskBlueprint) -> TaskBlueprintOut:
        return cls(
            title=blueprint.title,
            description=blueprint.description,
            priority=blueprint.priority,
            tags=list(blueprint.tags),
            assignee_id=blueprint.assignee_id,
        )


class TemplateOut(Out):
    id: str
    project_id: str
    name: str
    task: TaskBlueprintOut
    subtasks: list[TaskBlueprintOut]
    placeholders: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, template: Template) -> TemplateOut:
        return cls(
            id=template.id,
            project_id=template.project_id,
            name=template.name,
            task=TaskBlueprintOut.of(template.task),
            subtasks=[TaskBlueprintOut.of(sub) for sub in template.subtasks],
            placeholders=template.placeholders,
            created_by=template.created_by,
            created_at=template.created_at,
            updated_at=template.updated_at,
            version=template.version,
        )


class TaskWithSubtasksOut(TaskOut):
    """The task as `GET /tasks/{id}` shows it, with the subtasks made under it."""

    subtasks: list[TaskOut]

    @classmethod
    def made(cls, result: Instantiated) -> TaskWithSubtasksOut:
        return cls(
            **TaskOut.of(result.task).model_dump(),
            subtasks=[TaskOut.of(sub) for sub in result.subtasks],
        )


# ---- routes ------------------------------------------------------------------------------------


@route(
    "/projects/{project_id}/templates",
    "POST",
    tag=TAG,
    status=201,
    summary="Create a task template in a project (member+); text fields may hold {{name}}",
    body=TemplateCreate,
    response=TemplateOut,
    errors=(403, 404, 422),
    prefetch=from_params(TemplateService.reads_for_project, "project_id"),
)
def create_template(call: Call) -> TemplateOut:
    template = bootstrap.container().templates.create(
        call.principal, call.params["project_id"], call.body
    )
    return TemplateOut.of(template)


@route(
    "/projects/{project_id}/templates",
    "GET",
    tag=TAG,
    summary="The templates of a project, newest first",
    query=PageQuery,
    response=PageOut[TemplateOut],
    errors=(400, 404, 422),
    prefetch=from_params(TemplateService.reads_for_project, "project_id"),
)
def list_templates(call: Call) -> PageOut[TemplateOut]:
    page = bootstrap.container().templates.find(
        call.principal, call.params["project_id"], call.query.page()
    )
    return PageOut[TemplateOut](
        items=[TemplateOut.of(t) for t in page.items], next_cursor=page.next_cursor
    )


@route(
    "/templates/{template_id}",
    "GET",
    tag=TAG,
    summary="A task template",
    response=TemplateOut,
    errors=(404,),
    prefetch=from_params(TemplateService.reads_for_template, "template_id"),
)
def get_template(call: Call) -> TemplateOut:
    return TemplateOut.of(
        bootstrap.container().templates.get(call.principal, call.params["template_id"])
    )


@route(
    "/templates/{template_id}",
    ["PUT", "PATCH"],
    tag=TAG,
    summary="Change a task template (fields present are applied; task and subtasks are "
    "replaced whole)",
    body=TemplateUpdate,
    response=TemplateOut,
    errors=(403, 404, 409, 412, 422),
    prefetch=from_params(TemplateService.reads_for_template, "template_id"),
)
def update_template(call: Call) -> TemplateOut:
    template = bootstrap.container().templates.update(
        call.principal, call.params["template_id"], call.body, call.if_match
    )
    return TemplateOut.of(template)


@route(
    "/templates/{template_id}",
    "DELETE",
    tag=TAG,
    status=204,
    summary="Delete a task template (members their own, admins any)",
    errors=(403, 404, 409, 412),
    prefetch=from_params(TemplateService.reads_for_template, "template_id"),
)
def delete_template(call: Call) -> None:
    bootstrap.container().templates.delete(
        call.principal, call.params["template_id"], call.if_match
    )


@route(
    "/tasks/from-template",
    "POST",
    tag=TAG,
    status=201,
    summary="Create a task and its subtasks from a template, filling its {{name}} "
    "placeholders from values (a placeholder without a value: 422)",
    body=FromTemplate,
    response=TaskWithSubtasksOut,
    errors=(403, 404, 422),
    prefetch_body=TemplateService.reads_for_instantiate,
)
def task_from_template(call: Call) -> TaskWithSubtasksOut:
    return TaskWithSubtasksOut.made(
        bootstrap.container().templates.instantiate(call.principal, call.body)
    )
