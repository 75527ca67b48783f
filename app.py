"""The Chalice application: routes, middleware and every Lambda entry point.

Each entry point is a one-liner into `chalicelib.handlers`; nothing here reads the environment
or opens a connection at import time.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, WebsocketEvent

from chalicelib.api import register_api
from chalicelib.handlers import rotation, runs, scheduling, streams, websocket
from chalicelib.handlers import sweep as due_sweep

# configure_logs=False: Powertools owns the "taskbeat" logger (JSON, correlation id).
app = Chalice(app_name="taskbeat", configure_logs=False)
# Chalice still labels WebSocket support experimental; packaging refuses it without this opt-in.
app.experimental_feature_flags.update(["WEBSOCKETS"])
register_api(app)


@app.on_ws_connect(name="ws_connect")
def ws_connect(event: WebsocketEvent) -> dict[str, Any]:
    return websocket.on_connect(event.to_dict())


@app.on_ws_message(name="ws_message")
def ws_message(event: WebsocketEvent) -> dict[str, Any]:
    return websocket.on_message(event.to_dict())


@app.on_ws_disconnect(name="ws_disconnect")
def ws_disconnect(event: WebsocketEvent) -> dict[str, Any]:
    return websocket.on_disconnect(event.to_dict())


@app.lambda_function(name="fan_out")
def fan_out(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return websocket.fan_out(event)


@app.lambda_function(name="on_change")
def on_change(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return streams.on_change(event)


@app.lambda_function(name="fire")
def fire(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return scheduling.fire(event)


@app.lambda_function(name="plan")
def plan(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return runs.plan(event)


@app.lambda_function(name="run_step")
def run_step(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return runs.run_step(event)


@app.lambda_function(name="sweep")
def sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return due_sweep.sweep(event)


@app.lambda_function(name="rotate_jwt_key")
def rotate_jwt_key(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return rotation.rotate_jwt_key(event)
