"""`AttemptDispatcher` on Lambda: the first attempt of a queued execution (a manual run, a
buffered firing whose turn came) runs in an asynchronous invocation of the `fire` function.

Why not in the caller: `POST /tasks/{id}/run` answers 202 at once, while a webhook may take
60 s (API Gateway gives a request 29 s); and a Step Functions execution would cost 9 state
transitions for what one invocation does. Lambda retries an event that fails (twice), and the
execution's lease lets the sweep start it if no invocation ever does.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import runs
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.executions import Execution


class LambdaAttemptDispatcher:
    def __init__(self, client: Any, function_arn: str) -> None:
        self._client = client  # boto3 "lambda"
        self._function_arn = function_arn

    @translate_aws_failures
    def dispatch(self, execution: Execution) -> None:
        self._client.invoke(
            FunctionName=self._function_arn,
            InvocationType="Event",
            Payload=json.dumps(
                runs.start_event(execution.id, execution.task_id), separators=(",", ":")
            ).encode(),
        )
