"""The project event log on DynamoDB (`domain/event_log.py`, `ports.EventLog`).

`project_events` holds, per project, the head at `seq` 0 (`last_seq`, never expiring) and the
events at `seq` 1, 2, 3, ... with a TTL 7 days after them. Appending is one transaction: the
head moves from the number it was read at to that plus the events' count (conditionally), the
events are put at the numbers in between, and each event's stream record claims
`event#<record id>` (`claims`, expiring with it). So two writers never take the same numbers
(the second's head condition fails: it reads the head again and retries), numbers have no gap
(the head and its events commit together), and a stream batch delivered again logs nothing
twice (its claims exist: those events are left out).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from datetime import datetime

from pynamodb.exceptions import TransactWriteError

from chalicelib.adapters.dynamodb.models import ClaimModel, ProjectEventModel
from chalicelib.adapters.dynamodb.transactions import MAX_TRANSACTION_ITEMS, Transaction
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.event_log import EVENT_RETENTION, event_id
from chalicelib.domain.realtime import Event, EventType

HEAD_SEQ = 0
# The head, and an event and its claim for each of the others.
EVENTS_PER_TRANSACTION = (MAX_TRANSACTION_ITEMS - 1) // 2
# Writers of one project racing for its head: each retry reads the head again.
MAX_ATTEMPTS = 25
CLAIM_PREFIX = "event#"


def _claim_key(record_id: str) -> str:
    return CLAIM_PREFIX + record_id


def _event_from_model(row: ProjectEventModel) -> Event:
    assert row.type is not None
    assert row.at is not None
    return Event(
        id=event_id(row.project_id, int(row.seq)),
        type=EventType(row.type),
        at=row.at,
        data=json.loads(row.data or "{}"),
        project_id=row.project_id,
        truncated=bool(row.truncated),
    )


def _conflict(exc: TransactWriteError) -> bool:
    """Cancelled because another transaction was writing the same item (the head) just then."""
    return any(
        reason is not None and reason.code == "TransactionConflict"
        for reason in exc.cancellation_reasons
    )


def _expiry(at: datetime) -> datetime:
    return at + EVENT_RETENTION


class DynamoEventLog:
    @translate_aws_failures
    def append(self, project_id: str, events: Sequence[Event]) -> list[Event]:
        logged: list[Event] = []
        for start in range(0, len(events), EVENTS_PER_TRANSACTION):
            logged += self._append_some(project_id, events[start : start + EVENTS_PER_TRANSACTION])
        return logged

    def _append_some(self, project_id: str, events: Sequence[Event]) -> list[Event]:
        pending = list(events)
        for attempt in range(MAX_ATTEMPTS):
            if not pending:
                return []
            last = self.last_seq(project_id)
            transaction = Transaction()
            numbered = [(last + 1 + i, event) for i, event in enumerate(pending)]
            try:
                with transaction:
                    self._move_head(transaction, project_id, last, last + len(pending))
                    for seq, event in numbered:
                        self._put(transaction, project_id, seq, event)
            except TransactWriteError as exc:
                failed = transaction.failed(exc)
                if not failed and not _conflict(exc):
                    raise
                # Events already logged (their claims exist) are left out; a head that moved
                # is read again. Either way the rest is tried again, numbered afresh.
                seen = {label.removeprefix("claim:") for label in failed if label != "head"}
                pending = [event for event in pending if event.id not in seen]
                if "head" in failed or not failed:
                    time.sleep(random.uniform(0.002, 0.02) * min(attempt + 1, 5))  # noqa: S311
                continue
            return [
                Event(
                    event_id(project_id, seq),
                    event.type,
                    event.at,
                    event.data,
                    project_id,
                    truncated=event.truncated,
                )
                for seq, event in numbered
            ]
        raise Unavailable("the project's event log is busy, retry later")

    @staticmethod
    def _move_head(transaction: Transaction, project_id: str, last: int, to: int) -> None:
        if last == HEAD_SEQ:
            transaction.save(
                "head",
                ProjectEventModel(project_id, HEAD_SEQ, last_seq=to),
                condition=ProjectEventModel.seq.does_not_exist(),
            )
        else:
            transaction.update(
                "head",
                ProjectEventModel(project_id, HEAD_SEQ),
                actions=[ProjectEventModel.last_seq.set(to)],
                condition=ProjectEventModel.last_seq == last,
            )

    @staticmethod
    def _put(transaction: Transaction, project_id: str, seq: int, event: Event) -> None:
        frame = event.frame()  # what subscribers get: data cut to ids when too large
        logged_id = event_id(project_id, seq)
        transaction.save(
            f"event:{seq}",
            ProjectEventModel(
                project_id,
                seq,
                type=event.type.value,
                at=event.at,
                data=json.dumps(frame["data"], separators=(",", ":"), default=str),
                truncated=True if frame.get("truncated") else None,
                expires_at=_expiry(event.at),
            ),
        )
        if event.id:
            transaction.save(
                f"claim:{event.id}",
                ClaimModel(
                    _claim_key(event.id),
                    owner_id=logged_id,
                    created_at=event.at,
                    expires_at=_expiry(event.at),
                ),
                condition=ClaimModel.key.does_not_exist(),
            )

    @translate_aws_failures
    def read(self, project_id: str, from_seq: int, limit: int) -> list[Event]:
        rows = ProjectEventModel.query(
            project_id,
            ProjectEventModel.seq >= max(from_seq, HEAD_SEQ + 1),
            limit=limit,
            consistent_read=True,
        )
        return [_event_from_model(row) for row in rows]

    @translate_aws_failures
    def last_seq(self, project_id: str) -> int:
        try:
            head = ProjectEventModel.get(project_id, HEAD_SEQ, consistent_read=True)
        except ProjectEventModel.DoesNotExist:
            return HEAD_SEQ
        return int(head.last_seq or HEAD_SEQ)
