"""Hands shares of a large fan-out to the `fan_out` function, invoked asynchronously."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chalicelib.adapters.errors import translate_aws_failures


class LambdaFanOut:
    def __init__(self, client: Any, function_arn: str) -> None:
        self._client = client  # boto3 "lambda"
        self._function_arn = function_arn

    @translate_aws_failures
    def dispatch(self, connection_ids: Sequence[str], frame: dict[str, Any]) -> None:
        # An event invocation takes 256 KiB: a frame is at most 127 KiB, a share of
        # connection ids a few KiB.
        payload = json.dumps(
            {"connection_ids": list(connection_ids), "frame": frame},
            separators=(",", ":"),
            default=str,
        )
        self._client.invoke(
            FunctionName=self._function_arn, InvocationType="Event", Payload=payload.encode()
        )
