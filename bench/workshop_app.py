"""The second cold start baseline, shaped like the Chalice workshop's todo app: Chalice, boto3
and PyJWT imported at module level; the JWT signing key read from SSM Parameter Store and the
DynamoDB table resource made on first use, each kept in a global; one authenticated route
reading one item (the bearer token checked with that key, then a GetItem).

The workshop checks the token in a built-in authorizer, which API Gateway runs before the route;
called as `app(event, context)` nothing runs it, so the route checks the token itself: the same
work in the same process. bench/coldstart.py imports this module in a fresh interpreter and
serves its first request against the same moto server as Taskbeat's; the environment names the
table and the key's parameter.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import boto3
import jwt
from boto3.dynamodb.conditions import Key  # noqa: F401  (the workshop's db module imports it)
from chalice.app import Chalice, NotFoundError, UnauthorizedError

app = Chalice(app_name="workshop")
_TABLE: Any = None
_AUTH_KEY: bytes | None = None


def get_auth_key() -> bytes:
    global _AUTH_KEY
    if _AUTH_KEY is None:
        parameter = boto3.client("ssm").get_parameter(
            Name=os.environ["WORKSHOP_AUTH_KEY_PARAMETER"], WithDecryption=True
        )
        _AUTH_KEY = base64.b64decode(parameter["Parameter"]["Value"])
    return _AUTH_KEY


def get_table() -> Any:
    global _TABLE
    if _TABLE is None:
        _TABLE = boto3.resource("dynamodb").Table(os.environ["WORKSHOP_TABLE"])
    return _TABLE


def get_username() -> str:
    request = app.current_request
    assert request is not None
    token = (request.headers.get("authorization") or "").removeprefix("Bearer ")
    try:
        claims = jwt.decode(token, get_auth_key(), algorithms=["HS256"])
    except jwt.InvalidTokenError:
        raise UnauthorizedError("not signed in") from None
    return str(claims["sub"])


@app.route("/v1/todos/{uid}")
def get_todo(uid: str) -> dict[str, Any]:
    item = get_table().get_item(Key={"username": get_username(), "uid": uid}).get("Item")
    if item is None:
        raise NotFoundError(f"no todo {uid}")
    return dict(item)
