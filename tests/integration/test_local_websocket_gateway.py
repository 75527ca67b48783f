"""The local WebSocket gateway on its own, with probe functions for $connect/$default/
$disconnect: API Gateway's events, refusal before the upgrade, and the management API as boto3
sees it (pushes in order, GoneException, delete)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from local.lambdas import FunctionRegistry
from local.testing import Probe, wait_until
from local.websocket_gateway import WebSocketGateway

ROUTES = {"$connect": "connect", "$default": "message", "$disconnect": "disconnect"}


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token")
    if token == "boom":
        raise RuntimeError("authorizer crashed")
    return {"statusCode": 200 if token == "good" else 401}


class Gateway:
    def __init__(self) -> None:
        self.connects = Probe(reply=authorize)
        self.messages = Probe(reply=self.on_message)
        self.disconnects = Probe(reply=lambda event: {"statusCode": 200})
        self.registry = FunctionRegistry("us-east-1")
        self.registry.register("connect", self.connects)
        self.registry.register("message", self.messages)
        self.registry.register("disconnect", self.disconnects)
        self.server = WebSocketGateway(self.registry, ROUTES, quiet=True)
        self.management: Any = None

    def on_message(self, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("body") == "crash":
            raise RuntimeError("handler crashed")
        if event.get("body") == "echo":
            self.management.post_to_connection(
                ConnectionId=event["requestContext"]["connectionId"], Data=b'{"type":"echo"}'
            )
        return {"statusCode": 200}


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    running = Gateway()
    running.server.start()
    running.management = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=running.server.management_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield running
    running.server.stop()
    running.registry.close()


def open_socket(gateway: Gateway, query: str = "?token=good") -> ClientConnection:
    return connect(f"{gateway.server.url}/{query}", open_timeout=10)


def connection_id_of(gateway: Gateway, socket: ClientConnection) -> str:
    """The id the gateway gave `socket`: ask it to echo, and read the id off the $default event."""
    before = len(gateway.messages.received())
    socket.send("echo")
    assert json.loads(socket.recv(timeout=10)) == {"type": "echo"}
    event = gateway.messages.wait_for(before + 1)[before]
    connection_id: str = event["requestContext"]["connectionId"]
    return connection_id


def test_connect_event_has_api_gateways_shape(gateway):
    before = len(gateway.connects.received())
    with open_socket(gateway, "?token=good&x=1&x=2") as socket:
        connection_id = connection_id_of(gateway, socket)
    event = gateway.connects.received()[before]
    context = event["requestContext"]
    assert context["routeKey"] == "$connect"
    assert context["eventType"] == "CONNECT"
    assert context["connectionId"] == connection_id
    assert len(connection_id) == 16
    assert connection_id.endswith("=")
    assert context["stage"] == "api"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"]
    assert context["apiId"]
    assert context["domainName"] == gateway.server.url.removeprefix("ws://")
    assert isinstance(context["connectedAt"], int)
    assert event["queryStringParameters"] == {"token": "good", "x": "2"}
    assert event["multiValueQueryStringParameters"] == {"token": ["good"], "x": ["1", "2"]}
    assert event["headers"]["Upgrade"].lower() == "websocket"


@pytest.mark.parametrize("query", ["", "?token=bad"])
def test_a_refused_connect_never_upgrades(gateway, query):
    before = len(gateway.connects.received())
    with pytest.raises(InvalidStatus) as refused:
        open_socket(gateway, query)
    assert refused.value.response.status_code == 401
    refused_id = gateway.connects.received()[before]["requestContext"]["connectionId"]
    # Never connected, so never disconnected; and nothing can be pushed to it.
    with open_socket(gateway) as socket:
        connection_id_of(gateway, socket)
    disconnected = {e["requestContext"]["connectionId"] for e in gateway.disconnects.received()}
    assert refused_id not in disconnected
    with pytest.raises(gateway.management.exceptions.GoneException):
        gateway.management.post_to_connection(ConnectionId=refused_id, Data=b"{}")


def test_a_crashing_connect_handler_is_a_500(gateway):
    with pytest.raises(InvalidStatus) as refused:
        open_socket(gateway, "?token=boom")
    assert refused.value.response.status_code == 500


def test_frames_become_message_events_in_order(gateway):
    with open_socket(gateway) as socket:
        connection_id = connection_id_of(gateway, socket)
        before = len(gateway.messages.received())
        for n in range(5):
            socket.send(json.dumps({"action": "note", "n": n}))
        socket.send(b"\x00\x01binary")
        events = gateway.messages.wait_for(before + 6)[before:]
    assert [json.loads(e["body"])["n"] for e in events[:5]] == [0, 1, 2, 3, 4]
    assert all(e["requestContext"]["eventType"] == "MESSAGE" for e in events)
    assert all(e["requestContext"]["routeKey"] == "$default" for e in events)
    assert all(e["requestContext"]["connectionId"] == connection_id for e in events)
    assert events[5]["isBase64Encoded"] is True
    assert base64.b64decode(events[5]["body"]) == b"\x00\x01binary"


def test_pushes_arrive_on_the_right_socket_in_order(gateway):
    with open_socket(gateway) as first, open_socket(gateway) as second:
        first_id = connection_id_of(gateway, first)
        second_id = connection_id_of(gateway, second)
        assert first_id != second_id
        for n in range(30):
            gateway.management.post_to_connection(ConnectionId=first_id, Data=json.dumps({"n": n}))
        gateway.management.post_to_connection(ConnectionId=second_id, Data=b'{"to": "second"}')
        assert [json.loads(first.recv(timeout=10))["n"] for _ in range(30)] == list(range(30))
        assert json.loads(second.recv(timeout=10)) == {"to": "second"}


def test_get_connection_describes_it(gateway):
    with open_socket(gateway) as socket:
        connection_id = connection_id_of(gateway, socket)
        described = gateway.management.get_connection(ConnectionId=connection_id)
    assert described["Identity"]["SourceIp"] == "127.0.0.1"
    assert described["ConnectedAt"] <= described["LastActiveAt"]


def test_a_handler_error_is_reported_to_the_client(gateway):
    with open_socket(gateway) as socket:
        socket.send("crash")
        reply = json.loads(socket.recv(timeout=10))
    assert reply["message"] == "Internal server error"
    assert reply["connectionId"]
    assert reply["requestId"]


def test_close_runs_disconnect_and_the_connection_is_gone(gateway):
    with open_socket(gateway) as socket:
        connection_id = connection_id_of(gateway, socket)

    def disconnected() -> list[dict[str, Any]]:
        return [
            e
            for e in gateway.disconnects.received()
            if e["requestContext"]["connectionId"] == connection_id
        ]

    [event] = wait_until(disconnected, message="$disconnect")
    assert event["requestContext"]["eventType"] == "DISCONNECT"
    assert event["requestContext"]["disconnectStatusCode"] == 1000
    with pytest.raises(gateway.management.exceptions.GoneException):
        gateway.management.post_to_connection(ConnectionId=connection_id, Data=b"{}")


def test_delete_connection_closes_the_socket(gateway):
    with open_socket(gateway) as socket:
        connection_id = connection_id_of(gateway, socket)
        gateway.management.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=10)
    wait_until(
        lambda: any(
            e["requestContext"]["connectionId"] == connection_id
            for e in gateway.disconnects.received()
        ),
        message="$disconnect after DeleteConnection",
    )
    with pytest.raises(gateway.management.exceptions.GoneException):
        gateway.management.delete_connection(ConnectionId=connection_id)


def test_payloads_over_128_kib_are_refused(gateway):
    with open_socket(gateway) as socket:
        connection_id = connection_id_of(gateway, socket)
        with pytest.raises(gateway.management.exceptions.PayloadTooLargeException):
            gateway.management.post_to_connection(ConnectionId=connection_id, Data=b"x" * 140_000)


def test_a_plain_http_request_is_not_a_connection(gateway):
    import requests

    before = len(gateway.connects.received())
    response = requests.get(gateway.server.url.replace("ws://", "http://") + "/", timeout=10)
    assert response.status_code == 426
    assert len(gateway.connects.received()) == before
