"""Security headers on every answer of the app and CORS from TASKBEAT_CORS_ORIGINS, through
Chalice's test client on moto (the middleware in chalicelib/api/middleware.py)."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest

from chalicelib.api.middleware import SECURITY_HEADERS
from chalicelib.api.service import DOCS_PAGE
from chalicelib.settings import Settings
from tests.integration.conftest import REGION, Http

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.net"
CORS_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
    "Access-Control-Expose-Headers",
)


@pytest.fixture
def cors_origins() -> tuple[str, ...]:
    return (ALLOWED, "http://localhost:3000")


@pytest.fixture
def settings(cors_origins: tuple[str, ...]) -> Settings:
    return Settings(
        table_prefix="test-", jwt_secret_id="test/jwt", aws_region=REGION, cors_origins=cors_origins
    )


def call(http: Http, method: str, path: str, **headers: str) -> Any:
    return http.client.http.request(method, f"/v1{path}", headers=headers, body=b"")


def header(response: Any, name: str) -> str | None:
    lowered = {key.lower(): value for key, value in response.headers.items()}
    value = lowered.get(name.lower())
    return None if value is None else str(value)


def assert_security_headers(response: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert header(response, name) == value, (name, response.status_code)


def assert_no_cors(response: Any) -> None:
    present = [name for name in CORS_HEADERS if header(response, name) is not None]
    assert present == [], present


# --- security headers ---------------------------------------------------------------------


def test_a_success_carries_the_security_headers(http: Http) -> None:
    response = call(http, "GET", "/health")
    assert response.status_code == 200
    assert_security_headers(response)


def test_errors_carry_the_security_headers(http: Http) -> None:
    unauthorized = http("GET", "/users/profile")
    assert unauthorized.status_code == 401
    assert_security_headers(unauthorized)
    token = http.register("someone@example.com")["access_token"]
    missing = http("GET", "/tasks/01HZZZZZZZZZZZZZZZZZZZZZZZ", token=token)
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"
    assert_security_headers(missing)
    invalid = http("POST", "/tasks", {"title": ""}, token=token)
    assert invalid.status_code == 422
    assert_security_headers(invalid)
    not_allowed = call(http, "DELETE", "/health")  # Chalice's own 405
    assert not_allowed.status_code == 405
    assert_security_headers(not_allowed)


def test_the_docs_page_gets_a_policy_for_its_own_scripts_and_styles(http: Http) -> None:
    page = call(http, "GET", "/docs")
    assert page.status_code == 200
    policy = header(page, "Content-Security-Policy") or ""
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["style-src"].startswith("'self'")
    assert directives["connect-src"] == "'self'"  # openapi.json and "try it out"
    (inline,) = re.findall(r"<script>(.*?)</script>", DOCS_PAGE, flags=re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert directives["script-src"] == f"'self' 'sha256-{digest}'"  # no 'unsafe-inline'
    assert header(page, "Cache-Control") == "no-cache"  # its own
    assert header(page, "X-Frame-Options") == "DENY"
    assert header(page, "X-Content-Type-Options") == "nosniff"


# --- CORS ---------------------------------------------------------------------------------


def test_an_allowed_origin_is_answered_with_its_origin(http: Http) -> None:
    response = http("GET", "/health", origin=ALLOWED)
    assert response.status_code == 200
    assert header(response, "Access-Control-Allow-Origin") == ALLOWED
    assert header(response, "Vary") == "Origin"
    exposed = {
        h.strip() for h in (header(response, "Access-Control-Expose-Headers") or "").split(",")
    }
    assert {"ETag", "Retry-After", "X-Request-Id"} <= exposed
    assert_security_headers(response)


def test_an_allowed_origin_gets_cors_headers_on_errors_too(http: Http) -> None:
    response = http("GET", "/users/profile", origin="http://localhost:3000")
    assert response.status_code == 401
    assert header(response, "Access-Control-Allow-Origin") == "http://localhost:3000"


def test_another_origin_gets_no_cors_headers(http: Http) -> None:
    response = http("GET", "/health", origin=OTHER)
    assert response.status_code == 200
    assert_no_cors(response)
    assert header(response, "Vary") == "Origin"  # the answer depends on it
    assert_no_cors(http("GET", "/health"))  # no Origin: not a cross-origin call


def test_a_preflight_from_an_allowed_origin(http: Http) -> None:
    response = call(
        http,
        "OPTIONS",
        "/tasks/01HZZZZZZZZZZZZZZZZZZZZZZZ",
        origin=ALLOWED,
        **{
            "access-control-request-method": "PATCH",
            "access-control-request-headers": "authorization, content-type, if-match",
        },
    )
    assert response.status_code == 204
    assert response.body in (b"", None)
    assert header(response, "Access-Control-Allow-Origin") == ALLOWED
    methods = {
        m.strip() for m in (header(response, "Access-Control-Allow-Methods") or "").split(",")
    }
    assert {"GET", "PUT", "PATCH", "DELETE", "OPTIONS"} <= methods
    assert "POST" not in methods
    allowed_headers = (header(response, "Access-Control-Allow-Headers") or "").lower()
    for name in ("authorization", "content-type", "if-match"):
        assert name in allowed_headers
    assert int(header(response, "Access-Control-Max-Age") or 0) > 0
    assert_security_headers(response)


def test_a_preflight_needs_no_token_and_works_on_auth_routes(http: Http) -> None:
    response = call(
        http,
        "OPTIONS",
        "/auth/login",
        origin=ALLOWED,
        **{"access-control-request-method": "POST"},
    )
    assert response.status_code == 204
    assert header(response, "Access-Control-Allow-Methods") == "OPTIONS, POST"


def test_a_preflight_from_another_origin_gets_no_cors_headers(http: Http) -> None:
    response = call(
        http, "OPTIONS", "/tasks", origin=OTHER, **{"access-control-request-method": "POST"}
    )
    assert response.status_code == 204
    assert_no_cors(response)
    assert header(response, "Allow") == "GET, OPTIONS, POST"


@pytest.mark.parametrize("cors_origins", [()])
def test_without_configured_origins_there_are_no_cors_headers(http: Http) -> None:
    assert_no_cors(http("GET", "/health", origin=ALLOWED))
    preflight = call(
        http, "OPTIONS", "/tasks", origin=ALLOWED, **{"access-control-request-method": "POST"}
    )
    assert preflight.status_code == 204
    assert_no_cors(preflight)
    assert header(preflight, "Vary") is None


@pytest.mark.parametrize("cors_origins", [("*",)])
def test_a_wildcard_allows_every_origin(http: Http) -> None:
    assert header(http("GET", "/health", origin=OTHER), "Access-Control-Allow-Origin") == "*"


def test_origins_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKBEAT_CORS_ORIGINS", " https://App.example.com/ ,http://localhost:3000")
    assert Settings().cors_origins == (ALLOWED, "http://localhost:3000")
    monkeypatch.setenv("TASKBEAT_CORS_ORIGINS", "")
    assert Settings().cors_origins == ()
    monkeypatch.setenv("TASKBEAT_CORS_ORIGINS", "app.example.com")
    with pytest.raises(ValueError, match="not an origin"):
        Settings()
