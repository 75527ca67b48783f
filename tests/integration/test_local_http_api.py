"""The local REST API server on its own, with a small Chalice app: the `/api` stage prefix,
API Gateway's proxy event, the JSON 404, and request state kept per thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from chalice.app import Chalice

from local.http_api import HttpApi


def make_app() -> Chalice:
    app = Chalice(app_name="probe")

    def current_request() -> Any:
        return app.current_request

    @app.route("/v1/echo/{value}", methods=["GET", "POST"])
    def echo(value: str) -> dict[str, Any]:
        request = current_request()
        return {
            "value": value,
            "query": request.query_params,
            "body": request.raw_body.decode() if request.raw_body else None,
            "context": request.context,
            "path": request.path,
        }

    @app.route("/v1/slow")
    def slow() -> dict[str, Any]:
        mine = current_request().query_params["n"]
        time.sleep(0.05)  # let other requests run in between
        return {"n": current_request().query_params["n"], "mine": mine}

    @app.route("/app")
    def dashboard() -> Any:
        from chalice.app import Response

        return Response(body="<html>dashboard</html>", headers={"Content-Type": "text/html"})

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[HttpApi]:
    api = HttpApi(make_app(), port=0, quiet=True)
    api.start()
    yield api
    api.stop()


def test_routes_are_served_under_the_stage(server):
    response = requests.get(f"{server.api_url}/echo/hello?a=1", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["value"] == "hello"
    assert body["query"] == {"a": "1"}
    assert body["path"] == "/v1/echo/{value}"
    assert server.api_url == f"http://127.0.0.1:{server.port}/api/v1"


def test_the_event_carries_what_api_gateway_adds(server):
    body = requests.post(f"{server.api_url}/echo/x", data=b"payload", timeout=10).json()
    context = body["context"]
    assert body["body"] == "payload"
    assert context["stage"] == "api"
    assert context["path"] == "/api/v1/echo/x"
    assert context["httpMethod"] == "POST"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"]
    assert context["domainName"] == f"127.0.0.1:{server.port}"


def test_path_parameters_arrive_decoded(server):
    body = requests.get(f"{server.api_url}/echo/a%40b%20c", timeout=10).json()
    assert body["value"] == "a@b c"


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing", "/api/v2/echo/x", "/api", "/v1/echo/x", "/", "/apiary"]
)
def test_unknown_paths_are_a_json_404(server, path):
    response = requests.post(f"http://127.0.0.1:{server.port}{path}", data=b"ignored", timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == {
        "code": "not_found",
        "message": body["error"]["message"],
        "details": [],
    }
    assert body["request_id"] == response.headers["X-Request-Id"]


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "PROPFIND"])
def test_methods_the_standard_library_does_not_know_reach_the_router(server, method):
    # A known path answers 405 with its methods, an unknown one the JSON 404; never the
    # standard library's HTML 501.
    known = requests.request(method, f"{server.api_url}/echo/x", timeout=10)
    assert known.status_code == 405, known.text
    assert known.headers["Allow"] == "GET, POST"
    assert known.headers["Content-Type"] == "application/json"
    unknown = requests.request(method, f"{server.api_url}/nothing", timeout=10)
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["error"]["code"] == "not_found"


def test_the_dashboard_is_outside_the_stage(server):
    response = requests.get(f"http://127.0.0.1:{server.port}/app", timeout=10)
    assert response.status_code == 200
    assert "dashboard" in response.text


def test_a_kept_alive_connection_serves_several_requests(server):
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(f"{server.api_url}/echo/k", timeout=10).status_code == 200
            assert session.get(f"{server.api_url}/missing", timeout=10).status_code == 404


def test_concurrent_requests_each_see_their_own_request(server):
    def fetch(n: int) -> dict[str, Any]:
        response = requests.get(f"{server.api_url}/slow", params={"n": str(n)}, timeout=10)
        body: dict[str, Any] = response.json()
        return body

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(fetch, range(16)))
    assert [r["n"] for r in results] == [str(n) for n in range(16)]
    assert all(r["n"] == r["mine"] for r in results)


def test_a_thread_that_served_no_request_sees_none(server):
    seen: list[Any] = []
    thread = threading.Thread(target=lambda: seen.append(server._app.current_request))
    thread.start()
    thread.join()
    assert seen == [None]
