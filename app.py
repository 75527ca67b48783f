"""The Chalice application: the REST API's routes and middleware, and the declaration of every
other Lambda function (the WebSocket routes, the stream consumer, the scheduler's target, ...).

The REST API function runs `app`: its routes come from a table, and a route's module is
imported when the route first serves a request (chalicelib/api/__init__.py). The other
functions are declared here so Chalice makes them and their triggers, but deployed they run
`chalicelib.functions.<name>` (infrastructure/components/api.py), which imports neither Chalice
nor this module; the handlers below delegate to the same functions, for the local stack and
the tests. Nothing here reads the environment or opens a connection at import time.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, WebsocketEvent

from chalicelib import functions
from chalicelib.api import register_api

# configure_logs=False: Powertools owns the "taskbeat" logger (JSON, correlation id).
app = Chalice(app_name="taskbeat", configure_logs=False)
# Chalice still labels WebSocket support experimental; packaging refuses it without this opt-in.
app.experimental_feature_flags.update(["WEBSOCKETS"])
register_api(app)


@app.on_ws_connect(name="ws_connect")
def ws_connect(event: WebsocketEvent) -> dict[str, Any]:
    return functions.ws_connect(event.to_dict(), event.context)


@app.on_ws_message(name="ws_message")
def ws_message(event: WebsocketEvent) -> dict[str, Any]:
    return functions.ws_message(event.to_dict(), event.context)


@app.on_ws_disconnect(name="ws_disconnect")
def ws_disconnect(event: WebsocketEvent) -> dict[str, Any]:
    return functions.ws_disconnect(event.to_dict(), event.context)


@app.lambda_function(name="fan_out")
def fan_out(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return functions.fan_out(event, context)


@app.lambda_function(name="on_change")
def on_change(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return functions.on_change(event, context)


@app.lambda_function(name="fire")
def fire(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return functions.fire(event, context)


@app.lambda_function(name="plan")
def plan(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return functions.plan(event, context)


@app.lambda_function(name="run_step")
def run_step(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return functions.run_step(event, context)


@app.lambda_function(name="sweep")
def sweep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return functions.sweep(event, context)


@app.lambda_function(name="rotate_jwt_key")
def rotate_jwt_key(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return functions.rotate_jwt_key(event, context)


@app.lambda_function(name="deliver_hooks")
def deliver_hooks(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return functions.deliver_hooks(event, context)
