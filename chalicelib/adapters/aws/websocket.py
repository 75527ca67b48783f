"""Pushes frames to WebSocket clients through API Gateway's management API."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.errors import aws_failures


class ApiGatewayPusher:
    def __init__(self, client: Any) -> None:
        self._client = client  # boto3 "apigatewaymanagementapi", endpoint = the WebSocket stage

    def push(self, connection_id: str, message: dict[str, object]) -> bool:
        data = json.dumps(message, separators=(",", ":"), default=str).encode()
        try:
            with aws_failures():
                self._client.post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"GoneException", "410"}:
                return False
            raise
        return True
