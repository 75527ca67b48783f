"""Project webhooks: the hooks, their deliveries, and the queue deliveries wait in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from chalicelib.domain.hooks import Delivery, Hook
    from chalicelib.domain.model import Page, PageRequest


class HookRepository(Protocol):
    """Hooks, one item each; writes are conditional (new id, or the version read)."""

    def get(self, hook_id: str) -> Hook | None: ...

    def create(self, hook: Hook) -> Hook:
        """`NotFound` if its project is gone (checked in the same write)."""
        ...

    def update(self, before: Hook, after: Hook) -> Hook:
        """Write the fields users set if still at `before.version` (version + 1); turning a hook
        active again resets its failure count. `StaleVersion` on a lost race."""
        ...

    def delete(self, hook: Hook) -> None:
        """`StaleVersion` unless still at `hook.version`."""
        ...

    def find(self, project_id: str, page: PageRequest) -> Page[Hook]:
        """One page of a project's hooks, newest first."""
        ...

    def active_for(self, project_id: str) -> list[Hook]:
        """The project's active hooks: one Query (a sparse index), never a Scan."""
        ...

    def count_failure(self, hook_id: str) -> int | None:
        """Add one to the hook's consecutive failures atomically; the new count (None: the hook
        is gone)."""
        ...

    def reset_failures(self, hook_id: str) -> None:
        """Set the count back to 0 (a delivery succeeded); nothing if the hook is gone."""
        ...

    def disable(self, hook_id: str, at: datetime) -> Hook | None:
        """Turn an active hook inactive (version + 1); the hook, or None if it was not active
        (or is gone): exactly one caller disables it."""
        ...

    def purge_project(self, project_id: str) -> int: ...


class DeliveryRepository(Protocol):
    def get(self, delivery_id: str) -> Delivery | None: ...

    def add(self, delivery: Delivery) -> bool:
        """Write a new delivery; False (nothing written) if one with its id exists."""
        ...

    def record_attempt(self, before: Delivery, after: Delivery) -> bool:
        """Write an attempt's outcome if the delivery still has `before.attempts` attempts;
        False if another attempt got there first."""
        ...

    def find(self, hook_id: str, page: PageRequest) -> Page[Delivery]:
        """One page of a hook's deliveries, newest first."""
        ...


class DeliveryQueue(Protocol):
    """Where deliveries wait for their attempts (SQS on AWS)."""

    def send(self, delivery_ids: Sequence[str]) -> None:
        """Queue one message per delivery (batched); raises if any could not be queued."""
        ...

    def retry_later(self, receipt: str, delay_seconds: int) -> None:
        """Hide a received message for `delay_seconds`: SQS hands it out again after that."""
        ...
