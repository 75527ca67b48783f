"""Task schedules on the local stack: provisioning makes the group and the scheduler's role, and
the ticker fires what the EventBridge Scheduler adapter writes, context attributes filled in."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

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
from chalicelib.settings import Settings
from local.lambdas import function_arn
from local.stack import LocalStack
from local.testing import Probe, deploy_probe

pytestmark = pytest.mark.xdist_group("local-stack-in-process")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(http_port=0, ws_port=0, quiet=True) as running:
        yield running


def scheduler_client(stack: LocalStack) -> Any:
    return boto3.client("scheduler", region_name=stack.region)


def test_provisioning_makes_the_group_the_role_and_the_settings(stack: LocalStack) -> None:
    settings = Settings()
    assert settings.schedule_group == "taskbeat-local"
    scheduler_client(stack).get_schedule_group(Name=settings.schedule_group)
    assert settings.scheduler_role_arn == stack.provisioned.scheduler_role_arn
    role = boto3.client("iam", region_name=stack.region).get_role(
        RoleName="taskbeat-local-scheduler"
    )
    (statement,) = role["Role"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert os.environ["TASKBEAT_FIRE_FUNCTION_ARN"] == function_arn("fire", stack.region)
    assert settings.fire_function_arn == stack.provisioned.function_arns["fire"]


def _adapter(stack: LocalStack, target_arn: str) -> EventBridgeScheduler:
    settings = Settings()
    assert settings.scheduler_role_arn is not None
    return EventBridgeScheduler(
        scheduler_client(stack), settings.schedule_group, target_arn, settings.scheduler_role_arn
    )


def test_the_ticker_fires_what_the_adapter_writes(stack: LocalStack) -> None:
    probe = Probe()
    adapter = _adapter(stack, deploy_probe(stack, probe))
    task_id = f"T{uuid.uuid4().hex}"
    origin = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    hourly = Schedule(
        kind=ScheduleKind.RATE,
        timezone="UTC",
        every=1,
        unit=RateUnit.HOURS,
        start_at=origin,
        origin=origin,
    )
    adapter.put(task_id, hourly, {"task_id": task_id, "project_id": "P1"})

    fired = [f for f in stack.ticker.tick(origin + timedelta(hours=1)) if f.name.endswith(task_id)]
    assert [f.scheduled_time for f in fired] == [origin, origin + timedelta(hours=1)]
    events = probe.wait_for(2)
    assert events[0] == {
        "task_id": task_id,
        "project_id": "P1",
        "scheduled_time": origin.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "attempt": "1",
        "execution_id": fired[0].execution_id,
    }
    assert json.loads(fired[1].payload)["scheduled_time"] == (
        (origin + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )

    adapter.put(task_id, replace(hourly, paused=True), {"task_id": task_id})
    assert not [
        f for f in stack.ticker.tick(origin + timedelta(hours=3)) if f.name.endswith(task_id)
    ]
    adapter.delete(task_id)


def test_a_rate_set_now_first_fires_at_the_next_run_it_announced(stack: LocalStack) -> None:
    """Not when it was set: the ticker, like EventBridge Scheduler, fires a rate first at its
    StartDate, and the task announced a period later."""
    probe = Probe()
    adapter = _adapter(stack, deploy_probe(stack, probe))
    task_id = f"T{uuid.uuid4().hex}"
    set_at = datetime.now(UTC)
    data = parse_schedule_input({"kind": "rate", "every": 1, "unit": "hours"})
    assert isinstance(data, RateScheduleInput)
    hourly = build_schedule(data, default_timezone="UTC", now=set_at)
    announced = next_run(hourly, set_at)
    assert announced == set_at.replace(microsecond=0) + timedelta(hours=1)
    adapter.put(task_id, hourly, {"task_id": task_id, "project_id": "P1"})

    ticked = stack.ticker.tick(announced - timedelta(seconds=1))
    assert not [f for f in ticked if f.name.endswith(task_id)]
    fired = [f for f in stack.ticker.tick(announced) if f.name.endswith(task_id)]
    assert [f.scheduled_time for f in fired] == [announced]
    assert probe.wait_for(1)[0]["scheduled_time"] == announced.strftime("%Y-%m-%dT%H:%M:%SZ")
    adapter.delete(task_id)


def test_a_one_time_schedule_fires_once_and_is_gone(stack: LocalStack) -> None:
    probe = Probe()
    adapter = _adapter(stack, deploy_probe(stack, probe))
    task_id = f"T{uuid.uuid4().hex}"
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    once = Schedule(kind=ScheduleKind.ONCE, timezone="UTC", at=at.replace(tzinfo=None))
    adapter.put(task_id, once, {"task_id": task_id, "project_id": "P1"})

    fired = [f for f in stack.ticker.tick(at + timedelta(seconds=1)) if f.name.endswith(task_id)]
    assert [f.scheduled_time for f in fired] == [at]
    assert probe.wait_for(1)[0]["scheduled_time"] == at.strftime("%Y-%m-%dT%H:%M:%SZ")
    client = scheduler_client(stack)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_schedule(GroupName=Settings().schedule_group, Name=schedule_name(task_id))
