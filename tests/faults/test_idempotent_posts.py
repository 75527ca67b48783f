"""Twenty clients send the same POST /tasks with the same Idempotency-Key at once, over real
HTTP to the running local stack, each on its own thread: exactly one task is made (read back
from the tasks table through the list route), and every other client gets either the first
answer replayed (201, `Idempotent-Replayed: true`, the same task) or 409 while the first is
still being handled."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from local.testing import ApiClient, StackProcess, register_user, unique_email

CLIENTS = 20


def test_twenty_concurrent_posts_with_one_key_make_one_task(stack: StackProcess) -> None:
    api = ApiClient(stack.api, register_user(stack.api, unique_email("idem"))["access_token"])
    project = api("POST", "/projects", {"name": "Idempotent"}, 201)["id"]
    body = {"title": "Exactly once", "project_id": project}
    barrier = threading.Barrier(CLIENTS)

    def send(_: int) -> requests.Response:
        barrier.wait(timeout=30)
        return requests.post(
            f"{stack.api}/tasks",
            json=body,
            headers={**api.headers, "Idempotency-Key": "one-task-please"},
            timeout=60,
        )

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        answers = list(pool.map(send, range(CLIENTS)))

    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) <= {201, 409}, statuses
    created = [a for a in answers if a.status_code == 201]
    firsts = [a for a in created if "Idempotent-Replayed" not in a.headers]
    assert len(firsts) == 1, statuses
    (first,) = firsts
    for replayed in created:
        assert replayed.json() == first.json()
    for busy in (a for a in answers if a.status_code == 409):
        assert busy.json()["error"]["code"] == "conflict"
        assert int(busy.headers["Retry-After"]) >= 1
    tasks = api("GET", f"/tasks?project_id={project}&limit=100")["items"]
    assert [t["id"] for t in tasks] == [first.json()["id"]]
    # Once the first is done, every retry gets its answer.
    late = requests.post(
        f"{stack.api}/tasks",
        json=body,
        headers={**api.headers, "Idempotency-Key": "one-task-please"},
        timeout=60,
    )
    assert (late.status_code, late.json()) == (201, first.json())
    assert late.headers["Idempotent-Replayed"] == "true"
