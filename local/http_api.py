"""The REST API on loopback: Chalice's local server, shaped like the API Gateway stage.

Public paths are `/api/v1/...` as on AWS (stage `api`); the stage prefix is stripped before
Chalice routes the request, and the proxy event carries what API Gateway adds (request id,
stage, source address, decoded path parameters). `/app...` is the web dashboard's static files
(local/dashboard.py) when the server has one, else it reaches the app unprefixed. Anything else,
and unknown routes under the stage, get the contract's JSON 404 instead of API Gateway's 403
"Missing Authentication Token".
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    LocalChalice,
    LocalGateway,
    LocalGatewayException,
    RouteMatcher,
    ThreadedHTTPServer,
)

from chalicelib.api.calendar import redact_path
from chalicelib.api.middleware import SECURITY_HEADERS
from local.dashboard import Dashboard
from local.lambdas import ACCOUNT_ID

STAGE = "api"
LOCAL_API_ID = "local"


class _ThreadLocalChalice(LocalChalice):
    """Per-request state of the app kept per thread, so concurrent requests do not mix.

    Chalice stores `current_request` and `lambda_context` on the app object; Chalice's own
    `LocalChalice` makes the first thread-local, this makes both, and answers None (as a fresh
    Chalice app does) in threads that have not handled a request yet.
    """

    _REQUEST_STATE = threading.local()

    @property
    def current_request(self) -> Any:
        return getattr(self._REQUEST_STATE, "current_request", None)

    @current_request.setter
    def current_request(self, value: Any) -> None:
        self._REQUEST_STATE.current_request = value

    @property
    def lambda_context(self) -> Any:
        return getattr(self._REQUEST_STATE, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._REQUEST_STATE.lambda_context = value


def serve_requests_per_thread(app: Chalice) -> type[Chalice]:
    """Switch `app` to thread-local request state; returns its original class, to restore."""
    original: type[Chalice] = type(app)
    if not issubclass(original, _ThreadLocalChalice):
        app.__class__ = type(f"Local{original.__name__}", (_ThreadLocalChalice, original), {})
    return original


class _StageGateway(LocalGateway):
    """Chalice's LocalGateway, with the proxy event completed the way API Gateway fills it."""

    def __init__(
        self,
        app_object: Chalice,
        config: Config,
        *,
        public_path: str,
        source_ip: str,
        host: str,
        matcher: RouteMatcher,
    ) -> None:
        super().__init__(app_object, config)
        self.event_converter._route_matcher = matcher  # built once per server, not per request
        self._public_path = public_path
        self._source_ip = source_ip
        self._host = host

    def _generate_lambda_event(
        self, method: str, path: str, headers: dict[str, Any], body: bytes | None
    ) -> dict[str, Any]:
        event: dict[str, Any] = super()._generate_lambda_event(method, path, headers, body)
        now = time.time()
        request_id = str(uuid.uuid4())
        context = event["requestContext"]
        context.update(
            {
                "requestId": request_id,
                "extendedRequestId": request_id,
                "stage": STAGE,
                "path": self._public_path,
                "domainName": self._host,
                "apiId": LOCAL_API_ID,
                "accountId": ACCOUNT_ID,
                "protocol": "HTTP/1.1",
                "requestTimeEpoch": int(now * 1000),
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "identity": {
                    "sourceIp": self._source_ip,
                    "userAgent": event["headers"].get("user-agent"),
                },
            }
        )
        query = event.get("multiValueQueryStringParameters")
        event.update(
            {
                "resource": context["resourcePath"],
                "path": path.split("?", 1)[0],
                "httpMethod": method,
                "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
                "multiValueHeaders": {k: [v] for k, v in event["headers"].items()},
                # API Gateway hands path parameters over decoded.
                "pathParameters": {k: unquote(v) for k, v in event["pathParameters"].items()},
                "isBase64Encoded": event.get("isBase64Encoded", False),
            }
        )
        return event


