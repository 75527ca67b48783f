"""Keeping EventBridge Scheduler in step with tasks and workflows (called by the stream consumer).

A task or workflow with a schedule has one scheduler schedule (`ScheduleTarget` says which
kind: the schedule's name and the firing's payload differ); one that loses its schedule, or is
deleted (by itself or with its project, whose purge deletes it), has none. Only a change of the
schedule (or of what a firing's payload carries) calls the scheduler, so a replayed stream
batch costs nothing more than idempotent calls.
"""

from __future__ import annotations

from typing import Any, Protocol

from chalicelib.domain.schedules import Schedule, ScheduleTarget
from chalicelib.ports import Scheduler


class Scheduled(Protocol):
    """What a schedule belongs to: a task or a workflow."""

    @property
    def id(self) -> str: ...

    @property
    def project_id(self) -> str: ...

    @property
    def schedule(self) -> Schedule | None: ...


def schedule_of(item: Scheduled | None) -> Schedule | None:
    """The item's schedule (the repository decodes the stored form into a `Schedule`)."""
    if item is None:
        return None
    value: object = item.schedule
    if value is None or isinstance(value, Schedule):
        return value
    raise TypeError(f"{item.id}: schedule is a {type(value).__name__}, not a Schedule")


def firing_payload(item: Scheduled, kind: ScheduleTarget = ScheduleTarget.TASK) -> dict[str, Any]:
    """What each firing of the item's schedule hands the fire function: `{"task_id",
    "project_id"}` or `{"workflow_id", "project_id"}`."""
    return {kind.id_field: item.id, "project_id": item.project_id}


class ScheduleSync:
    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def apply(
        self,
        before: Scheduled | None,
        after: Scheduled | None,
        kind: ScheduleTarget = ScheduleTarget.TASK,
    ) -> int:
        """Apply one change of a task (or, with `kind`, a workflow); returns how many scheduler
        calls it made (0 or 1)."""
        old, new = schedule_of(before), schedule_of(after)
        if after is not None and new is not None:
            if (
                before is not None
                and old == new
                and firing_payload(before, kind) == firing_payload(after, kind)
            ):
                return 0
            self._scheduler.put(after.id, new, firing_payload(after, kind), kind=kind)
            return 1
        if before is not None and old is not None:
            self._scheduler.delete(before.id, kind=kind)
            return 1
        return 0
