"""OWASP API8, security misconfiguration: security headers on every answer and CORS.

Every route's answer carries the security headers (`chalicelib/api/middleware.py`), on success
and on every kind of error, those Chalice makes itself (405, 415) included; over real HTTP too
(the local REST server, in process), unknown paths included. CORS answers an allowed origin
only (TASKBEAT_CORS_ORIGINS), never with credentials, and every path answers its preflight.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from app import app
from chalicelib.api.middleware import CORS_ALLOW_HEADERS, SECURITY_HEADERS
from chalicelib.api.routing import API_PREFIX
from chalicelib.settings import Settings
from local.http_api import HttpApi
from tests.security.conftest import Answer, World, make_settings
from tests.security.routes import CASES, Case

ALLOWED = "https://app.example.com"
ALSO_ALLOWED = "http://localhost:3000"
CORS_HEADERS = {
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-allow-credentials",
    "access-control-max-age",
    "access-control-expose-headers",
}


@pytest.fixture(scope="module")
def world_settings() -> Settings:
    return make_settings(cors_origins=(ALLOWED, ALSO_ALLOWED))


def assert_protected(headers: Any, what: object) -> None:
    lowered = {str(k).lower(): str(v) for k, v in dict(headers).items()}
    for name, value in SECURITY_HEADERS.items():
        if name == "Cache-Control" and "/docs" in str(what):
            # The docs page (no-cache) and its static assets (public) set their own.
            allowed = ("no-store", "no-cache", "public, max-age=86400")
            assert lowered.get("cache-control") in allowed, what
            continue
        if name == "Cache-Control" and "/calendar/" in str(what):
            # A calendar feed may be kept a few minutes by its own client, never a shared cache.
            assert lowered.get("cache-control") in ("no-store", "private, max-age=300"), what
            continue
        if name == "Content-Security-Policy":
            assert "default-src 'none'" in lowered.get(name.lower(), ""), (what, lowered)
            assert "frame-ancestors 'none'" in lowered.get(name.lower(), ""), what
            continue
        assert lowered.get(name.lower()) == value, (name, what, lowered)
    assert lowered.get("x-request-id"), what


def cors_of(answer: Answer) -> set[str]:
    return {name.lower() for name in answer.headers} & CORS_HEADERS


# ---- security headers ---------------------------------------------------------------------------


def _acting(case: Case) -> str:
    return next(who for who in ("member", "owner", "root") if case.expected(who) < 400)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_route_answers_with_the_security_headers(world: World, case: Case) -> None:
    who = _acting(case)
    req = case.prepare(world, who)
    allowed = world.request(
        case.method, req.path, req.body, token=req.token or world.users[who].access
    )
    assert allowed.status < 400, allowed
    assert_protected(allowed.headers, (case, allowed.status))
    anonymous = world.request(case.method, req.path, req.body)
    assert_protected(anonymous.headers, (case, anonymous.status))
    outsider = world.as_("outsider", case.method, req.path, req.body)
    assert_protected(outsider.headers, (case, outsider.status))


@pytest.mark.parametrize(
    ("name", "method", "path", "kwargs", "status"),
    [
        ("bad json", "POST", "/tasks", {"raw": b"{"}, 400),
        ("bad query", "GET", "/tasks?limit=ten", {}, 400),
        ("unknown id", "GET", "/tasks/01HZZZZZZZZZZZZZZZZZZZZZZZ", {}, 404),
        ("stale If-Match", "PATCH", "/users/profile", {"headers": {"if-match": '"999"'}}, 412),
        ("too large", "POST", "/tasks", {"raw": b" " * (256 * 1024 + 1)}, 413),
        (
            "unsupported media type",
            "POST",
            "/tasks",
            {"raw": b"<task/>", "headers": {"content-type": "application/xml"}},
            415,
        ),
        ("invalid", "POST", "/tasks", {"body": {"title": ""}}, 422),
        ("method not allowed", "DELETE", "/health", {}, 405),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_every_kind_of_error_answers_with_the_security_headers(
    world: World, name: str, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    body = kwargs.pop("body", {}) if method != "GET" else None
    answer = world.as_("member", method, path, body, **kwargs)
    assert answer.status == status, answer
    assert answer.json["error"]["code"], answer
    assert_protected(answer.headers, name)


def test_a_crash_answers_with_the_security_headers(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(world.container.users, "profile", broken)
    answer = world.as_("member", "GET", "/users/profile")
    assert answer.status == 500
    assert_protected(answer.headers, "500")


def test_a_locked_login_answers_with_the_security_headers(world: World) -> None:
    email = "headers-lock@example.com"
    for attempt in range(5):
        world.request("POST", "/auth/login", {"email": email, "password": f"guess {attempt}"})
    answer = world.request("POST", "/auth/login", {"email": email, "password": "whatever"})
    assert answer.status == 429
    assert_protected(answer.headers, "429")


# ---- CORS ---------------------------------------------------------------------------------------


def test_an_allowed_origin_may_read_answers_but_gets_no_credentials(world: World) -> None:
    for origin in (ALLOWED, ALSO_ALLOWED):
        answer = world.as_("member", "GET", "/users/profile", headers={"origin": origin})
        assert answer.header("Access-Control-Allow-Origin") == origin
        assert "Origin" in (answer.header("Vary") or "")
        exposed = answer.header("Access-Control-Expose-Headers") or ""
        assert "ETag" in exposed
        assert "Idempotent-Replayed" in exposed  # a script tells a replay from a first answer
        assert answer.header("Access-Control-Allow-Credentials") is None
    error = world.as_("member", "GET", "/tasks/nothing", headers={"origin": ALLOWED})
    assert error.status == 404
    assert error.header("Access-Control-Allow-Origin") == ALLOWED


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.net",
        "null",
        "https://app.example.com.evil.net",
        "https://evil-app.example.com",
        "https://sub.app.example.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        "http://localhost:3001",
        "http://127.0.0.1:3000",
        "*",
    ],
)
def test_other_origins_get_no_cors_headers(world: World, origin: str) -> None:
    answer = world.as_("member", "GET", "/users/profile", headers={"origin": origin})
    assert answer.status == 200
    assert cors_of(answer) == set(), answer.headers
    # The answer depends on Origin: caches must keep them apart.
    assert "Origin" in (answer.header("Vary") or "")
    preflight = world.request(
        "OPTIONS",
        "/tasks",
        headers={"origin": origin, "access-control-request-method": "DELETE"},
    )
    assert preflight.status == 204
    assert cors_of(preflight) == set()


def test_no_origin_no_cors_headers(world: World) -> None:
    answer = world.as_("member", "GET", "/users/profile")
    assert cors_of(answer) == set()


PATHS = sorted(path.removeprefix(API_PREFIX) for path in app.routes)


@pytest.mark.parametrize("path", PATHS)
def test_every_path_answers_a_preflight_from_an_allowed_origin(world: World, path: str) -> None:
    concrete = path.replace("{asset}", "swagger-ui.css")
    concrete = "/".join(
        "01HZZZZZZZZZZZZZZZZZZZZZZZ" if "{" in p else p for p in concrete.split("/")
    )
    answer = world.request(
        "OPTIONS",
        concrete,
        headers={
            "origin": ALLOWED,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert answer.status == 204, answer  # no token needed for a preflight
    assert answer.header("Access-Control-Allow-Origin") == ALLOWED
    methods = {m.strip() for m in (answer.header("Access-Control-Allow-Methods") or "").split(",")}
    assert methods == set(app.routes[API_PREFIX + path]), methods
    assert answer.header("Access-Control-Allow-Headers") == CORS_ALLOW_HEADERS
    assert "Idempotency-Key" in CORS_ALLOW_HEADERS  # a page may send it on its POSTs
    assert answer.header("Access-Control-Allow-Credentials") is None
    assert_protected(answer.headers, ("preflight", path))


# ---- over real HTTP -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[HttpApi]:
    """The local REST server (what `make run` serves), in process, on this world."""
    api = HttpApi(app, port=0, quiet=True)
    api.start()
    try:
        yield api
    finally:
        api.stop()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/users/profile", 401),
        ("GET", "/no-such-route", 404),
        ("GET", "/tasks/01HZZZZZZZZZZZZZZZZZZZZZZZ/nothing", 404),
        ("DELETE", "/health", 405),
        ("POST", "/tasks", 413),
    ],
)
def test_answers_over_http_carry_the_security_headers(
    world: World, server: HttpApi, method: str, path: str, status: int
) -> None:
    data = b" " * (256 * 1024 + 1) if status == 413 else None
    token = world.users["member"].access if status == 413 else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = requests.request(
        method, f"{server.api_url}{path}", data=data, headers=headers, timeout=10
    )
    assert answer.status_code == status, answer.text
    if status >= 400:
        assert set(answer.json()) == {"error", "request_id"}
    assert_protected(answer.headers, (method, path, status))


def test_paths_outside_the_stage_over_http_carry_the_security_headers(server: HttpApi) -> None:
    answer = requests.get(f"{server.base_url}/.env", timeout=10)
    assert answer.status_code == 404
    assert_protected(answer.headers, "/.env")
