"""EventBridge Scheduler expression math: parsing, firing times, DST, start/end dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.schedule_expressions import (
    At,
    Cron,
    Rate,
    firings_between,
    is_one_time,
    next_firing,
    parse,
    time_zone,
    upcoming,
    validate,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(
    zone: str, year: int, month: int, day: int, hour: int, minute: int = 0, fold: int = 0
) -> datetime:
    """The UTC instant of a wall-clock time in `zone` (fold=1: the second of a repeated hour)."""
    wall_clock = datetime(year, month, day, hour, minute, tzinfo=time_zone(zone), fold=fold)
    return wall_clock.astimezone(UTC)


# --- parsing ---------------------------------------------------------------------------------


def test_parse_recognises_each_kind():
    assert parse("at(2030-01-02T03:04:05)") == At(datetime(2030, 1, 2, 3, 4, 5))
    assert parse("rate(5 minutes)") == Rate(5, "minutes")
    assert parse("rate(1 minute)") == Rate(1, "minutes")
    assert parse("rate(2 hours)").interval == timedelta(hours=2)  # type: ignore[union-attr]
    assert parse("rate(1 day)").interval == timedelta(days=1)  # type: ignore[union-attr]
    cron = parse("cron(0 12 * * ? *)")
    assert isinstance(cron, Cron)
    assert (cron.minutes, cron.hours, cron.day_of_month, cron.day_of_week) == ("0", "12", "*", "?")


def test_expressions_print_back_as_eventbridge_text():
    assert str(parse("at(2030-01-02T03:04:05)")) == "at(2030-01-02T03:04:05)"
    assert str(parse("rate(1 minutes)")) == "rate(1 minute)"
    assert str(parse("rate(3 hour)")) == "rate(3 hours)"
    assert str(parse("cron(0 9 ? * mon-fri *)")) == "cron(0 9 ? * MON-FRI *)"


def test_is_one_time():
    assert is_one_time("at(2030-01-02T03:04:05)")
    assert not is_one_time("rate(1 day)")
    assert not is_one_time("cron(0 12 * * ? *)")


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "every 5 minutes",
        "at(2030-13-01T00:00:00)",
        "at(2030-02-30T00:00:00)",
        "at(2030-01-01 00:00:00)",
        "at(2030-01-01T00:00)",
        "rate(0 minutes)",
        "rate(-1 minutes)",
        "rate(5 seconds)",
        "rate(5 weeks)",
        "rate(five minutes)",
        "rate(99999999999 days)",
        "cron(0 12 * * *)",  # five fields
        "cron(0 0 12 * * ? *)",  # seven fields
        "cron(0 12 * * * *)",  # neither day field is '?'
        "cron(0 12 ? * ? *)",  # both are
        "cron(60 12 * * ? *)",
        "cron(0 24 * * ? *)",
        "cron(0 12 32 * ? *)",
        "cron(0 12 * 13 ? *)",
        "cron(0 12 ? * 8 *)",
        "cron(0 12 ? * 0 *)",  # EventBridge day-of-week is 1-7
        "cron(0 12 ? * 6#6 *)",
        "cron(0 12 ? * FOO *)",
        "cron(0 12 * * ? 1969)",
        "cron(0 12 * * ? 2200)",
        "cron(0 12 * * ? 2030-2025)",
        "cron(H 12 * * ? *)",  # croniter's hash extension is not EventBridge
        "cron(*/0 * * * ? *)",
        "cron(0 12 1? * ? *)",
        "cron(0 12 LW,15 * ? *)",
    ],
)
def test_invalid_expressions_raise_value_error(expression):
    with pytest.raises(ValueError, match=r".+"):  # always says what is wrong
        parse(expression)


def test_non_string_raises_value_error():
    with pytest.raises(ValueError, match="string"):
        parse(42)  # type: ignore[arg-type]


def test_unknown_time_zone_raises_value_error():
    with pytest.raises(ValueError, match="time zone"):
        validate("rate(1 day)", "Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="Not/AZone"):
        next_firing("cron(0 12 * * ? *)", "Not/AZone", utc(2030, 1, 1))
    assert validate("rate(1 day)", None) == Rate(1, "days")


# --- at() ------------------------------------------------------------------------------------


def test_at_fires_once_at_wall_clock_time_in_its_zone():
    expression = "at(2030-06-01T09:30:00)"
    expected = utc(2030, 6, 1, 7, 30)  # CEST is UTC+2
    assert next_firing(expression, "Europe/Berlin", utc(2030, 1, 1)) == expected
    assert next_firing(expression, "Europe/Berlin", expected - timedelta(seconds=1)) == expected
    assert next_firing(expression, "Europe/Berlin", expected) is None
    assert next_firing(expression, "UTC", utc(2030, 1, 1)) == utc(2030, 6, 1, 9, 30)


def test_at_ignores_start_and_end():
    expression = "at(2030-06-01T09:30:00)"
    firing = next_firing(
        expression, "UTC", utc(2030, 1, 1), start=utc(2031, 1, 1), end=utc(2029, 1, 1)
    )
    assert firing == utc(2030, 6, 1, 9, 30)


def test_at_in_a_dst_gap_never_fires():
    # 2030-03-31 02:30 does not exist in Berlin (clocks jump 02:00 -> 03:00).
    assert next_firing("at(2030-03-31T02:30:00)", "Europe/Berlin", utc(2030, 1, 1)) is None


def test_at_in_a_repeated_hour_fires_at_the_first_occurrence():
    # 2030-10-27 02:30 happens twice in Berlin; the first is CEST (UTC+2).
    firing = next_firing("at(2030-10-27T02:30:00)", "Europe/Berlin", utc(2030, 1, 1))
    assert firing == utc(2030, 10, 27, 0, 30)


def test_naive_datetimes_are_taken_as_utc():
    assert next_firing("at(2030-06-01T09:30:00)", "UTC", datetime(2030, 1, 1)) == utc(
        2030, 6, 1, 9, 30
    )


# --- rate() ----------------------------------------------------------------------------------


def test_rate_counts_from_start():
    start = utc(2030, 1, 1, 12) + timedelta(seconds=30)
    assert next_firing("rate(5 minutes)", "UTC", utc(2030, 1, 1), start=start) == start
    assert next_firing("rate(5 minutes)", "UTC", start, start=start) == start + timedelta(minutes=5)
    after = start + timedelta(minutes=7)
    assert next_firing("rate(5 minutes)", "UTC", after, start=start) == start + timedelta(
        minutes=10
    )


def test_rate_without_start_counts_from_after():
    after = utc(2030, 1, 1, 8, 15) + timedelta(seconds=7)
    assert next_firing("rate(2 hours)", "UTC", after) == after + timedelta(hours=2)
    assert upcoming("rate(2 hours)", "UTC", after, 3) == [
        after + timedelta(hours=2),
        after + timedelta(hours=4),
        after + timedelta(hours=6),
    ]


def test_rate_respects_end_inclusively():
    start = utc(2030, 1, 1, 12)
    end = start + timedelta(minutes=3)
    firings = firings_between(
        "rate(1 minute)", "UTC", start - timedelta(seconds=1), utc(2031, 1, 1), start, end
    )
    assert firings == [start + timedelta(minutes=n) for n in range(4)]


def test_rate_in_days_is_24_hours_across_dst():
    # Berlin springs forward on 2030-03-31: the wall-clock time moves, the interval does not.
    start = local("Europe/Berlin", 2030, 3, 30, 12)
    firings = upcoming("rate(1 day)", "Europe/Berlin", start, 2, start=start)
    assert firings == [start + timedelta(days=1), start + timedelta(days=2)]
    assert firings[0].astimezone(time_zone("Europe/Berlin")).hour == 13


# --- cron(): fields --------------------------------------------------------------------------


def test_cron_every_day_at_noon_utc():
    assert upcoming("cron(0 12 * * ? *)", "UTC", utc(2030, 1, 1, 12), 2) == [
        utc(2030, 1, 2, 12),
        utc(2030, 1, 3, 12),
    ]


def test_cron_is_evaluated_on_the_zones_wall_clock():
    # 09:00 in New York is 14:00 UTC in winter (EST) and 13:00 UTC in summer (EDT).
    assert next_firing("cron(0 9 * * ? *)", "America/New_York", utc(2030, 1, 10)) == utc(
        2030, 1, 10, 14
    )
    assert next_firing("cron(0 9 * * ? *)", "America/New_York", utc(2030, 7, 10)) == utc(
        2030, 7, 10, 13
    )


def test_cron_day_of_week_numbers_are_sunday_based_one_to_seven():
    # 2030-01-01 is a Tuesday.
    after = utc(2030, 1, 1)
    assert next_firing("cron(0 12 ? * 1 *)", "UTC", after) == utc(2030, 1, 6, 12)  # Sunday
    assert next_firing("cron(0 12 ? * 2 *)", "UTC", after) == utc(2030, 1, 7, 12)  # Monday
    assert next_firing("cron(0 12 ? * 7 *)", "UTC", after) == utc(2030, 1, 5, 12)  # Saturday
    assert next_firing("cron(0 12 ? * SUN *)", "UTC", after) == utc(2030, 1, 6, 12)


def test_cron_weekday_ranges_and_lists():
    after = utc(2030, 1, 3, 13)  # Thursday afternoon
    by_number = upcoming("cron(0 12 ? * 2-6 *)", "UTC", after, 3)
    by_name = upcoming("cron(0 12 ? * MON-FRI *)", "UTC", after, 3)
    assert by_number == by_name == [utc(2030, 1, 4, 12), utc(2030, 1, 7, 12), utc(2030, 1, 8, 12)]
    assert upcoming("cron(0 12 ? * 2,4,6 *)", "UTC", utc(2030, 1, 1), 3) == [
        utc(2030, 1, 2, 12),  # Wednesday
        utc(2030, 1, 4, 12),  # Friday
        utc(2030, 1, 7, 12),  # Monday
    ]


def test_cron_steps_months_and_names():
    assert upcoming("cron(0/15 * * * ? *)", "UTC", utc(2030, 1, 1, 0, 50), 3) == [
        utc(2030, 1, 1, 1, 0),
        utc(2030, 1, 1, 1, 15),
        utc(2030, 1, 1, 1, 30),
    ]
    assert upcoming("cron(0 0 1 JAN,JUL ? *)", "UTC", utc(2030, 2, 1), 2) == [
        utc(2030, 7, 1),
        utc(2031, 1, 1),
    ]


def test_cron_last_day_of_month():
    assert upcoming("cron(0 18 L * ? *)", "UTC", utc(2030, 1, 1), 3) == [
        utc(2030, 1, 31, 18),
        utc(2030, 2, 28, 18),
        utc(2030, 3, 31, 18),
    ]
    assert next_firing("cron(0 18 L * ? *)", "UTC", utc(2032, 2, 1)) == utc(2032, 2, 29, 18)


def test_cron_last_given_weekday_of_month():
    # 6L: the last Friday.
    assert upcoming("cron(0 10 ? * 6L *)", "UTC", utc(2030, 1, 1), 2) == [
        utc(2030, 1, 25, 10),
        utc(2030, 2, 22, 10),
    ]
    assert next_firing("cron(0 10 ? * FRIL *)", "UTC", utc(2030, 1, 1)) == utc(2030, 1, 25, 10)


def test_cron_nth_weekday_of_month():
    # 6#3: the third Friday; 2#1: the first Monday.
    assert upcoming("cron(0 10 ? * 6#3 *)", "UTC", utc(2030, 1, 1), 2) == [
        utc(2030, 1, 18, 10),
        utc(2030, 2, 15, 10),
    ]
    assert next_firing("cron(0 10 ? * MON#1 *)", "UTC", utc(2030, 1, 1)) == utc(2030, 1, 7, 10)


def test_cron_nearest_weekday():
    # 2030-06-15 is a Saturday -> Friday the 14th; 2030-09-15 is a Sunday -> Monday the 16th.
    assert next_firing("cron(0 9 15W * ? *)", "UTC", utc(2030, 6, 1)) == utc(2030, 6, 14, 9)
    assert next_firing("cron(0 9 15W * ? *)", "UTC", utc(2030, 9, 1)) == utc(2030, 9, 16, 9)
    # 2030-05-15 is a Wednesday: the day itself.
    assert next_firing("cron(0 9 15W * ? *)", "UTC", utc(2030, 5, 1)) == utc(2030, 5, 15, 9)
    # 1W never leaves the month: 2030-06-01 is a Saturday -> Monday the 3rd.
    assert next_firing("cron(0 9 1W * ? *)", "UTC", utc(2030, 5, 31)) == utc(2030, 6, 3, 9)


def test_cron_last_weekday_of_month():
    # 2030-03-31 is a Sunday -> Friday the 29th; 2030-04-30 is a Tuesday.
    assert upcoming("cron(0 17 LW * ? *)", "UTC", utc(2030, 3, 1), 2) == [
        utc(2030, 3, 29, 17),
        utc(2030, 4, 30, 17),
    ]


def test_cron_year_field():
    assert next_firing("cron(0 0 1 1 ? 2035)", "UTC", utc(2030, 1, 1)) == utc(2035, 1, 1)
    assert next_firing("cron(0 0 1 1 ? 2035)", "UTC", utc(2035, 1, 1)) is None
    assert upcoming("cron(0 0 1 1 ? 2031-2033)", "UTC", utc(2030, 6, 1), 5) == [
        utc(2031, 1, 1),
        utc(2032, 1, 1),
        utc(2033, 1, 1),
    ]
    assert upcoming("cron(0 0 1 1 ? 2030/5)", "UTC", utc(2030, 6, 1), 2) == [
        utc(2035, 1, 1),
        utc(2040, 1, 1),
    ]
    assert upcoming("cron(0 0 1 1 ? 2031,2034)", "UTC", utc(2030, 6, 1), 3) == [
        utc(2031, 1, 1),
        utc(2034, 1, 1),
    ]
    assert next_firing("cron(0 0 * * ? 2020)", "UTC", utc(2030, 1, 1)) is None


def test_cron_that_never_matches_has_no_firing():
    assert next_firing("cron(0 0 30 2 ? *)", "UTC", utc(2030, 1, 1)) is None


def test_cron_start_and_end():
    start = utc(2030, 1, 10, 12)
    assert next_firing("cron(0 12 * * ? *)", "UTC", utc(2030, 1, 1), start=start) == start
    assert next_firing("cron(0 12 * * ? *)", "UTC", start, start=start) == utc(2030, 1, 11, 12)
    end = utc(2030, 1, 11, 12)
    assert firings_between(
        "cron(0 12 * * ? *)", "UTC", utc(2030, 1, 1), utc(2031, 1, 1), start, end
    ) == [
        start,
        end,
    ]
    assert next_firing("cron(0 12 * * ? *)", "UTC", end, start=start, end=end) is None


# --- cron(): daylight saving time ------------------------------------------------------------


def test_berlin_spring_gap_is_skipped():
    # 2030-03-31: 02:00 CET -> 03:00 CEST. A daily 02:30 does not happen that day.
    firings = upcoming("cron(30 2 * * ? *)", "Europe/Berlin", utc(2030, 3, 29, 12), 3)
    assert firings == [
        local("Europe/Berlin", 2030, 3, 30, 2, 30),
        local("Europe/Berlin", 2030, 4, 1, 2, 30),
        local("Europe/Berlin", 2030, 4, 2, 2, 30),
    ]


def test_berlin_spring_gap_every_quarter_hour():
    firings = firings_between(
        "cron(0/15 * * * ? *)",
        "Europe/Berlin",
        local("Europe/Berlin", 2030, 3, 31, 1, 30),
        local("Europe/Berlin", 2030, 3, 31, 3, 15),
    )
    wall_clock = [f.astimezone(time_zone("Europe/Berlin")).strftime("%H:%M") for f in firings]
    assert wall_clock == ["01:45", "03:00", "03:15"]
    assert firings[1] - firings[0] == timedelta(minutes=15)


def test_berlin_autumn_repeated_time_fires_once():
    # 2030-10-27: 03:00 CEST -> 02:00 CET; 02:30 happens twice and fires at the first one.
    firings = upcoming("cron(30 2 * * ? *)", "Europe/Berlin", utc(2030, 10, 26, 12), 2)
    assert firings == [utc(2030, 10, 27, 0, 30), local("Europe/Berlin", 2030, 10, 28, 2, 30)]


def test_berlin_autumn_repeated_hour_every_quarter_hour_fires_each_wall_clock_time_once():
    start = local("Europe/Berlin", 2030, 10, 27, 1, 50)
    until = local("Europe/Berlin", 2030, 10, 27, 3, 10)
    firings = firings_between("cron(0/15 * * * ? *)", "Europe/Berlin", start, until)
    zone = time_zone("Europe/Berlin")
    wall_clock = [f.astimezone(zone).strftime("%H:%M") for f in firings]
    assert wall_clock == ["02:00", "02:15", "02:30", "02:45", "03:00"]
    # 02:45 CEST is 00:45Z; 03:00 CET is 02:00Z: the second pass through 02:xx is silent.
    assert firings[3] == utc(2030, 10, 27, 0, 45)
    assert firings[4] == utc(2030, 10, 27, 2, 0)


def test_after_inside_the_second_pass_of_a_repeated_hour():
    # 02:20 CET (second pass): the 02:30 match belongs to the first pass, already over.
    after = local("Europe/Berlin", 2030, 10, 27, 2, 20, fold=1)
    assert after == utc(2030, 10, 27, 1, 20)
    firing = next_firing("cron(30 2 * * ? *)", "Europe/Berlin", after)
    assert firing == local("Europe/Berlin", 2030, 10, 28, 2, 30)


def test_new_york_spring_gap_and_autumn_overlap():
    # 2030-03-10: 02:00 EST -> 03:00 EDT; 2030-11-03: 02:00 EDT -> 01:00 EST.
    assert upcoming("cron(30 2 * * ? *)", "America/New_York", utc(2030, 3, 9, 12), 2) == [
        local("America/New_York", 2030, 3, 11, 2, 30),
        local("America/New_York", 2030, 3, 12, 2, 30),
    ]
    assert upcoming("cron(30 1 * * ? *)", "America/New_York", utc(2030, 11, 2, 12), 2) == [
        utc(2030, 11, 3, 5, 30),  # 01:30 EDT, the first occurrence
        utc(2030, 11, 4, 6, 30),  # 01:30 EST
    ]


def test_new_york_hourly_cron_across_autumn_overlap():
    firings = firings_between(
        "cron(0 * * * ? *)",
        "America/New_York",
        utc(2030, 11, 3, 3, 30),
        utc(2030, 11, 3, 8, 30),
    )
    # 00:00 EDT, 01:00 EDT, (01:00 EST skipped), 02:00 EST, 03:00 EST.
    assert firings == [
        utc(2030, 11, 3, 4),
        utc(2030, 11, 3, 5),
        utc(2030, 11, 3, 7),
        utc(2030, 11, 3, 8),
    ]


# --- firings_between / upcoming --------------------------------------------------------------


def test_firings_between_is_half_open_and_limited():
    after = utc(2030, 1, 1, 12)
    firings = firings_between("cron(* * * * ? *)", "UTC", after, after + timedelta(minutes=5))
    assert firings == [after + timedelta(minutes=n) for n in range(1, 6)]
    assert (
        len(firings_between("cron(* * * * ? *)", "UTC", after, after + timedelta(days=1), limit=7))
        == 7
    )
    assert firings_between("cron(* * * * ? *)", "UTC", after, after) == []


def test_firings_between_rate_without_start_keeps_one_origin():
    after = utc(2030, 1, 1, 12) + timedelta(seconds=10)
    firings = firings_between("rate(10 minutes)", "UTC", after, after + timedelta(minutes=35))
    assert firings == [after + timedelta(minutes=10 * n) for n in (1, 2, 3)]


def test_upcoming_stops_when_the_schedule_ends():
    assert upcoming("at(2030-01-01T00:00:00)", "UTC", utc(2029, 1, 1), 5) == [utc(2030, 1, 1)]
    assert upcoming(
        "rate(1 day)", "UTC", utc(2030, 1, 1), 5, start=utc(2030, 1, 1), end=utc(2030, 1, 3)
    ) == [
        utc(2030, 1, 2),
        utc(2030, 1, 3),
    ]
