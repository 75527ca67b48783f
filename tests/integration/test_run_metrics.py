"""Taskbeat's own metrics of runs (the dashboard's `Taskbeat` namespace): executions finished,
by status, counted once by the function that ended them, and how late firings arrive."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import observability
from chalicelib.handlers import runs as run_handlers
from chalicelib.handlers import scheduling
from chalicelib.observability import metrics
from tests.integration.conftest import Http

RATE = {"kind": "rate", "every": 5, "unit": "minutes", "timezone": "UTC"}


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """What the handlers publish: values of the shared recorder, and counts by dimension."""
    found: dict[str, list[Any]] = {"metrics": [], "counts": []}
    recorder = metrics()
    original = recorder.add_metric

    def add_metric(name: str, unit: Any, value: float, **kwargs: Any) -> None:
        found["metrics"].append((name, value))
        original(name=name, unit=unit, value=value, **kwargs)

    def count_by(name: str, dimension: str, value: str, count: float = 1) -> None:
        found["counts"].append((name, dimension, value))

    monkeypatch.setattr(recorder, "add_metric", add_metric)
    for module in (run_handlers, scheduling):
        monkeypatch.setattr(module, "count_by", count_by)
    return found


def invoke(function: str, event: dict[str, Any]) -> Any:
    with Client(app) as client:
        return client.lambda_.invoke(function, event).payload


def firing(task: dict[str, Any], attempt: int, scheduled_time: datetime) -> dict[str, Any]:
    return {
        "task_id": task["id"],
        "project_id": task["project_id"],
        "scheduled_time": scheduled_time.isoformat().replace("+00:00", "Z"),
        "attempt": attempt,
        "execution_id": f"delivery-{attempt}",
    }


def test_a_first_delivery_reports_how_late_it_came(
    http: Http, recorded: dict[str, list[Any]]
) -> None:
    owner = http.register("owner@example.com")["access_token"]
    task = http("POST", "/tasks", {"title": "Nightly", "schedule": RATE}, owner).json
    scheduled = datetime.now(UTC) - timedelta(seconds=3)

    started = datetime.now(UTC)
    invoke("fire", firing(task, 1, scheduled))
    took_ms = (datetime.now(UTC) - started).total_seconds() * 1000
    (lateness,) = [value for name, value in recorded["metrics"] if name == "FiringLateness"]
    assert 3000 <= lateness <= 3000 + took_ms + 1000

    # A redelivery is late by the retry policy's design: not counted.
    invoke("fire", firing(task, 2, scheduled))
    assert [name for name, _ in recorded["metrics"]].count("FiringLateness") == 1
    # A firing ahead of its time (a clock skew) is not early by a negative amount.
    invoke("fire", firing(task, 1, datetime.now(UTC) + timedelta(minutes=1)))
    assert min(v for name, v in recorded["metrics"] if name == "FiringLateness") == 0


def test_a_firing_recorded_as_skipped_counts_as_finished(
    http: Http, recorded: dict[str, list[Any]]
) -> None:
    owner = http.register("owner@example.com")["access_token"]
    plain = http("POST", "/tasks", {"title": "Plain"}, owner).json  # not scheduled: skipped
    at = datetime.now(UTC)
    assert invoke("fire", firing(plain, 1, at))["status"] == "skipped"
    assert invoke("fire", firing(plain, 2, at))["created"] is False  # the same firing again
    assert recorded["counts"] == [("ExecutionsFinished", "status", "skipped")]


def test_run_step_counts_each_execution_it_ends_once(
    http: Http, recorded: dict[str, list[Any]]
) -> None:
    owner = http.register("owner@example.com")["access_token"]
    reminder = http("POST", "/tasks", {"title": "Reminder"}, owner).json  # no action
    execution = http("POST", f"/tasks/{reminder['id']}/run", token=owner).json
    step = {"execution_id": execution["id"], "task_id": reminder["id"], "attempt": 1}

    assert invoke("run_step", step)["outcome"] == "succeeded"
    assert invoke("run_step", step)["outcome"] == "succeeded"  # invoked again: from the record
    assert recorded["counts"] == [("ExecutionsFinished", "status", "succeeded")]

    # The state machine's Catch: the attempt died before it started; the execution fails.
    other = http("POST", f"/tasks/{reminder['id']}/run", token=owner).json
    caught = {**step, "execution_id": other["id"], "error": {"Error": "Lambda.Unknown"}}
    assert invoke("run_step", caught) == {}
    assert recorded["counts"][1:] == [("ExecutionsFinished", "status", "failed")]
    assert http("GET", f"/executions/{other['id']}", token=owner).json["status"] == "failed"


def test_plan_counts_an_execution_that_ended_without_a_result(
    http: Http, recorded: dict[str, list[Any]]
) -> None:
    owner = http.register("owner@example.com")["access_token"]
    task = http("POST", "/tasks", {"title": "Lost"}, owner).json
    execution = http("POST", f"/tasks/{task['id']}/run", token=owner).json
    run = {"kind": "execution", "id": execution["id"]}
    assert invoke("plan", {"run": run, "round": 1})["done"] is True
    assert recorded["counts"] == [("ExecutionsFinished", "status", "failed")]


def test_count_by_publishes_one_emf_record_with_its_dimension(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setenv("TASKBEAT_STAGE", "prod")
    capsys.readouterr()
    observability.count_by("ExecutionsFinished", "status", "timed_out")
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Taskbeat"
    assert sorted(directive["Dimensions"][0]) == ["service", "stage", "status"]
    assert directive["Metrics"] == [{"Name": "ExecutionsFinished", "Unit": "Count"}]
    assert (record["service"], record["stage"], record["status"]) == (
        "taskbeat",
        "prod",
        "timed_out",
    )
    assert record["ExecutionsFinished"] == [1.0]


def test_count_by_publishes_nothing_when_metrics_are_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    capsys.readouterr()
    for _ in range(150):  # more than a metric set holds: nothing is kept behind either
        observability.count_by("ExecutionsFinished", "status", "failed")
    assert capsys.readouterr().out == ""
