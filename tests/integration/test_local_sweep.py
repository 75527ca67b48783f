"""The local stack's due-date sweep: its ticker on its own (events, one at a time, stop), and
a stack in this process that tells an overdue task's creator within a few sweeps."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from local.__main__ import _seconds
from local.lambdas import FunctionRegistry
from local.stack import LocalStack
from local.sweep_ticker import SWEEP_FUNCTION, SweepTicker
from local.testing import Probe, register_user, wait_until

pytestmark = pytest.mark.xdist_group("local-stack-in-process")


def test_the_ticker_sends_scheduled_events_one_at_a_time_until_stopped() -> None:
    registry = FunctionRegistry("us-east-1")
    inside = threading.Semaphore(1)
    overlaps: list[bool] = []

    def slow(event: Any) -> dict[str, int]:
        overlaps.append(not inside.acquire(blocking=False))
        time.sleep(0.03)
        inside.release()
        return {"due_soon": 0}

    probe = Probe(slow)
    registry.register(SWEEP_FUNCTION, probe, concurrency=4)
    ticker = SweepTicker(registry, "us-east-1", interval_seconds=0.01)
    ticker.start()
    try:
        events = probe.wait_for(3, timeout=10)
    finally:
        ticker.stop()
    stopped_at = len(probe.received())
    time.sleep(0.1)
    assert len(probe.received()) == stopped_at  # nothing after stop()
    assert not any(overlaps)
    event = events[0]
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/taskbeat-local-sweep"]
    assert datetime.fromisoformat(event["time"].replace("Z", "+00:00")) <= datetime.now(UTC)
    assert ticker.sweeps >= 3
    assert ticker.last_result == {"due_soon": 0}


def test_a_failing_sweep_is_logged_and_the_next_one_comes() -> None:
    registry = FunctionRegistry("us-east-1")

    def fail(event: Any) -> None:
        raise RuntimeError("DynamoDB is down")

    probe = Probe(fail)
    registry.register(SWEEP_FUNCTION, probe)
    ticker = SweepTicker(registry, "us-east-1", interval_seconds=0.01)
    ticker.start()
    try:
        probe.wait_for(2, timeout=10)
    finally:
        ticker.stop()
    assert ticker.last_result is None


def test_the_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKBEAT_LOCAL_SWEEP_SECONDS", raising=False)
    assert _seconds("TASKBEAT_LOCAL_SWEEP_SECONDS", 5.0) == 5.0
    monkeypatch.setenv("TASKBEAT_LOCAL_SWEEP_SECONDS", "0.5")
    assert _seconds("TASKBEAT_LOCAL_SWEEP_SECONDS", 5.0) == 0.5
    for bad in ("soon", "-1"):
        monkeypatch.setenv("TASKBEAT_LOCAL_SWEEP_SECONDS", bad)
        with pytest.raises(SystemExit, match="TASKBEAT_LOCAL_SWEEP_SECONDS"):
            _seconds("TASKBEAT_LOCAL_SWEEP_SECONDS", 5.0)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(http_port=0, ws_port=0, quiet=True, sweep_interval_seconds=0.2) as running:
        yield running


def test_the_stack_sweeps_by_itself_and_stops_sweeping_with_it(stack: LocalStack) -> None:
    user = register_user(stack.api_url)
    headers = {"authorization": f"Bearer {user['access_token']}"}
    due = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    created = requests.post(
        f"{stack.api_url}/tasks",
        json={"title": "Late", "due_date": due},
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text

    def overdue() -> list[dict[str, Any]]:
        items = requests.get(f"{stack.api_url}/notifications", headers=headers, timeout=30).json()
        return [n for n in items["items"] if n["type"] == "task.overdue"]

    (notification,) = wait_until(overdue, timeout=20, message="the overdue notification")
    assert notification["task_id"] == created.json()["id"]
    sweeper = stack.sweeper
    assert sweeper is not None
    assert sweeper.interval_seconds == 0.2
    seen = sweeper.sweeps
    wait_until(lambda: sweeper.sweeps >= seen + 2, timeout=20, message="two more sweeps")
    assert len(overdue()) == 1
    assert sweeper.sweep_now()["already"] >= 1

    stack.stop()
    after_stop = sweeper.sweeps
    time.sleep(0.5)
    assert sweeper.sweeps == after_stop
