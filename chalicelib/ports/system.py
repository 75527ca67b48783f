"""Clocks, secrets, health, scheduling, batch reads and clean-up: what every area leans on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.ports.reads import PrefetchKey

# The domain's types are for annotations only (see the package's docstring).
if TYPE_CHECKING:
    from chalicelib.domain.schedules import Schedule, ScheduleTarget


class Clock(Protocol):
    def now(self) -> datetime: ...


class Secrets(Protocol):
    def get(self, secret_id: str) -> str: ...


# A DynamoDB stream batch (a Lambda event) decoded into what a handler acts on.
StreamDecoder = Callable[[dict[str, Any]], list[Any]]


class HealthProbe(Protocol):
    def check(self) -> dict[str, str]: ...


class Prefetcher(Protocol):
    def warm(self, keys: Sequence[PrefetchKey]) -> None:
        """Read these items in one round trip; the repositories' next `get`s take them."""
        ...


class Janitor(Protocol):
    """Removes what deleted things leave behind; idempotent (a stream batch may come twice)."""

    def purge_project(self, project_id: str) -> int: ...

    def purge_task(self, task_id: str) -> int: ...


class Scheduler(Protocol):
    """One EventBridge Scheduler schedule per scheduled task or workflow, named after it
    (`kind` says which: ids of the two never collide, but their schedules' names and firings
    differ)."""

    def put(
        self,
        target_id: str,
        schedule: Schedule,
        payload: dict[str, Any],
        *,
        kind: ScheduleTarget = ...,  # the implementations default to ScheduleTarget.TASK
    ) -> None:
        """Create the task's (or workflow's) schedule, or update it if it exists (idempotent).
        `payload` is what each firing hands the target, beside the scheduler's context
        attributes."""
        ...

    def delete(self, target_id: str, *, kind: ScheduleTarget = ...) -> None:
        """Remove the task's (or workflow's) schedule; one that is gone already is fine."""
        ...
