"""The EventBridge Scheduler adapter on moto, and the stream consumer keeping schedules in step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.aws.scheduler import EventBridgeScheduler, schedule_name
from chalicelib.domain.schedules import (
    RateScheduleInput,
    RateUnit,
    Schedule,
    ScheduleKind,
    build_schedule,
    next_run,
    parse_schedule_input,
)
from tests.integration.conftest import REGION

GROUP = "taskbeat-test"
FIRE_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:fire"
ROLE_ARN = "arn:aws:iam::123456789012:role/taskbeat-test-scheduler"
DLQ_ARN = f"arn:aws:sqs:{REGION}:123456789012:taskbeat-test-schedules-dlq"
NOW = datetime.now(UTC).replace(microsecond=0)
TASK_ID = "01JTASKAAAAAAAAAAAAAAAAAAA01JPROJAAAAAAAAAAAAAAAAAA"
PAYLOAD = {"task_id": TASK_ID, "project_id": "01JPROJAAAAAAAAAAAAAAAAAAA"}

# Hours ahead, not minutes: NOW is taken at import, and a start already past when a slow run
# gets to the test is moved on by the adapter (a start date must not be in the past).
HOURLY = Schedule(
    kind=ScheduleKind.RATE,
    timezone="Europe/Berlin",
    every=1,
    unit=RateUnit.HOURS,
    start_at=NOW + timedelta(hours=6),
    origin=NOW + timedelta(hours=6),
    end_at=NOW + timedelta(days=30),
)
ONCE = Schedule(
    kind=ScheduleKind.ONCE, timezone="UTC", at=(NOW + timedelta(days=1)).replace(tzinfo=None)
)


@pytest.fixture
def client(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        scheduler = boto3.client("scheduler", region_name=REGION)
        scheduler.create_schedule_group(Name=GROUP)
        yield scheduler


@pytest.fixture
def adapter(client: Any) -> EventBridgeScheduler:
    return EventBridgeScheduler(client, GROUP, FIRE_ARN, ROLE_ARN, DLQ_ARN)


def stored(client: Any, task_id: str = TASK_ID) -> dict[str, Any]:
    result: dict[str, Any] = client.get_schedule(GroupName=GROUP, Name=schedule_name(task_id))
    return result


def names(client: Any) -> list[str]:
    return [s["Name"] for s in client.list_schedules(GroupName=GROUP)["Schedules"]]


def test_put_creates_the_schedule(adapter: EventBridgeScheduler, client: Any) -> None:
    adapter.put(TASK_ID, HOURLY, PAYLOAD)
    got = stored(client)
    assert got["Name"] == f"task-{TASK_ID}"
    assert len(got["Name"]) <= 64
    assert got["ScheduleExpression"] == "rate(1 hour)"
    assert got["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert got["StartDate"] == HOURLY.origin
    assert got["EndDate"] == HOURLY.end_at
    assert got["State"] == "ENABLED"
    assert got["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert got["ActionAfterCompletion"] == "NONE"
    target = got["Target"]
    assert target["Arn"] == FIRE_ARN
    assert target["RoleArn"] == ROLE_ARN
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 3600}
    assert target["DeadLetterConfig"] == {"Arn": DLQ_ARN}


def test_the_input_carries_the_task_and_the_context_attributes(
    adapter: EventBridgeScheduler, client: Any
) -> None:
    adapter.put(TASK_ID, HOURLY, PAYLOAD)
    assert json.loads(stored(client)["Target"]["Input"]) == {
        **PAYLOAD,
        "scheduled_time": "<aws.scheduler.scheduled-time>",
        "attempt": "<aws.scheduler.attempt-number>",
        "execution_id": "<aws.scheduler.execution-id>",
    }


def test_a_one_time_schedule_deletes_itself_after_completion(
    adapter: EventBridgeScheduler, client: Any
) -> None:
    adapter.put(TASK_ID, ONCE, PAYLOAD)
    got = stored(client)
    assert got["ScheduleExpression"] == f"at({ONCE.at:%Y-%m-%dT%H:%M:%S})"
    assert got["ActionAfterCompletion"] == "DELETE"
    assert "StartDate" not in got
    assert "EndDate" not in got


def test_put_again_updates_in_place(adapter: EventBridgeScheduler, client: Any) -> None:
    adapter.put(TASK_ID, HOURLY, PAYLOAD)
    cron = Schedule(kind=ScheduleKind.CRON, timezone="UTC", expression="0 9 ? * MON-FRI *")
    adapter.put(TASK_ID, cron, PAYLOAD)
    adapter.put(TASK_ID, cron, PAYLOAD)  # idempotent
    assert names(client) == [f"task-{TASK_ID}"]
    got = stored(client)
    assert got["ScheduleExpression"] == "cron(0 9 ? * MON-FRI *)"
    assert got["ScheduleExpressionTimezone"] == "UTC"
    assert "StartDate" not in got


def test_a_paused_schedule_is_disabled(adapter: EventBridgeScheduler, client: Any) -> None:
    adapter.put(TASK_ID, HOURLY, PAYLOAD)
    adapter.put(TASK_ID, replace(HOURLY, paused=True), PAYLOAD)
    assert stored(client)["State"] == "DISABLED"
    adapter.put(TASK_ID, HOURLY, PAYLOAD)
    assert stored(client)["State"] == "ENABLED"


def test_a_rate_counted_from_the_past_starts_at_its_next_firing(client: Any) -> None:
    origin = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    now = datetime(2026, 1, 10, 8, 20, tzinfo=UTC)
    adapter = EventBridgeScheduler(client, GROUP, FIRE_ARN, ROLE_ARN, now=lambda: now)
    params = adapter.request(TASK_ID, replace(HOURLY, origin=origin, end_at=None), PAYLOAD)
    assert params["StartDate"] == datetime(2026, 1, 10, 9, 0, tzinfo=UTC)  # same phase
    assert "DeadLetterConfig" not in params["Target"]


def at_clock(client: Any, now: datetime) -> EventBridgeScheduler:
    return EventBridgeScheduler(client, GROUP, FIRE_ARN, ROLE_ARN, now=lambda: now)


def every_minute(now: datetime, **fields: Any) -> Schedule:
    """A rate of one minute as a task stores it when set at `now`."""
    data = parse_schedule_input({"kind": "rate", "every": 1, "unit": "minutes", **fields})
    assert isinstance(data, RateScheduleInput)
    return build_schedule(data, default_timezone="UTC", now=now)


def test_a_rate_first_fires_at_the_next_run_it_announced(client: Any) -> None:
    """A rate schedule fires first at its StartDate: handed the moment the task was set (a
    fraction of a second in), it fired then, and not at the `next_run_at` announced."""
    set_at = NOW + timedelta(microseconds=456_789)
    schedule = every_minute(set_at)
    announced = next_run(schedule, set_at)
    assert announced == NOW + timedelta(minutes=1)
    # The stream consumer puts it a little later, or on a host whose clock is a little behind.
    for clock in (set_at + timedelta(seconds=2), NOW - timedelta(milliseconds=5)):
        at_clock(client, clock).put(TASK_ID, schedule, PAYLOAD)
        assert stored(client)["StartDate"] == announced


def test_a_rate_starts_again_at_its_next_run_after_a_pause(client: Any) -> None:
    set_at = NOW - timedelta(hours=2)
    at_clock(client, set_at).put(TASK_ID, every_minute(set_at, paused=True), PAYLOAD)
    assert stored(client)["State"] == "DISABLED"
    unpaused_at = NOW + timedelta(microseconds=250_000)
    schedule = every_minute(unpaused_at)  # a new origin: when it was set again
    at_clock(client, unpaused_at).put(TASK_ID, schedule, PAYLOAD)
    got = stored(client)
    assert (got["State"], got["StartDate"]) == ("ENABLED", NOW + timedelta(minutes=1))
    assert got["StartDate"] == next_run(schedule, unpaused_at)


@pytest.mark.parametrize(
    ("start_at", "expected"),
    [
        (NOW + timedelta(minutes=10), NOW + timedelta(minutes=10)),  # its first firing
        (NOW - timedelta(minutes=2, seconds=30), NOW + timedelta(seconds=30)),  # within 5 min
        (NOW - timedelta(days=3, seconds=30), NOW + timedelta(seconds=30)),  # long past
    ],
)
def test_a_rate_from_start_at_starts_at_its_next_firing_in_phase(
    client: Any, start_at: datetime, expected: datetime
) -> None:
    """Also while paused and unpaused: a start_at keeps the phase, and the scheduler neither
    fires a start already past nor refuses it."""
    now = NOW + timedelta(microseconds=100)
    schedule = every_minute(now, start_at=start_at.isoformat())
    assert next_run(schedule, now) == expected
    for paused in (True, False):
        at_clock(client, now).put(TASK_ID, replace(schedule, paused=paused), PAYLOAD)
        assert stored(client)["StartDate"] == expected


def test_delete_removes_it_and_tolerates_a_missing_one(
    adapter: EventBridgeScheduler, client: Any
) -> None:
    adapter.put(TASK_ID, HOURLY, PAYLOAD)
    adapter.delete(TASK_ID)
    assert names(client) == []
    adapter.delete(TASK_ID)  # gone already: fine
    adapter.delete("never-scheduled")


def test_names_stay_valid_for_any_id() -> None:
    odd = "x/" * 40
    name = schedule_name(odd)
    assert len(name) <= 64
    assert name == schedule_name(odd)
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
