"""Idempotency-Key over real HTTP against the local stack: a retried POST /tasks and a retried
manual run are answered the first answer again, and each did its work once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from local.testing import StackProcess

pytestmark = pytest.mark.e2e


def post(stack: StackProcess, token: str, path: str, body: Any, key: str) -> requests.Response:
    return requests.post(
        f"{stack.api}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        timeout=30,
    )


def test_a_retried_post_is_replayed_and_does_nothing_else(
    stack: StackProcess, new_user: Callable[..., dict[str, Any]]
) -> None:
    token = new_user()["access_token"]
    body = {"title": "Invoice #42", "tags": ["billing"]}
    first = post(stack, token, "/tasks", body, "invoice-42")
    assert first.status_code == 201, first.text
    again = post(stack, token, "/tasks", body, "invoice-42")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["ETag"] == first.headers["ETag"]
    assert "Idempotent-Replayed" not in first.headers
    listed = requests.get(
        f"{stack.api}/tasks?project_id={first.json()['project_id']}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()["items"]
    assert [task["title"] for task in listed] == ["Invoice #42"]

    reused = post(stack, token, "/tasks", {"title": "Another"}, "invoice-42")
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"


def test_a_retried_manual_run_runs_once(
    stack: StackProcess, new_user: Callable[..., dict[str, Any]]
) -> None:
    token = new_user()["access_token"]
    task = post(stack, token, "/tasks", {"title": "Run me"}, "make-run-me").json()
    path = f"/tasks/{task['id']}/run"
    first = post(stack, token, path, None, "run-once")
    assert first.status_code == 202, first.text
    again = post(stack, token, path, None, "run-once")
    assert (again.status_code, again.json()["id"]) == (202, first.json()["id"])
    assert again.headers["Idempotent-Replayed"] == "true"
    executions = requests.get(
        f"{stack.api}/tasks/{task['id']}/executions",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()["items"]
    assert [e["id"] for e in executions] == [first.json()["id"]]
