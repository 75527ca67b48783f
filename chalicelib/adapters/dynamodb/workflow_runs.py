"""DynamoDB repository of workflow runs: one item per run (its steps inside), listed newest
first through `by_workflow`.

A round of a run is one transaction (`advance`): the run, put conditional on the version read;
the executions of the steps it starts (condition: new); their history events. A plan that lost
a race writes nothing, so a step never gets two executions.

A scheduled firing of a workflow is one transaction too (`create_for_firing`), like a task's:
the firing's claim in `claims` (`firing#<workflow>#<time>`, condition: new; owner = the run
id), the workflow's active slot (`active#<workflow>`, condition: new) when the overlap policy
wants one, and the run (condition: new). A second delivery fails the claim's condition, writes
nothing, and reads the run the claim names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError

from chalicelib.adapters.dynamodb import prefetch, transactions
from chalicelib.adapters.dynamodb.executions import (
    claim_owner,
    execution_to_model,
    firing_claim,
    firing_claim_item,
    release_active_slot,
    slot_claim,
    slot_item,
)
from chalicelib.adapters.dynamodb.models import ClaimModel, ExecutionModel, WorkflowRunModel
from chalicelib.adapters.dynamodb.pagination import key_of, paginate
from chalicelib.adapters.dynamodb.prefetch import ItemKey
from chalicelib.adapters.dynamodb.records import write_records
from chalicelib.adapters.dynamodb.tasks import BATCH_WRITE_SIZE
from chalicelib.adapters.dynamodb.transactions import Transaction, condition_failed
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.activity import Record
from chalicelib.domain.errors import StaleVersion
from chalicelib.domain.executions import Execution, ExecutionStatus, Slot, SlotTaken
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.projects import plausible_id
from chalicelib.domain.workflow_runs import RunStep, WorkflowRun, check_advance
from chalicelib.domain.workflows import OnFailure


def _step_json(step: RunStep) -> dict[str, Any]:
    return {
        "key": step.key,
        "task_id": step.task_id,
        "depends_on": list(step.depends_on),
        "execution_id": step.execution_id,
        "outcome": step.outcome.value if step.outcome else None,
    }


def _steps_json(steps: tuple[RunStep, ...]) -> str:
    return json.dumps([_step_json(step) for step in steps], separators=(",", ":"))


def _steps_from_json(text: str) -> tuple[RunStep, ...]:
    return tuple(
        RunStep(
            key=str(raw["key"]),
            task_id=str(raw["task_id"]),
            depends_on=tuple(str(k) for k in raw.get("depends_on", ())),
            execution_id=str(raw["execution_id"]) if raw.get("execution_id") else None,
            outcome=ExecutionStatus(raw["outcome"]) if raw.get("outcome") else None,
        )
        for raw in json.loads(text)
    )


def run_to_model(run: WorkflowRun) -> WorkflowRunModel:
    return WorkflowRunModel(
        id=run.id,
        workflow_id=run.workflow_id,
        project_id=run.project_id,
        status=run.status.value,
        trigger=run.trigger,
        created_by=run.created_by,
        created_at=run.created_at,
        steps=_steps_json(run.steps),
        max_concurrency=run.max_concurrency,
        on_failure=run.on_failure.value,
        scheduled_for=run.scheduled_for,
        started_at=run.started_at,
        finished_at=run.finished_at,
        version=run.version,
    )


def run_from_model(row: WorkflowRunModel) -> WorkflowRun:
    return WorkflowRun(
        id=row.id,
        workflow_id=row.workflow_id,
        project_id=row.project_id,
        status=ExecutionStatus(row.status),
        trigger=row.trigger,
        created_by=row.created_by,
        created_at=row.created_at,
        steps=_steps_from_json(row.steps),
        max_concurrency=int(row.max_concurrency),
        on_failure=OnFailure(row.on_failure),
        scheduled_for=row.scheduled_for,
        started_at=row.started_at,
        finished_at=row.finished_at,
        version=int(row.version),
    )


class DynamoWorkflowRunRepository:
    @translate_aws_failures
    def create(self, run: WorkflowRun) -> WorkflowRun:
        if transactions.guarded():  # an idempotent POST: the run and its claim, one write
            try:
                with Transaction() as tx:
                    tx.save("run", run_to_model(run), WorkflowRunModel.id.does_not_exist())
            except TransactWriteError as exc:
                if "run" in tx.failed(exc):
                    raise StaleVersion(run.id) from exc
                raise
            return run
        try:
            run_to_model(run).save(condition=WorkflowRunModel.id.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                raise StaleVersion(run.id) from exc
            raise
        return run

    @translate_aws_failures
    def create_for_firing(
        self, firing_key: str, run: WorkflowRun, *, hold_slot: bool = False
    ) -> tuple[WorkflowRun, bool]:
        try:
            with Transaction() as tx:
                tx.save(
                    "claim",
                    firing_claim_item(firing_key, run.id, run.created_at),
                    ClaimModel.key.does_not_exist(),
                )
                if hold_slot:
                    tx.save(
                        "slot",
                        slot_item(run.workflow_id, Slot.ACTIVE, run.id, run.created_at),
                        ClaimModel.key.does_not_exist(),
                    )
                tx.save("run", run_to_model(run), WorkflowRunModel.id.does_not_exist())
        except TransactWriteError as exc:
            failed = tx.failed(exc)
            if "claim" in failed:
                owner = claim_owner(firing_claim(firing_key))
                existing = self.get(owner) if owner else None
                if existing is None:  # the claim names a run that is gone: not ours to answer
                    raise
                return existing, False
            if "slot" in failed:
                raise SlotTaken(Slot.ACTIVE) from None
            raise
        return run, True

    @translate_aws_failures
    def slot_owner(self, workflow_id: str) -> str | None:
        return claim_owner(slot_claim(workflow_id, Slot.ACTIVE))

    @translate_aws_failures
    def release_slot(self, workflow_id: str, run_id: str) -> bool:
        return release_active_slot(workflow_id, run_id)

    @translate_aws_failures
    def get(self, run_id: str) -> WorkflowRun | None:
        """Consistent: the request's prefetched copy comes from a consistent BatchGetItem (in
        this request), anything else is a consistent GetItem."""
        if not plausible_id(run_id):
            return None
        row = prefetch.get(ItemKey(WorkflowRunModel, run_id), WorkflowRunModel)
        return run_from_model(row) if row else None

    @translate_aws_failures
    def find_for_workflow(self, workflow_id: str, page: PageRequest) -> Page[WorkflowRun]:
        return paginate(
            lambda limit, start: WorkflowRunModel.by_workflow.query(
                workflow_id,
                scan_index_forward=False,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start,
            ),
            lambda row: key_of(row, "id", "workflow_id"),
            run_from_model,
            page,
            scope=f"workflow_runs:{workflow_id}",
        )

    @translate_aws_failures
    def advance(
        self,
        before: WorkflowRun,
        after: WorkflowRun,
        executions: Sequence[Execution] = (),
        records: Sequence[Record] = (),
    ) -> WorkflowRun:
        check_advance(before, after, executions, records)
        saved = after.with_changes(version=before.version + 1)
        try:
            with Transaction() as tx:
                tx.save("run", run_to_model(saved), WorkflowRunModel.version == before.version)
                for execution in executions:
                    tx.save(
                        "execution",
                        execution_to_model(execution),
                        ExecutionModel.id.does_not_exist(),
                    )
                write_records(tx, records)
        except TransactWriteError as exc:
            failed = tx.failed(exc)
            if "run" in failed:
                raise StaleVersion(before.id) from exc
            if "execution" in failed:
                # An id in use (the round's ids are new ULIDs): nothing was written; plan again.
                raise StaleVersion(f"{before.id}: a step's execution exists") from exc
            raise
        return saved


def purge_workflow_runs(workflow_id: str) -> int:
    """Delete every run of a workflow (the stream consumer's clean-up, through `by_workflow`);
    idempotent. The steps' executions go with their tasks; the workflow's overlap slot goes with
    its runs (the firings' claims stay until they expire, so a late delivery records nothing).
    Returns how many runs it deleted."""
    deleted = 0
    while True:
        rows = list(
            WorkflowRunModel.by_workflow.query(
                workflow_id, limit=BATCH_WRITE_SIZE, attributes_to_get=["id"]
            )
        )
        if not rows:
            ClaimModel(key=slot_claim(workflow_id, Slot.ACTIVE)).delete()
            return deleted
        with WorkflowRunModel.batch_write() as batch:
            for row in rows:
                batch.delete(WorkflowRunModel(id=row.id))
        deleted += len(rows)
