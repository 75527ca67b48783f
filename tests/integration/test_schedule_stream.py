"""The stream consumer keeps each task's EventBridge Scheduler schedule in step (on moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.domain.tasks import TaskCreate, TaskUpdate
from chalicelib.domain.users import RegisterInput
from chalicelib.handlers import streams
from chalicelib.settings import Settings
from tests.fakes import fast_hasher
from tests.integration.conftest import REGION
from tests.integration.test_scheduler_adapter import (
    DLQ_ARN,
    FIRE_ARN,
    GROUP,
    ROLE_ARN,
    names,
    stored,
)
from tests.integration.test_search import stream_event


@pytest.fixture
def scheduled_container(moto_aws: None, settings: Settings) -> Iterator[bootstrap.Container]:
    boto3.client("scheduler", region_name=REGION).create_schedule_group(Name=GROUP)
    configured = settings.model_copy(
        update={
            "schedule_group": GROUP,
            "fire_function_arn": FIRE_ARN,
            "scheduler_role_arn": ROLE_ARN,
            "scheduler_dlq_arn": DLQ_ARN,
        }
    )
    built = bootstrap.build(configured, hasher=fast_hasher())
    bootstrap.override(built)
    yield built
    bootstrap.override(None)


def test_the_stream_consumer_keeps_schedules_in_step(
    scheduled_container: bootstrap.Container,
) -> None:
    container = scheduled_container
    client = boto3.client("scheduler", region_name=REGION)
    table = container.settings.table_name("tasks")
    auth = container.auth
    me = auth.authenticate(
        auth.register(RegisterInput(email="s@x.io", password="long enough", name="S")).access_token
    )
    with container.request_scope():
        task = container.tasks.create(me, TaskCreate(title="Nightly report"))
    assert task.schedule is None
    streams.on_change(stream_event(table))
    assert names(client) == []

    def change(**fields: Any) -> dict[str, Any]:
        with container.request_scope():
            container.tasks.update(me, task.id, TaskUpdate.model_validate(fields))
        # Each batch holds the whole stream: earlier records replay (at least once).
        return streams.on_change(stream_event(table))

    change(schedule={"kind": "rate", "every": 2, "unit": "hours", "timezone": "UTC"})
    assert stored(client, task.id)["ScheduleExpression"] == "rate(2 hours)"
    assert json.loads(stored(client, task.id)["Target"]["Input"])["project_id"] == task.project_id

    change(schedule={"kind": "cron", "expression": "30 7 * * ? *", "timezone": "Asia/Tokyo"})
    got = stored(client, task.id)
    assert (got["ScheduleExpression"], got["ScheduleExpressionTimezone"]) == (
        "cron(30 7 * * ? *)",
        "Asia/Tokyo",
    )

    change(title="Nightly report (v2)")
    assert stored(client, task.id)["ScheduleExpression"] == "cron(30 7 * * ? *)"
    # The title change alone leaves the schedule alone.
    latest = {"Records": stream_event(table)["Records"][-1:]}
    assert streams.on_change(latest)["schedule_calls"] == 0

    change(schedule=None)
    assert names(client) == []

    with container.request_scope():
        container.tasks.update(me, task.id, TaskUpdate.model_validate({"schedule": _once()}))
        container.tasks.delete(me, task.id)
    streams.on_change(stream_event(table))
    assert names(client) == []


def _once() -> dict[str, Any]:
    at = datetime.now(UTC) + timedelta(days=2)
    return {"kind": "once", "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "timezone": "UTC"}
