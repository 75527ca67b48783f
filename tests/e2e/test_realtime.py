"""Events over the WebSocket, on the local stack: a write's stream record reaches the
project's subscribers (and a notification its user) as `{id, type, at, data}`, with `data`
the resource as the HTTP API returns it, within a second."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from local.testing import ApiClient, StackProcess

pytestmark = pytest.mark.e2e
DEADLINE = 10.0


@contextmanager
def socket(stack: StackProcess, token: str) -> Iterator[ClientConnection]:
    with connect(f"{stack.ws}/?token={token}", open_timeout=10) as opened:
        yield opened


def next_frame(ws: ClientConnection, deadline: float = DEADLINE) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=deadline))  # type: ignore[no-any-return]


def frame_of(ws: ClientConnection, kind: str, deadline: float = DEADLINE) -> dict[str, Any]:
    """The next frame of type `kind`, skipping others (events of earlier writes)."""
    ends = time.monotonic() + deadline
    while (left := ends - time.monotonic()) > 0:
        frame = next_frame(ws, left)
        if frame.get("type") == kind:
            return frame
    raise AssertionError(f"no {kind} frame within {deadline} s")


def subscribe(ws: ClientConnection, project_id: str) -> dict[str, Any]:
    ws.send(json.dumps({"action": "subscribe", "channel": f"project:{project_id}"}))
    return next_frame(ws)


@pytest.fixture
def team(stack: StackProcess, new_user: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    owner, member, stranger = new_user(), new_user(), new_user()
    api = ApiClient(stack.api, owner["access_token"])
    project = api("POST", "/projects", {"name": "Live"}, expect=201)
    api(
        "POST",
        f"/projects/{project['id']}/members",
        {"user_id": member["user"]["id"], "role": "member"},
        expect=201,
    )
    return {
        "api": api,
        "project": project["id"],
        "owner": owner,
        "member": member,
        "stranger": stranger,
    }


def test_task_and_comment_events_reach_subscribers_as_the_api_returns_them(
    stack: StackProcess, team: dict[str, Any]
) -> None:
    api, project_id = team["api"], team["project"]
    with socket(stack, team["member"]["access_token"]) as ws:
        assert subscribe(ws, project_id) == {
            "type": "subscribed",
            "channel": f"project:{project_id}",
        }
        written = time.monotonic()
        task = api("POST", "/tasks", {"title": "Live one", "project_id": project_id}, expect=201)
        created = frame_of(ws, "task.created")
        latency = time.monotonic() - written
        assert set(created) == {"id", "type", "at", "data"}
        assert created["data"] == task
        assert latency < 1.0, latency

        updated_task = api("PATCH", f"/tasks/{task['id']}", {"priority": "high"})
        updated = frame_of(ws, "task.updated")
        assert updated["data"] == updated_task
        assert updated["id"] != created["id"]

        comment = api("POST", f"/tasks/{task['id']}/comments", {"body": "hi"}, expect=201)
        assert frame_of(ws, "comment.created")["data"] == comment

        api("DELETE", f"/tasks/{task['id']}", expect=204)
        deleted = frame_of(ws, "task.deleted")
        assert deleted["data"]["id"] == task["id"]


def test_a_stranger_can_neither_subscribe_nor_overhear(
    stack: StackProcess, team: dict[str, Any]
) -> None:
    api, project_id = team["api"], team["project"]
    with socket(stack, team["stranger"]["access_token"]) as ws:
        refused = subscribe(ws, project_id)
        assert (refused["type"], refused["code"]) == ("error", "not_found")
        with socket(stack, team["owner"]["access_token"]) as owner_ws:
            assert subscribe(owner_ws, project_id)["type"] == "subscribed"
            api("POST", "/tasks", {"title": "Secret", "project_id": project_id}, expect=201)
            # The owner hears it, so the event went out; the stranger's next frame is the pong.
            assert frame_of(owner_ws, "task.created")["data"]["title"] == "Secret"
        ws.send(json.dumps({"action": "ping"}))
        assert next_frame(ws) == {"type": "pong"}


def test_a_notification_reaches_its_user_without_subscribing(
    stack: StackProcess, team: dict[str, Any]
) -> None:
    api, project_id = team["api"], team["project"]
    member = team["member"]
    task = api("POST", "/tasks", {"title": "For you", "project_id": project_id}, expect=201)
    with (
        socket(stack, member["access_token"]) as ws,
        socket(stack, team["owner"]["access_token"]) as owner_ws,
    ):
        api("POST", f"/tasks/{task['id']}/assign", {"assignee_id": member["user"]["id"]})
        frame = frame_of(ws, "notification")
        assert frame["data"]["type"] == "task.assigned"
        assert frame["data"]["task_id"] == task["id"]
        listed = ApiClient(stack.api, member["access_token"])("GET", "/notifications")["items"]
        assert frame["data"] in listed
        # Not the assigner's: their socket gets nothing but the answer to its ping.
        owner_ws.send(json.dumps({"action": "ping"}))
        assert next_frame(owner_ws) == {"type": "pong"}


def test_unsubscribe_stops_the_events(stack: StackProcess, team: dict[str, Any]) -> None:
    api, project_id = team["api"], team["project"]
    with socket(stack, team["member"]["access_token"]) as ws:
        assert subscribe(ws, project_id)["type"] == "subscribed"
        ws.send(json.dumps({"action": "unsubscribe", "channel": f"project:{project_id}"}))
        assert next_frame(ws) == {"type": "unsubscribed", "channel": f"project:{project_id}"}
        api("POST", "/tasks", {"title": "Unheard", "project_id": project_id}, expect=201)
        with socket(stack, team["owner"]["access_token"]) as witness:
            assert subscribe(witness, project_id)["type"] == "subscribed"
            api("POST", "/tasks", {"title": "Witnessed", "project_id": project_id}, expect=201)
            assert frame_of(witness, "task.created")["data"]["title"] == "Witnessed"
        ws.send(json.dumps({"action": "ping"}))
        assert next_frame(ws) == {"type": "pong"}


def test_a_fan_out_larger_than_a_share_reaches_every_subscriber_once(
    stack: StackProcess, team: dict[str, Any]
) -> None:
    """More subscribers than `FAN_OUT_SHARE`: the stream consumer pushes the first share and
    hands the rest to the `fan_out` function (in process locally, as on AWS)."""
    import asyncio

    from websockets.asyncio.client import connect as connect_async

    from chalicelib.domain.realtime import FAN_OUT_SHARE

    api, project_id = team["api"], team["project"]
    token = team["member"]["access_token"]
    count = FAN_OUT_SHARE + 10  # a multiple of 20

    async def run() -> list[int]:
        sockets = []
        try:

            async def subscribed() -> Any:
                ws = await connect_async(f"{stack.ws}/?token={token}", open_timeout=DEADLINE)
                sockets.append(ws)
                channel = f"project:{project_id}"
                await ws.send(json.dumps({"action": "subscribe", "channel": channel}))
                answer = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                assert answer["type"] == "subscribed"

            for _ in range(0, count, 20):  # 20 at a time, as many clients would
                await asyncio.gather(*(subscribed() for _ in range(20)))
            body = {"title": "Crowd", "project_id": project_id}
            await asyncio.to_thread(api, "POST", "/tasks", body, 201)

            async def created(ws: Any) -> int:
                """How many `task.created` frames: waits up to the deadline for the first,
                then half a second more for a duplicate."""
                seen, wait = 0, DEADLINE
                while True:
                    try:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), wait))
                    except TimeoutError:
                        return seen
                    if frame.get("type") == "task.created":
                        seen, wait = seen + 1, 0.5

            return await asyncio.wait_for(
                asyncio.gather(*(created(ws) for ws in sockets)), DEADLINE * 3
            )
        finally:
            for ws in sockets:
                await ws.close()

    counts = asyncio.run(run())
    assert counts == [1] * count
