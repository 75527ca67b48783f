"""`GET /tasks?project_id=..&status=pending&sort=due_date&limit=25`: 100 tasks versus 10,000,
and beside it a naive listing of the same page: Scan the tasks table with a filter on project
and status, sort by due date in Python, keep 25.

Both projects live in the same tables; the four (ours and the scan, at each size) are measured
alternately in one process.

moto is no performance model of DynamoDB: its index queries scan every item of the table and
sort every match, so a request on moto costs O(table). DynamoDB serves a key-condition page from
a B-tree in time independent of the partition's size, and bills by the items it reads. So the
bench reports, per request: the latency of our code (the request's wall time minus the time
spent in DynamoDB calls), the items DynamoDB evaluated (ScannedCount), and, for reference, the
raw wall time on moto. The naive listing's DynamoDB side (the items a Scan reads, its 1 MB
pages and read units) is worked out from the table's items, and its side in our code
(deserializing what the filter kept, sorting) is timed: moto's own Scan of 10,000 items takes
15-30 s in moto's response serializer, which would measure moto only. Read units of both by
bench/units.py's rules.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.tasks import Priority, Status, Task, new_task_id

SMALL, LARGE = 100, 10_000
QUERY = "/v1/tasks?project_id={project}&status=pending&sort=due_date&limit=25"
PAGE = 25


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


def table_items(table: str, region: str) -> list[dict[str, Any]]:
    """Every item of a table (DynamoDB JSON), straight from moto's memory: what a Scan reads.

    Not through the API: moto takes 15-30 s to serialize a Scan of 10,000 items (its response
    serializer, nothing DynamoDB would do), which would only measure moto.
    """
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    moto_table = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(table)
    return [item.to_json()["Attributes"] for item in moto_table.all_items()]


@dataclass(frozen=True)
class Naive:
    ids: list[str]  # the page
    evaluated: int  # items the Scan reads: the whole table
    pages: int  # Scan round trips: 1 MB each
    read_units: float
    code_seconds: float  # our side: deserialize what the filter kept, sort, cut


def naive_listing(items: list[dict[str, Any]], project_id: str) -> Naive:
    """A Scan of the whole tasks table filtered on project and status (DynamoDB's side, worked
    out from the items: it reads every item and bills 4 KB read units of them, eventually
    consistent, in 1 MB pages), then in our code: each kept item made a Task as the repository
    would (PynamoDB model, then domain), sorted by due date (none last), the first 25."""
    from bench.units import READ_UNIT, item_size
    from chalicelib.adapters.dynamodb.models import TaskModel
    from chalicelib.adapters.dynamodb.tasks import task_from_model

    sizes = [item_size(item) for item in items]
    pages = max(1, math.ceil(sum(sizes) / 2**20))
    read_units = sum(math.ceil(sum(chunk) / READ_UNIT) * 0.5 for chunk in _pages(sizes))
    kept = [
        item
        for item in items
        if item.get("project_id", {}).get("S") == project_id
        and item.get("status", {}).get("S") == "pending"
    ]
    started = time.perf_counter()
    tasks = [task_from_model(TaskModel.from_raw_data(item)) for item in kept]
    far = datetime.max.replace(tzinfo=UTC)
    tasks.sort(key=lambda t: (t.due_date is None, t.due_date or far, t.id))
    page = [t.id for t in tasks[:PAGE]]
    elapsed = time.perf_counter() - started
    return Naive(page, len(items), pages, read_units, elapsed)


def _pages(sizes: list[int]) -> list[list[int]]:
    pages: list[list[int]] = [[]]
    for size in sizes:
        if sum(pages[-1]) + size > 2**20:
            pages.append([])
        pages[-1].append(size)
    return pages


def list_latency(client: Any, token: str, owner_id: str, rounds: int = 11) -> dict[str, float]:
    from bench.units import Meter
    from chalicelib.adapters.dynamodb import connection
    from chalicelib.adapters.dynamodb.models import TaskModel

    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    projects = {}
    for size in (SMALL, LARGE):
        body = json.dumps({"name": f"{size} tasks"}).encode()
        created = client.http.post("/v1/projects", body=body, headers=headers)
        assert created.status_code == 201, created.body
        projects[size] = json.loads(created.body)["id"]
        seed(projects[size], owner_id, size)

    storage = StorageClock()
    shared = connection.root().client
    events = shared.meta.events
    events.register("before-call.dynamodb", storage.before)
    events.register("after-call.dynamodb", storage.after)
    meter = Meter(shared, shared)
    items = table_items(TaskModel.Meta.table_name, shared.meta.region_name)
    wall: dict[int, list[float]] = {SMALL: [], LARGE: []}
    ours: dict[int, list[float]] = {SMALL: [], LARGE: []}
    naive_ms: dict[int, list[float]] = {SMALL: [], LARGE: []}
    scanned: dict[int, int] = {}
    ours_rru: dict[int, float] = {}
    naive: dict[int, Naive] = {}
    try:
        for _ in range(rounds):
            for size, project_id in projects.items():
                storage.reset()
                with meter.recording() as calls:
                    started = time.perf_counter()
                    response = client.http.get(QUERY.format(project=project_id), headers=headers)
                    elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.body
                page = json.loads(response.body)["items"]
                assert len(page) == PAGE
                wall[size].append(elapsed * 1000)
                ours[size].append((elapsed - storage.seconds) * 1000)
                scanned[size] = storage.scanned
                ours_rru[size] = meter.usage([c for c in calls if c.operation == "Query"]).rru

                naive[size] = naive_listing(items, project_id)
                naive_ms[size].append(naive[size].code_seconds * 1000)
                # The same page: the two do the same job.
                assert naive[size].ids == [task["id"] for task in page]
    finally:
        events.unregister("before-call.dynamodb", storage.before)
        events.unregister("after-call.dynamodb", storage.after)
        meter.close()
    median = statistics.median
    return {
        "ours_small_ms": median(ours[SMALL]),
        "ours_large_ms": median(ours[LARGE]),
        "ratio": median(ours[LARGE]) / median(ours[SMALL]),
        "scanned_small": scanned[SMALL],
        "scanned_large": scanned[LARGE],
        "moto_small_ms": median(wall[SMALL]),
        "moto_large_ms": median(wall[LARGE]),
        "ours_rru_small": ours_rru[SMALL],
        "ours_rru_large": ours_rru[LARGE],
        "scan_small_ms": median(naive_ms[SMALL]),
        "scan_large_ms": median(naive_ms[LARGE]),
        "scan_scanned_small": naive[SMALL].evaluated,
        "scan_scanned_large": naive[LARGE].evaluated,
        "scan_pages": naive[LARGE].pages,
        "scan_rru_small": naive[SMALL].read_units,
        "scan_rru_large": naive[LARGE].read_units,
    }
