"""A script's life with an API token, over real HTTP and WebSocket against `python -m local`:
a person makes the token with their session, the script uses it, the person revokes it, and
the script's next call is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from local.testing import StackProcess

pytestmark = pytest.mark.e2e


def call(stack: StackProcess, token: str, method: str, path: str, body: Any = None) -> Any:
    return requests.request(
        method,
        f"{stack.api}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_a_script_uses_a_token_until_it_is_revoked(stack, new_user):
    session = new_user()["access_token"]
    made = call(
        stack,
        session,
        "POST",
        "/users/profile/tokens",
        {"name": "nightly export", "scopes": ["read", "write"]},
    )
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert token.startswith("tb_")

    # The script: reads and writes as its person, but may not run, nor manage tokens.
    task = call(stack, token, "POST", "/tasks", {"title": "Made by a script"})
    assert task.status_code == 201, task.text
    listed = call(stack, token, "GET", "/tasks?assignee_id=me")
    assert listed.status_code == 200, listed.text
    refused = call(stack, token, "POST", f"/tasks/{task.json()['id']}/run")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    assert call(stack, token, "GET", "/users/profile/tokens").status_code == 403

    # The person sees its last use, and revokes it: the script is refused at once.
    (shown,) = call(stack, session, "GET", "/users/profile/tokens").json()["items"]
    assert shown["last_used_at"] is not None
    assert "token" not in shown
    revoked = call(stack, session, "DELETE", f"/users/profile/tokens/{shown['id']}")
    assert revoked.status_code == 204
    after = call(stack, token, "GET", "/projects")
    assert after.status_code == 401
    assert after.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_read_token_opens_a_socket_and_a_write_only_one_does_not(stack, new_user):
    session = new_user()["access_token"]

    def token(scopes: list[str]) -> str:
        made = call(
            stack, session, "POST", "/users/profile/tokens", {"name": "ws", "scopes": scopes}
        )
        assert made.status_code == 201, made.text
        return str(made.json()["token"])

    with connect(f"{stack.ws}/?token={token(['read'])}", open_timeout=10) as socket:
        socket.send(json.dumps({"action": "ping"}))
        assert json.loads(socket.recv(timeout=10)) == {"type": "pong"}
    with (
        pytest.raises(InvalidStatus),
        connect(f"{stack.ws}/?token={token(['write'])}", open_timeout=10),
    ):
        pass
