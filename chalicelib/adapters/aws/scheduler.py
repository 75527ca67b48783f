"""Schedules as EventBridge Scheduler schedules: one per scheduled task (`task-<id>`) and one
per scheduled workflow (`workflow-<id>`), in the stage's group.

Each schedule invokes the fire function (through the scheduler's role) with a JSON `Input`
that carries the task or workflow (`task_id` / `workflow_id`, and `project_id`) and the
scheduler's context attributes, which EventBridge Scheduler
substitutes at each delivery: `<aws.scheduler.scheduled-time>` (what the fire handler is
idempotent on), `<aws.scheduler.attempt-number>` and `<aws.scheduler.execution-id>`.

Failed deliveries are retried by the scheduler (`RETRY_POLICY`), then go to the dead-letter
queue when one is configured. One-time schedules delete themselves once they have fired.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from botocore.exceptions import ClientError

from chalicelib.adapters.errors import aws_failures
from chalicelib.domain.schedules import (
    Schedule,
    ScheduleKind,
    ScheduleTarget,
    next_run,
    to_expression,
)

log = logging.getLogger(__name__)

NAME_MAX: Final = 64
_VALID_NAME: Final = re.compile(r"[0-9A-Za-z_.-]{1,64}")
RETRY_POLICY: Final = {"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 3600}
CONTEXT_ATTRIBUTES: Final = {
    "scheduled_time": "<aws.scheduler.scheduled-time>",
    "attempt": "<aws.scheduler.attempt-number>",
    "execution_id": "<aws.scheduler.execution-id>",
}
# EventBridge Scheduler refuses a StartDate more than five minutes in the past.
_START_DATE_SLACK: Final = timedelta(minutes=5)


def schedule_name(target_id: str, kind: ScheduleTarget = ScheduleTarget.TASK) -> str:
    """`task-<id>` (57 characters for a task id) or `workflow-<id>` (61); an id that would not
    fit a schedule name (1-64 of `[0-9A-Za-z_.-]`) is replaced by its SHA-256, so the name is
    still stable."""
    prefix = f"{kind.value}-"
    name = f"{prefix}{target_id}"
    if _VALID_NAME.fullmatch(name):
        return name
    digest = hashlib.sha256(target_id.encode()).hexdigest()
    return f"{prefix}{digest}"[:NAME_MAX]


def schedule_input(
    target_id: str, payload: dict[str, Any], kind: ScheduleTarget = ScheduleTarget.TASK
) -> str:
    """The target's `Input`: the payload, the task's (or workflow's) id and the
    context-attribute placeholders."""
    return json.dumps(
        {**payload, kind.id_field: target_id, **CONTEXT_ATTRIBUTES},
        separators=(",", ":"),
        sort_keys=True,
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class EventBridgeScheduler:
    def __init__(
        self,
        client: Any,  # boto3 "scheduler"
        group_name: str,
        target_arn: str,
        role_arn: str,
        dead_letter_arn: str | None = None,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._group = group_name
        self._target_arn = target_arn
        self._role_arn = role_arn
        self._dead_letter_arn = dead_letter_arn
        self._now = now

    def request(
        self,
        target_id: str,
        schedule: Schedule,
        payload: dict[str, Any],
        kind: ScheduleTarget = ScheduleTarget.TASK,
    ) -> dict[str, Any]:
        """The CreateSchedule/UpdateSchedule parameters for the task's (or workflow's) schedule."""
        expression, timezone = to_expression(schedule)
        target: dict[str, Any] = {
            "Arn": self._target_arn,
            "RoleArn": self._role_arn,
            "Input": schedule_input(target_id, payload, kind),
            "RetryPolicy": dict(RETRY_POLICY),
        }
        if self._dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self._dead_letter_arn}
        params: dict[str, Any] = {
            "Name": schedule_name(target_id, kind),
            "GroupName": self._group,
            "Description": f"Taskbeat {kind.value} {target_id}"[:512],
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "DISABLED" if schedule.paused else "ENABLED",
            "ActionAfterCompletion": "DELETE" if schedule.kind is ScheduleKind.ONCE else "NONE",
            "Target": target,
        }
        start = self._start_date(schedule)
        if start is not None:
            params["StartDate"] = start
        if schedule.kind is not ScheduleKind.ONCE and schedule.end_at is not None:
            params["EndDate"] = schedule.end_at
        return params

    def _start_date(self, schedule: Schedule) -> datetime | None:
        """When the schedule starts. A rate fires first at its StartDate (and at once without
        one), so it starts at the firing `next_run_at` announces: the next one after now, in
        the phase of its origin (never the moment it was set, nor one in the past, which the
        scheduler refuses beyond five minutes). A cron's wall-clock firings need a start only
        while `start_at` still restricts them."""
        if schedule.kind is ScheduleKind.ONCE:
            return None
        now = self._now()
        if schedule.kind is ScheduleKind.RATE:
            following = next_run(replace(schedule, paused=False), now)
            return following or schedule.origin  # none left (past its end): as it was
        if schedule.start_at is None or schedule.start_at < now - _START_DATE_SLACK:
            return None
        return schedule.start_at

    def put(
        self,
        target_id: str,
        schedule: Schedule,
        payload: dict[str, Any],
        *,
        kind: ScheduleTarget = ScheduleTarget.TASK,
    ) -> None:
        params = self.request(target_id, schedule, payload, kind)
        try:
            with aws_failures():
                self._client.create_schedule(**params)
        except ClientError as exc:
            if _code(exc) != "ConflictException":
                raise
            with aws_failures():
                self._client.update_schedule(**params)

    def delete(self, target_id: str, *, kind: ScheduleTarget = ScheduleTarget.TASK) -> None:
        try:
            with aws_failures():
                self._client.delete_schedule(
                    GroupName=self._group, Name=schedule_name(target_id, kind)
                )
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise


class UnconfiguredScheduler:
    """Stands in where no fire function is configured (unit and integration tests that do not
    exercise scheduling): every call is logged and dropped. Deployed stacks always configure
    the real one (CDK sets the variables; tests/infra checks it)."""

    def put(
        self,
        target_id: str,
        schedule: Schedule,
        payload: dict[str, Any],
        *,
        kind: ScheduleTarget = ScheduleTarget.TASK,
    ) -> None:
        log.warning("no scheduler configured: schedule of %s %s not written", kind, target_id)

    def delete(self, target_id: str, *, kind: ScheduleTarget = ScheduleTarget.TASK) -> None:
        log.warning("no scheduler configured: schedule of %s %s not deleted", kind, target_id)
