"""EventBridge Scheduler schedule expressions: parsing them and working out when they fire.

Three kinds, as EventBridge Scheduler accepts them:

- `at(yyyy-mm-ddThh:mm:ss)`: once, at that wall-clock time in the schedule's time zone.
- `rate(N minute|minutes|hour|hours|day|days)`: every N units of elapsed time, counted from the
  schedule's start (a day is 24 hours, whatever DST does to the wall clock).
- `cron(minutes hours day-of-month month day-of-week year)`: six fields evaluated on the wall
  clock of the time zone. Day-of-week is 1-7 = SUN-SAT; exactly one of day-of-month and
  day-of-week is `?`. Supports `*`, `,`, `-`, `/`, names (`JAN`, `MON`), `L` (last day of the
  month; `6L` last Friday), `W` (`15W` nearest weekday to the 15th, `LW` last weekday) and `#`
  (`6#3` third Friday), and a year field (1970-2199).

Daylight saving time follows EventBridge Scheduler: a wall-clock time that does not exist on the
day the clocks go forward is skipped, and one that happens twice when they go back fires once
(at its first occurrence).

All instants in and out are timezone-aware UTC `datetime`s (naive ones are taken as UTC).
Invalid expressions and unknown time zones raise `ValueError`. Plain Python: the API, the
services and the local stack's scheduler all compute firings here.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "At",
    "Cron",
    "Rate",
    "ScheduleExpression",
    "firings_between",
    "is_one_time",
    "next_firing",
    "parse",
    "time_zone",
    "upcoming",
    "validate",
]

MIN_YEAR: Final = 1970
MAX_YEAR: Final = 2199
# Upper bound on candidates examined for one answer: DST gaps and repeated hours skip at most
# a few hundred, so hitting this means an expression that never matches.
_MAX_CANDIDATES: Final = 5000

_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_RATE_UNITS: Final = {"minute": 60, "hour": 3600, "day": 86400}

# Characters each cron field may contain, before croniter checks the values themselves; this
# also keeps croniter's own extensions (`H`, `R`, seconds) out of EventBridge expressions.
_FIELD_CHARS: Final = {
    "minutes": re.compile(r"^[0-9,\-*/]+$"),
    "hours": re.compile(r"^[0-9,\-*/]+$"),
    "day-of-month": re.compile(r"^[0-9,\-*/?LW]+$"),
    "month": re.compile(r"^[0-9A-Z,\-*/]+$"),
    "day-of-week": re.compile(r"^[0-9A-Z,\-*/?L#]+$"),
    "year": re.compile(r"^[0-9,\-*/]+$"),
}
_DAY_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True)
class At:
    """A one-time schedule: a wall-clock time (naive) in the schedule's time zone."""

    moment: datetime

    def __str__(self) -> str:
        return f"at({self.moment.strftime('%Y-%m-%dT%H:%M:%S')})"


@dataclass(frozen=True)
class Rate:
    value: int
    unit: str  # minutes | hours | days

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.value * _RATE_UNITS[self.unit.rstrip("s")])

    def __str__(self) -> str:
        unit = self.unit.rstrip("s") if self.value == 1 else self.unit
        return f"rate({self.value} {unit})"


@dataclass(frozen=True)
class Cron:
    minutes: str
    hours: str
    day_of_month: str
    month: str
    day_of_week: str
    year: str
    # Derived when parsed: the five-field croniter expression (day-of-week 0-6 = SUN-SAT), the
    # allowed years (None = any) and an extra day filter for what croniter cannot express (LW).
    croniter_expression: str = field(compare=False, repr=False, default="")
    years: frozenset[int] | None = field(compare=False, repr=False, default=None)
    day_filter: Callable[[date], bool] | None = field(compare=False, repr=False, default=None)

    def __str__(self) -> str:
        fields = (
            self.minutes,
            self.hours,
            self.day_of_month,
            self.month,
            self.day_of_week,
            self.year,
        )
        return f"cron({' '.join(fields)})"


ScheduleExpression = At | Rate | Cron


# ---------------------------------------------------------------------------------------------
# Parsing


