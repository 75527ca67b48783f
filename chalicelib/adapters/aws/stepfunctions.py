"""`ExecutionRunner` on Step Functions: one state machine execution per Taskbeat execution.

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


class StepFunctionsRunner:
    def __init__(self, client: Any, state_machine_arn: str) -> None:  # boto3 "stepfunctions"
        self._client = client
        self._state_machine_arn = state_machine_arn

    def start(self, execution: Execution) -> None:
        try:
            with aws_failures():
                self._client.start_execution(
                    stateMachineArn=self._state_machine_arn,
                    name=execution.run_name,
                    input=json.dumps(runs.execution_input("execution", execution.id)),
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
