"""The run state machine: one Step Functions Standard definition for every run.

Built here, in Python, and handed as JSON to CDK (`infrastructure/components/runs.py`) and to
the local stack (`local/provision.py`), so both run the very same definition.

    Start ──(delay_seconds given)──> Delay (Wait) ──┐
      └──────────────────────────────────────────────> Plan ──(done)──> Finished
                                                          │
      └─> RunSteps (Map over the ready steps, at most `max_concurrency` at once)
            Attempt ──(retry)──> Backoff (Wait, SecondsPath) ──> NextAttempt ──> Attempt
               │ (succeeded | failed)            (any error left after Retry) │
               └──> StepDone                      Abandon <──────────────────┘
      <──────── back to Plan

- Which runs use it: workflow runs, and an execution whose first attempt (made by the `fire`
  function, outside any state machine) failed with retries left. That one is handed over with
  `delay_seconds`, its first retry's backoff: the run starts with a `Wait`, and `plan` answers
  the execution with its next attempt's number (`attempts + 1`). An execution that succeeds at
  its first attempt never starts a state machine execution (docs/firings.md).
- `plan` (Lambda) says which steps are ready: for a single execution, the execution itself
  in round 0 and nothing afterwards; workflows plan their dependency graph the same way.
- `run_step` (Lambda) makes one attempt of one step: it sends the webhook once (or applies a
  reminder), records the attempt on the execution, and answers what comes next.
- Why the webhook's backoff is a `Wait` and not the task's `Retry`: ASL `Retry` takes literal
  numbers, while every task carries its own policy (`max_attempts`, `backoff_seconds`,
  `backoff_rate`). So `run_step` computes the delay from the task's policy and the state
  machine waits it out (`SecondsPath`): no Lambda sleeps, a wait costs nothing, and the
  attempts are visible in the execution history. `Retry` covers what is transient for every
  task alike: Lambda's own failures and AWS throttling (`Unavailable`).
- `Abandon` records an attempt that ended in an error `Retry` could not cure (a crash, the task
  timeout), so no execution stays `running` forever.

The payloads between states are plain JSON described by the `*_event` helpers below; the
handlers in `chalicelib/handlers/runs.py` parse them.
"""

from __future__ import annotations

import json
from typing import Any, Final

PLAN_FUNCTION: Final = "plan"
RUN_STEP_FUNCTION: Final = "run_step"

# A webhook answers within `timeout_seconds` (at most 60): the Lambda gets that and a margin
# for the reads and writes around it before Step Functions calls the attempt timed out.
ATTEMPT_TIMEOUT_SECONDS: Final = 90
PLAN_TIMEOUT_SECONDS: Final = 60

# Transient for every task: Lambda's own failures, and AWS throttling inside a handler, which
# the adapters raise as `Unavailable`.
TRANSIENT_ERRORS: Final = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Unavailable",
]
TRANSIENT_RETRY: Final = {
    "ErrorEquals": TRANSIENT_ERRORS,
    "IntervalSeconds": 1,
    "MaxAttempts": 6,
    "BackoffRate": 2.0,
    "MaxDelaySeconds": 30,
    "JitterStrategy": "FULL",
}

# The `fire` function's event that names a queued execution to start (`AttemptDispatcher`);
# a scheduler firing names a task or a workflow instead.
START_EVENT_KEY: Final = "start_execution"

# Outcomes `run_step` answers.
RETRY: Final = "retry"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"


def _lambda_task(function_arn: str, payload: dict[str, Any], timeout: int) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn, "Payload": payload},
        "TimeoutSeconds": timeout,
        "Retry": [TRANSIENT_RETRY],
    }


