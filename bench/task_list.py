"""`GET /tasks?project_id=..&status=pending&sort=due_date&limit=25`: 100 tasks versus 10,000.

Both projects live in the same tables; the two are measured alternately in one process.

moto is no performance model of DynamoDB: its index queries scan every item of the table and
sort every match, so a request on moto costs O(table). DynamoDB serves a key-condition page from
a B-tree in time independent of the partition's size, and bills by the items it reads. So the
bench reports, per request: the latency of our code (the request's wall time minus the time
spent in DynamoDB calls), the items DynamoDB evaluated (ScannedCount), and, for reference, the
raw wall time on moto.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.tasks import Priority, Status, Task, new_task_id

SMALL, LARGE = 100, 10_000
QUERY = "/v1/tasks?project_id={project}&status=pending&sort=due_date&limit=25"


@dataclass
class StorageClock:
    """Time spent in DynamoDB calls, and items they evaluated, measured by botocore events."""

    seconds: float = 0.0
    scanned: int = 0
    _started: list[float] = field(default_factory=list)

    def before(self, **_: Any) -> None:
        self._started.append(time.perf_counter())

    def after(self, parsed: dict[str, Any] | None = None, **_: Any) -> None:
        self.seconds += time.perf_counter() - self._started.pop()
        if parsed:
            self.scanned += int(parsed.get("ScannedCount", 0))

    def reset(self) -> None:
        self.seconds, self.scanned = 0.0, 0


def seed(project_id: str, owner_id: str, count: int) -> None:
    """Write `count` tasks straight into the table (BatchWriteItem, 25 at a time)."""
    from chalicelib.adapters.dynamodb.models import TaskModel
    from chalicelib.adapters.dynamodb.tasks import task_to_model

    now = datetime.now(UTC)
    statuses = [Status.PENDING, Status.PENDING, Status.IN_PROGRESS, Status.COMPLETED]
    with TaskModel.batch_write() as batch:
        for index in range(count):
            task = Task(
                id=new_task_id(project_id),
                project_id=project_id,
                title=f"Task {index}",
                created_by=owner_id,
                created_at=now,
                updated_at=now,
                status=statuses[index % len(statuses)],
                priority=list(Priority)[index % 4],
                due_date=now + timedelta(hours=index % 500) if index % 5 else None,
            )
            batch.save(task_to_model(task))


def list_latency(client: Any, token: str, owner_id: str, rounds: int = 25) -> dict[str, float]:
    from chalicelib.adapters.dynamodb import connection

    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    projects = {}
    for size in (SMALL, LARGE):
        body = json.dumps({"name": f"{size} tasks"}).encode()
        created = client.http.post("/v1/projects", body=body, headers=headers)
        assert created.status_code == 201, created.body
        projects[size] = json.loads(created.body)["id"]
        seed(projects[size], owner_id, size)

    storage = StorageClock()
    events = connection.root().client.meta.events
    events.register("before-call.dynamodb", storage.before)
    events.register("after-call.dynamodb", storage.after)
    wall: dict[int, list[float]] = {SMALL: [], LARGE: []}
    ours: dict[int, list[float]] = {SMALL: [], LARGE: []}
    scanned: dict[int, int] = {}
    try:
        for _ in range(rounds):
            for size, project_id in projects.items():
                storage.reset()
                started = time.perf_counter()
                response = client.http.get(QUERY.format(project=project_id), headers=headers)
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.body
                assert len(json.loads(response.body)["items"]) == 25
                wall[size].append(elapsed * 1000)
                ours[size].append((elapsed - storage.seconds) * 1000)
                scanned[size] = storage.scanned
    finally:
        events.unregister("before-call.dynamodb", storage.before)
        events.unregister("after-call.dynamodb", storage.after)
    median = statistics.median
    return {
        "ours_small_ms": median(ours[SMALL]),
        "ours_large_ms": median(ours[LARGE]),
        "ratio": median(ours[LARGE]) / median(ours[SMALL]),
        "scanned_small": scanned[SMALL],
        "scanned_large": scanned[LARGE],
        "moto_small_ms": median(wall[SMALL]),
        "moto_large_ms": median(wall[LARGE]),
    }
