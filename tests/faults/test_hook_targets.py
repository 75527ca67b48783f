"""Project hook targets that are down, slow (past the attempt's timeout) or answer 500 before
recovering, on a local stack in this process with the retry schedule shrunk (first retry after
1 s, a 1-second timeout, an 8-second window): each delivery's log shows every attempt, a target
that recovers gets the delivery on a later attempt, one that never does ends `failed` once the
window is over and counts against its hook. Targets are loopback servers in this process;
"down" is a loopback port nobody listens on."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local.stack import LocalStack
from local.testing import ApiClient, free_port, register_user, wait_until
from tests.hook_target import HookTarget

pytestmark = pytest.mark.xdist_group("faults-hooks-stack")

SHRUNK = {
    "TASKBEAT_HOOK_RETRY_BASE_SECONDS": "1",
    "TASKBEAT_HOOK_TIMEOUT_SECONDS": "1",
    "TASKBEAT_HOOK_RETRY_WINDOW_SECONDS": "8",
}


@pytest.fixture(scope="module")
def hooks_stack() -> Iterator[LocalStack]:
    saved = {name: os.environ.get(name) for name in SHRUNK}
    os.environ.update(SHRUNK)
    try:
        with LocalStack(http_port=0, ws_port=0, quiet=True, sweep_interval_seconds=0) as running:
            yield running
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def hooked(stack: LocalStack, url: str) -> tuple[ApiClient, dict[str, Any], dict[str, Any]]:
    """A new project with one hook on `url` for task.created, and a task created in it."""
    api = ApiClient(stack.api_url, register_user(stack.api_url)["access_token"])
    project = api("POST", "/projects", {"name": "Faults"}, expect=201)
    hook = api(
        "POST", f"/projects/{project['id']}/hooks", {"url": url, "events": ["task.created"]}, 201
    )
    api("POST", "/tasks", {"title": "Go", "project_id": project["id"]}, expect=201)
    return api, project, hook


def settled(api: ApiClient, hook: dict[str, Any]) -> Any:
    items = api("GET", f"/hooks/{hook['id']}/deliveries")["items"]
    return items[0] if items and items[0]["status"] != "pending" else None


def test_a_target_that_answers_500_then_recovers(hooks_stack: LocalStack) -> None:
    with HookTarget(500, 500, then=204) as target:
        api, _, hook = hooked(hooks_stack, target.url)
        delivery = wait_until(lambda: settled(api, hook), timeout=20, message="delivery")
        received = target.wait_for(3, timeout=1)
    assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == (
        "succeeded",
        3,
        204,
    )
    assert delivery["error"] is None
    gaps = [b.at - a.at for a, b in itertools.pairwise(received)]
    assert 0.8 <= gaps[0] < 5, gaps  # 1 s
    assert 1.8 <= gaps[1] < 7, gaps  # then 2 s
    assert len({r.headers["X-Taskbeat-Delivery"] for r in received}) == 1
    assert api("GET", f"/hooks/{hook['id']}")["consecutive_failures"] == 0


def test_a_slow_target_times_out_and_a_later_attempt_gets_through(
    hooks_stack: LocalStack,
) -> None:
    with HookTarget(then=204, delay_seconds=3) as target:
        api, _, hook = hooked(hooks_stack, target.url)

        def timed_out() -> Any:
            items = api("GET", f"/hooks/{hook['id']}/deliveries")["items"]
            return items and items[0]["attempts"] >= 1 and items[0]

        first = wait_until(timed_out, timeout=15, message="a timed-out attempt")
        assert (first["status"], first["error"], first["response_status"]) == (
            "pending",
            "timeout",
            None,
        )
        target.delay_seconds = 0
        delivery = wait_until(lambda: settled(api, hook), timeout=20, message="delivery")
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] >= 2


def test_a_target_that_stays_down_fails_once_the_window_is_over(hooks_stack: LocalStack) -> None:
    started = time.monotonic()
    api, _project, hook = hooked(hooks_stack, f"http://127.0.0.1:{free_port()}/down")
    delivery = wait_until(lambda: settled(api, hook), timeout=30, message="a failed delivery")
    # Attempts at 0, 1, 3 and 7 s; the next (15 s) is past the 8-second window.
    assert (delivery["status"], delivery["attempts"], delivery["error"]) == ("failed", 4, "refused")
    assert time.monotonic() - started < 25
    assert api("GET", f"/hooks/{hook['id']}")["consecutive_failures"] == 1
    assert api("GET", f"/hooks/{hook['id']}")["active"] is True
