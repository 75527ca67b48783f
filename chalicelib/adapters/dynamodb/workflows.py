"""DynamoDB repository of workflows: one item per workflow, listed through `by_project`.

Creating and changing a workflow is one transaction with a check that its project still
exists (a deleted project takes no new workflow); changes and deletions are conditional on the
version read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from chalicelib.adapters.dynamodb.encoding import schedule_from_json, schedule_json
from chalicelib.adapters.dynamodb.models import WorkflowModel
from chalicelib.adapters.dynamodb.next_runs import advance_next_run
from chalicelib.adapters.dynamodb.project_items import ProjectItems
from chalicelib.adapters.dynamodb.workflow_runs import purge_workflow_runs
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.workflows import OnFailure, Step, Workflow


def _steps_json(steps: tuple[Step, ...]) -> str:
    return json.dumps(
        [
            {"key": step.key, "task_id": step.task_id, "depends_on": list(step.depends_on)}
            for step in steps
        ],
        separators=(",", ":"),
    )


def _steps_from_json(text: str) -> tuple[Step, ...]:
    return tuple(
        Step(str(raw["key"]), str(raw["task_id"]), tuple(str(k) for k in raw["depends_on"]))
        for raw in json.loads(text)
    )


def workflow_to_model(workflow: Workflow) -> WorkflowModel:
    return WorkflowModel(
        id=workflow.id,
        project_id=workflow.project_id,
        name=workflow.name,
        steps=_steps_json(workflow.steps),
        max_concurrency=workflow.max_concurrency,
        on_failure=workflow.on_failure.value,
        schedule=schedule_json(workflow.schedule),
        next_run_at=workflow.next_run_at,
        created_by=workflow.created_by,
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
        version=workflow.version,
    )


def workflow_from_model(row: WorkflowModel) -> Workflow:
    return Workflow(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        steps=_steps_from_json(row.steps),
        max_concurrency=int(row.max_concurrency),
        on_failure=OnFailure(row.on_failure),
        schedule=schedule_from_json(row.schedule),
        next_run_at=row.next_run_at,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=int(row.version),
    )


# Fields a change may touch, each with how it is stored.
_UPDATABLE: dict[str, Callable[[Workflow], Any]] = {
    "name": lambda w: w.name,
    "steps": lambda w: _steps_json(w.steps),
    "max_concurrency": lambda w: w.max_concurrency,
    "on_failure": lambda w: w.on_failure.value,
    "schedule": lambda w: schedule_json(w.schedule),
    "next_run_at": lambda w: w.next_run_at,
    "updated_at": lambda w: w.updated_at,
}


def _update_actions(before: Workflow, after: Workflow) -> list[Any]:
    """Only the changed fields are written, so a derived field another writer keeps (the
    next firing, moved on by `fire`) is not put back to the value read."""
    actions: list[Any] = []
    for name, value_of in _UPDATABLE.items():
        old, new = value_of(before), value_of(after)
        if old == new:
            continue
        attribute: Any = getattr(WorkflowModel, name)
        actions.append(attribute.remove() if new is None else attribute.set(new))
    actions.append(WorkflowModel.version.set(before.version + 1))
    return actions


_WORKFLOWS = ProjectItems(WorkflowModel, "workflow", workflow_to_model, workflow_from_model)


class DynamoWorkflowRepository:
    @translate_aws_failures
    def get(self, workflow_id: str) -> Workflow | None:
        return _WORKFLOWS.get(workflow_id)

    @translate_aws_failures
    def create(self, workflow: Workflow) -> Workflow:
        return _WORKFLOWS.create(workflow)

    @translate_aws_failures
    def update(self, before: Workflow, after: Workflow) -> Workflow:
        return _WORKFLOWS.update(before, after, _update_actions(before, after))

    @translate_aws_failures
    def delete(self, workflow: Workflow) -> None:
        _WORKFLOWS.delete(workflow)

    @translate_aws_failures
    def advance_next_run(
        self, workflow_id: str, fired_at: datetime, next_run_at: datetime | None
    ) -> bool:
        return advance_next_run(WorkflowModel, workflow_id, fired_at, next_run_at)

    @translate_aws_failures
    def find(self, project_id: str, page: PageRequest) -> Page[Workflow]:
        return _WORKFLOWS.find(project_id, page)


def purge_project_workflows(project_id: str) -> int:
    """Delete every workflow of a deleted project, each after its runs (the stream consumer's
    clean-up); idempotent. Returns how many items it deleted."""
    # Runs first: a purge cut short finds the workflow again and finishes its runs.
    return _WORKFLOWS.purge(project_id, purge_workflow_runs)
