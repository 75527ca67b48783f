"""DynamoDB repository of executions.

A task's scheduled firing is claimed by its execution itself: the execution id is derived from
the firing (`firing_execution_id`), so its put, conditional on the id being new, is the claim.
A second delivery fails that condition and reads the execution. No transaction is needed for
it: with an overlap slot, the slot is put first, owned by the execution id (a repeated delivery
owns it already; one left by a delivery that died before its execution is cleared as stale), and
only a skipped firing writes a record with its execution (one transaction). Workflow runs still
claim their firings in `claims` (`firing#<workflow>#<time>`, see workflow_runs.py). Status
changes are conditional on the version and status read, so a finished execution is never
overwritten.

A leased execution (an attempt outside the state machine holds it) is in the sparse index
`by_lease` until the lease ends; the sweep queries it for leases that expired (their holder
died) in `LEASE_SHARDS` partitions, so no single partition takes every firing's index writes.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, TransactWriteError

from chalicelib.adapters.dynamodb import prefetch
from chalicelib.adapters.dynamodb.models import ClaimModel, ExecutionModel
from chalicelib.adapters.dynamodb.pagination import key_of, paginate
from chalicelib.adapters.dynamodb.prefetch import ItemKey
from chalicelib.adapters.dynamodb.records import write_records
from chalicelib.adapters.dynamodb.transactions import Transaction, condition_failed
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.activity import Record
from chalicelib.domain.errors import StaleVersion
from chalicelib.domain.executions import (
    Execution,
    ExecutionResult,
    ExecutionStatus,
    Slot,
    SlotTaken,
    Trigger,
)
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.projects import plausible_id

MAX_BATCH_KEYS = 100  # DynamoDB's limit per BatchGetItem

# EventBridge Scheduler gives up on a delivery after an hour (the schedules' retry policy);
# a firing's claim outlives that by far, then DynamoDB's TTL removes it.
FIRING_CLAIM_LIFETIME = timedelta(days=30)
LEASE_SHARDS = 4


def lease_shard(execution_id: str) -> str:
    return str(zlib.crc32(execution_id.encode()) % LEASE_SHARDS)


def firing_claim(firing_key: str) -> str:
    return f"firing#{firing_key}"


def slot_claim(subject_id: str, slot: Slot) -> str:
    """The claim of a task's (or a workflow's) overlap slot: `active#<id>`, `buffered#<id>`."""
    return f"{slot.value}#{subject_id}"


# ---- claims shared by every kind of firing (tasks' executions, workflows' runs) ---------------


def firing_claim_item(firing_key: str, owner_id: str, at: datetime) -> ClaimModel:
    """The claim of one firing, owned by what it created; it expires long after redeliveries."""
    return ClaimModel(
        key=firing_claim(firing_key),
        owner_id=owner_id,
        created_at=at,
        expires_at=at + FIRING_CLAIM_LIFETIME,
    )


def slot_item(subject_id: str, slot: Slot, owner_id: str, at: datetime) -> ClaimModel:
    return ClaimModel(key=slot_claim(subject_id, slot), owner_id=owner_id, created_at=at)


def claim_owner(key: str) -> str | None:
    """The owner of a claim (a consistent read), or None if there is no such claim."""
    try:
        return str(ClaimModel.get(key, consistent_read=True).owner_id)
    except ClaimModel.DoesNotExist:
        return None


def release_active_slot(subject_id: str, owner_id: str) -> bool:
    """Delete the active slot of a task or workflow if `owner_id` holds it."""
    try:
        ClaimModel(key=slot_claim(subject_id, Slot.ACTIVE)).delete(
            condition=ClaimModel.owner_id == owner_id
        )
    except DeleteError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def execution_to_model(execution: Execution) -> ExecutionModel:
    result = execution.result
    return ExecutionModel(
        id=execution.id,
        task_id=execution.task_id,
        project_id=execution.project_id,
        trigger=execution.trigger.value,
        status=execution.status.value,
        created_at=execution.created_at,
        scheduled_for=execution.scheduled_for,
        workflow_run_id=execution.workflow_run_id,
        started_at=execution.started_at,
        finished_at=execution.finished_at,
        attempts=execution.attempts,
        result=json.dumps(
            {
                "status_code": result.status_code,
                "duration_ms": result.duration_ms,
                "body_excerpt": result.body_excerpt,
            }
        )
        if result
        else None,
        error=execution.error,
        version=execution.version,
        lease_expires_at=execution.lease_expires_at,
        lease_shard=lease_shard(execution.id) if execution.lease_expires_at else None,
    )


def execution_from_model(row: ExecutionModel) -> Execution:
    raw = json.loads(row.result) if row.result else None
    return Execution(
        id=row.id,
        task_id=row.task_id,
        project_id=row.project_id,
        trigger=Trigger(row.trigger),
        status=ExecutionStatus(row.status),
        created_at=row.created_at,
        scheduled_for=row.scheduled_for,
        workflow_run_id=row.workflow_run_id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        attempts=int(row.attempts),
        result=ExecutionResult(
            int(raw["status_code"]), int(raw["duration_ms"]), str(raw["body_excerpt"])
        )
        if raw
        else None,
        error=row.error,
        version=int(row.version),
        lease_expires_at=row.lease_expires_at,
    )


class DynamoExecutionRepository:
    @translate_aws_failures
    def create(self, execution: Execution, records: Sequence[Record] = ()) -> Execution:
        with Transaction() as tx:
            tx.save("execution", execution_to_model(execution), ExecutionModel.id.does_not_exist())
            write_records(tx, records)
        return execution

    @translate_aws_failures
    def create_for_firing(
        self,
        execution: Execution,
        records: Sequence[Record] = (),
        slot: Slot | None = None,
        *,
        waiting_first: bool = True,
    ) -> tuple[Execution, bool]:
        took_slot = slot is not None and self._take_slot(execution, slot, waiting_first)
        # The firing's claim: the execution, on condition that its id is new.
        if not _save_if(execution_to_model(execution), ExecutionModel.id.does_not_exist(), records):
            existing = self.get(execution.id)
            if existing is None:  # deleted since (its task was purged): nothing to answer
                raise StaleVersion(execution.id) from None
            if took_slot and existing.status.finished:  # the slot went, then came back to us
                self._release_own(execution, slot)
            return existing, False
        return execution, True

    def _take_slot(self, execution: Execution, slot: Slot, waiting_first: bool) -> bool:
        """Put the task's `slot`, owned by the execution (a repeated delivery owns it already:
        the execution id names the firing). `SlotTaken` if another holds it, or, for the active
        slot with `waiting_first`, if an execution waits in the buffered one."""
        held = slot_item(execution.task_id, slot, execution.id, execution.created_at)
        free_or_ours = ClaimModel.key.does_not_exist() | (ClaimModel.owner_id == execution.id)
        try:
            if slot is Slot.ACTIVE and waiting_first:  # a waiting one goes first
                with Transaction() as tx:
                    tx.save("slot", held, free_or_ours)
                    tx.check(
                        "slot",
                        ClaimModel,
                        slot_claim(execution.task_id, Slot.BUFFERED),
                        ClaimModel.key.does_not_exist(),
                    )
            else:
                held.save(condition=free_or_ours)
        except TransactWriteError as exc:
            if "slot" in tx.failed(exc):
                raise SlotTaken(slot) from None
            raise
        except PutError as exc:
            if condition_failed(exc):
                raise SlotTaken(slot) from None
            raise
        return True

    def _release_own(self, execution: Execution, slot: Slot | None) -> None:
        if slot is Slot.ACTIVE:
            release_active_slot(execution.task_id, execution.id)
        elif slot is Slot.BUFFERED:
            with contextlib.suppress(DeleteError):
                ClaimModel(key=slot_claim(execution.task_id, slot)).delete(
                    condition=ClaimModel.owner_id == execution.id
                )

    @translate_aws_failures
    def slot_owner(self, task_id: str, slot: Slot) -> str | None:
        return claim_owner(slot_claim(task_id, slot))

    @translate_aws_failures
    def slot_holder(self, task_id: str, slot: Slot) -> tuple[str, datetime] | None:
        try:
            claim = ClaimModel.get(slot_claim(task_id, slot), consistent_read=True)
        except ClaimModel.DoesNotExist:
            return None
        return str(claim.owner_id), claim.created_at

    @translate_aws_failures
    def release_slot(self, task_id: str, execution_id: str) -> bool:
        return release_active_slot(task_id, execution_id)

    @translate_aws_failures
    def promote_buffered(self, task_id: str) -> str | None:
        waiting = self.slot_owner(task_id, Slot.BUFFERED)
        if waiting is None:
            return None
        now = datetime.now(UTC)
        try:
            with Transaction() as tx:
                tx.save(
                    "active",
                    slot_item(task_id, Slot.ACTIVE, waiting, now),
                    ClaimModel.key.does_not_exist(),
                )
                tx.delete(
                    "buffered",
                    ClaimModel(key=slot_claim(task_id, Slot.BUFFERED)),
                    ClaimModel.owner_id == waiting,
                )
        except TransactWriteError as exc:
            if tx.failed(exc):  # someone else holds the slot, or promoted it first
                return None
            raise
        return waiting

    @translate_aws_failures
    def get(self, execution_id: str) -> Execution | None:
        if not plausible_id(execution_id):
            return None
        row = prefetch.get(ItemKey(ExecutionModel, execution_id), ExecutionModel)
        return execution_from_model(row) if row else None

    @translate_aws_failures
    def get_many(self, execution_ids: Sequence[str]) -> dict[str, Execution]:
        wanted = [e for e in dict.fromkeys(execution_ids) if plausible_id(e)]
        found: dict[str, Execution] = {}
        for start in range(0, len(wanted), MAX_BATCH_KEYS):
            chunk = wanted[start : start + MAX_BATCH_KEYS]
            for row in ExecutionModel.batch_get(chunk, consistent_read=True):
                found[row.id] = execution_from_model(row)
        return found

    @translate_aws_failures
    def find_expired_leases(self, before: datetime, limit: int) -> list[Execution]:
        ids: list[str] = []
        for shard in range(LEASE_SHARDS):
            rows = ExecutionModel.by_lease.query(
                str(shard),
                range_key_condition=ExecutionModel.lease_expires_at < before,
                limit=limit - len(ids),
            )
            ids += [row.id for row in rows]
            if len(ids) >= limit:
                break
        # The index is eventually consistent: the items say whether the lease still holds.
        found = self.get_many(ids)
        return [
            e
            for e in (found[i] for i in ids if i in found)
            if e.lease_expires_at is not None and e.lease_expires_at < before
        ]

    @translate_aws_failures
    def find_for_task(self, task_id: str, page: PageRequest) -> Page[Execution]:
        return paginate(
            lambda limit, start: ExecutionModel.by_task.query(
                task_id,
                scan_index_forward=False,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start,
            ),
            lambda row: key_of(row, "id", "task_id"),
            execution_from_model,
            page,
            scope=f"executions:{task_id}",
        )

    @translate_aws_failures
    def update(
        self, before: Execution, after: Execution, records: Sequence[Record] = ()
    ) -> Execution:
        saved = replace(after, version=before.version + 1)
        condition = (ExecutionModel.version == before.version) & (
            ExecutionModel.status == before.status.value
        )
        if not _save_if(execution_to_model(saved), condition, records):
            raise StaleVersion(before.id)
        return saved


def _save_if(item: ExecutionModel, condition: Any, records: Sequence[Record]) -> bool:
    """Save an execution on `condition`, with its `records` in one transaction when there are
    any; False if the condition failed (nothing written)."""
    try:
        if records:
            with Transaction() as tx:
                tx.save("execution", item, condition)
                write_records(tx, records)
        else:
            item.save(condition=condition)
    except TransactWriteError as exc:
        if "execution" in tx.failed(exc):
            return False
        raise
    except PutError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def purge_task_executions(task_id: str) -> int:
    """Delete a deleted task's executions (the stream consumer's clean-up); idempotent.

    Reads `by_task` a page at a time; the firings' claims stay until they expire, so a late
    delivery of an old firing still finds its claim and records nothing new."""
    deleted = 0
    while True:
        rows = list(ExecutionModel.by_task.query(task_id, limit=25, attributes_to_get=["id"]))
        if not rows:
            with ClaimModel.batch_write() as claims:  # the overlap slots go with the task
                for slot in Slot:
                    claims.delete(ClaimModel(key=slot_claim(task_id, slot)))
            return deleted
        with ExecutionModel.batch_write() as batch:
            for row in rows:
                batch.delete(ExecutionModel(id=row.id))
        deleted += len(rows)
