"""Rate schedules on the running local stack over real firings: each fires when the task's
`next_run_at` said, and after each firing `next_run_at` is the next one, a period later.

Two reminders (no action) side by side, so one wait of two minutes covers both: one set
without `start_at` (first firing a period after it was set, not at once) and one from a
`start_at` a few seconds ahead, given with a fraction of a second (first firing at its second).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from local.testing import ApiClient, StackProcess, wait_until

PERIOD = timedelta(minutes=1)
LATENESS = 30.0  # seconds a firing's execution and the task's next run may take to show


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def fired(api: ApiClient, task_id: str, moment: datetime) -> list[datetime] | None:
    """The task's firing times, once one of them is `moment`."""
    executions = api("GET", f"/tasks/{task_id}/executions")["items"]
    times = sorted(instant(execution["scheduled_for"]) for execution in executions)
    return times if moment in times else None


def moved_on(api: ApiClient, task_id: str, moment: datetime) -> datetime | None:
    """The task's `next_run_at`, once it is the run after `moment`."""
    following = instant(api("GET", f"/tasks/{task_id}")["next_run_at"])
    return following if following == moment + PERIOD else None


@pytest.mark.timeout(240)  # two periods of a minute, and the stack's start
def test_rate_schedules_fire_when_next_run_at_said(
    stack: StackProcess, new_user: Callable[..., dict[str, Any]]
) -> None:
    api = ApiClient(stack.api, new_user()["access_token"])
    every_minute = {"kind": "rate", "every": 1, "unit": "minutes", "timezone": "UTC"}
    start_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
    set_now = api("POST", "/tasks", {"title": "Set now", "schedule": every_minute}, 201)
    from_start = api(
        "POST",
        "/tasks",
        {
            "title": "From start_at",
            "schedule": {**every_minute, "start_at": f"{start_at:%Y-%m-%dT%H:%M:%S}.250Z"},
        },
        201,
    )
    created = instant(set_now["created_at"]).replace(microsecond=0)
    assert instant(set_now["next_run_at"]) == created + PERIOD
    assert instant(from_start["next_run_at"]) == start_at

    # Both tasks' first two firings, in the order they come.
    firings = sorted(
        (instant(task["next_run_at"]) + n * PERIOD, task["id"])
        for task in (set_now, from_start)
        for n in (0, 1)
    )
    for moment, task_id in firings:
        deadline = (moment - datetime.now(UTC)).total_seconds() + LATENESS
        times = wait_until(
            partial(fired, api, task_id, moment), deadline, 0.5, f"{task_id} firing at {moment}"
        )
        assert times == [at for at, fired_id in firings if fired_id == task_id and at <= moment]
        following = wait_until(
            partial(moved_on, api, task_id, moment), LATENESS, 0.2, f"{task_id}'s next run"
        )
        assert following > datetime.now(UTC)
