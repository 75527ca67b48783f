"""Auth and users over real HTTP against the local stack started as a subprocess."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"


def unique_email(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def register(api: str, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = requests.post(
        f"{api}/auth/register",
        json={"email": email, "password": password, "name": "E2E"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_health_and_docs(stack: Any) -> None:
    health = requests.get(f"{stack.api}/health", timeout=10)
    assert health.status_code == 200
    assert health.json()["checks"] == {"dynamodb": "ok"}
    docs = requests.get(f"{stack.api}/docs", timeout=10)
    assert docs.status_code == 200
    assert "text/html" in docs.headers["Content-Type"]
    bundle = requests.get(f"{stack.api}/docs/swagger-ui-bundle.js", timeout=10)
    assert bundle.status_code == 200
    assert requests.get(f"{stack.api}/openapi.json", timeout=10).json()["openapi"] == "3.1.0"


def test_register_login_refresh_logout(stack: Any) -> None:
    email = unique_email("flow")
    registered = register(stack.api, email)
    assert registered["token_type"] == "Bearer"

    login = requests.post(
        f"{stack.api}/auth/login", json={"email": email.upper(), "password": PASSWORD}, timeout=10
    )
    assert login.status_code == 200, login.text
    tokens = login.json()

    profile = requests.get(
        f"{stack.api}/users/profile", headers=bearer(tokens["access_token"]), timeout=10
    )
    assert profile.status_code == 200
    assert profile.json()["email"] == email
    assert profile.headers["ETag"] == f'"{profile.json()["version"]}"'

    rotated = requests.post(
        f"{stack.api}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}, timeout=10
    ).json()
    reuse = requests.post(
        f"{stack.api}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}, timeout=10
    )
    assert reuse.status_code == 401
    # Reuse revoked the whole session, including the tokens the rotation just handed out.
    gone = requests.get(
        f"{stack.api}/users/profile", headers=bearer(rotated["access_token"]), timeout=10
    )
    assert gone.status_code == 401
    assert gone.headers["WWW-Authenticate"].startswith("Bearer")

    logout = requests.post(
        f"{stack.api}/auth/logout", headers=bearer(registered["access_token"]), timeout=10
    )
    assert logout.status_code == 204
    after = requests.get(
        f"{stack.api}/users/profile", headers=bearer(registered["access_token"]), timeout=10
    )
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "unauthorized"


def test_login_throttling(stack: Any) -> None:
    email = unique_email("throttle")
    register(stack.api, email)
    for _ in range(5):
        wrong = requests.post(
            f"{stack.api}/auth/login",
            json={"email": email, "password": "wrong password"},
            timeout=10,
        )
        assert wrong.status_code == 401
    limited = requests.post(
        f"{stack.api}/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.json()["error"]["code"] == "rate_limited"


def test_errors_have_the_contract_body(stack: Any) -> None:
    bad_json = requests.post(
        f"{stack.api}/auth/login",
        data=b"{oops",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["code"] == "bad_request"
    assert bad_json.json()["request_id"]
    invalid = requests.post(f"{stack.api}/auth/register", json={"email": "x"}, timeout=10)
    assert invalid.status_code == 422
    assert invalid.json()["error"]["details"]
    unknown = requests.get(f"{stack.api}/no-such-route", timeout=10)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
