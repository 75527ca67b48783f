"""Project hooks on the running local stack (`python -m local`, as `make run` starts it): a
hook on a server this test runs on 127.0.0.1 gets the signed `task.created` delivery of a task
created over HTTP, within a deadline; the delivery log shows it succeeded; member and stranger
are refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from local.testing import ApiClient, StackProcess, wait_until
from tests.hook_target import HookTarget, signature_ok


def test_a_task_write_reaches_the_hook_signed(
    stack: StackProcess, new_user: Callable[..., dict[str, Any]]
) -> None:
    owner, member = new_user(), new_user()
    api = ApiClient(stack.api, owner["access_token"])
    project = api("POST", "/projects", {"name": "Hooked"}, expect=201)
    api(
        "POST",
        f"/projects/{project['id']}/members",
        {"user_id": member["user"]["id"], "role": "member"},
        expect=201,
    )
    secret = api("GET", f"/projects/{project['id']}/webhook-secret")["secret"]
    with HookTarget() as target:
        hook = api(
            "POST",
            f"/projects/{project['id']}/hooks",
            {"url": target.url, "events": ["task.created", "comment.created"]},
            expect=201,
        )
        ApiClient(stack.api, member["access_token"])(
            "POST",
            f"/projects/{project['id']}/hooks",
            {"url": target.url, "events": ["task.created"]},
            403,
        )
        ApiClient(stack.api, new_user()["access_token"])("GET", f"/hooks/{hook['id']}", None, 404)
        task = api("POST", "/tasks", {"title": "Ship", "project_id": project["id"]}, expect=201)
        (received,) = target.wait_for(1, timeout=20)
    assert received.headers["X-Taskbeat-Event"] == "task.created"
    assert signature_ok(secret, received)
    body = json.loads(received.body)
    assert set(body) == {"id", "type", "at", "data"}
    assert (body["type"], body["data"]["id"], body["data"]["title"]) == (
        "task.created",
        task["id"],
        "Ship",
    )

    def logged() -> Any:
        items = api("GET", f"/hooks/{hook['id']}/deliveries")["items"]
        return items if items and items[0]["status"] == "succeeded" else None

    (delivery,) = wait_until(logged, timeout=10, message="the delivery's log")
    assert delivery["id"] == received.headers["X-Taskbeat-Delivery"]
    assert (delivery["attempts"], delivery["response_status"]) == (1, 204)
