"""The WebSocket API on loopback, behaving like API Gateway's WebSocket APIs.

A connection's opening handshake becomes a `$connect` event; the `$connect` function runs before
the upgrade is accepted, and a non-2xx `statusCode` refuses it with that HTTP status. Each frame
becomes a `MESSAGE` event (routed on the frame's `action`, else to `$default`) and the close a
`$disconnect` event. Handlers are invoked through the in-process Lambda registry, on worker
threads, never on the event loop.

Pushing uses API Gateway's management API, served here on its own small HTTP server (the
`websockets` server only understands GET upgrades): `POST /@connections/{id}` sends the body as
a frame, `GET` describes the connection, `DELETE` closes it; an unknown or closed connection is
410 Gone, which boto3's `apigatewaymanagementapi` client reports as `GoneException`.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from local.lambdas import FunctionRegistry

log = logging.getLogger("taskbeat.local.websocket")

STAGE = "api"
LOCAL_API_ID = "localws"
# API Gateway's limit for one WebSocket message and for one PostToConnection payload.
MAX_MESSAGE_BYTES = 128 * 1024
PUSH_TIMEOUT_SECONDS = 10.0
_CONNECTIONS_PATH = re.compile(r"^(?:/[^@]*)?/@connections/(?P<id>[^/]+)/?$")


def new_connection_id() -> str:
    """Like API Gateway's: 16 characters of base64 ending in '='."""
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode()


@dataclass
class _Connection:
    connection_id: str
    connected_at: float  # epoch seconds
    source_ip: str
    user_agent: str | None
    domain_name: str
    socket: ServerConnection
    last_active_at: float = 0.0
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def describe(self) -> dict[str, Any]:
        # The wire names of GetConnection's response (boto3 maps them to ConnectedAt, ...).
        return {
            "connectedAt": _iso(self.connected_at),
            "lastActiveAt": _iso(self.last_active_at or self.connected_at),
            "identity": {"sourceIp": self.source_ip, "userAgent": self.user_agent or ""},
        }


def _iso(epoch_seconds: float) -> str:
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def route_functions(websocket_handlers: Mapping[str, Any]) -> dict[str, str]:
    """Route key -> function name, from a Chalice app's `websocket_handlers`."""
    return {route_key: handler.name for route_key, handler in websocket_handlers.items()}


