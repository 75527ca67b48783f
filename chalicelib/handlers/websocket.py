"""WebSocket entry points: `$connect`, `$default` and `$disconnect` of API Gateway.

They receive API Gateway's raw WebSocket event (a dict) and answer `{"statusCode": ...}`.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import bootstrap
from chalicelib.domain.errors import Unauthorized

OK = {"statusCode": 200}


def on_connect(event: dict[str, Any]) -> dict[str, Any]:
    # Refusing here (before the upgrade completes) is how API Gateway rejects a WebSocket.
    token = (event.get("queryStringParameters") or {}).get("token")
    try:
        bootstrap.container().auth.authenticate(token)
    except Unauthorized:
        return {"statusCode": 401}
    return OK


def on_message(event: dict[str, Any]) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    pusher = bootstrap.container().pusher
    try:
        frame = json.loads(event.get("body") or "")
    except ValueError:
        frame = None
    if not isinstance(frame, dict):
        pusher.push(
            connection_id,
            {"type": "error", "code": "bad_request", "message": "frames are JSON objects"},
        )
        return OK
    action = frame.get("action")
    if action == "ping":
        pusher.push(connection_id, {"type": "pong"})
    else:
        pusher.push(
            connection_id,
            {"type": "error", "code": "bad_request", "message": f"unknown action: {action!r}"},
        )
    return OK


def on_disconnect(event: dict[str, Any]) -> dict[str, Any]:
    return OK
