"""Task schedules: the request body's rules, the stored value, expressions, next run, preview."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.schedule_expressions import time_zone, upcoming
from chalicelib.domain.schedules import (
    CronScheduleInput,
    OnceScheduleInput,
    Overlap,
    RateScheduleInput,
    RateUnit,
    Schedule,
    ScheduleKind,
    build_schedule,
    next_run,
    parse_schedule_input,
    preview,
    to_expression,
)

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(zone: str, *parts: int, fold: int = 0) -> datetime:
    """The UTC instant of a wall-clock time in `zone` (fold=1: the second of a repeated hour)."""
    return datetime(*parts, tzinfo=time_zone(zone), fold=fold).astimezone(UTC)  # type: ignore[arg-type,misc]


def build(data: dict[str, Any], zone: str = "UTC", now: datetime = NOW) -> Schedule:
    return build_schedule(parse_schedule_input(data), default_timezone=zone, now=now)


def errors(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        parse_schedule_input(data)
    return [(tuple(e["loc"]), e["msg"]) for e in caught.value.errors()]


# --- the request body ------------------------------------------------------------------------


def test_each_kind_parses_to_its_model_with_defaults():
    once = parse_schedule_input({"kind": "once", "at": "2030-02-01T09:00:00"})
    assert isinstance(once, OnceScheduleInput)
    rate = parse_schedule_input({"kind": "rate", "every": 5, "unit": "minutes"})
    assert isinstance(rate, RateScheduleInput)
    assert rate.unit is RateUnit.MINUTES
    cron = parse_schedule_input({"kind": "cron", "expression": "0 9 ? * mon-fri *"})
    assert isinstance(cron, CronScheduleInput)
    for parsed in (once, rate, cron):
        assert parsed.timezone is None
        assert parsed.paused is False
        assert parsed.overlap is Overlap.SKIP


def test_cron_expression_is_normalised_and_the_wrapper_is_optional():
    bare = parse_schedule_input({"kind": "cron", "expression": " 0  9 ? * mon-fri * "})
    wrapped = parse_schedule_input({"kind": "cron", "expression": "cron(0 9 ? * MON-FRI *)"})
    assert isinstance(bare, CronScheduleInput)
    assert isinstance(wrapped, CronScheduleInput)
    assert bare.expression == wrapped.expression == "0 9 ? * MON-FRI *"


def test_a_one_value_range_means_that_value():
    # EventBridge reads `5-5` as 5 (croniter alone would read `*`).
    parsed = parse_schedule_input({"kind": "cron", "expression": "5-5 0-0/3 ? * mon-mon,2-2 *"})
    assert isinstance(parsed, CronScheduleInput)
    assert parsed.expression == "5-5 0-0/3 ? * MON-MON,2-2 *"
    schedule = build({"kind": "cron", "expression": "0 0 ? * 1-1 *"})  # Sundays
    assert [run.isoweekday() for run in preview(schedule, NOW, 3)] == [7, 7, 7]


@pytest.mark.parametrize("dow", ["1-1", "SUN-SUN", "1-1/2", "1,1-1"])
def test_schedule_expressions_reads_a_one_value_range_as_that_value(dow: str) -> None:
    # croniter alone reads `N-N` as `*`: every day instead of Sundays.
    runs = upcoming(f"cron(0 0 ? * {dow} *)", "UTC", NOW, 3)
    assert [run.isoweekday() for run in runs] == [7, 7, 7]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 9 * * *", "six fields"),
        ("0 9 * * * *", "exactly one of day-of-month and day-of-week must be '?'"),
        ("0 25 * * ? *", "invalid cron expression"),
        ("0 9 ? * MON-FRI 1900", "years must be 1970-2199"),
        ("H 9 * * ? *", "invalid minutes field"),
        ("rate(5 minutes)", "six fields"),
    ],
)
def test_an_invalid_cron_expression_names_the_problem(expression: str, message: str):
    [(loc, msg)] = errors({"kind": "cron", "expression": expression})
    assert loc == ("cron", "expression")
    assert message in msg


def test_unknown_kind_and_missing_kind_are_refused():
    [(_, msg)] = errors({"kind": "weekly"})
    assert "'once', 'rate', 'cron'" in msg
    [(_, msg)] = errors({"every": 5, "unit": "minutes"})
    assert "kind" in msg


def test_unknown_and_foreign_fields_are_refused():
    assert errors({"kind": "rate", "every": 5, "unit": "minutes", "color": "red"}) == [
        (("rate", "color"), "Extra inputs are not permitted")
    ]
    locs = [loc for loc, _ in errors({"kind": "once", "at": "2030-02-01T09:00:00", "every": 5})]
    assert locs == [("once", "every")]


@pytest.mark.parametrize("every", [0, -1, 1.5, "5", True])
def test_rate_every_is_a_positive_whole_number(every: Any):
    [(loc, _)] = errors({"kind": "rate", "every": every, "unit": "minutes"})
    assert loc == ("rate", "every")


@pytest.mark.parametrize(("unit", "limit"), [("minutes", 525_600), ("hours", 8_760), ("days", 365)])
def test_rate_is_at_most_a_year(unit: str, limit: int):
    assert isinstance(
        parse_schedule_input({"kind": "rate", "every": limit, "unit": unit}), RateScheduleInput
    )
    [(loc, msg)] = errors({"kind": "rate", "every": limit + 1, "unit": unit})
    assert loc == ("rate", "every")
    assert f"at most {limit} {unit}" in msg


@pytest.mark.parametrize("unit", ["minute", "weeks", "seconds", ""])
def test_rate_unit_is_minutes_hours_or_days(unit: str):
    [(loc, _)] = errors({"kind": "rate", "every": 2, "unit": unit})
    assert loc == ("rate", "unit")


def test_timezone_must_be_a_known_iana_zone():
    base = {"kind": "rate", "every": 1, "unit": "days"}
    [(loc, msg)] = errors({**base, "timezone": "Mars/Olympus"})
    assert loc == ("rate", "timezone")
    assert "unknown time zone: 'Mars/Olympus'" in msg
    [(_, msg)] = errors({**base, "timezone": " "})
    assert "may not be empty" in msg
    parsed = parse_schedule_input({**base, "timezone": "Europe/Berlin"})
    assert parsed.timezone == "Europe/Berlin"


def test_end_at_must_be_after_start_at():
    base = {"kind": "rate", "every": 1, "unit": "days"}
    for end in ("2030-01-01T00:00:00Z", "2029-12-31T00:00:00Z"):
        [(_, msg)] = errors({**base, "start_at": "2030-01-01T00:00:00Z", "end_at": end})
        assert "end_at must be after start_at" in msg
    ok = {**base, "start_at": "2030-01-01T00:00:00Z", "end_at": "2030-01-01T00:01:00Z"}
    assert isinstance(parse_schedule_input(ok), RateScheduleInput)


def test_a_one_time_schedule_takes_no_start_or_end():
    for extra in ({"start_at": "2030-02-01T00:00:00Z"}, {"end_at": "2030-03-01T00:00:00Z"}):
        [(_, msg)] = errors({"kind": "once", "at": "2030-02-01T09:00:00", **extra})
        assert "recurring schedules only" in msg


@pytest.mark.parametrize("overlap", ["skip", "allow", "buffer_one"])
def test_overlap_values(overlap: str):
    parsed = parse_schedule_input(
        {"kind": "rate", "every": 1, "unit": "days", "overlap": overlap, "paused": True}
    )
    assert parsed.overlap == overlap
    assert parsed.paused is True


def test_unknown_overlap_is_refused():
    [(loc, _)] = errors({"kind": "rate", "every": 1, "unit": "days", "overlap": "queue"})
    assert loc == ("rate", "overlap")


# --- the stored value ------------------------------------------------------------------------


def test_the_default_timezone_is_the_callers():
    schedule = build({"kind": "cron", "expression": "0 9 * * ? *"}, zone="America/New_York")
    assert schedule.timezone == "America/New_York"
    explicit = build(
        {"kind": "cron", "expression": "0 9 * * ? *", "timezone": "Europe/Berlin"},
        zone="America/New_York",
    )
    assert explicit.timezone == "Europe/Berlin"


def test_an_unknown_default_timezone_is_422():
    with pytest.raises(ValidationFailed) as caught:
        build({"kind": "rate", "every": 1, "unit": "days"}, zone="Nowhere/Land")
    assert caught.value.details[0]["loc"] == ["body", "schedule", "timezone"]


def test_once_keeps_the_wall_clock_of_its_zone():
    naive = build({"kind": "once", "at": "2030-02-01T09:00:00.5", "timezone": "Europe/Berlin"})
    assert naive.kind is ScheduleKind.ONCE
    assert naive.at == datetime(2030, 2, 1, 9, 0)
    aware = build({"kind": "once", "at": "2030-02-01T08:00:00Z", "timezone": "Europe/Berlin"})
    assert aware.at == datetime(2030, 2, 1, 9, 0)  # 08:00 UTC is 09:00 in Berlin (CET)
    assert next_run(aware, NOW) == utc(2030, 2, 1, 8)


def test_once_in_the_past_is_refused_beyond_a_minute():
    build({"kind": "once", "at": "2030-01-15T11:59:30Z"})  # 30 s ago: accepted
    with pytest.raises(ValidationFailed) as caught:
        build({"kind": "once", "at": "2030-01-15T11:58:59Z"})
    assert caught.value.details == [
        {
            "loc": ["body", "schedule", "at"],
            "message": "at is in the past: a one-time schedule must be in the future",
        }
    ]
    # A naive `at` is read in the schedule's zone: 12:30 in New York is 17:30 UTC.
    build({"kind": "once", "at": "2030-01-15T12:30:00", "timezone": "America/New_York"})
    with pytest.raises(ValidationFailed):
        build({"kind": "once", "at": "2030-01-15T06:30:00", "timezone": "America/New_York"})


def test_an_accepted_at_a_moment_ago_has_no_next_run():
    schedule = build({"kind": "once", "at": "2030-01-15T11:59:30Z"})
    assert next_run(schedule, NOW) is None
    assert preview(schedule, NOW, 5) == []


def test_start_and_end_naive_are_read_in_the_zone_and_stored_in_utc():
    schedule = build(
        {
            "kind": "cron",
            "expression": "0 9 * * ? *",
            "timezone": "Europe/Berlin",
            "start_at": "2030-07-01T00:00:00",
            "end_at": "2030-07-10T00:00:00+00:00",
        }
    )
    assert schedule.start_at == utc(2030, 6, 30, 22)
    assert schedule.end_at == utc(2030, 7, 10)
    assert schedule.start_at.tzinfo is UTC


def test_end_before_start_after_reading_naive_values_in_the_zone_is_422():
    # 00:30 naive in Tokyo is 15:30 UTC the day before: before the aware start.
    with pytest.raises(ValidationFailed) as caught:
        build(
            {
                "kind": "rate",
                "every": 1,
                "unit": "hours",
                "start_at": "2030-02-01T00:00:00Z",
                "end_at": "2030-02-01T00:30:00",
            },
            zone="Asia/Tokyo",
        )
    assert caught.value.details[0]["loc"] == ["body", "schedule", "end_at"]


def test_a_cron_expression_that_never_fires_again_is_422():
    for expression in ("0 9 30 2 ? *", "0 9 * * ? 2020"):
        with pytest.raises(ValidationFailed) as caught:
            build({"kind": "cron", "expression": expression})
        assert caught.value.details[0]["message"] == "the cron expression never fires again"


def test_a_rate_counts_from_start_at_or_from_when_it_was_set():
    unanchored = build({"kind": "rate", "every": 90, "unit": "minutes"})
    assert unanchored.origin == NOW
    assert next_run(unanchored, NOW) == NOW + timedelta(minutes=90)
    assert next_run(unanchored, NOW + timedelta(minutes=100)) == NOW + timedelta(minutes=180)
    anchored = build(
        {"kind": "rate", "every": 2, "unit": "hours", "start_at": "2030-01-20T10:15:00Z"}
    )
    assert anchored.origin == anchored.start_at == utc(2030, 1, 20, 10, 15)
    assert preview(anchored, NOW, 3) == [
        utc(2030, 1, 20, 10, 15),
        utc(2030, 1, 20, 12, 15),
        utc(2030, 1, 20, 14, 15),
    ]
    assert next_run(anchored, utc(2030, 1, 20, 11)) == utc(2030, 1, 20, 12, 15)


def test_a_rate_set_at_a_fraction_of_a_second_fires_on_whole_seconds():
    """The scheduler's firing times are whole seconds: counted from a fraction of one, the
    rate's next run after a firing was that firing's own second plus the fraction (already
    past), and `next_run_at` lagged a period behind for good."""
    set_at = NOW + timedelta(microseconds=345_678)
    schedule = build({"kind": "rate", "every": 1, "unit": "minutes"}, now=set_at)
    assert schedule.origin == NOW
    announced = next_run(schedule, set_at)
    assert announced == NOW + timedelta(minutes=1)
    assert next_run(schedule, announced) == NOW + timedelta(minutes=2)  # after that firing
    assert preview(schedule, set_at, 2) == [announced, NOW + timedelta(minutes=2)]


def test_start_and_end_with_a_fraction_of_a_second_are_kept_to_the_second():
    schedule = build(
        {
            "kind": "rate",
            "every": 1,
            "unit": "hours",
            "start_at": "2030-01-20T10:15:00.750Z",
            "end_at": "2030-01-20T12:15:00.250Z",
        }
    )
    assert schedule.origin == schedule.start_at == utc(2030, 1, 20, 10, 15)
    assert schedule.end_at == utc(2030, 1, 20, 12, 15)
    assert preview(schedule, NOW, 5) == [
        utc(2030, 1, 20, 10, 15),
        utc(2030, 1, 20, 11, 15),
        utc(2030, 1, 20, 12, 15),
    ]


def test_a_rate_stored_with_a_fraction_of_a_second_still_moves_on_after_a_firing():
    """Stored before schedules were kept to whole seconds: a firing (on the whole second, as
    the scheduler fires) is followed by the next period, not by itself plus the fraction."""
    stored = Schedule(
        kind=ScheduleKind.RATE,
        timezone="UTC",
        every=1,
        unit=RateUnit.MINUTES,
        origin=NOW + timedelta(microseconds=345_678),
        end_at=NOW + timedelta(minutes=3, microseconds=500_000),
    )
    assert next_run(stored, NOW + timedelta(minutes=1)) == NOW + timedelta(minutes=2)
    assert preview(stored, NOW, 5) == [NOW + timedelta(minutes=n) for n in (1, 2, 3)]


def test_a_rate_set_without_start_at_never_fires_at_the_moment_it_was_set():
    """Asked from a clock a little behind the one that set it (another host), the first run
    is still the one announced: a period after it was set."""
    schedule = build({"kind": "rate", "every": 1, "unit": "minutes"})
    assert next_run(schedule, NOW - timedelta(seconds=1)) == NOW + timedelta(minutes=1)
    assert preview(schedule, NOW - timedelta(hours=1), 1) == [NOW + timedelta(minutes=1)]
    anchored = build(
        {"kind": "rate", "every": 1, "unit": "minutes", "start_at": "2030-01-15T12:00:00Z"}
    )
    assert next_run(anchored, NOW - timedelta(seconds=1)) == NOW  # start_at is a firing


# --- expressions -----------------------------------------------------------------------------


def test_to_expression_for_each_kind():
    once = build({"kind": "once", "at": "2030-02-01T09:05:07", "timezone": "Europe/Berlin"})
    assert to_expression(once) == ("at(2030-02-01T09:05:07)", "Europe/Berlin")
    assert to_expression(build({"kind": "rate", "every": 1, "unit": "minutes"})) == (
        "rate(1 minute)",
        "UTC",
    )
    assert to_expression(build({"kind": "rate", "every": 1, "unit": "days"}))[0] == "rate(1 day)"
    assert to_expression(build({"kind": "rate", "every": 1, "unit": "hours"}))[0] == "rate(1 hour)"
    assert to_expression(build({"kind": "rate", "every": 3, "unit": "hours"}))[0] == "rate(3 hours)"
    cron = build({"kind": "cron", "expression": "0/15 8-17 ? * mon-fri *"}, zone="Asia/Tokyo")
    assert to_expression(cron) == ("cron(0/15 8-17 ? * MON-FRI *)", "Asia/Tokyo")


# --- next run and preview ----------------------------------------------------------------------


def test_paused_has_no_next_run_and_no_preview():
    schedule = build({"kind": "rate", "every": 1, "unit": "hours", "paused": True})
    assert schedule.paused is True
    assert next_run(schedule, NOW) is None
    assert preview(schedule, NOW, 3) == []


def test_end_at_stops_previews_and_next_run():
    schedule = build(
        {
            "kind": "cron",
            "expression": "0 9 * * ? *",
            "end_at": "2030-01-18T09:00:00Z",  # inclusive
        }
    )
    assert preview(schedule, NOW, 10) == [
        utc(2030, 1, 16, 9),
        utc(2030, 1, 17, 9),
        utc(2030, 1, 18, 9),
    ]
    assert next_run(schedule, utc(2030, 1, 18, 9)) is None
    rate = build({"kind": "rate", "every": 1, "unit": "days", "end_at": "2030-01-17T13:00:00Z"})
    assert preview(rate, NOW, 10) == [utc(2030, 1, 16, 12), utc(2030, 1, 17, 12)]


def test_start_at_delays_a_cron_schedule():
    schedule = build(
        {"kind": "cron", "expression": "0 9 * * ? *", "start_at": "2030-03-01T00:00:00Z"}
    )
    assert next_run(schedule, NOW) == utc(2030, 3, 1, 9)


def test_next_run_of_a_one_time_schedule():
    schedule = build({"kind": "once", "at": "2030-02-01T09:00:00Z"})
    assert next_run(schedule, NOW) == utc(2030, 2, 1, 9)
    assert next_run(schedule, utc(2030, 2, 1, 9)) is None  # strictly after
    assert preview(schedule, NOW, 50) == [utc(2030, 2, 1, 9)]


def test_naive_after_is_utc_and_results_are_aware_utc():
    schedule = build({"kind": "cron", "expression": "30 * * * ? *"})
    result = next_run(schedule, datetime(2030, 1, 15, 12, 0))
    assert result == utc(2030, 1, 15, 12, 30)
    assert result is not None
    assert result.tzinfo is UTC
    assert all(run.tzinfo is UTC for run in preview(schedule, NOW, 5))


@pytest.mark.parametrize("count", [0, 51, -1])
def test_preview_count_is_1_to_50(count: int):
    schedule = build({"kind": "rate", "every": 1, "unit": "hours"})
    with pytest.raises(ValueError, match=r"1\.\.50"):
        preview(schedule, NOW, count)
    assert len(preview(schedule, NOW, 50)) == 50
    assert len(preview(schedule, NOW, 1)) == 1


# --- daylight saving time --------------------------------------------------------------------
# Europe/Berlin: 2030-03-31 02:00 -> 03:00 (gap), 2030-10-27 03:00 -> 02:00 (02:xx twice).
# America/New_York: 2030-03-10 02:00 -> 03:00 (gap), 2030-11-03 02:00 -> 01:00 (01:xx twice).


@pytest.mark.parametrize(
    ("zone", "day_before", "gap_day", "day_after"),
    [
        ("Europe/Berlin", (2030, 3, 30), (2030, 3, 31), (2030, 4, 1)),
        ("America/New_York", (2030, 3, 9), (2030, 3, 10), (2030, 3, 11)),
    ],
)
def test_cron_skips_a_wall_clock_time_that_does_not_exist(zone, day_before, gap_day, day_after):
    schedule = build(
        {"kind": "cron", "expression": "30 2 * * ? *", "timezone": zone},
        now=utc(2030, 3, 1),
    )
    after = local(zone, *day_before, 0)
    assert preview(schedule, after, 2) == [
        local(zone, *day_before, 2, 30),
        local(zone, *day_after, 2, 30),
    ]
    assert next_run(schedule, local(zone, *gap_day, 0)) == local(zone, *day_after, 2, 30)


@pytest.mark.parametrize(
    ("zone", "day", "hour"),
    [("Europe/Berlin", (2030, 10, 27), 2), ("America/New_York", (2030, 11, 3), 1)],
)
def test_cron_fires_once_in_a_repeated_hour(zone, day, hour):
    schedule = build(
        {"kind": "cron", "expression": f"30 {hour} * * ? *", "timezone": zone},
        now=utc(2030, 10, 1),
    )
    runs = preview(schedule, local(zone, *day, 0), 2)
    first = local(zone, *day, hour, 30, fold=0)
    assert runs[0] == first
    assert runs[1] - runs[0] == timedelta(hours=25)  # the second pass does not fire
    # From inside the second pass, the next firing is the next day.
    assert next_run(schedule, local(zone, *day, hour, 0, fold=1)) == runs[1]


@pytest.mark.parametrize(
    ("zone", "gap"),
    [("Europe/Berlin", (2030, 3, 31, 2, 30)), ("America/New_York", (2030, 3, 10, 2, 30))],
)
def test_once_at_a_time_that_does_not_exist_never_fires(zone, gap):
    at = datetime(*gap).isoformat()
    schedule = build({"kind": "once", "at": at, "timezone": zone})
    assert to_expression(schedule) == (f"at({at})", zone)
    assert next_run(schedule, NOW) is None
    assert preview(schedule, NOW, 5) == []


@pytest.mark.parametrize(
    ("zone", "repeated"),
    [("Europe/Berlin", (2030, 10, 27, 2, 30)), ("America/New_York", (2030, 11, 3, 1, 30))],
)
def test_once_at_a_repeated_time_fires_once_at_the_first(zone, repeated):
    schedule = build({"kind": "once", "at": datetime(*repeated).isoformat(), "timezone": zone})
    first = local(zone, *repeated, fold=0)
    assert preview(schedule, NOW, 5) == [first]
    assert next_run(schedule, first) is None  # not again in the second pass


def test_a_rate_counts_elapsed_time_across_dst():
    schedule = build(
        {
            "kind": "rate",
            "every": 1,
            "unit": "days",
            "timezone": "Europe/Berlin",
            "start_at": "2030-03-30T09:00:00",
        }
    )
    runs = preview(schedule, utc(2030, 3, 1), 3)
    assert [b - a for a, b in itertools.pairwise(runs)] == [timedelta(days=1)] * 2
    assert runs[0] == local("Europe/Berlin", 2030, 3, 30, 9)
    assert runs[1] == local("Europe/Berlin", 2030, 3, 31, 10)  # 24 h later, clocks moved


# --- properties --------------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)


@st.composite
def rate_schedules(draw: st.DrawFn) -> Schedule:
    unit = draw(st.sampled_from(["minutes", "hours", "days"]))
    every = draw(st.integers(1, {"minutes": 600, "hours": 100, "days": 30}[unit]))
    data: dict[str, Any] = {
        "kind": "rate",
        "every": every,
        "unit": unit,
        "timezone": draw(st.sampled_from(ZONES)),
    }
    if draw(st.booleans()):
        data["start_at"] = draw(instants).isoformat()
    return build(data, now=draw(instants))


def _number_list(draw: st.DrawFn, low: int, high: int) -> tuple[str, set[int]]:
    """A cron field of values and ranges in low..high, and the values it allows."""
    parts: list[str] = []
    allowed: set[int] = set()
    for _ in range(draw(st.integers(1, 3))):
        first = draw(st.integers(low, high))
        if draw(st.booleans()):
            last = draw(st.integers(first, high))
            parts.append(f"{first}-{last}")
            allowed.update(range(first, last + 1))
        else:
            parts.append(str(first))
            allowed.add(first)
    return ",".join(parts), allowed


@st.composite
def cron_schedules(draw: st.DrawFn) -> tuple[Schedule, set[int], set[int], set[int] | None]:
    """A cron schedule with its allowed minutes, hours and ISO weekdays (None: any day)."""
    minutes, allowed_minutes = _number_list(draw, 0, 59)
    hours, allowed_hours = _number_list(draw, 0, 23)
    if draw(st.booleans()):
        day_of_week, allowed_days = "?", None
        day_of_month = "*"
    else:
        day_of_month = "?"
        day_of_week, eventbridge_days = _number_list(draw, 1, 7)  # 1-7 = SUN-SAT
        # As datetime.isoweekday(): 1-7 = MON-SUN.
        allowed_days = {7 if day == 1 else day - 1 for day in eventbridge_days}
    expression = f"{minutes} {hours} {day_of_month} * {day_of_week} *"
    zone = draw(st.sampled_from(ZONES))
    schedule = build({"kind": "cron", "expression": expression, "timezone": zone})
    return schedule, allowed_minutes, allowed_hours, allowed_days


@settings(max_examples=60, deadline=None)
@given(schedule=rate_schedules(), after=instants, count=st.integers(1, 20))
def test_property_rate_previews_are_evenly_spaced(schedule: Schedule, after: datetime, count: int):
    runs = preview(schedule, after, count)
    assert len(runs) == count
    assert runs[0] > after
    assert schedule.every is not None
    assert schedule.unit is not None
    period = timedelta(seconds=schedule.every * UNIT_SECONDS[schedule.unit.value])
    assert all(b - a == period for a, b in itertools.pairwise(runs))
    # Every run is on the schedule's own grid, whatever `after` is.
    assert schedule.origin is not None
    assert all((run - schedule.origin) % period == timedelta(0) for run in runs)
    assert all(run.microsecond == 0 for run in runs)  # as the scheduler's firing times


@settings(max_examples=60, deadline=None)
@given(drawn=cron_schedules(), after=instants, count=st.integers(1, 10))
def test_property_cron_previews_match_the_fields_in_the_zone(
    drawn: tuple[Schedule, set[int], set[int], set[int] | None], after: datetime, count: int
):
    schedule, minutes, hours, days = drawn
    runs = preview(schedule, after, count)
    assert len(runs) == count
    assert runs[0] > after
    assert all(a < b for a, b in itertools.pairwise(runs))
    zone = time_zone(schedule.timezone)
    for run in runs:
        wall_clock = run.astimezone(zone)
        assert wall_clock.minute in minutes
        assert wall_clock.hour in hours
        assert days is None or wall_clock.isoweekday() in days
        assert (wall_clock.second, wall_clock.microsecond) == (0, 0)


@settings(max_examples=60, deadline=None)
@given(
    schedule=st.one_of(rate_schedules(), cron_schedules().map(lambda drawn: drawn[0])),
    after=instants,
)
def test_property_next_run_is_the_first_preview(schedule: Schedule, after: datetime):
    assert next_run(schedule, after) == preview(schedule, after, 1)[0]
