"""Catching up on the local stack (API.md, "Catching up"): a client that was away reads the
events it missed over HTTP, or subscribes with `after` and gets them first, then live ones,
with no gap and no duplicate while other clients keep writing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.sync.client import connect

from chalicelib.domain.event_log import parse_event_id
from local.testing import ApiClient, StackProcess

pytestmark = pytest.mark.e2e
DEADLINE = 30.0


def seq(event_id: str) -> int:
    position = parse_event_id(event_id)
    assert position is not None, event_id
    return position.seq


def logged(api: ApiClient, project_id: str, after: str | None = None) -> list[dict[str, Any]]:
    """Every kept event of the project after `after`, following `next_cursor`."""
    items: list[dict[str, Any]] = []
    cursor = after
    while True:
        query = "?limit=100" + (f"&after={cursor}" if cursor else "")
        page = api("GET", f"/projects/{project_id}/events{query}")
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        cursor = page["next_cursor"]


def wait_for_events(api: ApiClient, project_id: str, count: int) -> list[dict[str, Any]]:
    ends = time.monotonic() + DEADLINE
    while time.monotonic() < ends:
        items = logged(api, project_id)
        if len(items) >= count:
            return items
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} events logged within {DEADLINE} s")


@pytest.fixture
def project(stack: StackProcess, new_user: Callable[..., dict[str, Any]]) -> tuple[ApiClient, str]:
    owner = new_user()
    api = ApiClient(stack.api, owner["access_token"])
    created = api("POST", "/projects", {"name": "Catch up"}, expect=201)
    return api, created["id"]


def token_of(api: ApiClient) -> str:
    return api.headers["Authorization"].removeprefix("Bearer ")


def test_missed_events_are_read_from_after_over_http(project: tuple[ApiClient, str]) -> None:
    api, project_id = project
    task = api("POST", "/tasks", {"title": "First", "project_id": project_id}, expect=201)
    first = wait_for_events(api, project_id, 1)
    api("PATCH", f"/tasks/{task['id']}", {"status": "in_progress"})
    api("DELETE", f"/tasks/{task['id']}", expect=204)
    items = wait_for_events(api, project_id, 3)
    missed = logged(api, project_id, first[0]["id"])
    assert [(e["type"], e["data"]["id"]) for e in missed] == [
        ("task.updated", task["id"]),
        ("task.deleted", task["id"]),
    ]
    assert [seq(e["id"]) for e in items] == [1, 2, 3]


def test_subscribe_after_replays_then_goes_live_without_gap_or_duplicate(
    stack: StackProcess, project: tuple[ApiClient, str]
) -> None:
    api, project_id = project
    for n in range(10):
        api("POST", "/tasks", {"title": f"Before {n}", "project_id": project_id}, expect=201)
    before = wait_for_events(api, project_id, 10)
    writing = threading.Event()
    written: list[str] = []

    def keep_writing() -> None:
        # Another client writes all through the replay and after it.
        writer = ApiClient(stack.api, token_of(api))
        writing.wait(10)
        for n in range(15):
            body = {"title": f"During {n}", "project_id": project_id}
            written.append(writer("POST", "/tasks", body, expect=201)["id"])

    writer = threading.Thread(target=keep_writing)
    writer.start()
    frames: list[dict[str, Any]] = []
    with connect(f"{stack.ws}/?token={token_of(api)}", open_timeout=10) as ws:
        writing.set()
        subscribe = {"action": "subscribe", "channel": f"project:{project_id}"}
        ws.send(json.dumps({**subscribe, "after": before[2]["id"]}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        writer.join(timeout=60)
        expected = 7 + 15  # the 7 missed after the third, then the 15 written meanwhile
        ends = time.monotonic() + DEADLINE
        while len(frames) < expected and (left := ends - time.monotonic()) > 0:
            frames.append(json.loads(ws.recv(timeout=left)))
    ids = [f["id"] for f in frames]
    assert [seq(i) for i in ids] == list(range(4, 4 + expected)), "a gap, a duplicate or disorder"
    created = [f["data"]["id"] for f in frames if f["type"] == "task.created"]
    assert created[:7] == [e["data"]["id"] for e in before[3:]]
    assert created[7:] == written
    # What came over the socket is what the log keeps.
    assert [e["id"] for e in logged(api, project_id, before[2]["id"])] == ids


def test_an_after_of_another_project_is_refused_on_the_socket(
    stack: StackProcess, project: tuple[ApiClient, str]
) -> None:
    api, project_id = project
    other = api("POST", "/projects", {"name": "Other"}, expect=201)["id"]
    api("POST", "/tasks", {"title": "T", "project_id": other}, expect=201)
    foreign = wait_for_events(api, other, 1)[0]["id"]
    with connect(f"{stack.ws}/?token={token_of(api)}", open_timeout=10) as ws:
        channel = f"project:{project_id}"
        ws.send(json.dumps({"action": "subscribe", "channel": channel, "after": foreign}))
        answer = json.loads(ws.recv(timeout=10))
    assert (answer["type"], answer["code"]) == ("error", "bad_request")
