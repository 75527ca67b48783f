"""Fifty writers race for one task on the running local stack, over real HTTP, each on its own
thread: with the same `If-Match` exactly one wins and the other 49 get 412 with the contract's
error body; without `If-Match` no write is lost. The version moves by one per write that won,
and the history holds one event per write that won.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from local.testing import ApiClient, StackProcess, register_user, unique_email

WRITERS = 50


def race(api: ApiClient, path: str, bodies: list[dict[str, Any]], **headers: str) -> list[Any]:
    """`PATCH path` with each body, all at once (a barrier releases the threads together)."""
    barrier = threading.Barrier(len(bodies))

    def write(body: dict[str, Any]) -> requests.Response:
        barrier.wait(timeout=30)
        return requests.patch(
            api.base + path, json=body, headers={**api.headers, **headers}, timeout=60
        )

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(write, bodies))


def updates_in_history(api: ApiClient, task_id: str) -> list[dict[str, Any]]:
    items = api("GET", f"/tasks/{task_id}/history?limit=100")["items"]
    return [event for event in items if event["type"] == "task.updated"]


def test_fifty_writers_with_the_same_if_match_one_wins_the_others_get_412(
    stack: StackProcess,
) -> None:
    api = ApiClient(stack.api, register_user(stack.api, unique_email("race"))["access_token"])
    task = api("POST", "/tasks", {"title": "Contended"}, 201)
    bodies = [{"title": f"writer {n}"} for n in range(WRITERS)]

    answers = race(api, f"/tasks/{task['id']}", bodies, **{"If-Match": f'"{task["version"]}"'})

    assert Counter(a.status_code for a in answers) == {200: 1, 412: WRITERS - 1}
    (winner,) = [a for a in answers if a.status_code == 200]
    for loser in answers:
        if loser.status_code == 412:
            body = loser.json()
            assert set(body) == {"error", "request_id"}
            assert body["error"]["code"] == "precondition_failed"
            assert isinstance(body["error"]["message"], str)
            assert body["error"]["message"]
            assert isinstance(body["error"]["details"], list)
            assert body["request_id"]
    stored = api("GET", f"/tasks/{task['id']}")
    assert stored["version"] == task["version"] + 1
    assert stored["title"] == winner.json()["title"]
    assert winner.headers["ETag"] == f'"{task["version"] + 1}"'
    (event,) = updates_in_history(api, task["id"])
    assert event["changes"]["title"] == ["Contended", stored["title"]]


def test_fifty_writers_without_if_match_lose_no_write(stack: StackProcess) -> None:
    api = ApiClient(stack.api, register_user(stack.api, unique_email("race"))["access_token"])
    task = api("POST", "/tasks", {"title": "Contended", "tags": []}, 201)
    bodies = [{"title": f"writer {n}"} for n in range(WRITERS)]

    answers = race(api, f"/tasks/{task['id']}", bodies)

    # A writer that keeps losing the race is told so (409, "retry"), never silently dropped.
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) <= {200, 409}, statuses
    assert statuses[200] >= 1
    for loser in answers:
        if loser.status_code == 409:
            assert loser.json()["error"]["code"] == "conflict"
    won = sorted(a.json()["version"] for a in answers if a.status_code == 200)
    assert won == list(range(task["version"] + 1, task["version"] + 1 + statuses[200]))
    stored = api("GET", f"/tasks/{task['id']}")
    assert stored["version"] == task["version"] + statuses[200]
    events = updates_in_history(api, task["id"])
    assert len(events) == statuses[200]
    assert [e["changes"]["title"][1] for e in events][-1] == stored["title"]
