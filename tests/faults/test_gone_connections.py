"""WebSocket clients that vanished without a `$disconnect`: API Gateway answers a push to them
with 410 Gone. The stream consumer must forget those connections (and their subscriptions) and
still deliver every frame to the others, and later events must not try the gone ones again.

In process on moto: the real `$connect` / subscribe handlers, the real stream consumer on moto's
stream records, and the real boto3 management API client, talking to a loopback stand-in for
API Gateway's `POST /@connections/{id}` that answers 410 (`GoneException`) for gone ones.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.dynamodb.models import ConnectionModel, SubscriptionModel
from chalicelib.handlers import streams, websocket
from chalicelib.settings import Settings
from tests.fakes import fast_hasher
from tests.integration.helpers import Api
from tests.integration.test_search import stream_event

CONNECTIONS_PATH = re.compile(r"^/@connections/(?P<id>[^/?]+)$")


class ManagementApi:
    """`POST /@connections/{id}`: 200 for a live connection (the frame is kept), 410 Gone
    (`GoneException`, as API Gateway answers) for any other. Every attempt is counted."""

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.frames: dict[str, list[dict[str, Any]]] = {}
        self.attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # botocore keeps its connections alive

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                match = CONNECTIONS_PATH.match(self.path)
                assert match, self.path
                connection_id = match.group("id")
                with api._lock:
                    api.attempts[connection_id] = api.attempts.get(connection_id, 0) + 1
                    live = connection_id in api.live
                    if live:
                        api.frames.setdefault(connection_id, []).append(json.loads(data))
                body = b"" if live else b'{"message": "Gone"}'
                self.send_response(200 if live else 410)
                if not live:
                    self.send_header("x-amzn-ErrorType", "GoneException")
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, connection_id: str, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [f for f in self.frames.get(connection_id, []) if f.get("type") == kind]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway(moto_aws: None, settings: Settings) -> Iterator[ManagementApi]:
    running = ManagementApi()
    configured = settings.model_copy(update={"ws_management_url": running.url})
    bootstrap.override(bootstrap.build(configured, hasher=fast_hasher()))
    try:
        yield running
    finally:
        bootstrap.override(None)
        running.close()


def connect(gateway: ManagementApi, connection_id: str, token: str, *channels: str) -> None:
    """A client connects (`$connect` with its token) and subscribes to `channels`."""
    context = {"requestContext": {"connectionId": connection_id}}
    answer = websocket.on_connect({**context, "queryStringParameters": {"token": token}})
    assert answer == {"statusCode": 200}
    gateway.live.add(connection_id)
    for channel in channels:
        frame = json.dumps({"action": "subscribe", "channel": channel})
        assert websocket.on_message({**context, "body": frame}) == {"statusCode": 200}
        assert gateway.events(connection_id, "subscribed")[-1]["channel"] == channel


def stored_connections() -> set[str]:
    return {row.connection_id for row in ConnectionModel.scan()}


def subscribed(channel: str) -> set[str]:
    return {row.connection_id for row in SubscriptionModel.query(channel)}


def consume(table: str) -> dict[str, Any]:
    """The stream consumer on every record of `table`'s stream (each test reads each once)."""
    settings = bootstrap.container().settings
    return streams.on_change(stream_event(settings.table_name(table)))


def test_gone_connections_are_forgotten_and_the_others_still_get_every_frame(
    gateway: ManagementApi,
) -> None:
    with Client(app) as client:
        api = Api(client)
        owner = api.register("owner@example.com")
        member = api.register("member@example.com")

        def call(token: str, method: str, path: str, body: Any, expect: int) -> Any:
            response = api.call(method, path, body, token=token)
            assert response.status_code == expect, response.body
            return json.loads(response.body)

        project = call(owner["access_token"], "POST", "/projects", {"name": "Live"}, 201)
        call(
            owner["access_token"],
            "POST",
            f"/projects/{project['id']}/members",
            {"user_id": member["user"]["id"], "role": "member"},
            201,
        )
        channel = f"project:{project['id']}"
        for connection_id in ("owner-1", "owner-2", "owner-3"):
            connect(gateway, connection_id, owner["access_token"], channel)
        for connection_id in ("member-1", "member-2"):
            connect(gateway, connection_id, member["access_token"], channel)
        connect(gateway, "member-3", member["access_token"])  # notifications only

        # Three clients vanish without a $disconnect (a dropped network, a closed laptop).
        gateway.live -= {"owner-2", "member-1", "member-3"}
        live = {"owner-1", "owner-3", "member-2"}

        task = call(
            owner["access_token"],
            "POST",
            "/tasks",
            {"title": "Hi", "project_id": project["id"]},
            201,
        )
        pushed = consume("tasks")
        assert (pushed["pushed"], pushed["gone"]) == (3, 2)
        for connection_id in live:
            (event,) = gateway.events(connection_id, "task.created")
            assert event["data"]["id"] == task["id"]
        assert stored_connections() == {*live, "member-3"}
        assert subscribed(channel) == live

        # The next event goes to the live ones only: the gone ones are not tried again.
        before = dict(gateway.attempts)
        call(member["access_token"], "POST", f"/tasks/{task['id']}/comments", {"body": "yo"}, 201)
        pushed = consume("comments")
        assert (pushed["pushed"], pushed["gone"]) == (3, 0)
        for connection_id in live:
            assert len(gateway.events(connection_id, "comment.created")) == 1
        everyone = [*live, "owner-2", "member-1", "member-3"]
        assert {c: gateway.attempts.get(c, 0) - before.get(c, 0) for c in everyone} == {
            **dict.fromkeys(live, 1),
            "owner-2": 0,
            "member-1": 0,
            "member-3": 0,
        }

        # A notification goes to its user's connections: the gone one is forgotten too.
        assignee = {"assignee_id": member["user"]["id"]}
        call(owner["access_token"], "POST", f"/tasks/{task['id']}/assign", assignee, 200)
        pushed = consume("notifications")
        assert (pushed["pushed"], pushed["gone"]) == (1, 1)
        (notification,) = gateway.events("member-2", "notification")
        assert notification["data"]["type"] == "task.assigned"
        assert stored_connections() == live
        assert subscribed(channel) == live
