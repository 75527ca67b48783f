"""Schedules of tasks and workflows: the `schedule` request body, its validated value, and when
it fires.

A schedule is one of three kinds, told apart by `kind`:

- `{"kind": "once", "at": ...}`: once, at a wall-clock time in the schedule's time zone. An `at`
  without an offset is read in that zone; one with an offset is converted to it. An `at` more
  than a minute in the past is refused (422). `start_at` / `end_at` do not apply to it.
- `{"kind": "rate", "every": N, "unit": "minutes" | "hours" | "days"}`: every N units of
  elapsed time (at most 365 days), counted from `start_at` (its first firing), or else from
  when it was set (the first firing is then one period later).
- `{"kind": "cron", "expression": "..."}`: an EventBridge Scheduler six-field cron expression
  (with or without the `cron(...)` wrapper), on the wall clock of the time zone; stored as the
  bare six fields in upper case. One that would never fire again is refused.

Common fields: `timezone` (IANA; absent means the creator's zone), `start_at`, `end_at` (after
`start_at`; naive values are read in the schedule's zone), `paused` and `overlap`.

Every instant is kept to the whole second (a fraction is dropped), as the scheduler's firing
times are: a rate counted from a fraction of a second would never fire exactly when
`next_run_at` says, and a firing could not be matched to it.

Structural rules live in the pydantic models (422 through the routing layer); the rules that
need the clock or the caller's zone are checked by `build_schedule`, which raises
`ValidationFailed`. The firing maths is `schedule_expressions`'; DST follows its rules: a
wall-clock time that does not exist is skipped, a repeated one fires once.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from chalicelib.domain import schedule_expressions as expressions
from chalicelib.domain.errors import validation_error
from chalicelib.domain.model import Input, rfc3339, utc

__all__ = [
    "AT_GRACE",
    "MAX_RATE",
    "PREVIEW_MAX",
    "CronScheduleInput",
    "OnceScheduleInput",
    "Overlap",
    "RateScheduleInput",
    "RateUnit",
    "Schedule",
    "ScheduleInput",
    "ScheduleKind",
    "ScheduleTarget",
    "build_schedule",
    "next_run",
    "parse_schedule_input",
    "preview",
    "to_expression",
    "upcoming",
]

PREVIEW_MAX: Final = 50
# How far in the past a one-time `at` may be and still be accepted (it then never fires).
AT_GRACE: Final = timedelta(minutes=1)
# EventBridge Scheduler documents a rate's value only as a positive whole number; we allow a
# period of up to a year, in whichever unit.
MAX_RATE: Final = {"minutes": 365 * 24 * 60, "hours": 365 * 24, "days": 365}

_LOC: Final = ("body", "schedule")


class ScheduleKind(enum.StrEnum):
    ONCE = "once"
    RATE = "rate"
    CRON = "cron"


class RateUnit(enum.StrEnum):
    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"


class Overlap(enum.StrEnum):
    """What a firing does while the previous execution still runs."""

    SKIP = "skip"
    ALLOW = "allow"
    BUFFER_ONE = "buffer_one"


class ScheduleTarget(enum.StrEnum):
    """What a schedule's firings start: an execution of a task, or a run of a workflow. The
    value names the scheduler schedule (`task-<id>`, `workflow-<id>`) and the id's field in a
    firing (`task_id`, `workflow_id`)."""

    TASK = "task"
    WORKFLOW = "workflow"

    @property
    def id_field(self) -> str:
        return f"{self.value}_id"


# ---- request bodies ---------------------------------------------------------------------------


class _ScheduleFields(Input):
    timezone: str | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    paused: bool = False
    overlap: Overlap = Overlap.SKIP

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("timezone may not be empty")
        expressions.time_zone(value.strip())  # ValueError names the zone
        return value.strip()

    @model_validator(mode="after")
    def _end_after_start(self) -> _ScheduleFields:
        if self.start_at is not None and self.end_at is not None:
            # Naive values are compared as read in the same zone, aware ones as instants.
            zone = expressions.time_zone(self.timezone)
            if _in_zone(self.end_at, zone) <= _in_zone(self.start_at, zone):
                raise ValueError("end_at must be after start_at")
        return self


class OnceScheduleInput(_ScheduleFields):
    kind: Literal["once"]
    at: datetime

    @model_validator(mode="after")
    def _no_window(self) -> OnceScheduleInput:
        if self.start_at is not None or self.end_at is not None:
            raise ValueError("start_at and end_at apply to recurring schedules only, not 'once'")
        return self


class RateScheduleInput(_ScheduleFields):
    kind: Literal["rate"]
    unit: RateUnit
    every: int = Field(ge=1, strict=True)

    @field_validator("every")
    @classmethod
    def _within_limits(cls, every: int, info: ValidationInfo) -> int:
        unit = info.data.get("unit")
        if isinstance(unit, RateUnit) and every > MAX_RATE[unit.value]:
            raise ValueError(
                f"a rate may be at most {MAX_RATE[unit.value]} {unit.value} (one year): got {every}"
            )
        return every


class CronScheduleInput(_ScheduleFields):
    kind: Literal["cron"]
    expression: str = Field(min_length=1, max_length=256)

    @field_validator("expression")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return _cron_fields(value)


ScheduleInput = Annotated[
    OnceScheduleInput | RateScheduleInput | CronScheduleInput, Field(discriminator="kind")
]
# Built on first use, like the models (domain/model.py: Input).
_ADAPTER: Final[TypeAdapter[OnceScheduleInput | RateScheduleInput | CronScheduleInput]] = (
    TypeAdapter(ScheduleInput, config=ConfigDict(defer_build=True))
)


def parse_schedule_input(
    data: object,
) -> OnceScheduleInput | RateScheduleInput | CronScheduleInput:
    """Validate a `schedule` body on its own; raises pydantic's `ValidationError`."""
    return _ADAPTER.validate_python(data)


