"""DynamoDB repositories of project hooks and their deliveries.

- `hooks`: one item per hook, listed through `by_project`; active hooks also carry
  `active_project_id`, the key of the sparse index `active_by_project`, so the stream consumer
  finds a project's active hooks with one Query (never a Scan). `consecutive_failures` is kept
  by the delivery consumer with atomic updates (ADD, SET 0), never read-then-written; user
  changes write only the fields they change (at the version read), so they never put back a
  stale count.
- `hook_deliveries`: one item per delivery (id: scoped, so routes read it by key), listed per
  hook through `by_hook`, newest first; each expires `DELIVERY_LIFETIME` after it was made.
  An attempt's outcome is written on condition that the delivery is still pending at the
  attempts read.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from chalicelib.adapters.dynamodb import prefetch
from chalicelib.adapters.dynamodb.models import DeliveryModel, HookModel
from chalicelib.adapters.dynamodb.pagination import key_of, paginate
from chalicelib.adapters.dynamodb.prefetch import ItemKey
from chalicelib.adapters.dynamodb.project_items import ProjectItems
from chalicelib.adapters.dynamodb.transactions import condition_failed
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.hooks import Delivery, DeliveryStatus, Hook
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.projects import plausible_id

DELIVERY_LIFETIME = timedelta(days=30)


def hook_to_model(hook: Hook) -> HookModel:
    return HookModel(
        id=hook.id,
        project_id=hook.project_id,
        url=hook.url,
        events=json.dumps(list(hook.events), separators=(",", ":")),
        active=hook.active,
        active_project_id=hook.project_id if hook.active else None,
        consecutive_failures=hook.consecutive_failures,
        created_by=hook.created_by,
        created_at=hook.created_at,
        updated_at=hook.updated_at,
        version=hook.version,
    )


def hook_from_model(row: HookModel) -> Hook:
    return Hook(
        id=row.id,
        project_id=row.project_id,
        url=row.url,
        events=tuple(json.loads(row.events)),
        active=bool(row.active),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=int(row.version),
        consecutive_failures=int(row.consecutive_failures or 0),
    )


def delivery_to_model(delivery: Delivery) -> DeliveryModel:
    return DeliveryModel(
        id=delivery.id,
        hook_id=delivery.hook_id,
        project_id=delivery.project_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        body=delivery.body,
        status=delivery.status.value,
        attempts=delivery.attempts,
        response_status=delivery.response_status,
        error=delivery.error,
        redelivery_of=delivery.redelivery_of,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
        expires_at=delivery.created_at + DELIVERY_LIFETIME,
    )


def delivery_from_model(row: DeliveryModel) -> Delivery:
    return Delivery(
        id=row.id,
        hook_id=row.hook_id,
        project_id=row.project_id,
        event_id=row.event_id,
        event_type=row.event_type,
        body=row.body,
        created_at=row.created_at,
        status=DeliveryStatus(row.status),
        attempts=int(row.attempts or 0),
        response_status=None if row.response_status is None else int(row.response_status),
        error=row.error,
        updated_at=row.updated_at,
        redelivery_of=row.redelivery_of,
    )


def _update_actions(before: Hook, after: Hook) -> list[Any]:
    actions: list[Any] = []
    if before.url != after.url:
        actions.append(HookModel.url.set(after.url))
    if before.events != after.events:
        actions.append(HookModel.events.set(json.dumps(list(after.events), separators=(",", ":"))))
    if before.active != after.active:
        actions.append(HookModel.active.set(after.active))
        actions.append(
            HookModel.active_project_id.set(after.project_id)
            if after.active
            else HookModel.active_project_id.remove()
        )
    if before.consecutive_failures != after.consecutive_failures:
        actions.append(HookModel.consecutive_failures.set(after.consecutive_failures))
    actions.append(HookModel.updated_at.set(after.updated_at))
    actions.append(HookModel.version.set(before.version + 1))
    return actions


_HOOKS = ProjectItems(HookModel, "hook", hook_to_model, hook_from_model)


class DynamoHookRepository:
    @translate_aws_failures
    def get(self, hook_id: str) -> Hook | None:
        return _HOOKS.get(hook_id)

    @translate_aws_failures
    def create(self, hook: Hook) -> Hook:
        return _HOOKS.create(hook)

    @translate_aws_failures
    def update(self, before: Hook, after: Hook) -> Hook:
        return _HOOKS.update(before, after, _update_actions(before, after))

    @translate_aws_failures
    def delete(self, hook: Hook) -> None:
        _HOOKS.delete(hook)

    @translate_aws_failures
    def find(self, project_id: str, page: PageRequest) -> Page[Hook]:
        return _HOOKS.find(project_id, page)

    @translate_aws_failures
    def active_for(self, project_id: str) -> list[Hook]:
        return [hook_from_model(row) for row in HookModel.active_by_project.query(project_id)]

    @translate_aws_failures
    def count_failure(self, hook_id: str) -> int | None:
        row = HookModel(id=hook_id)
        try:
            row.update(
                actions=[HookModel.consecutive_failures.add(1)],
                condition=HookModel.id.exists(),
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return None
            raise
        return int(row.consecutive_failures)

    @translate_aws_failures
    def reset_failures(self, hook_id: str) -> None:
        try:
            HookModel(id=hook_id).update(
                actions=[HookModel.consecutive_failures.set(0)],
                condition=HookModel.id.exists() & (HookModel.consecutive_failures != 0),
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise

    @translate_aws_failures
    def disable(self, hook_id: str, at: datetime) -> Hook | None:
        row = HookModel(id=hook_id)
        try:
            row.update(
                actions=[
                    HookModel.active.set(False),
                    HookModel.active_project_id.remove(),
                    HookModel.updated_at.set(at),
                    HookModel.version.add(1),
                ],
                condition=HookModel.active == True,  # noqa: E712 (a DynamoDB condition)
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return None
            raise
        return hook_from_model(row)

    @translate_aws_failures
    def purge_project(self, project_id: str) -> int:
        return _HOOKS.purge(project_id)


class DynamoDeliveryRepository:
    @translate_aws_failures
    def get(self, delivery_id: str) -> Delivery | None:
        if not plausible_id(delivery_id):
            return None
        row = prefetch.get(ItemKey(DeliveryModel, delivery_id), DeliveryModel)
        return delivery_from_model(row) if row else None

    @translate_aws_failures
    def add(self, delivery: Delivery) -> bool:
        try:
            delivery_to_model(delivery).save(condition=DeliveryModel.id.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    @translate_aws_failures
    def record_attempt(self, before: Delivery, after: Delivery) -> bool:
        actions: list[Any] = [
            DeliveryModel.status.set(after.status.value),
            DeliveryModel.attempts.set(after.attempts),
            DeliveryModel.updated_at.set(after.updated_at or after.created_at),
            DeliveryModel.response_status.remove()
            if after.response_status is None
            else DeliveryModel.response_status.set(after.response_status),
            DeliveryModel.error.remove()
            if after.error is None
            else DeliveryModel.error.set(after.error),
        ]
        try:
            DeliveryModel(id=before.id).update(
                actions=actions,
                condition=(DeliveryModel.status == DeliveryStatus.PENDING.value)
                & (DeliveryModel.attempts == before.attempts),
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    @translate_aws_failures
    def find(self, hook_id: str, page: PageRequest) -> Page[Delivery]:
        return paginate(
            lambda limit, start: DeliveryModel.by_hook.query(
                hook_id,
                scan_index_forward=False,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start,
            ),
            lambda row: key_of(row, "id", "hook_id"),
            delivery_from_model,
            page,
            scope=f"deliveries:{hook_id}",
        )