def parse(expression: str | ScheduleExpression) -> ScheduleExpression:
    """Parse an EventBridge Scheduler expression; `ValueError` says what is wrong with it."""
    if isinstance(expression, At | Rate | Cron):
        return expression
    if not isinstance(expression, str):
        raise ValueError("a schedule expression is a string")
    text = expression.strip()
    if match := _AT.match(text):
        try:
            return At(datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            raise ValueError(f"not a valid date and time in {expression!r}") from None
    if match := _RATE.match(text):
        value = int(match.group(1))
        if value < 1:
            raise ValueError("a rate must be a positive whole number")
        unit = match.group(2).rstrip("s") + "s"
        rate = Rate(value, unit)
        try:
            if rate.interval > timedelta(days=365 * 100):
                raise ValueError("a rate must be shorter than 100 years")
        except OverflowError:
            raise ValueError("a rate must be shorter than 100 years") from None
        return rate
    if match := _CRON.match(text):
        return _parse_cron(match.group(1))
    raise ValueError(
        f"{expression!r} is not a schedule expression: use at(yyyy-mm-ddThh:mm:ss), "
        "rate(value unit) or cron(minutes hours day-of-month month day-of-week year)"
    )


def time_zone(name: str | None) -> ZoneInfo:
    """The IANA time zone called `name` (None or empty means UTC)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone: {name!r}") from None


def validate(
    expression: str | ScheduleExpression, timezone: str | None = "UTC"
) -> ScheduleExpression:
    """Parse the expression and check the time zone; raises `ValueError` if either is bad."""
    time_zone(timezone)
    return parse(expression)


def is_one_time(expression: str | ScheduleExpression) -> bool:
    return isinstance(parse(expression), At)


# `5-5` or `MON-MON/2`: a range of one value. croniter reads it as `*`; it means the value.
_ONE_VALUE_RANGE = re.compile(r"^([0-9A-Z]+)-\1(?:/\d+)?$")


def _collapse_one_value_ranges(field: str) -> str:
    return ",".join(_ONE_VALUE_RANGE.sub(r"\1", item) for item in field.split(","))


def _parse_cron(body: str) -> Cron:
    parts = body.split()
    if len(parts) != 6:
        raise ValueError(
            "a cron expression has six fields: minutes hours day-of-month month day-of-week year"
        )
    minutes, hours, dom, month, dow, year = (part.upper() for part in parts)
    for name, value in zip(_FIELD_CHARS, (minutes, hours, dom, month, dow, year), strict=True):
        if not _FIELD_CHARS[name].match(value):
            raise ValueError(f"invalid {name} field in cron expression: {value!r}")
    if (dom == "?") == (dow == "?"):
        raise ValueError("exactly one of day-of-month and day-of-week must be '?'")
    for name, value in (("day-of-month", dom), ("day-of-week", dow)):
        if "?" in value and value != "?":
            raise ValueError(f"'?' stands alone in the {name} field: {value!r}")

    day_filter: Callable[[date], bool] | None = None
    croniter_dom = "*" if dom == "?" else dom
    croniter_dow = "*" if dow == "?" else _croniter_day_of_week(dow)
    if croniter_dom == "LW":
        # croniter has no "last weekday of the month": take weekdays and keep the last one.
        croniter_dom, croniter_dow, day_filter = "*", "1-5", _is_last_weekday_of_month
    elif "LW" in croniter_dom:
        raise ValueError("LW cannot be combined with other day-of-month values")

    fields = (minutes, hours, croniter_dom, month, croniter_dow)
    expression = " ".join(_collapse_one_value_ranges(field) for field in fields)
    # Imported on first use: only cron schedules need it (it and dateutil are ~20 ms of a
    # cold start otherwise, bench/coldstart.py).
    from croniter import CroniterError, croniter

    try:
        croniter(expression, datetime(2000, 1, 1))
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValueError(f"invalid cron expression: cron({body}): {exc}") from None
    return Cron(
        minutes,
        hours,
        dom,
        month,
        dow,
        year,
        croniter_expression=expression,
        years=_parse_years(year),
        day_filter=day_filter,
    )


def _day_number(token: str) -> int:
    """An EventBridge day-of-week (1-7 or SUN-SAT) as croniter's 0-6 = SUN-SAT."""
    if token in _DAY_NAMES:
        return _DAY_NAMES.index(token)
    if token.isdigit() and 1 <= int(token) <= 7:
        return int(token) - 1
    raise ValueError(f"invalid day of week in cron expression: {token!r}")


def _croniter_day_of_week(field_value: str) -> str:
    converted = []
    for item in field_value.split(","):
        if item == "*":
            converted.append("*")
        elif item == "L":  # on its own, the last day of the week: Saturday
            converted.append("6")
        elif "#" in item:
            day, _, nth = item.partition("#")
            if not nth.isdigit() or not 1 <= int(nth) <= 5:
                raise ValueError(f"invalid '#' in day-of-week: {item!r}")
            converted.append(f"{_day_number(day)}#{nth}")
        elif item.endswith("L"):
            converted.append(f"L{_day_number(item[:-1])}")
        else:
            base, slash, step = item.partition("/")
            if slash and not step.isdigit():
                raise ValueError(f"invalid step in day-of-week: {item!r}")
            if base == "*":
                days = "*"
            else:
                first, dash, last = base.partition("-")
                days = str(_day_number(first))
                if dash:
                    days += f"-{_day_number(last)}"
            converted.append(days + (f"/{step}" if slash else ""))
    return ",".join(converted)


def _parse_years(field_value: str) -> frozenset[int] | None:
    if field_value == "*":
        return None
    years: set[int] = set()
    for item in field_value.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"invalid step in year field: {item!r}")
            step = int(step_text)
        if base == "*":
            first, last = MIN_YEAR, MAX_YEAR
        else:
            low, dash, high = base.partition("-")
            if not low.isdigit() or (dash and not high.isdigit()):
                raise ValueError(f"invalid year field: {item!r}")
            first = int(low)
            last = int(high) if dash else (MAX_YEAR if slash else first)
        if not (MIN_YEAR <= first <= MAX_YEAR and MIN_YEAR <= last <= MAX_YEAR) or first > last:
            raise ValueError(f"years must be {MIN_YEAR}-{MAX_YEAR} in ascending ranges: {item!r}")
        years.update(range(first, last + 1, step))
    return frozenset(years)


