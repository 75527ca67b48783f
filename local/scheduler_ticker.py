"""EventBridge Scheduler, locally: fires the schedules that moto only stores.

The ticker lists the schedules through the scheduler API at least every second (reading a
schedule's details again only when it changed), works out the firings due since it last
looked (with the domain's schedule-expression code, so DST and cron rules are the same as
everywhere else), and invokes each target the way EventBridge
Scheduler does: Lambda targets asynchronously, Step Functions targets by starting an
execution, with the target's `Input` after substituting the `<aws.scheduler.*>` context
attributes. A firing is never delivered twice: the ticker's cursor moves past it before the
target is invoked. Errors in one schedule are logged and the others go on. `tick(now)` lets a
test drive it without waiting for the clock. Between ticks it sleeps until the next firing it
knows of (at most the interval), so a firing is delivered within milliseconds of its time.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.schedule_expressions import Rate, firings_between, next_firing, parse

log = logging.getLogger("taskbeat.local.scheduler")

_LAMBDA_ARN = re.compile(r"^arn:[^:]+:lambda:[^:]*:[^:]*:function:.+$")
_STATE_MACHINE_ARN = re.compile(r"^arn:[^:]+:states:[^:]*:[^:]*:stateMachine:.+$")
DEFAULT_MAX_CATCH_UP = 100
DELIVERY_THREADS = 8


@dataclass(frozen=True)
class Firing:
    """One delivery the ticker made (or tried to make)."""

    schedule_arn: str
    group: str
    name: str
    scheduled_time: datetime
    execution_id: str
    target_arn: str
    payload: str
    error: str | None = None


@dataclass(frozen=True)
class _Cursor:
    since: datetime  # every firing up to and including this instant is done
    modified: datetime  # the schedule version the cursor belongs to
    next_due: datetime | None = None  # the first firing after `since`, once worked out


@dataclass(frozen=True)
class _Due:
    """What a tick found for one schedule: its firings due now, and whether the schedule is
    to be deleted once they are delivered (a one-time schedule's ActionAfterCompletion)."""

    schedule: dict[str, Any]
    times: list[datetime]
    delete: bool = False


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


class SchedulerTicker:
    def __init__(
        self,
        region: str,
        interval_seconds: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_catch_up: int = DEFAULT_MAX_CATCH_UP,
        invoke_async: Callable[[str, str], bool] | None = None,
    ) -> None:
        self._region = region
        self._interval = interval_seconds
        self._clock = clock
        self._max_catch_up = max_catch_up
        # Queues an asynchronous invocation of a Lambda ARN in process (False: not ours); the
        # local stack's functions run in this process, and the Lambda API round trip through
        # moto costs more than a firing's whole budget of lateness under load.
        self._invoke_async = invoke_async
        self._cursors: dict[str, _Cursor] = {}
        # Schedule details by ARN, with the modification date they were read at.
        self._details: dict[str, tuple[datetime, dict[str, Any]]] = {}
        self._next_due: datetime | None = None
        self._deleted: set[str] = set()  # one-time schedules whose deletion was asked for
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._wake = threading.Event()  # a refresh found something: work out the delay again
        self._threads: list[threading.Thread] = []
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._stopped.clear()
        self._threads = [
            threading.Thread(target=self._refresh_loop, name="scheduler-refresh", daemon=True),
            threading.Thread(target=self._fire_loop, name="scheduler-ticker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(10)
        self._threads = []
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _refresh_loop(self) -> None:
        """Reads the schedules back every interval; the fire loop works from what it read, so
        a slow listing never delays a firing that is due."""
        while not self._stopped.is_set():
            try:
                self.refresh()
            except Exception:  # e.g. moto going away during shutdown; the next round retries
                log.exception("reading the schedules failed")
            self._wake.set()
            self._stopped.wait(self._interval)

    def _fire_loop(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self._delay())
            self._wake.clear()
            if self._stopped.is_set():
                return
            try:
                self.fire_due()
            except Exception:
                log.exception("scheduler tick failed")

    def _delay(self) -> float:
        """Seconds until the next known firing, or the interval (new schedules are found by
        the refresh, which wakes the fire loop)."""
        if self._next_due is None:
            return self._interval
        until = (self._next_due - self._clock()).total_seconds()
        return max(0.0, min(self._interval, until))

    def _client(self, service: str) -> Any:
        # Delivery threads ask at once, and building boto3 clients is not thread-safe.
        with self._clients_lock:
            if service not in self._clients:
                import boto3
                from botocore.config import Config

                # One attempt only: a retried invoke would deliver a firing twice.
                config = Config(read_timeout=300, retries={"total_max_attempts": 1})
                self._clients[service] = boto3.client(
                    service, region_name=self._region, config=config
                )
            return self._clients[service]

    # --- ticking -----------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[Firing]:
        """Read the schedules back, then deliver every firing due up to `now` (default: the
        clock) not delivered yet."""
        self.refresh()
        return self.fire_due(now)

    def refresh(self) -> None:
        """Read the schedules (the details only of those that changed since the last read)."""
        listed = list(self._schedules())
        with self._lock:
            known = dict(self._details)
        details: dict[str, tuple[datetime, dict[str, Any]]] = {}
        for summary in listed:
            try:
                read = self._schedule(summary, known.get(summary["Arn"]))
            except Exception:
                log.exception("schedule %s/%s failed", summary["GroupName"], summary["Name"])
                continue
            if read is not None:
                details[summary["Arn"]] = read
        with self._lock:
            self._details = details
            for arn in set(self._cursors) - set(details):
                del self._cursors[arn]
            self._deleted &= set(details)

    def fire_due(self, now: datetime | None = None) -> list[Firing]:
        """Deliver every firing due up to `now` of the schedules read last."""
        now = (now or self._clock()).astimezone(UTC)
        with self._lock:
            due: list[_Due] = []
            self._next_due = None
            for _, schedule in list(self._details.values()):
                try:
                    due.append(self._tick_schedule(schedule, now))
                except Exception:
                    log.exception("schedule %s/%s failed", schedule["GroupName"], schedule["Name"])
            # Schedules are delivered side by side, as on AWS (one schedule's firings in order).
            if self._pool is None:
                self._pool = ThreadPoolExecutor(DELIVERY_THREADS, "scheduler-delivery")
            jobs = [job for job in due if job.times or job.delete]
            batches = self._pool.map(self._complete, jobs)
            return [firing for batch in batches for firing in batch]

    def _complete(self, job: _Due) -> list[Firing]:
        fired = [self._deliver(job.schedule, moment) for moment in job.times]
        if job.delete:
            client = self._client("scheduler")
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                client.delete_schedule(
                    GroupName=job.schedule["GroupName"], Name=job.schedule["Name"]
                )
        return fired

    def _schedules(self) -> Iterator[dict[str, Any]]:
        client = self._client("scheduler")
        for group_page in client.get_paginator("list_schedule_groups").paginate():
            for group in group_page["ScheduleGroups"]:
                pages = client.get_paginator("list_schedules").paginate(GroupName=group["Name"])
                for page in pages:
                    yield from page["Schedules"]

    def _schedule(
        self, summary: dict[str, Any], cached: tuple[datetime, dict[str, Any]] | None
    ) -> tuple[datetime, dict[str, Any]] | None:
        """The schedule's details, read again only when it changed since `cached` was read."""
        modified = summary.get("LastModificationDate") or summary.get("CreationDate")
        if cached is not None and modified is not None and cached[0] == modified:
            return cached
        client = self._client("scheduler")
        try:
            schedule: dict[str, Any] = client.get_schedule(
                GroupName=summary["GroupName"], Name=summary["Name"]
            )
        except client.exceptions.ResourceNotFoundException:
            return None  # deleted since it was listed
        return (modified or schedule["CreationDate"]), schedule

    def _note_next(self, moment: datetime | None) -> None:
        if moment is not None and (self._next_due is None or moment < self._next_due):
            self._next_due = moment

    def _tick_schedule(self, schedule: dict[str, Any], now: datetime) -> _Due:
        """The schedule's firings due up to `now`, now marked as delivered."""
        group, name, arn = schedule["GroupName"], schedule["Name"], schedule["Arn"]
        created: datetime = schedule["CreationDate"]
        modified: datetime = schedule.get("LastModificationDate") or created
        cursor = self._cursors.get(arn)
        enabled = schedule.get("State", "ENABLED") == "ENABLED"
        if (
            enabled
            and cursor is not None
            and cursor.modified == modified
            and cursor.next_due is not None
            and cursor.next_due > now
        ):
            self._note_next(cursor.next_due)  # nothing due yet: no need to work it out again
            return _Due(schedule, [])
        # A schedule counts from the second it was created or last changed; before that it
        # did not exist (or said something else).
        origin = _whole_second(modified) - timedelta(microseconds=1)
        if cursor is None:
            since = origin
        elif cursor.modified != modified:
            since = max(cursor.since, origin)
        else:
            since = cursor.since
        if not enabled or since >= now:
            # Disabled schedules skip what falls due meanwhile, as on AWS.
            self._cursors[arn] = _Cursor(max(since, now), modified)
            return _Due(schedule, [])

        expression = parse(schedule["ScheduleExpression"])
        zone = schedule.get("ScheduleExpressionTimezone") or "UTC"
        start: datetime | None = schedule.get("StartDate")
        end: datetime | None = schedule.get("EndDate")
        if isinstance(expression, Rate) and start is None:
            start = _whole_second(created)  # a rate without StartDate starts at creation
        due = firings_between(expression, zone, since, now, start, end, self._max_catch_up + 1)
        if len(due) > self._max_catch_up:
            log.warning("schedule %s/%s: only the last %d missed firings are delivered",
                        group, name, self._max_catch_up)  # fmt: skip
            due = due[-self._max_catch_up :]

        following = next_firing(expression, zone, now, start, end)
        # The cursor moves past the firings before they are delivered: never twice.
        self._cursors[arn] = _Cursor(now, modified, following)
        # A one-time schedule deletes itself after its firing. Its cursor stays until it is no
        # longer listed, so a listing read before the deletion cannot fire it again.
        delete = (
            schedule.get("ActionAfterCompletion") == "DELETE"
            and following is None
            and arn not in self._deleted
        )
        if delete:
            self._deleted.add(arn)
        self._note_next(following)
        return _Due(schedule, due, delete)

    def _deliver(self, schedule: dict[str, Any], scheduled_time: datetime) -> Firing:
        target = schedule["Target"]
        target_arn: str = target["Arn"]
        execution_id = str(uuid.uuid4())
        payload = target.get("Input") or "{}"
        for attribute, value in (
            ("<aws.scheduler.scheduled-time>", rfc3339(scheduled_time)),
            ("<aws.scheduler.execution-id>", execution_id),
            ("<aws.scheduler.attempt-number>", "1"),
            ("<aws.scheduler.schedule-arn>", schedule["Arn"]),
        ):
            payload = payload.replace(attribute, value)
        error = None
        try:
            if (
                _LAMBDA_ARN.match(target_arn)
                and self._invoke_async is not None
                and (self._invoke_async(target_arn, payload))
            ):
                pass
            elif _LAMBDA_ARN.match(target_arn):
                self._client("lambda").invoke(
                    FunctionName=target_arn, InvocationType="Event", Payload=payload.encode()
                )
            elif _STATE_MACHINE_ARN.match(target_arn):
                self._client("stepfunctions").start_execution(
                    stateMachineArn=target_arn, input=payload
                )
            else:
                raise ValueError(f"the local scheduler cannot invoke {target_arn}")
        except Exception as exc:
            # AWS would retry per RetryPolicy and then use the dead-letter queue.
            error = f"{type(exc).__name__}: {exc}"
            log.error(
                "schedule %s/%s: delivering %s failed: %s",
                schedule["GroupName"],
                schedule["Name"],
                rfc3339(scheduled_time),
                error,
            )
        else:
            log.info(
                "schedule %s/%s fired for %s",
                schedule["GroupName"],
                schedule["Name"],
                rfc3339(scheduled_time),
            )
        return Firing(
            schedule_arn=schedule["Arn"],
            group=schedule["GroupName"],
            name=schedule["Name"],
            scheduled_time=scheduled_time,
            execution_id=execution_id,
            target_arn=target_arn,
            payload=payload,
            error=error,
        )
