"""Keeping EventBridge Scheduler in step with tasks (called by the stream consumer).

A task with a schedule has one scheduler schedule; a task that loses its schedule, or is
deleted, has none. Only a change of the schedule (or of what a firing's payload carries)
calls the scheduler, so a replayed stream batch costs nothing more than idempotent calls.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.schedules import Schedule
from chalicelib.domain.tasks import Task
from chalicelib.ports import Scheduler


def schedule_of(task: Task | None) -> Schedule | None:
    """The task's schedule (the repository decodes the stored form into a `Schedule`)."""
    if task is None:
        return None
    value: object = task.schedule
    if value is None or isinstance(value, Schedule):
        return value
    raise TypeError(f"task {task.id}: schedule is a {type(value).__name__}, not a Schedule")


def firing_payload(task: Task) -> dict[str, Any]:
    """What each firing of the task's schedule hands the fire function."""
    return {"task_id": task.id, "project_id": task.project_id}


class ScheduleSync:
    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def apply(self, before: Task | None, after: Task | None) -> int:
        """Apply one task change; returns how many scheduler calls it made (0 or 1)."""
        old, new = schedule_of(before), schedule_of(after)
        if after is not None and new is not None:
            if (
                before is not None
                and old == new
                and firing_payload(before) == firing_payload(after)
            ):
                return 0
            self._scheduler.put(after.id, new, firing_payload(after))
            return 1
        if before is not None and old is not None:
            self._scheduler.delete(before.id)
            return 1
        return 0
