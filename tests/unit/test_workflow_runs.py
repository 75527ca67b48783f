"""The planning rules of workflow runs (`domain/workflow_runs.py`), round by round."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from chalicelib.domain.executions import Execution, ExecutionStatus, Trigger, new_execution_id
from chalicelib.domain.model import new_id
from chalicelib.domain.workflow_runs import (
    STEPS_PER_ROUND,
    RunStep,
    WorkflowRun,
    plan_round,
    start_run,
    step_status,
    unsettled_execution_ids,
)
from chalicelib.domain.workflows import OnFailure, Step, Workflow

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PROJECT = new_id()

S = ExecutionStatus


def workflow(edges: dict[str, list[str]], on_failure: OnFailure = OnFailure.STOP) -> Workflow:
    steps = tuple(Step(key, new_id() + PROJECT, tuple(deps)) for key, deps in edges.items())
    return Workflow(
        id=new_id() + PROJECT,
        project_id=PROJECT,
        name="w",
        steps=steps,
        created_by="u",
        created_at=AT,
        updated_at=AT,
        on_failure=on_failure,
    )


class Runner:
    """Plays a run: starts what a round says, finishes steps as told."""

    def __init__(self, edges: dict[str, list[str]], on_failure: OnFailure = OnFailure.STOP):
        self.run = start_run(workflow(edges, on_failure), trigger="manual", created_by="u", at=AT)
        self.executions: dict[str, Execution] = {}

    def round(self) -> list[str]:
        planned = plan_round(self.run, self.executions)
        steps = []
        for step in self.run.steps:
            if step.key in planned.start:
                execution = Execution(
                    new_execution_id(PROJECT),
                    step.task_id,
                    PROJECT,
                    Trigger.WORKFLOW,
                    S.RUNNING,
                    AT,
                    workflow_run_id=self.run.id,
                )
                self.executions[execution.id] = execution
                step = replace(step, execution_id=execution.id)
            if step.key in planned.ends:
                step = replace(step, outcome=planned.ends[step.key])
            steps.append(step)
        self.run = replace(self.run, steps=tuple(steps), status=planned.status)
        return sorted(planned.start)

    def finish(self, key: str, status: ExecutionStatus = S.SUCCEEDED) -> None:
        (step,) = [s for s in self.run.steps if s.key == key]
        assert step.execution_id is not None
        self.executions[step.execution_id] = replace(
            self.executions[step.execution_id], status=status
        )

    def statuses(self) -> dict[str, ExecutionStatus]:
        return {s.key: step_status(s, self.executions) for s in self.run.steps}


DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def test_a_diamond_runs_in_dependency_order_with_the_middle_side_by_side() -> None:
    runner = Runner(DIAMOND)
    assert runner.round() == ["a"]
    assert runner.round() == []  # a still runs: nothing new
    runner.finish("a")
    assert runner.round() == ["b", "c"]
    runner.finish("b")
    assert runner.round() == []  # d waits for c too
    runner.finish("c")
    assert runner.round() == ["d"]
    runner.finish("d")
    assert runner.round() == []
    assert runner.run.status is S.SUCCEEDED
    assert set(runner.statuses().values()) == {S.SUCCEEDED}


def test_stop_starts_nothing_after_a_failure_and_skips_the_unstarted() -> None:
    runner = Runner({"a": [], "b": [], "c": ["a"], "d": ["b"]}, OnFailure.STOP)
    assert runner.round() == ["a", "b"]
    runner.finish("a", S.FAILED)
    assert runner.round() == []  # b still runs; c and d will never start
    assert runner.run.status is S.RUNNING
    runner.finish("b")
    runner.round()
    assert runner.statuses() == {"a": S.FAILED, "b": S.SUCCEEDED, "c": S.SKIPPED, "d": S.SKIPPED}
    assert runner.run.status is S.FAILED


def test_continue_skips_only_what_is_downstream_of_the_failure() -> None:
    runner = Runner({"a": [], "b": [], "c": ["a"], "e": ["c"], "d": ["b"]}, OnFailure.CONTINUE)
    assert runner.round() == ["a", "b"]
    runner.finish("a", S.TIMED_OUT)
    runner.finish("b")
    assert runner.round() == ["d"]
    assert runner.statuses()["c"] is S.SKIPPED
    assert runner.statuses()["e"] is S.SKIPPED  # transitively
    runner.finish("d")
    runner.round()
    assert runner.run.status is S.FAILED
    assert runner.statuses()["d"] is S.SUCCEEDED


def test_a_cancelled_run_starts_nothing_and_ends_cancelled_once_nothing_runs() -> None:
    runner = Runner(DIAMOND)
    runner.round()
    runner.run = replace(runner.run, status=S.CANCELLED)
    assert runner.round() == []
    assert runner.statuses()["d"] is S.CANCELLED
    assert runner.run.status is S.RUNNING  # a is still running
    runner.finish("a", S.CANCELLED)
    runner.run = replace(runner.run, status=S.CANCELLED)
    runner.round()
    assert runner.run.status is S.CANCELLED
    assert set(runner.statuses().values()) == {S.CANCELLED}


def test_a_step_whose_execution_is_gone_counts_as_cancelled() -> None:
    step = RunStep("a", new_id(), (), execution_id=new_id())
    assert step_status(step, {}) is S.CANCELLED
    assert step_status(RunStep("b", new_id()), {}) is S.QUEUED


def test_a_final_outcome_on_the_run_stands_for_its_execution() -> None:
    """A finished execution never changes, so a round need not read it again."""
    done = RunStep("a", new_id(), (), execution_id=new_id(), outcome=S.FAILED)
    running = RunStep("b", new_id(), (), execution_id=new_id(), outcome=S.RUNNING)
    assert step_status(done, {}) is S.FAILED
    assert step_status(running, {}) is S.CANCELLED  # not final: only its execution tells
    never = RunStep("c", new_id(), (), outcome=S.SKIPPED)
    run = replace(Runner(DIAMOND).run, steps=(done, running, never, RunStep("d", new_id())))
    assert unsettled_execution_ids(run) == [running.execution_id]


def test_a_round_starts_at_most_its_share_and_the_rest_next_round() -> None:
    runner = Runner({f"s{n}": [] for n in range(STEPS_PER_ROUND + 5)})
    assert len(runner.round()) == STEPS_PER_ROUND
    assert len(runner.round()) == 5


@pytest.mark.parametrize("on_failure", list(OnFailure))
def test_the_run_copies_the_workflow(on_failure: OnFailure) -> None:
    source = workflow(DIAMOND, on_failure)
    run: WorkflowRun = start_run(source, trigger="schedule", created_by="u", at=AT)
    assert [s.key for s in run.steps] == ["a", "b", "c", "d"]
    assert (run.on_failure, run.max_concurrency, run.status) == (
        on_failure,
        source.max_concurrency,
        S.QUEUED,
    )
    assert run.id.endswith(PROJECT)
