"""The second cold start baseline, shaped like the Chalice workshop's todo app: Chalice, boto3
and PyJWT imported at module level, the DynamoDB table resource made on first use, and one
authenticated route reading one item (a JWT checked with a shared secret, then a GetItem).

bench/coldstart.py imports it in a fresh interpreter and serves its first request against the
same DynamoDB (moto on loopback) as Taskbeat's; the environment names the table and secret.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import jwt
from chalice.app import Chalice, NotFoundError, UnauthorizedError

app = Chalice(app_name="workshop")
_TABLE: Any = None


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
        claims = jwt.decode(token, os.environ["WORKSHOP_SECRET"], algorithms=["HS256"])
    except jwt.InvalidTokenError:
        raise UnauthorizedError("not signed in") from None
    return str(claims["sub"])


@app.route("/v1/todos/{uid}")
def get_todo(uid: str) -> dict[str, Any]:
    item = get_table().get_item(Key={"username": get_username(), "uid": uid}).get("Item")
    if item is None:
        raise NotFoundError(f"no todo {uid}")
    return dict(item)