def _cron_fields(value: str) -> str:
    """The six fields of a cron expression, normalised (upper case, single spaces)."""
    text = value.strip()
    if not (text.lower().startswith("cron(") and text.endswith(")")):
        text = f"cron({text})"
    parsed = expressions.parse(text)  # ValueError says what is wrong
    if not isinstance(parsed, expressions.Cron):
        raise ValueError("not a cron expression")
    return str(parsed)[len("cron(") : -1]


def _in_zone(moment: datetime, zone: ZoneInfo) -> datetime:
    """An aware UTC instant: naive values are wall-clock times in `zone` (first occurrence)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=zone, fold=0).astimezone(UTC)
    return moment.astimezone(UTC)


def _whole_second(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(microsecond=0)


# ---- the stored value -------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A validated schedule as a task stores it.

    `at` is the naive wall-clock time in `timezone` (a time DST skips is kept: it never fires);
    every other instant is aware UTC, on a whole second. `origin` is what a rate counts its
    intervals from: `start_at` if given (its first firing), else when the schedule was set
    (not a firing: the first is one period later).
    """

    kind: ScheduleKind
    timezone: str
    at: datetime | None = None
    every: int | None = None
    unit: RateUnit | None = None
    expression: str | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    origin: datetime | None = None
    paused: bool = False
    overlap: Overlap = Overlap.SKIP


def build_schedule(
    data: OnceScheduleInput | RateScheduleInput | CronScheduleInput,
    *,
    default_timezone: str,
    now: datetime,
) -> Schedule:
    """The stored value of a validated body; `ValidationFailed` (422) for the rules that need
    the clock: an `at` over a minute in the past, a cron expression that never fires again."""
    timezone = data.timezone or default_timezone
    try:
        zone = expressions.time_zone(timezone)
    except ValueError as exc:
        raise validation_error([*_LOC, "timezone"], str(exc)) from None
    now = utc(now)
    start_at = _whole_second(_in_zone(data.start_at, zone)) if data.start_at else None
    end_at = _whole_second(_in_zone(data.end_at, zone)) if data.end_at else None
    if start_at is not None and end_at is not None and end_at <= start_at:
        raise validation_error([*_LOC, "end_at"], "end_at must be after start_at")
    if isinstance(data, OnceScheduleInput):
        if data.at.tzinfo is None:
            wall_clock = data.at
        else:
            wall_clock = data.at.astimezone(zone).replace(tzinfo=None)
        wall_clock = wall_clock.replace(microsecond=0)
        if _in_zone(wall_clock, zone) < now - AT_GRACE:
            raise validation_error(
                [*_LOC, "at"], "at is in the past: a one-time schedule must be in the future"
            )
        return Schedule(
            kind=ScheduleKind.ONCE,
            timezone=timezone,
            at=wall_clock,
            paused=data.paused,
            overlap=data.overlap,
        )
    if isinstance(data, RateScheduleInput):
        return Schedule(
            kind=ScheduleKind.RATE,
            timezone=timezone,
            every=data.every,
            unit=data.unit,
            start_at=start_at,
            end_at=end_at,
            origin=start_at or _whole_second(now),
            paused=data.paused,
            overlap=data.overlap,
        )
    if expressions.next_firing(f"cron({data.expression})", timezone, now) is None:
        raise validation_error([*_LOC, "expression"], "the cron expression never fires again")
    return Schedule(
        kind=ScheduleKind.CRON,
        timezone=timezone,
        expression=data.expression,
        start_at=start_at,
        end_at=end_at,
        paused=data.paused,
        overlap=data.overlap,
    )


# ---- firing times -----------------------------------------------------------------------------


