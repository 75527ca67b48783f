"""The WebSocket API and the stack's start-up and shutdown, against `python -m local`."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from local.__main__ import READY_LINE
from local.testing import StackProcess

pytestmark = pytest.mark.e2e


def receive_json(socket: Any, timeout: float = 10.0) -> Any:
    return json.loads(socket.recv(timeout=timeout))


def test_ping_is_answered_with_pong(stack, new_user):
    token = new_user()["access_token"]
    with connect(f"{stack.ws}/?token={token}", open_timeout=10) as socket:
        socket.send(json.dumps({"action": "ping"}))
        assert receive_json(socket) == {"type": "pong"}
        # Twice: the connection stays usable.
        socket.send(json.dumps({"action": "ping"}))
        assert receive_json(socket) == {"type": "pong"}


def test_pongs_reach_the_socket_that_pinged(stack, new_user):
    first_token = new_user()["access_token"]
    second_token = new_user()["access_token"]
    with (
        connect(f"{stack.ws}/?token={first_token}", open_timeout=10) as first,
        connect(f"{stack.ws}/?token={second_token}", open_timeout=10) as second,
    ):
        for n in range(3):
            first.send(json.dumps({"action": "ping", "n": n}))
        assert [receive_json(first) for _ in range(3)] == [{"type": "pong"}] * 3
        # Frames on one socket arrive in order: had a pong of `first` strayed to `second`,
        # it would come before the answer to this unknown action.
        second.send(json.dumps({"action": "no-such-action"}))
        assert receive_json(second)["type"] == "error"


@pytest.mark.parametrize("query", ["", "?token=", "?token=not-a-token", "?other=1"])
def test_a_missing_or_bad_token_is_refused_before_the_upgrade(stack, query):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{stack.ws}/{query}", open_timeout=10)
    assert refused.value.response.status_code == 401


def test_a_token_after_logout_is_refused(stack, new_user):
    token = new_user()["access_token"]
    logout = requests.post(
        f"{stack.api}/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert logout.status_code == 204, logout.text
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{stack.ws}/?token={token}", open_timeout=10)
    assert refused.value.response.status_code == 401


def test_startup_prints_the_urls(stack):
    output = stack.output()
    assert f"API: http://127.0.0.1:{stack.http_port}/api/v1" in output
    assert f"Docs: http://127.0.0.1:{stack.http_port}/api/v1/docs" in output
    assert f"WebSocket: ws://127.0.0.1:{stack.ws_port}" in output
    assert READY_LINE in output
    assert stack.api == f"http://127.0.0.1:{stack.http_port}/api/v1"
    assert stack.ws == f"ws://127.0.0.1:{stack.ws_port}"


def test_ephemeral_ports_and_sigterm(tmp_path):
    # A second stack, ports 0: the printed URLs carry the real ports, and SIGTERM is clean.
    other = StackProcess(tmp_path / "stack.log", http_port=0, ws_port=0)
    started = time.monotonic()
    other.start(timeout=60)
    try:
        assert not other.api.endswith(":0/api/v1")
        assert not other.ws.endswith(":0")
        assert requests.get(f"{other.api}/health", timeout=10).status_code == 200
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{other.ws}/", open_timeout=10)
        assert refused.value.response.status_code == 401
    finally:
        exit_code = other.stop(signal.SIGTERM)
    assert exit_code == 0, other.output()
    assert "Traceback" not in other.output()
    assert time.monotonic() - started < 60
