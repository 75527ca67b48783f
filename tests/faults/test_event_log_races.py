"""Writers racing for one project's event log (several stream consumers at once, on moto with
the thread-safety patches): every event gets one number, the numbers have no gap, and a
reader following the log while they write never sees a number skipped and filled in later."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from chalicelib.adapters.dynamodb.event_log import DynamoEventLog
from chalicelib.domain.event_log import parse_event_id
from chalicelib.domain.model import new_id
from chalicelib.domain.realtime import Event, EventType

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
WRITERS = 8
BATCHES = 5


def seq(event: Event) -> int:
    position = parse_event_id(event.id)
    assert position is not None
    return position.seq


@pytest.mark.usefixtures("whole_requests_serialized")
def test_racing_writers_number_every_event_once_without_gaps() -> None:
    project_id, log = new_id(), DynamoEventLog()
    barrier = threading.Barrier(WRITERS)
    done = threading.Event()
    seen_by_reader: list[int] = []

    def write(writer: int) -> list[tuple[int, str]]:
        barrier.wait()
        numbered = []
        for batch in range(BATCHES):
            sent = [
                Event(new_id(), EventType.TASK_UPDATED, AT, {"w": writer, "b": batch}, project_id)
                for _ in range(2)
            ]
            numbered += [(seq(e), f"{writer}.{batch}") for e in log.append(project_id, sent)]
        return numbered

    def follow() -> None:
        # A catching-up reader: once it has read n, nothing numbered n or less may appear.
        last = 0
        while True:
            finished = done.is_set()
            for event in log.read(project_id, last + 1, 100):
                assert seq(event) == last + 1, "a number was skipped, then filled in"
                last = seq(event)
                seen_by_reader.append(last)
            if finished:
                return

    reader = threading.Thread(target=follow)
    reader.start()
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        results = [n for numbered in pool.map(write, range(WRITERS)) for n in numbered]
    done.set()
    reader.join(timeout=60)
    total = WRITERS * BATCHES * 2
    assert sorted(n for n, _ in results) == list(range(1, total + 1))
    assert seq(log.latest(project_id)) == total  # type: ignore[arg-type]
    assert seen_by_reader == list(range(1, total + 1))
    # Each writer's own batches keep their order in the log.
    for writer in range(WRITERS):
        mine = [n for n, who in results if who.startswith(f"{writer}.")]
        assert mine == sorted(mine)
