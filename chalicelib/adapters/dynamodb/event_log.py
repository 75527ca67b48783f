"""The project event log on DynamoDB (`domain/event_log.py`, `ports.EventLog`).

`project_events` holds each project's events at `seq` 1, 2, 3, ..., each expiring 7 days after
it happened. An event is put at the number after the project's latest only if that number is
free: so two writers never take one number, and a number is only written by one who saw the one
before it (the log has no gaps a reader could pass). A writer that loses the race reads the
latest again and takes the next.

Cost: one put per event (its size in write units) and, when this container does not know the
project's latest number (its first event of the project, or another writer moved on), one
Query for it. No transaction, no head item: the event log is on the path of every stream
record clients hear about, firings' executions included (docs/benchmarks.md).

A stream batch delivered again after a failure is logged once when it comes back to the same
container (the record ids this container logged lately are remembered); one that lands
elsewhere logs its events again under new ids: subscribers then hear of a change twice, each
time as the resource stood, which is harmless.
"""

from __future__ import annotations

import json
import random
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Sequence

from pynamodb.exceptions import PutError

from chalicelib.adapters.dynamodb.models import ProjectEventModel
from chalicelib.adapters.dynamodb.transactions import condition_failed
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.event_log import (
    EVENT_RETENTION,
    EventPosition,
    event_id,
    next_position,
    parse_event_id,
)
from chalicelib.domain.realtime import Event, EventType

# Writers of one project racing for its next number: each retry reads the latest again.
MAX_ATTEMPTS = 25
# Stream record ids this container logged lately: a batch retried here is logged once.
REMEMBERED_RECORDS = 10_000
# Projects whose latest number this container keeps (so it need not read it back).
REMEMBERED_PROJECTS = 10_000


def _event_from_model(row: ProjectEventModel) -> Event:
    return Event(
        id=event_id(row.project_id, int(row.generation), int(row.seq)),
        type=EventType(row.type),
        at=row.at,
        data=json.loads(zlib.decompress(row.data)),
        project_id=row.project_id,
        truncated=bool(row.truncated),
    )


class DynamoEventLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: OrderedDict[str, Event] = OrderedDict()
        self._logged: OrderedDict[str, None] = OrderedDict()

    @translate_aws_failures
    def append(self, project_id: str, events: Sequence[Event]) -> list[Event]:
        logged = []
        for event in events:
            if event.id and self._was_logged(event.id):
                continue
            kept = self._append_one(project_id, event)
            self._remember(project_id, kept, event.id)
            logged.append(kept)
        return logged

    def _append_one(self, project_id: str, event: Event) -> Event:
        with self._lock:
            latest = self._latest.get(project_id)
        known = latest is not None  # this container's own last write for the project
        for attempt in range(MAX_ATTEMPTS):
            if not known:
                # Eventually consistent first: a stale answer only costs a lost race.
                latest = self._read_latest(project_id, consistent=attempt > 1)
            known = False
            position = next_position(
                project_id,
                parse_event_id(latest.id) if latest else None,
                latest.at if latest else None,
                event.at,
            )
            try:
                self._put(position, event)
            except PutError as exc:
                if not condition_failed(exc):
                    raise
                # Another writer took the number: read the latest again (strongly consistent
                # after a second miss).
                if attempt:
                    time.sleep(random.uniform(0.002, 0.02) * min(attempt, 5))  # noqa: S311
                continue
            frame = event.frame()
            return Event(
                str(position),
                event.type,
                event.at,
                frame["data"],
                project_id,
                truncated=bool(frame.get("truncated")),
                source=event.id or None,
            )
        raise Unavailable("the project's event log is busy, retry later")

    @staticmethod
    def _put(position: EventPosition, event: Event) -> None:
        frame = event.frame()  # what subscribers get: data cut to ids when too large
        ProjectEventModel(
            position.project_id,
            position.seq,
            generation=position.generation,
            type=event.type.value,
            at=event.at,
            data=zlib.compress(
                json.dumps(frame["data"], separators=(",", ":"), default=str).encode()
            ),
            truncated=True if frame.get("truncated") else None,
            expires_at=event.at + EVENT_RETENTION,
        ).save(condition=ProjectEventModel.seq.does_not_exist())

    @staticmethod
    def _read_latest(project_id: str, *, consistent: bool) -> Event | None:
        for row in ProjectEventModel.query(
            project_id, scan_index_forward=False, limit=1, consistent_read=consistent
        ):
            return _event_from_model(row)
        return None

    def _was_logged(self, record_id: str) -> bool:
        with self._lock:
            return record_id in self._logged

    def _remember(self, project_id: str, kept: Event, record_id: str) -> None:
        with self._lock:
            self._latest[project_id] = kept
            self._latest.move_to_end(project_id)
            while len(self._latest) > REMEMBERED_PROJECTS:
                self._latest.popitem(last=False)
            if record_id:
                self._logged[record_id] = None
                while len(self._logged) > REMEMBERED_RECORDS:
                    self._logged.popitem(last=False)

    @translate_aws_failures
    def read(self, project_id: str, from_seq: int, limit: int) -> list[Event]:
        rows = ProjectEventModel.query(
            project_id,
            ProjectEventModel.seq >= max(from_seq, 1),
            limit=limit,
            consistent_read=True,
        )
        return [_event_from_model(row) for row in rows]

    @translate_aws_failures
    def latest(self, project_id: str) -> Event | None:
        return self._read_latest(project_id, consistent=True)