class WebSocketGateway:
    """WebSocket server plus management API, each on a loopback port (0 = any free port)."""

    def __init__(
        self,
        registry: FunctionRegistry,
        routes: Mapping[str, str],
        host: str = "127.0.0.1",
        port: int = 0,
        management_port: int = 0,
        quiet: bool = False,
    ) -> None:
        self._registry = registry
        self._routes = dict(routes)
        self._host = host
        self._requested_port = port
        self._quiet = quiet
        self._connections: dict[str, _Connection] = {}  # touched on the event loop only
        self._by_socket: dict[ServerConnection, _Connection] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(32, thread_name_prefix="ws-lambda")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._stopping: asyncio.Event | None = None
        self._port: int | None = None
        self._management = _ManagementServer((host, management_port), self)

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._port is not None, "start() first"
        return self._port

    @property
    def url(self) -> str:
        return f"ws://{self._host}:{self.port}"

    @property
    def management_url(self) -> str:
        return f"http://{self._host}:{self._management.server_address[1]}"

    def start_management_api(self) -> None:
        """Serve `/@connections` (started first: the app needs its URL before it is built)."""
        if self._management.serving.is_set():
            return
        threading.Thread(
            target=self._management.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="ws-management",
            daemon=True,
        ).start()
        self._management.serving.wait(10)

    def start(self) -> None:
        self.start_management_api()
        self._thread = threading.Thread(target=self._run, name="ws-gateway", daemon=True)
        self._thread.start()
        self._started.wait(30)
        if self._start_error is not None:
            raise self._start_error
        if self._port is None:
            raise RuntimeError("the WebSocket server did not start")

    def close_sockets(self) -> None:
        """Stop the WebSocket server. Closing it closes every connection, which runs
        `$disconnect` for each: the stack does this while the app's tables still exist."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None

    def stop(self) -> None:
        self.close_sockets()
        self._management.shutdown_now()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() if it never got going
            if not self._started.is_set():
                self._start_error = exc
            else:
                log.exception("WebSocket gateway stopped with an error")
        finally:
            self._started.set()
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server: Server
        async with serve(
            self._handle,
            self._host,
            self._requested_port,
            process_request=self._process_request,
            process_response=self._process_response,
            max_size=MAX_MESSAGE_BYTES,
        ) as server:
            self._port = int(server.sockets[0].getsockname()[1])
            self._started.set()
            await self._stopping.wait()

    # --- thread-safe operations for the management API ----------------------------------------

    def _call_on_loop(self, coroutine: Any) -> Any:
        loop = self._loop
        if loop is None or loop.is_closed():
            coroutine.close()
            return None
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        except RuntimeError:  # loop shutting down
            coroutine.close()
            return None
        try:
            return future.result(PUSH_TIMEOUT_SECONDS)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            return None

    def push(self, connection_id: str, data: bytes) -> bool:
        """Send `data` to the connection (as a text frame if it is UTF-8); False if gone."""
        return bool(self._call_on_loop(self._send(connection_id, data)))

    def disconnect(self, connection_id: str) -> bool:
        return bool(self._call_on_loop(self._close(connection_id)))

    def describe(self, connection_id: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._call_on_loop(self._describe(connection_id))
        return result

    def connection_ids(self) -> list[str]:
        result: list[str] | None = self._call_on_loop(self._list())
        return result or []

    async def _send(self, connection_id: str, data: bytes) -> bool:
        connection = self._connections.get(connection_id)
        if connection is None:
            return False
        try:
            # Accepted by $connect but the handshake response may still be on its way.
            await asyncio.wait_for(connection.opened.wait(), 5)
        except TimeoutError:
            return False
        try:
            message: str | bytes = data.decode("utf-8")
        except UnicodeDecodeError:
            message = data
        async with connection.send_lock:  # frames go out in the order they were posted
            try:
                await connection.socket.send(message)
            except ConnectionClosed:
                return False
        connection.last_active_at = time.time()
        return True

    async def _close(self, connection_id: str) -> bool:
        connection = self._connections.get(connection_id)
        if connection is None:
            return False
        await connection.socket.close(1000, "closed by the server")
        return True

    async def _describe(self, connection_id: str) -> dict[str, Any] | None:
        connection = self._connections.get(connection_id)
        return connection.describe() if connection is not None else None

    async def _list(self) -> list[str]:
        return list(self._connections)

    # --- the WebSocket side ------------------------------------------------------------------

    async def _invoke(self, route_key: str, event: dict[str, Any]) -> Any:
        name = self._routes.get(route_key)
        if name is None or name not in self._registry:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._registry.invoke, name, event)

    async def _process_request(self, socket: ServerConnection, request: Request) -> Response | None:
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            return socket.respond(HTTPStatus.UPGRADE_REQUIRED, "WebSocket upgrade expected\n")
        remote = socket.remote_address
        connection = _Connection(
            connection_id=new_connection_id(),
            connected_at=time.time(),
            source_ip=str(remote[0]) if remote else "127.0.0.1",
            user_agent=request.headers.get("User-Agent"),
            domain_name=request.headers.get("Host", f"{self._host}:{self._port}"),
            socket=socket,
        )
        event = self._connect_event(connection, request)
        try:
            result = await self._invoke("$connect", event)
        except Exception:
            log.exception("$connect failed")
            return socket.respond(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal server error\n")
        status = 200
        if isinstance(result, dict):
            status = int(result.get("statusCode", 200))
        if not 200 <= status < 300:
            body = result.get("body") if isinstance(result, dict) else None
            try:
                reason = HTTPStatus(status).phrase
            except ValueError:
                reason = "Refused"
            return socket.respond(status, str(body) if body else f"{reason}\n")
        self._connections[connection.connection_id] = connection
        self._by_socket[socket] = connection
        return None

    async def _process_response(
        self, socket: ServerConnection, request: Request, response: Response
    ) -> None:
        if response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            # Accepted by $connect, then failed the handshake: it never opened.
            connection = self._by_socket.pop(socket, None)
            if connection is not None:
                self._connections.pop(connection.connection_id, None)
                await self._invoke_disconnect(connection, 1006, "handshake failed")

    async def _handle(self, socket: ServerConnection) -> None:
        connection = self._by_socket.pop(socket, None)
        if connection is None:
            await socket.close(1011, "unknown connection")
            return
        connection.opened.set()
        try:
            async for message in socket:
                connection.last_active_at = time.time()
                await self._on_message(connection, message)
        except ConnectionClosed:
            pass
        finally:
            self._connections.pop(connection.connection_id, None)
            await self._invoke_disconnect(
                connection, socket.close_code or 1006, socket.close_reason or ""
            )

    async def _on_message(self, connection: _Connection, message: str | bytes) -> None:
        route_key = "$default"
        if isinstance(message, str):
            body, is_base64 = message, False
            try:
                action = json.loads(message).get("action")
            except (ValueError, AttributeError):
                action = None
            if isinstance(action, str) and action in self._routes and not action.startswith("$"):
                route_key = action
        else:
            body, is_base64 = base64.b64encode(message).decode(), True
        context = self._request_context(connection, route_key, "MESSAGE")
        context["messageId"] = uuid.uuid4().hex[:16]
        event = {"requestContext": context, "body": body, "isBase64Encoded": is_base64}
        if route_key in self._routes:
            try:
                await self._invoke(route_key, event)
                return
            except Exception:
                log.exception("%s failed", route_key)
                reply = "Internal server error"
        else:
            reply = "Forbidden"  # no route for the frame
        # What API Gateway sends back when there is no route or the integration fails.
        error = {
            "message": reply,
            "connectionId": connection.connection_id,
            "requestId": context["requestId"],
        }
        async with connection.send_lock:
            with contextlib.suppress(ConnectionClosed):
                await connection.socket.send(json.dumps(error))

    async def _invoke_disconnect(self, connection: _Connection, code: int, reason: str) -> None:
        event = {
            "headers": {"Host": connection.domain_name, "X-Forwarded-For": connection.source_ip},
            "multiValueHeaders": {
                "Host": [connection.domain_name],
                "X-Forwarded-For": [connection.source_ip],
            },
            "requestContext": self._request_context(connection, "$disconnect", "DISCONNECT")
            | {"disconnectStatusCode": code, "disconnectReason": reason},
            "isBase64Encoded": False,
        }
        try:
            await self._invoke("$disconnect", event)
        except Exception:
            log.exception("$disconnect failed")

    def _connect_event(self, connection: _Connection, request: Request) -> dict[str, Any]:
        split = urlsplit(request.path)
        query = parse_qs(split.query, keep_blank_values=True)
        multi_value_headers: dict[str, list[str]] = {}
        for name, value in request.headers.raw_items():  # as the client spelled them
            multi_value_headers.setdefault(name, []).append(value)
        event: dict[str, Any] = {
            "headers": {name: values[-1] for name, values in multi_value_headers.items()},
            "multiValueHeaders": multi_value_headers,
            "requestContext": self._request_context(connection, "$connect", "CONNECT"),
            "isBase64Encoded": False,
        }
        event["headers"]["X-Forwarded-For"] = connection.source_ip
        if query:
            event["queryStringParameters"] = {name: values[-1] for name, values in query.items()}
            event["multiValueQueryStringParameters"] = query
        return event

    def _request_context(
        self, connection: _Connection, route_key: str, event_type: str
    ) -> dict[str, Any]:
        now = time.time()
        request_id = str(uuid.uuid4())
        return {
            "routeKey": route_key,
            "eventType": event_type,
            "messageDirection": "IN",
            "connectionId": connection.connection_id,
            "connectedAt": int(connection.connected_at * 1000),
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "stage": STAGE,
            "domainName": connection.domain_name,
            "apiId": LOCAL_API_ID,
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
        }


# ---------------------------------------------------------------------------------------------
# The management API


class _ManagementServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], gateway: WebSocketGateway) -> None:
        self.gateway = gateway
        self.serving = threading.Event()
        super().__init__(address, _ManagementHandler)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self.serving.set()
        super().serve_forever(poll_interval)

    def shutdown_now(self) -> None:
        # shutdown() waits for serve_forever() to return, so only when it was entered.
        if self.serving.is_set():
            self.shutdown()
            self.serving.clear()
        self.server_close()


class _ManagementHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ManagementServer

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.gateway._quiet:
            log.info("management API: " + format, *args)

    def _connection_id(self) -> str | None:
        match = _CONNECTIONS_PATH.match(urlsplit(self.path).path)
        return unquote(match.group("id")) if match else None

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _reply(self, status: int, body: Any = None, error_type: str | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _gone(self) -> None:
        self._reply(HTTPStatus.GONE, {}, "GoneException")

    def _not_found(self) -> None:
        self._reply(HTTPStatus.NOT_FOUND, {"message": "Not Found"}, "NotFoundException")

    def do_POST(self) -> None:
        data = self._read_body()
        connection_id = self._connection_id()
        if connection_id is None:
            self._not_found()
        elif len(data) > MAX_MESSAGE_BYTES:
            message = f"Message too long. Max allowed is {MAX_MESSAGE_BYTES} bytes."
            self._reply(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"message": message},
                "PayloadTooLargeException",
            )
        elif self.server.gateway.push(connection_id, data):
            self._reply(HTTPStatus.OK)
        else:
            self._gone()

    def do_GET(self) -> None:
        self._read_body()
        connection_id = self._connection_id()
        if connection_id is None:
            self._not_found()
            return
        description = self.server.gateway.describe(connection_id)
        if description is None:
            self._gone()
        else:
            self._reply(HTTPStatus.OK, description)

    def do_DELETE(self) -> None:
        self._read_body()
        connection_id = self._connection_id()
        if connection_id is None:
            self._not_found()
        elif self.server.gateway.disconnect(connection_id):
            self._reply(HTTPStatus.NO_CONTENT)
        else:
            self._gone()
