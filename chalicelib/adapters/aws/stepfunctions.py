"""`ExecutionRunner` on Step Functions: one state machine execution per Taskbeat execution
that must wait for a retry, and one per workflow run.

The state machine execution is named after the Taskbeat execution (`Execution.run_name`), so
starting it twice (a repeated delivery of a firing, a retried request) runs it once: Step
Functions answers an identical start of a running execution with the same execution, and a
start of a closed one with `ExecutionAlreadyExists`, which is fine too.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import runs
from chalicelib.adapters.errors import aws_failures
from chalicelib.domain.executions import Execution
from chalicelib.domain.workflow_runs import WorkflowRun


class StepFunctionsRunner:
    def __init__(self, client: Any, state_machine_arn: str) -> None:  # boto3 "stepfunctions"
        self._client = client
        self._state_machine_arn = state_machine_arn

    def start(self, execution: Execution, delay_seconds: int = 0) -> None:
        self._start(
            execution.run_name, runs.execution_input("execution", execution.id, delay_seconds)
        )

    def start_workflow_run(self, run: WorkflowRun) -> None:
        self._start(run.id, runs.execution_input("workflow_run", run.id))

    def stop_workflow_run(self, run: WorkflowRun) -> None:
        try:
            with aws_failures():
                self._client.stop_execution(
                    executionArn=self._execution_arn(run.id),
                    cause="cancelled through the API",
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
                raise

    def _execution_arn(self, name: str) -> str:
        # arn:aws:states:<region>:<account>:stateMachine:<machine> -> ...:execution:<machine>:<name>
        return f"{self._state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"

    def _start(self, name: str, payload: dict[str, object]) -> None:
        try:
            with aws_failures():
                self._client.start_execution(
                    stateMachineArn=self._state_machine_arn, name=name, input=json.dumps(payload)
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
