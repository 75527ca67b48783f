"""The run state machine's ASL (chalicelib/runs.py), checked structurally: no interpreter, no
moto. Every transition lands on a state, every Lambda task retries the transient errors within
a timeout, and the paths the states read are the ones the previous states and the handlers
write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import pytest

from chalicelib import runs
from chalicelib.services.runs import EXECUTION_RUN, Plan, PlannedStep, StepOutcome

PLAN_ARN = "arn:plan"
STEP_ARN = "arn:step"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
TERMINAL = {"Succeed", "Fail"}


@pytest.fixture
def asl() -> dict[str, Any]:
    return runs.definition(PLAN_ARN, STEP_ARN)


def machines(machine: dict[str, Any], where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """The machine and, recursively, every Map's item processor (and Parallel's branches)."""
    yield where or "<top>", machine
    for name, state in machine["States"].items():
        if state["Type"] == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator")
            assert processor is not None, f"{name}: a Map without an ItemProcessor"
            yield from machines(processor, f"{where}/{name}")
        for index, branch in enumerate(state.get("Branches", [])):
            yield from machines(branch, f"{where}/{name}[{index}]")


def all_states(asl: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for where, machine in machines(asl):
        for name, state in machine["States"].items():
            yield where, name, state


def targets(state: dict[str, Any]) -> list[str]:
    found = [state[key] for key in ("Next", "Default") if key in state]
    found += [choice["Next"] for choice in state.get("Choices", [])]
    found += [catch["Next"] for catch in state.get("Catch", [])]
    return found


def lambda_tasks(asl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: state
        for _, name, state in all_states(asl)
        if state["Type"] == "Task" and state.get("Resource") == LAMBDA_INVOKE
    }


def resolve(document: Any, path: str) -> Any:
    """A plain `$.a.b` reference path in a JSON document (KeyError if it is not there)."""
    assert path == "$" or path.startswith("$."), path
    value = document
    for part in path[2:].split(".") if path != "$" else []:
        value = value[part]
    return value


class TestTransitions:
    def test_every_target_names_a_state_of_its_own_machine(self, asl: dict[str, Any]) -> None:
        checked = 0
        for where, machine in machines(asl):
            names = set(machine["States"])
            assert machine["StartAt"] in names, where
            for name, state in machine["States"].items():
                for target in targets(state):
                    assert target in names, f"{where}/{name} -> {target}"
                    checked += 1
        assert checked >= 10  # the walk did see the Map's states

    def test_every_state_either_moves_on_or_ends(self, asl: dict[str, Any]) -> None:
        for where, name, state in all_states(asl):
            kind = state["Type"]
            if kind in TERMINAL:
                assert not targets(state), f"{where}/{name}"
            elif kind == "Choice":
                assert state["Choices"], f"{where}/{name}"
                assert "Default" in state, f"{where}/{name}"
            else:
                assert ("Next" in state) != bool(state.get("End")), f"{where}/{name}"

    def test_every_state_is_reachable(self, asl: dict[str, Any]) -> None:
        for where, machine in machines(asl):
            seen: set[str] = set()
            todo = [machine["StartAt"]]
            while todo:
                name = todo.pop()
                if name not in seen:
                    seen.add(name)
                    todo += targets(machine["States"][name])
            assert seen == set(machine["States"]), where

    def test_the_shape_of_the_loop(self, asl: dict[str, Any]) -> None:
        top = asl["States"]
        # A run handed over for a retry waits its backoff first; every other run plans at once.
        assert asl["StartAt"] == "Start"
        (delayed,) = top["Start"]["Choices"]
        assert (delayed["Variable"], delayed["IsPresent"], delayed["Next"]) == (
            "$.delay_seconds",
            True,
            "Delay",
        )
        assert top["Start"]["Default"] == "Plan"
        assert (top["Delay"]["Type"], top["Delay"]["SecondsPath"], top["Delay"]["Next"]) == (
            "Wait",
            "$.delay_seconds",
            "Plan",
        )
        assert top["Plan"]["Next"] == "DoneOrRun"
        (done,) = top["DoneOrRun"]["Choices"]
        assert (done["Variable"], done["BooleanEquals"], done["Next"]) == (
            "$.plan.done",
            True,
            "Finished",
        )
        assert top["DoneOrRun"]["Default"] == "RunSteps"
        assert top["RunSteps"]["Next"] == "Plan"  # back to plan the next round
        steps = top["RunSteps"]["ItemProcessor"]["States"]
        (again,) = steps["AgainOrDone"]["Choices"]
        assert (again["Variable"], again["StringEquals"], again["Next"]) == (
            "$.last.outcome",
            runs.RETRY,
            "Backoff",
        )
        assert steps["AgainOrDone"]["Default"] == "StepDone"
        assert steps["Backoff"]["Next"] == "NextAttempt"
        assert steps["NextAttempt"]["Next"] == "Attempt"
        assert steps["Abandon"]["Next"] == "StepDone"

    def test_the_json_form_is_the_same_definition(self, asl: dict[str, Any]) -> None:
        assert json.loads(runs.definition_json(PLAN_ARN, STEP_ARN)) == asl


class TestLambdaTasks:
    def test_the_three_tasks_call_their_functions(self, asl: dict[str, Any]) -> None:
        tasks = lambda_tasks(asl)
        assert set(tasks) == {"Plan", "Attempt", "Abandon"}
        functions = {name: t["Parameters"]["FunctionName"] for name, t in tasks.items()}
        assert functions == {"Plan": PLAN_ARN, "Attempt": STEP_ARN, "Abandon": STEP_ARN}

    def test_every_lambda_task_retries_the_transient_errors_within_a_timeout(
        self, asl: dict[str, Any]
    ) -> None:
        for name, task in lambda_tasks(asl).items():
            timeout = task.get("TimeoutSeconds")
            assert isinstance(timeout, int), name
            assert timeout > 0, name
            retried = {error for rule in task.get("Retry", []) for error in rule["ErrorEquals"]}
            for error in (
                "Lambda.ServiceException",
                "Lambda.AWSLambdaException",
                "Lambda.SdkClientException",
                "Lambda.TooManyRequestsException",
                "Unavailable",
            ):
                assert error in retried, f"{name} does not retry {error}"
            for rule in task["Retry"]:
                # Only the transient errors: a catch-all would resend a webhook the Lambda
                # already sent, and hide real failures from Abandon.
                assert "States.ALL" not in rule["ErrorEquals"], name
                assert "States.Timeout" not in rule["ErrorEquals"], name
                assert rule["MaxAttempts"] >= 1

    def test_an_attempt_outlives_the_longest_webhook(self, asl: dict[str, Any]) -> None:
        attempt = lambda_tasks(asl)["Attempt"]
        assert attempt["TimeoutSeconds"] > 60  # timeout_seconds is at most 60

    def test_the_attempts_catch_goes_to_abandon_with_the_error(self, asl: dict[str, Any]) -> None:
        attempt = lambda_tasks(asl)["Attempt"]
        (catch,) = attempt["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"]
        assert catch["Next"] == "Abandon"
        abandon = lambda_tasks(asl)["Abandon"]
        payload = abandon["Parameters"]["Payload"]
        assert payload["error.$"] == catch["ResultPath"]
        assert payload["execution_id.$"] == "$.execution_id"
        assert payload["attempt.$"] == "$.attempt"
        assert abandon["ResultPath"] is None  # keeps the step's input


class TestPaths:
    def test_the_map_reads_the_plans_steps_and_concurrency(self, asl: dict[str, Any]) -> None:
        map_state = asl["States"]["RunSteps"]
        assert map_state["Type"] == "Map"
        assert map_state["ItemsPath"] == "$.plan.steps"
        assert map_state["MaxConcurrencyPath"] == "$.plan.max_concurrency"
        assert "MaxConcurrency" not in map_state
        selector = asl["States"]["Plan"]["ResultSelector"]
        assert asl["States"]["Plan"]["ResultPath"] == "$.plan"
        assert selector["max_concurrency.$"] == "$.Payload.max_concurrency"
        assert selector["steps.$"] == "$.Payload.steps"
        # Each item starts at the attempt, with the execution and task, the plan handler lists.
        item = map_state["ItemSelector"]
        assert item == {
            "execution_id.$": "$$.Map.Item.Value.execution_id",
            "task_id.$": "$$.Map.Item.Value.task_id",
            "attempt.$": "$$.Map.Item.Value.attempt",
        }
        assert {value.split(".")[-1] for value in item.values() if isinstance(value, str)} == {
            f.name for f in fields(PlannedStep)
        }

    def test_the_plan_answers_every_field_the_state_machine_reads(
        self, asl: dict[str, Any]
    ) -> None:
        selector = asl["States"]["Plan"]["ResultSelector"]
        read = {key.removesuffix(".$") for key in selector}
        assert read <= {f.name for f in fields(Plan)}
        assert {value.removeprefix("$.Payload.") for value in selector.values()} == read

    def test_the_backoff_waits_the_delay_the_attempt_answered(self, asl: dict[str, Any]) -> None:
        steps = asl["States"]["RunSteps"]["ItemProcessor"]["States"]
        backoff = steps["Backoff"]
        assert backoff["Type"] == "Wait"
        assert backoff["SecondsPath"] == "$.last.delay_seconds"
        assert "Seconds" not in backoff
        attempt = steps["Attempt"]
        assert attempt["ResultPath"] == "$.last"
        selector = attempt["ResultSelector"]
        assert selector == {
            "outcome.$": "$.Payload.outcome",
            "attempt.$": "$.Payload.attempt",
            "delay_seconds.$": "$.Payload.delay_seconds",
        }
        # Every field the handler answers (the execution stays in the service).
        assert {k.removesuffix(".$") for k in selector} == {
            f.name for f in fields(StepOutcome) if f.compare
        }
        assert steps["NextAttempt"]["Parameters"] == {
            "execution_id.$": "$.execution_id",
            "task_id.$": "$.task_id",
            "attempt.$": "$.last.attempt",
        }
        assert attempt["Parameters"]["Payload"] == {
            "execution_id.$": "$.execution_id",
            "task_id.$": "$.task_id",
            "attempt.$": "$.attempt",
        }

    def test_the_execution_input_starts_the_plan_at_round_zero(self, asl: dict[str, Any]) -> None:
        document = runs.execution_input(EXECUTION_RUN, "EXEC1")
        assert document == {"run": {"kind": "execution", "id": "EXEC1"}, "plan": {"round": 0}}
        payload = asl["States"]["Plan"]["Parameters"]["Payload"]
        assert payload == {"run.$": "$.run", "round.$": "$.plan.round"}
        assert resolve(document, payload["run.$"]) == {"kind": "execution", "id": "EXEC1"}
        assert resolve(document, payload["round.$"]) == 0
        # After a round, `$.plan` is the plan's answer: the next round reads its `round`.
        after = {**document, "plan": {"round": 1, "done": False, "steps": []}}
        assert resolve(after, payload["round.$"]) == 1
        assert json.loads(json.dumps(document)) == document
