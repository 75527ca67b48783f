"""The Lambda entry points of every function but the REST API's: what CDK names as each
function's handler (`chalicelib.functions.<name>`, infrastructure/components/api.py).

`app.py` declares the same functions to Chalice, which makes them, their triggers and the
WebSocket routes; but its handlers (`app.<name>`) would import `app.py`, hence Chalice and the
route table, for functions that serve no HTTP. These do not: this module imports no more than
the standard library, and each function imports its handler module (`HANDLED_BY`) on its first
event, so a function loads what it uses and no other function's code
(tests/unit/test_entry_points.py holds each to its import set; bench/coldstart.py measures it).

Each call gets the invocation's correlation id in the logs and flushes the metrics it recorded.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

Event = dict[str, Any]
Answer = dict[str, Any]
Handler = Callable[[Event, Any], Answer]

# Each function's name (as app.py declares it to Chalice) -> the handler it runs: its module
# (imported on the function's first event) and the function there, which takes the event.
HANDLED_BY: dict[str, tuple[str, str]] = {
    "ws_connect": ("chalicelib.handlers.websocket", "on_connect"),
    "ws_message": ("chalicelib.handlers.websocket", "on_message"),
    "ws_disconnect": ("chalicelib.handlers.websocket", "on_disconnect"),
    "fan_out": ("chalicelib.handlers.websocket", "fan_out"),
    "on_change": ("chalicelib.handlers.streams", "on_change"),
    "fire": ("chalicelib.handlers.scheduling", "fire"),
    "plan": ("chalicelib.handlers.runs", "plan"),
    "run_step": ("chalicelib.handlers.runs", "run_step"),
    "sweep": ("chalicelib.handlers.sweep", "sweep"),
    "rotate_jwt_key": ("chalicelib.handlers.rotation", "rotate_jwt_key"),
    "deliver_hooks": ("chalicelib.handlers.hooks", "deliver_hooks"),
}


def _entry_point(name: str) -> Handler:
    module, function = HANDLED_BY[name]

    def handler(event: Event, context: Any) -> Answer:
        from chalicelib.observability import flush_metrics, logger

        request_id = getattr(context, "aws_request_id", None)
        if request_id:
            logger().set_correlation_id(request_id)
        try:
            answer: Answer = getattr(importlib.import_module(module), function)(event)
            return answer
        finally:
            flush_metrics()

    handler.__name__ = handler.__qualname__ = name
    return handler


ws_connect = _entry_point("ws_connect")
ws_message = _entry_point("ws_message")
ws_disconnect = _entry_point("ws_disconnect")
fan_out = _entry_point("fan_out")
on_change = _entry_point("on_change")
fire = _entry_point("fire")
plan = _entry_point("plan")
run_step = _entry_point("run_step")
sweep = _entry_point("sweep")
rotate_jwt_key = _entry_point("rotate_jwt_key")
deliver_hooks = _entry_point("deliver_hooks")
