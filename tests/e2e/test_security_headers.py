"""The local stack's answers carry the security headers, over real HTTP; with no
TASKBEAT_CORS_ORIGINS set, a browser's Origin gets no CORS headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from chalicelib.api.middleware import SECURITY_HEADERS
from local.testing import StackProcess

pytestmark = pytest.mark.e2e


def _assert_protected(response: requests.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status_code)


def test_answers_carry_the_security_headers(
    stack: StackProcess, new_user: Callable[..., dict[str, Any]]
) -> None:
    health = requests.get(f"{stack.api}/health", timeout=10)
    assert health.status_code == 200
    _assert_protected(health)
    unauthorized = requests.get(f"{stack.api}/users/profile", timeout=10)
    assert unauthorized.status_code == 401
    _assert_protected(unauthorized)
    token = new_user()["access_token"]
    missing = requests.get(
        f"{stack.api}/tasks/01HZZZZZZZZZZZZZZZZZZZZZZZ",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert missing.status_code == 404
    _assert_protected(missing)


def test_no_cors_headers_without_configured_origins(stack: StackProcess) -> None:
    response = requests.get(
        f"{stack.api}/health", headers={"Origin": "https://app.example.com"}, timeout=10
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = requests.options(
        f"{stack.api}/tasks",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 204
    assert "Access-Control-Allow-Origin" not in preflight.headers
