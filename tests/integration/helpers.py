"""Helpers of the HTTP tests: the test client speaking the public paths' JSON, and checks of
the contract's error body."""

from __future__ import annotations

import json
from typing import Any

from chalice.test import Client

PASSWORD = "correct horse battery"


class Api:
    """Small helpers over the test client, speaking the public paths' JSON."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Any:
        all_headers = {"content-type": "application/json", **(headers or {})}
        if token:
            all_headers["authorization"] = f"Bearer {token}"
        payload = (
            raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        )
        return getattr(self.client.http, method.lower())(
            f"/v1{path}", body=payload, headers=all_headers
        )

    def register(
        self, email: str = "ada@example.com", password: str = PASSWORD, name: str = "Ada"
    ) -> dict[str, Any]:
        response = self.call(
            "POST", "/auth/register", {"email": email, "password": password, "name": name}
        )
        assert response.status_code == 201, response.body
        return json.loads(response.body)


def body(response: Any) -> Any:
    return json.loads(response.body)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.body
    payload = body(response)
    assert set(payload) == {"error", "request_id"}
    assert payload["error"]["code"] == code
    assert isinstance(payload["error"]["message"], str)
    assert isinstance(payload["error"]["details"], list)
    assert payload["request_id"]
    assert "Traceback" not in response.body.decode()
    return payload