def definition(plan_arn: str, run_step_arn: str) -> dict[str, Any]:
    """The ASL definition, with the two functions' ARNs (or CloudFormation tokens) in place."""
    attempt = _lambda_task(
        run_step_arn,
        {"execution_id.$": "$.execution_id", "task_id.$": "$.task_id", "attempt.$": "$.attempt"},
        ATTEMPT_TIMEOUT_SECONDS,
    )
    attempt |= {
        "ResultSelector": {
            "outcome.$": "$.Payload.outcome",
            "attempt.$": "$.Payload.attempt",
            "delay_seconds.$": "$.Payload.delay_seconds",
        },
        "ResultPath": "$.last",
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Abandon"}],
        "Next": "AgainOrDone",
    }
    abandon = _lambda_task(
        run_step_arn,
        {
            "execution_id.$": "$.execution_id",
            "attempt.$": "$.attempt",
            "error.$": "$.error",
        },
        PLAN_TIMEOUT_SECONDS,
    )
    abandon |= {"ResultPath": None, "Next": "StepDone"}
    steps = {
        "StartAt": "Attempt",
        "States": {
            "Attempt": attempt,
            "AgainOrDone": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.last.outcome", "StringEquals": RETRY, "Next": "Backoff"}
                ],
                "Default": "StepDone",
            },
            "Backoff": {
                "Type": "Wait",
                "SecondsPath": "$.last.delay_seconds",
                "Next": "NextAttempt",
            },
            "NextAttempt": {
                "Type": "Pass",
                "Parameters": {
                    "execution_id.$": "$.execution_id",
                    "task_id.$": "$.task_id",
                    "attempt.$": "$.last.attempt",
                },
                "Next": "Attempt",
            },
            "Abandon": abandon,
            "StepDone": {"Type": "Succeed"},
        },
    }
    plan = _lambda_task(
        plan_arn, {"run.$": "$.run", "round.$": "$.plan.round"}, PLAN_TIMEOUT_SECONDS
    )
    plan |= {
        "ResultSelector": {
            "round.$": "$.Payload.round",
            "done.$": "$.Payload.done",
            "max_concurrency.$": "$.Payload.max_concurrency",
            "steps.$": "$.Payload.steps",
        },
        "ResultPath": "$.plan",
        "Next": "DoneOrRun",
    }
    return {
        "Comment": "Taskbeat run: plan the ready steps, run them (webhook attempts), repeat.",
        "StartAt": "Start",
        "States": {
            "Start": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.delay_seconds", "IsPresent": True, "Next": "Delay"}],
                "Default": "Plan",
            },
            "Delay": {"Type": "Wait", "SecondsPath": "$.delay_seconds", "Next": "Plan"},
            "Plan": plan,
            "DoneOrRun": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.plan.done", "BooleanEquals": True, "Next": "Finished"}],
                "Default": "RunSteps",
            },
            "RunSteps": {
                "Type": "Map",
                "ItemsPath": "$.plan.steps",
                "MaxConcurrencyPath": "$.plan.max_concurrency",
                "ItemSelector": {
                    "execution_id.$": "$$.Map.Item.Value.execution_id",
                    "task_id.$": "$$.Map.Item.Value.task_id",
                    "attempt.$": "$$.Map.Item.Value.attempt",
                },
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, **steps},
                "ResultPath": None,
                "Next": "Plan",
            },
            "Finished": {"Type": "Succeed"},
        },
    }


def definition_json(plan_arn: str, run_step_arn: str) -> str:
    return json.dumps(definition(plan_arn, run_step_arn), indent=2, sort_keys=True)


def execution_input(kind: str, run_id: str, delay_seconds: int = 0) -> dict[str, Any]:
    """The input of a state machine execution: which run, the plan's first round, and how long
    to wait before it (an execution handed over for a retry)."""
    payload: dict[str, Any] = {"run": {"kind": kind, "id": run_id}, "plan": {"round": 0}}
    if delay_seconds > 0:
        payload["delay_seconds"] = delay_seconds
    return payload


def start_event(execution_id: str, task_id: str) -> dict[str, Any]:
    """The `fire` function's event that starts a queued execution's first attempt."""
    return {START_EVENT_KEY: {"execution_id": execution_id, "task_id": task_id}}