def _is_last_weekday_of_month(day: date) -> bool:
    last = date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
    while last.weekday() >= 5:  # Saturday, Sunday
        last -= timedelta(days=1)
    return day == last


# ---------------------------------------------------------------------------------------------
# Firing times


def next_firing(
    expression: str | ScheduleExpression,
    timezone: str | None,
    after: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
) -> datetime | None:
    """The first firing strictly after `after`, or None if there is none.

    `start` and `end` are the schedule's StartDate and EndDate (both inclusive); one-time
    schedules ignore them, as EventBridge Scheduler does. A rate schedule counts its
    intervals from `start`; without one, from `after`.
    """
    parsed = parse(expression)
    zone = time_zone(timezone)
    after = _aware_utc(after)
    start = _aware_utc(start) if start is not None else None
    end = _aware_utc(end) if end is not None else None
    candidate: datetime | None
    try:
        if isinstance(parsed, At):
            moment = _wall_clock_to_utc(parsed.moment, zone)
            return moment if moment is not None and moment > after else None
        if isinstance(parsed, Rate):
            candidate = _next_rate(parsed, after, start)
        else:
            if start is not None and start > after:
                after = start - timedelta(microseconds=1)
            candidate = _next_cron(parsed, zone, after)
    except OverflowError:  # beyond datetime.max: never
        return None
    if candidate is None or (end is not None and candidate > end):
        return None
    return candidate


def firings_between(
    expression: str | ScheduleExpression,
    timezone: str | None,
    after: datetime,
    until: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 1000,
) -> list[datetime]:
    """Every firing in `(after, until]`, oldest first, at most `limit` of them."""
    parsed = parse(expression)
    until = _aware_utc(until)
    firings: list[datetime] = []
    cursor = _aware_utc(after)
    if isinstance(parsed, Rate) and start is None:
        start = cursor  # count every interval from the same origin, not from each firing
    while len(firings) < limit:
        firing = next_firing(parsed, timezone, cursor, start, end)
        if firing is None or firing > until:
            break
        firings.append(firing)
        cursor = firing
    return firings


def upcoming(
    expression: str | ScheduleExpression,
    timezone: str | None,
    after: datetime,
    count: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[datetime]:
    """The next `count` firings strictly after `after` (fewer if the schedule ends)."""
    parsed = parse(expression)
    cursor = _aware_utc(after)
    if isinstance(parsed, Rate) and start is None:
        start = cursor
    firings: list[datetime] = []
    while len(firings) < count:
        firing = next_firing(parsed, timezone, cursor, start, end)
        if firing is None:
            break
        firings.append(firing)
        cursor = firing
    return firings


def _aware_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _wall_clock_to_utc(wall_clock: datetime, zone: tzinfo) -> datetime | None:
    """The instant a wall-clock time denotes in `zone`: None if DST skips it, the first
    occurrence if DST repeats it."""
    instant = wall_clock.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall_clock:
        return None
    return instant


def _next_rate(rate: Rate, after: datetime, start: datetime | None) -> datetime:
    interval = rate.interval
    if start is None:
        return after + interval
    if after < start:
        return start
    return start + interval * ((after - start) // interval + 1)


def _next_cron(cron: Cron, zone: tzinfo, after: datetime) -> datetime | None:
    # Walk the wall clock from the local time of `after`. Wall-clock matches that DST skips
    # are dropped; in a repeated hour a match maps to its first occurrence, which lies before
    # `after` when `after` is already in the second pass, so that one is dropped too.
    cursor = after.astimezone(zone).replace(tzinfo=None)
    for _ in range(_MAX_CANDIDATES):
        candidate = _next_wall_clock_match(cron, cursor)
        if candidate is None:
            return None
        cursor = candidate
        instant = _wall_clock_to_utc(candidate, zone)
        if instant is not None and instant > after:
            return instant
    return None


def _next_wall_clock_match(cron: Cron, after: datetime) -> datetime | None:
    """The next naive wall-clock time after `after` that matches every field."""
    from croniter import CroniterBadCronError, CroniterBadDateError, croniter

    cursor = after
    for _ in range(_MAX_CANDIDATES):
        try:
            candidate: datetime = croniter(cron.croniter_expression, cursor).get_next(datetime)
        except (CroniterBadDateError, CroniterBadCronError):
            return None  # e.g. the 30th of February: never
        if candidate.year > MAX_YEAR:
            return None
        if cron.years is not None and candidate.year not in cron.years:
            later = [year for year in cron.years if year > candidate.year]
            if not later:
                return None
            cursor = datetime(min(later), 1, 1) - timedelta(seconds=1)
            continue
        if cron.day_filter is not None and not cron.day_filter(candidate.date()):
            cursor = datetime.combine(candidate.date() + timedelta(days=1), time()) - timedelta(
                seconds=1
            )
            continue
        return candidate
    return None
