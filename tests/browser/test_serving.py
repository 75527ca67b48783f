"""The local stack serving the dashboard's files (local/dashboard.py) over real HTTP, from a
small stand-in build: index.html for the app's own paths, content types, caching, the
generated config.json, security headers with the dashboard's CSP, and a clear 503 unbuilt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from chalice.app import Chalice

from local.dashboard import Dashboard
from local.http_api import HttpApi

INDEX = b'<!doctype html><script type="module" src="/app/assets/index-abc123.js"></script>'


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dist")
    (root / "assets").mkdir()
    (root / "index.html").write_bytes(INDEX)
    (root / "assets" / "index-abc123.js").write_text("console.log('app')")
    (root / "assets" / "index-abc123.css").write_text("body{}")
    (root / "favicon.svg").write_text("<svg/>")
    (root.parent / "secret.txt").write_text("outside the build")
    return root


def _server(dashboard: Dashboard | None) -> HttpApi:
    app = Chalice(app_name="probe")

    @app.route("/v1/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    server = HttpApi(app, port=0, quiet=True, dashboard=dashboard)
    server.start()
    return server


@pytest.fixture(scope="module")
def server(dist: Path) -> Iterator[HttpApi]:
    running = _server(Dashboard(ws_port=8123, dist=dist))
    yield running
    running.stop()


def get(server: HttpApi, path: str, **kwargs: object) -> requests.Response:
    return requests.get(f"{server.base_url}{path}", timeout=10, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["/app", "/app/", "/app/projects/p1", "/app/deep/link/here"])
def test_the_app_paths_answer_index_html_revalidated_each_time(server, path):
    response = get(server, path)
    assert response.status_code == 200
    assert response.content == INDEX
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"


def test_hashed_assets_are_cached_for_a_year_with_their_content_type(server):
    script = get(server, "/app/assets/index-abc123.js")
    assert script.status_code == 200
    assert script.text == "console.log('app')"
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert script.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    style = get(server, "/app/assets/index-abc123.css")
    assert style.headers["Content-Type"] == "text/css; charset=utf-8"
    icon = get(server, "/app/favicon.svg")
    assert icon.headers["Content-Type"] == "image/svg+xml"
    assert icon.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    "path",
    ["/app/assets/missing.js", "/app/nothing.css", "/app/assets/", "/app/../secret.txt"],
)
def test_missing_files_are_a_404_not_the_page(server, path):
    response = get(server, path)
    assert response.status_code == 404, response.text
    assert b"outside the build" not in response.content
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_no_path_reaches_outside_the_build(server):
    for path in ("/app/%2e%2e/secret.txt", "/app/assets/%2e%2e/%2e%2e/secret.txt"):
        response = get(server, path)
        assert b"outside the build" not in response.content


def test_config_names_the_api_and_websocket_of_the_host_asked(server):
    response = get(server, "/app/config.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json() == {
        "api_url": f"http://127.0.0.1:{server.port}/api/v1",
        "ws_url": "ws://127.0.0.1:8123",
    }
    other = get(server, "/app/config.json", headers={"Host": f"localhost:{server.port}"})
    assert other.json()["ws_url"] == "ws://localhost:8123"
    forged = get(server, "/app/config.json", headers={"Host": "evil.example/<script>"})
    assert forged.json()["api_url"] == f"http://127.0.0.1:{server.port}/api/v1"


def test_answers_carry_the_security_headers_and_a_csp_for_the_app(server):
    headers = get(server, "/app/").headers
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    csp = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"
    assert csp["connect-src"] == "'self' ws://127.0.0.1:8123"
    assert csp["frame-ancestors"] == "'none'"


def test_only_get_and_head(server):
    head = requests.head(f"{server.base_url}/app/", timeout=10)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(INDEX))
    assert head.content == b""
    post = requests.post(f"{server.base_url}/app/", data=b"x", timeout=10)
    assert post.status_code == 405
    assert post.headers["Allow"] == "GET, HEAD"


def test_the_api_and_its_404_are_unchanged(server):
    assert get(server, "/api/v1/ping").json() == {"pong": "yes"}
    missing = get(server, "/apps")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_without_a_build_the_app_says_how_to_make_one(tmp_path):
    server = _server(Dashboard(ws_port=8123, dist=tmp_path / "dist"))
    try:
        response = get(server, "/app/")
        assert response.status_code == 503
        assert "make run" in response.text
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert get(server, "/app/config.json").status_code == 200
        assert get(server, "/api/v1/ping").status_code == 200
    finally:
        server.stop()