class _ApiRequestHandler(ChaliceRequestHandler):
    server: _ApiServer

    def __init__(self, request: Any, client_address: Any, server: _ApiServer) -> None:
        # ChaliceRequestHandler builds one gateway per request in __init__; ours is built in
        # _generic_handle, once the public path is known.
        from http.server import BaseHTTPRequestHandler

        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            # A calendar feed's path is its secret: request lines never show it.
            super().log_message("%s", redact_path(format % args))

    def _generic_handle(self) -> None:
        split = urlsplit(self.path)
        public_path = split.path
        prefix = f"/{STAGE}"
        if public_path == prefix or public_path.startswith(prefix + "/"):
            route_path = public_path[len(prefix) :] or "/"
        elif public_path == "/app" or public_path.startswith("/app/"):
            route_path = public_path
        else:
            route_path = None
        headers, body = self._parse_payload()
        dashboard = self.server.dashboard
        if dashboard is not None and dashboard.handles(public_path):
            self._send_dashboard(dashboard, public_path)
            return
        if route_path is None or not self.server.has_route(route_path):
            self._send_not_found(public_path)
            return
        gateway = _StageGateway(
            self.server.app,
            self.server.config,
            public_path=public_path,
            source_ip=self.client_address[0],
            host=self.headers.get("host") or f"127.0.0.1:{self.server.server_address[1]}",
            matcher=self.server.matcher,
        )
        target = route_path + (f"?{split.query}" if split.query else "")
        try:
            response = gateway.handle_request(
                method=self.command, path=target, headers=headers, body=body
            )
            response_headers = response["headers"].copy()
            response_headers.update(response["multiValueHeaders"])
            response = self._handle_binary(response)
            self._send_http_response(response["statusCode"], response_headers, response["body"])
        except LocalGatewayException as error:
            self._send_error_response(error)

    def _send_dashboard(self, dashboard: Dashboard, path: str) -> None:
        host, port = self.server.server_address[:2]
        answer = dashboard.answer(self.command, path, self.headers.get("host"), f"{host}:{port}")
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    def _send_not_found(self, path: str) -> None:
        request_id = str(uuid.uuid4())
        body = {
            "error": {
                "code": "not_found",
                "message": f"no route for {self.command} {path}",
                "details": [],
            },
            "request_id": request_id,
        }
        self._send_http_response(
            404,
            {
                # As the app's own answers and API Gateway's gateway responses have them.
                **SECURITY_HEADERS,
                "Content-Type": "application/json",
                "X-Request-Id": request_id,
                "x-amzn-RequestId": request_id,
            },
            json.dumps(body),
        )

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, QUERY, ...) is routed too, so an existing path answers 405 in
        # the contract's body (and an unknown one 404) instead of the standard library's 501.
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)


class _ApiServer(ThreadedHTTPServer):
    """Thread per connection (browsers keep connections open), sharing one route table."""

    # The listen backlog: socketserver's default of 5 made the kernel reset connections when
    # dozens of clients connected at once (tests/faults/test_concurrent_writes.py).
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        app: Chalice,
        config: Config,
        quiet: bool,
        dashboard: Dashboard | None = None,
    ):
        self.app = app
        self.dashboard = dashboard
        self.config = config
        self.quiet = quiet
        self.matcher = RouteMatcher(list(app.routes))
        self.serving = threading.Event()
        super().__init__(address, _ApiRequestHandler)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self.serving.set()
        super().serve_forever(poll_interval)

    def has_route(self, path: str) -> bool:
        try:
            self.matcher.match_route(path)
        except ValueError:
            return False
        return True


class HttpApi:
    """The REST API server on `host:port` (0 = any free port), serving from a thread; with a
    `dashboard`, `/app...` serves its files instead of reaching the app."""

    def __init__(
        self,
        app: Chalice,
        host: str = "127.0.0.1",
        port: int = 0,
        quiet: bool = False,
        dashboard: Dashboard | None = None,
    ) -> None:
        self._app = app
        self._dashboard = dashboard
        self._host = host
        self._requested_port = port
        self._quiet = quiet
        self._server: _ApiServer | None = None
        self._thread: threading.Thread | None = None
        self._original_class: type[Chalice] | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/{STAGE}/v1"

    @property
    def dashboard_url(self) -> str:
        return f"{self.base_url}/app/"

    def start(self) -> None:
        config = Config.create(
            chalice_stage="local",
            app_name=self._app.app_name,
            lambda_timeout=60,
            lambda_memory_size=512,
        )
        self._server = _ApiServer(
            (self._host, self._requested_port), self._app, config, self._quiet, self._dashboard
        )
        self._original_class = serve_requests_per_thread(self._app)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="http-api",
            daemon=True,
        )
        self._thread.start()
        self._server.serving.wait(10)

    def stop(self) -> None:
        if self._server is not None:
            # shutdown() waits for serve_forever() to return, so only when it was entered.
            if self._server.serving.is_set():
                self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        if self._original_class is not None:
            self._app.__class__ = self._original_class
            self._original_class = None
        self._server = None
        self._thread = None