def to_expression(schedule: Schedule) -> tuple[str, str]:
    """The EventBridge Scheduler expression and its time zone."""
    if schedule.kind is ScheduleKind.ONCE:
        assert schedule.at is not None
        return str(expressions.At(schedule.at)), schedule.timezone
    if schedule.kind is ScheduleKind.RATE:
        assert schedule.every is not None
        assert schedule.unit is not None
        return str(expressions.Rate(schedule.every, schedule.unit.value)), schedule.timezone
    return f"cron({schedule.expression})", schedule.timezone


def _window(
    schedule: Schedule, after: datetime
) -> tuple[datetime, datetime | None, datetime | None]:
    """`after`, the start and the end handed to `schedule_expressions`. Instants go on whole
    seconds (values stored before they were kept so may carry a fraction); a rate set
    without `start_at` does not fire at its origin, the moment it was set."""
    after = utc(after)
    if schedule.kind is ScheduleKind.ONCE:
        return after, None, None
    end = _whole_second(schedule.end_at)
    if schedule.kind is ScheduleKind.CRON:
        return after, _whole_second(schedule.start_at), end
    origin = _whole_second(schedule.origin)
    if origin is not None and schedule.start_at is None:
        after = max(after, origin)
    return after, origin, end


def next_run(schedule: Schedule, after: datetime) -> datetime | None:
    """The first firing strictly after `after` (UTC), or None: paused, ended, or a one-time
    schedule whose moment has passed (or does not exist because of DST)."""
    if schedule.paused:
        return None
    expression, timezone = to_expression(schedule)
    after, start, end = _window(schedule, after)
    return expressions.next_firing(expression, timezone, after, start, end)


def upcoming(schedule: Schedule | None, stored: datetime | None, now: datetime) -> datetime | None:
    """The `next_run_at` a task (or workflow) shows: the stored one while it lies ahead; once
    it has passed, the schedule's next firing after `now`. A task's firings do not write it
    (that write cost more than the rest of a firing, every task index holding the task), so
    it is worked out here, always the next firing still to come. Stored None (paused, ended,
    a one-time schedule done) stays None."""
    if schedule is None or stored is None:
        return None
    if stored > utc(now):
        return stored
    return next_run(schedule, now)


def preview(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The next `count` (1..50) firings strictly after `after`, fewer if the schedule ends;
    none while paused."""
    if not 1 <= count <= PREVIEW_MAX:
        raise ValueError(f"count must be 1..{PREVIEW_MAX}")
    if schedule.paused:
        return []
    expression, timezone = to_expression(schedule)
    after, start, end = _window(schedule, after)
    return expressions.upcoming(expression, timezone, after, count, start, end)


# ---- stored and shown forms -------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def to_storage(schedule: Schedule) -> dict[str, Any]:
    """A JSON-ready dict that `from_storage` turns back into the same value."""
    return {
        "kind": schedule.kind.value,
        "timezone": schedule.timezone,
        "at": _iso(schedule.at),
        "every": schedule.every,
        "unit": schedule.unit.value if schedule.unit else None,
        "expression": schedule.expression,
        "start_at": _iso(schedule.start_at),
        "end_at": _iso(schedule.end_at),
        "origin": _iso(schedule.origin),
        "paused": schedule.paused,
        "overlap": schedule.overlap.value,
    }


def from_storage(data: Mapping[str, Any]) -> Schedule:
    def moment(name: str) -> datetime | None:
        value = data.get(name)
        return datetime.fromisoformat(value) if value else None

    return Schedule(
        kind=ScheduleKind(data["kind"]),
        timezone=str(data["timezone"]),
        at=moment("at"),
        every=data.get("every"),
        unit=RateUnit(data["unit"]) if data.get("unit") else None,
        expression=data.get("expression"),
        start_at=moment("start_at"),
        end_at=moment("end_at"),
        origin=moment("origin"),
        paused=bool(data.get("paused", False)),
        overlap=Overlap(data.get("overlap", Overlap.SKIP.value)),
    )


def to_public(schedule: Schedule) -> dict[str, Any]:
    """The `schedule` object of the API: the fields of its kind, instants in UTC with `Z`."""
    shown: dict[str, Any] = {"kind": schedule.kind.value}
    if schedule.kind == ScheduleKind.ONCE and schedule.at is not None:
        shown["at"] = rfc3339(_in_zone(schedule.at, expressions.time_zone(schedule.timezone)))
    elif schedule.kind == ScheduleKind.RATE:
        shown |= {"every": schedule.every, "unit": schedule.unit.value if schedule.unit else None}
    else:
        shown["expression"] = schedule.expression
    return shown | {
        "timezone": schedule.timezone,
        "start_at": rfc3339(schedule.start_at),
        "end_at": rfc3339(schedule.end_at),
        "paused": schedule.paused,
        "overlap": schedule.overlap.value,
    }
