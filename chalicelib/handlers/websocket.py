"""WebSocket entry points: `$connect`, `$default` and `$disconnect` of API Gateway.

They receive API Gateway's raw WebSocket event (a dict) and answer `{"statusCode": ...}`.
Answers to a client's frames go back through the management API (`Pusher`); events from
stored changes are pushed by the stream consumer, never here.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import bootstrap

OK = {"statusCode": 200}


def _connection_id(event: dict[str, Any]) -> str:
    return str(event["requestContext"]["connectionId"])


def on_connect(event: dict[str, Any]) -> dict[str, Any]:
    # Refusing here (before the upgrade completes) is how API Gateway rejects a WebSocket.
    token = (event.get("queryStringParameters") or {}).get("token")
    container = bootstrap.container()
    with container.request_scope():
        accepted = container.realtime.connect(_connection_id(event), token)
    return OK if accepted else {"statusCode": 401}


def on_message(event: dict[str, Any]) -> dict[str, Any]:
    try:
        frame = json.loads(event.get("body") or "")
    except ValueError:
        frame = None
    container = bootstrap.container()
    with container.request_scope():
        container.realtime.receive(_connection_id(event), frame)
    return OK


def on_disconnect(event: dict[str, Any]) -> dict[str, Any]:
    container = bootstrap.container()
    with container.request_scope():
        container.realtime.disconnect(_connection_id(event))
    return OK


def fan_out(event: dict[str, Any]) -> dict[str, Any]:
    """A share of a large fan-out, handed over by the stream consumer: one frame, pushed to
    these connections (`RealtimeService.publish`)."""
    ids = event.get("connection_ids")
    frame = event.get("frame")
    if not (isinstance(ids, list) and all(isinstance(c, str) for c in ids)):
        raise ValueError("connection_ids must be a list of strings")
    if not isinstance(frame, dict):
        raise ValueError("frame must be an object")
    container = bootstrap.container()
    with container.request_scope():
        done = container.realtime.deliver(ids, frame)
    return {"pushed": done.pushed, "gone": done.gone}
