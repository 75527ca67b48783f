"""Scheduled workflows on the running local stack, end to end: the workflow's write reaches the
stream consumer, which creates its scheduler schedule; the ticker fires it; the fire Lambda
records one run (trigger `schedule`) and starts it; the run state machine calls each step's
webhook (a loopback server in this process) in dependency order. Nobody calls
`POST /workflows/{id}/run`."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from local.testing import wait_until
from tests.e2e.test_scheduled_runs import once, soon
from tests.e2e.test_workflows import Api, Hooks, api, hooks

__all__ = ["api", "hooks"]  # fixtures, shared with the workflow runs' tests

RUN_TIMEOUT = 60.0  # due in ~2 s; the stream, the ticker and two rounds of the machine follow


def runs_of(api: Api, workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return api("GET", f"/workflows/{workflow['id']}/runs")["items"]  # type: ignore[no-any-return]


def test_a_one_time_schedule_runs_the_workflow_once_by_itself(api: Api, hooks: Hooks) -> None:
    first = api.task("first", hooks.hook("/first", delay=0.2))
    then = api.task("then", hooks.hook("/then"))
    at = soon(2.0)
    workflow = api.workflow(
        [
            {"key": "first", "task_id": first},
            {"key": "then", "task_id": then, "depends_on": ["first"]},
        ],
        schedule=once(at),
    )
    assert workflow["next_run_at"] == at

    def finished() -> dict[str, Any] | None:
        runs = runs_of(api, workflow)
        done = [r for r in runs if r["status"] not in ("queued", "running")]
        return done[0] if done else None

    run = wait_until(finished, RUN_TIMEOUT, interval=0.2, message="the scheduled run")
    assert (run["trigger"], run["status"], run["scheduled_for"]) == ("schedule", "succeeded", at)
    lateness = datetime.fromisoformat(run["created_at"]) - datetime.fromisoformat(at)
    assert timedelta(0) <= lateness < timedelta(seconds=10), lateness

    detail = api("GET", f"/workflow-runs/{run['id']}")
    assert {s["key"]: s["status"] for s in detail["steps"]} == {
        "first": "succeeded",
        "then": "succeeded",
    }
    # In dependency order, each webhook once.
    assert hooks.span("/then")[0] >= hooks.span("/first")[1]
    for step in detail["steps"]:
        execution = api("GET", f"/executions/{step['execution_id']}")
        assert (execution["trigger"], execution["workflow_run_id"]) == ("workflow", run["id"])

    # It fired once: nothing more comes, and the one-time schedule has nothing left to fire.
    time.sleep(2.0)
    assert [r["id"] for r in runs_of(api, workflow)] == [run["id"]]
    assert sorted(path for path, _, _ in hooks.calls) == ["/first", "/then"]
    assert api("GET", f"/workflows/{workflow['id']}")["next_run_at"] is None
