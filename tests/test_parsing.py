"""bot.core.parsing: every accepted form, every rejection, DST-proof periods, and hostile input."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.parsing import (
    METRES_PER_MILE,
    PERIOD_HELP,
    Period,
    RunEntry,
    UserError,
    fastest_plausible_seconds,
    format_both,
    format_distance,
    format_duration,
    format_pace,
    format_speed,
    parse_clock,
    parse_day,
    parse_distance,
    parse_duration,
    parse_logrun,
    parse_period,
    parse_timezone,
    parse_units,
)

TODAY = date(2026, 11, 29)  # a Sunday
MI = METRES_PER_MILE


def assert_friendly(err: UserError, *, limit: int = 260) -> None:
    text = str(err)
    assert text, "empty message"
    assert len(text) <= limit, text
    assert "Try" in text or "I know" in text, text
    assert "Traceback" not in text and "Error" not in text, text
    assert all(ch.isprintable() for ch in text), repr(text)


def rejected(func, *args, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        func(*args, **kwargs)
    assert_friendly(info.value)
    return str(info.value)


# --- distance ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "units", "metres"),
    [
        ("5", "km", 5000.0),
        ("5", "mi", 5 * MI),
        ("5km", "mi", 5000.0),
        ("5 km", "mi", 5000.0),
        ("5 KM", "mi", 5000.0),
        ("  5   km  ", "mi", 5000.0),
        ("3.1 mi", "km", 3.1 * MI),
        ("3.1 miles", "km", 3.1 * MI),
        ("1 mile", "km", MI),
        ("5k", "mi", 5000.0),
        ("10000 m", "mi", 10000.0),
        ("10000m", "mi", 10000.0),
        ("400 metres", "mi", 400.0),
        ("400 meters", "mi", 400.0),
        ("2 kilometres", "mi", 2000.0),
        ("2 kilometers", "mi", 2000.0),
        ("5,5 km", "mi", 5500.0),
        (".5 km", "mi", 500.0),
        ("marathon", "mi", 42195.0),
        ("Half Marathon", "mi", 21097.5),
        ("half-marathon", "mi", 21097.5),
        ("1000 km", "mi", 1_000_000.0),
        ("5\u00a0km", "mi", 5000.0),  # no-break space from a phone keyboard
    ],
)
def test_parse_distance_accepts(text: str, units: str, metres: float) -> None:
    assert parse_distance(text, units) == pytest.approx(metres)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "0",
        "0 km",
        "-5 km",
        "1000.1 km",
        "622 mi",
        "5 furlongs",
        "5 km banana",
        "km",
        "nan",
        "inf km",
        "1e308",
        "10,000 m",
        "5..5 km",
        "9" * 25,
    ],
)
def test_parse_distance_rejects(text: str) -> None:
    rejected(parse_distance, text, "km")


def test_ambiguous_thousands_comma_is_explained() -> None:
    message = rejected(parse_distance, "10,000 m", "km")
    assert "10000" in message and "10.000" in message


# --- duration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("25:30", 1530),
        ("5:07", 307),
        ("1:05:00", 3900),
        ("25:30.5", 1530.5),
        ("90:00", 5400),
        ("25m", 1500),
        ("25 min", 1500),
        ("25 mins", 1500),
        ("25 minutes", 1500),
        ("1h05m", 3900),
        ("1h 5m", 3900),
        ("1h05", 3900),
        ("1 h", 3600),
        ("1.5 hours", 5400),
        ("90s", 90),
        ("1 hour 2 minutes 3 seconds", 3723),
        ("48h", 48 * 3600),
    ],
)
def test_parse_duration_accepts(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "25",
        "0:00",
        "0 min",
        "25:60",
        "1:60:00",
        "48:00:01",
        "49h",
        "25 parsecs",
        "fast",
        "1:2:3",
        "5m 1h",
        "25::30",
    ],
)
def test_parse_duration_rejects(text: str) -> None:
    rejected(parse_duration, text)


def test_bare_number_duration_suggests_units() -> None:
    assert "25 min" in rejected(parse_duration, "25")


# --- days --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", TODAY),
        ("", TODAY),
        ("Yesterday", date(2026, 11, 28)),
        ("sunday", TODAY),  # today is that day
        ("sun", TODAY),
        ("monday", date(2026, 11, 23)),
        ("mon", date(2026, 11, 23)),
        ("sat", date(2026, 11, 28)),
        ("tues", date(2026, 11, 24)),
        ("thurs", date(2026, 11, 26)),
        ("2026-11-28", date(2026, 11, 28)),
        ("2026-1-5", date(2026, 1, 5)),
        ("2025-11-29", date(2025, 11, 29)),  # exactly a year ago is still fine
    ],
)
def test_parse_day_accepts(text: str, expected: date) -> None:
    assert parse_day(text, TODAY) == expected


@pytest.mark.parametrize(
    "text",
    ["tomorrow", "2026-11-30", "2025-11-28", "2026-02-30", "2026-13-01", "someday", "28/11/2026"],
)
def test_parse_day_rejects(text: str) -> None:
    rejected(parse_day, text, TODAY)


def test_year_ago_from_leap_day() -> None:
    leap = date(2028, 2, 29)
    assert parse_day("2027-02-28", leap) == date(2027, 2, 28)
    rejected(parse_day, "2027-02-27", leap)


# --- /logrun -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "units", "expected"),
    [
        ("5", "km", RunEntry(5000.0, None, TODAY)),
        ("5 km 25:30", "mi", RunEntry(5000.0, 1530.0, TODAY)),
        ("5 km 25:30 yesterday", "mi", RunEntry(5000.0, 1530.0, date(2026, 11, 28))),
        ("5 km yesterday 25:30", "mi", RunEntry(5000.0, 1530.0, date(2026, 11, 28))),
        ("5 yesterday", "km", RunEntry(5000.0, None, date(2026, 11, 28))),
        ("5 mon", "km", RunEntry(5000.0, None, date(2026, 11, 23))),
        ("3.1 mi 25m", "km", RunEntry(3.1 * MI, 1500.0, TODAY)),
        ("5 25m", "km", RunEntry(5000.0, 1500.0, TODAY)),  # the first quantity is the distance...
        ("5 m 0:02", "km", RunEntry(5.0, 2.0, TODAY)),  # ...so "5 m" right after it is metres
        ("10000m 45 min 2026-11-20", "mi", RunEntry(10000.0, 2700.0, date(2026, 11, 20))),
        ("10 km 1h 5m", "mi", RunEntry(10000.0, 3900.0, TODAY)),
        ("10 km 2026-11-20 1h05m", "mi", RunEntry(10000.0, 3900.0, date(2026, 11, 20))),
        ("marathon 3:30:00 sat", "mi", RunEntry(42195.0, 12600.0, date(2026, 11, 28))),
        ("half marathon 1:45:00", "mi", RunEntry(21097.5, 6300.0, TODAY)),
        ("  5,5   KM   30:00  ", "mi", RunEntry(5500.0, 1800.0, TODAY)),
        ("5 km 12:36", "km", RunEntry(5000.0, 756.0, TODAY)),  # just slower than the world record
    ],
)
def test_parse_logrun_accepts(args: str, units: str, expected: RunEntry) -> None:
    entry = parse_logrun(args, default_units=units, today=TODAY)
    assert entry.distance_m == pytest.approx(expected.distance_m)
    assert entry.duration_s == (
        None if expected.duration_s is None else pytest.approx(expected.duration_s)
    )
    assert entry.day == expected.day


@pytest.mark.parametrize(
    "args",
    [
        "",
        "yesterday",
        "25:30",
        "0 km",
        "-5 km",
        "nan km",
        "inf",
        "1001 km",
        "5 parsecs",
        "5 min",
        "5 km banana",
        "5 km 25:30 banana",
        "5 km 25:30 yesterday today",
        "5 km 25",
        "5 km 0:00",
        "5 km 49h",
        "5 km 25:61",
        "5 km tomorrow",
        "5 km 2026-11-30",
        "5 km 2025-01-01",
        "5 km 12:34",  # faster than the 5000 m world record
        "100 m 0:09",
        "marathon 1:59:00",
        "1 mi 3:40",
        "100 km 2:00:00",
        "1e308",
        "1" * 400,
        "9" * 150 + " km",
        "5 km; DROP TABLE runs;--",
        "'; DROP TABLE runs;--",
        "5 km\x00 25:30",
        "5\x1b[31m km",
        "٥ km",
        "５ km",
        "5 km 25:30 \u202eyesterday",
        "5 \u212am",  # Kelvin sign, which lower() would turn into a plain k
        "x" * 5000,
    ],
)
def test_parse_logrun_rejects(args: str) -> None:
    rejected(parse_logrun, args, default_units="km", today=TODAY)


def test_error_echo_is_short_and_clean() -> None:
    message = rejected(parse_logrun, "5 km " + "banana" * 30, default_units="km", today=TODAY)
    assert "banana" * 6 not in message
    assert "…" in message
    message = rejected(parse_logrun, "5 km ban\x07ana", default_units="km", today=TODAY)
    assert "\x07" not in message


def test_world_record_table_interpolates_between_records() -> None:
    assert fastest_plausible_seconds(5000) == pytest.approx(755.36)
    assert fastest_plausible_seconds(42195) == pytest.approx(7235.0)
    between = fastest_plausible_seconds(7000)
    assert fastest_plausible_seconds(5000) < between < fastest_plausible_seconds(10000)
    # Outside the table the pace of the nearest record applies.
    assert fastest_plausible_seconds(50) == pytest.approx(4.79)
    assert fastest_plausible_seconds(84390) == pytest.approx(2 * 7235.0)


# --- periods -----------------------------------------------------------------------------------

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 29, 13, 0, tzinfo=LONDON)  # Sunday


def hours(period: Period) -> float:
    return (period.end.timestamp() - period.start.timestamp()) / 3600


def local(y: int, m: int, d: int, tz: ZoneInfo = LONDON, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=tz)


@pytest.mark.parametrize(
    ("text", "key", "label", "start", "end"),
    [
        ("today", "today", "today", local(2026, 11, 29), local(2026, 11, 30)),
        ("yesterday", "yesterday", "yesterday", local(2026, 11, 28), local(2026, 11, 29)),
        ("week", "week", "this week", local(2026, 11, 23), local(2026, 11, 30)),
        ("This Week", "week", "this week", local(2026, 11, 23), local(2026, 11, 30)),
        ("last week", "last-week", "last week", local(2026, 11, 16), local(2026, 11, 23)),
        ("month", "month", "November 2026", local(2026, 11, 1), local(2026, 12, 1)),
        ("this month", "month", "November 2026", local(2026, 11, 1), local(2026, 12, 1)),
        ("last month", "last-month", "October 2026", local(2026, 10, 1), local(2026, 11, 1)),
        ("year", "year", "2026", local(2026, 1, 1), local(2027, 1, 1)),
        ("this year", "year", "2026", local(2026, 1, 1), local(2027, 1, 1)),
        ("all", "all", "all time", local(1970, 1, 1), local(2026, 11, 30)),
        ("last 7 days", "7d", "last 7 days", NOW - timedelta(days=7), NOW),
        ("7d", "7d", "last 7 days", NOW - timedelta(days=7), NOW),
        ("last 30 days", "30d", "last 30 days", NOW - timedelta(days=30), NOW),
        ("30d", "30d", "last 30 days", NOW - timedelta(days=30), NOW),
        ("since 2026-11-01", "since:2026-11-01", "since 1 Nov", local(2026, 11, 1), NOW),
        ("since 2025-11-01", "since:2025-11-01", "since 1 Nov 2025", local(2025, 11, 1), NOW),
        (
            "2026-11-01..2026-11-15",
            "range:2026-11-01..2026-11-15",
            "1–15 Nov 2026",
            local(2026, 11, 1),
            local(2026, 11, 16),
        ),
        (
            "2026-10-28 .. 2026-11-03",
            "range:2026-10-28..2026-11-03",
            "28 Oct – 3 Nov 2026",
            local(2026, 10, 28),
            local(2026, 11, 4),
        ),
        (
            "2026-11-05..2026-11-05",
            "range:2026-11-05..2026-11-05",
            "5 Nov 2026",
            local(2026, 11, 5),
            local(2026, 11, 6),
        ),
        (
            "tonight",
            "tonight",
            "night to Mon 30 Nov 08:00",
            local(2026, 11, 29, hh=8),
            local(2026, 11, 30, hh=8),
        ),
    ],
)
def test_parse_period(text: str, key: str, label: str, start: datetime, end: datetime) -> None:
    period = parse_period(text, now=NOW)
    assert (period.key, period.label) == (key, label)
    assert period.start.timestamp() == start.timestamp()
    assert period.end.timestamp() == end.timestamp()
    assert period.start.tzinfo is LONDON and period.end.tzinfo is LONDON


def test_period_labels_across_years() -> None:
    now = local(2027, 1, 10)
    assert parse_period("2026-12-28..2027-01-03", now=now).label == "28 Dec 2026 – 3 Jan 2027"
    assert parse_period("last month", now=now).label == "December 2026"
    assert parse_period("last month", now=now).start.timestamp() == local(2026, 12, 1).timestamp()


def test_empty_period_uses_default() -> None:
    assert parse_period("", now=NOW).key == "week"
    assert parse_period("  ", now=NOW, default="today").key == "today"


def test_tonight_uses_the_next_summary_time() -> None:
    morning = local(2026, 11, 29, hh=7, mm=59)
    period = parse_period("tonight", now=morning, summary_time=time(8, 0))
    assert period.end.timestamp() == local(2026, 11, 29, hh=8).timestamp()
    at_summary = local(2026, 11, 29, hh=8)
    assert parse_period("tonight", now=at_summary).end.timestamp() == at_summary.timestamp()
    evening = parse_period("tonight", now=local(2026, 11, 29, hh=21), summary_time=time(6, 30))
    assert evening.end.timestamp() == local(2026, 11, 30, hh=6, mm=30).timestamp()
    assert hours(evening) == 24


@pytest.mark.parametrize(
    "text",
    [
        "banana",
        "last fortnight",
        "since",
        "since tomorrow",
        "since 2026-12-01",
        "since 1969-12-31",
        "0d",
        "9999d",
        "2026-11-15..2026-11-01",
        "2026-02-30..2026-03-01",
        "x" * 5000,
        "week\x00",
        "٧d",
    ],
)
def test_parse_period_rejects(text: str) -> None:
    rejected(parse_period, text, now=NOW)


def test_unknown_period_lists_what_works() -> None:
    with pytest.raises(UserError) as info:
        parse_period("fortnight", now=NOW)
    assert str(info.value) == PERIOD_HELP


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError) as info:
        parse_period("today", now=datetime(2026, 11, 29, 12))
    assert not isinstance(info.value, UserError)


# Days whose length is not 24 h, by zone. Lord Howe shifts by 30 minutes; Havana changes at midnight,
# so on its spring day 00:00 does not exist and the day starts at 01:00.
@pytest.mark.parametrize(
    ("zone", "day", "length"),
    [
        ("America/New_York", date(2026, 3, 8), 23),
        ("America/New_York", date(2026, 11, 1), 25),
        ("America/New_York", date(2026, 11, 2), 24),
        ("Europe/London", date(2026, 3, 29), 23),
        ("Europe/London", date(2026, 10, 25), 25),
        ("Australia/Lord_Howe", date(2026, 10, 4), 23.5),
        ("Australia/Lord_Howe", date(2026, 4, 5), 24.5),
        ("Asia/Kathmandu", date(2026, 3, 29), 24),
        ("America/Havana", date(2026, 3, 8), 23),
        ("America/Havana", date(2026, 11, 1), 25),
    ],
)
def test_day_lengths_across_dst(zone: str, day: date, length: float) -> None:
    tz = ZoneInfo(zone)
    now = datetime.combine(day, time(12), tzinfo=tz)
    today = parse_period("today", now=now)
    assert hours(today) == length
    assert today.start.date() == day and today.start.timetz().tzinfo is tz
    # The start is a real instant that round-trips through UTC to the same wall time.
    assert today.start.astimezone(UTC).astimezone(tz).replace(fold=0) == today.start.replace(fold=0)
    assert today.start.time() <= time(1)
    yesterday = parse_period(
        "yesterday", now=datetime.combine(day + timedelta(days=1), time(12), tzinfo=tz)
    )
    assert yesterday.start.timestamp() == today.start.timestamp()
    assert yesterday.end.timestamp() == today.end.timestamp()


def test_havana_spring_day_starts_when_the_gap_ends() -> None:
    tz = ZoneInfo("America/Havana")
    today = parse_period("today", now=datetime(2026, 3, 8, 12, tzinfo=tz))
    assert (today.start.hour, today.start.minute) == (1, 0)


@pytest.mark.parametrize(
    ("zone", "expected_lengths"),
    [
        ("America/New_York", {23 + 24 * 6, 24 * 7, 25 + 24 * 6}),
        ("Europe/London", {23 + 24 * 6, 24 * 7, 25 + 24 * 6}),
        ("Australia/Lord_Howe", {23.5 + 24 * 6, 24 * 7, 24.5 + 24 * 6}),
        ("Asia/Kathmandu", {24 * 7}),
    ],
)
def test_weeks_start_monday_and_tile_across_dst(zone: str, expected_lengths: set[float]) -> None:
    tz = ZoneInfo(zone)
    lengths = set()
    day = date(2026, 1, 1)
    previous_end = None
    while day < date(2027, 1, 1):
        now = datetime.combine(day, time(12), tzinfo=tz)
        week = parse_period("week", now=now)
        assert week.start.weekday() == 0 and week.end.weekday() == 0
        assert week.start.date() <= day < week.end.date()
        assert week.start.timestamp() <= now.timestamp() < week.end.timestamp()
        if previous_end is not None:
            assert week.start.timestamp() == previous_end
        previous_end = week.end.timestamp()
        lengths.add(hours(week))
        last = parse_period("last week", now=now)
        assert last.end.timestamp() == week.start.timestamp()
        day += timedelta(days=7 - day.weekday() if day.weekday() else 7)
    assert lengths == expected_lengths


@pytest.mark.parametrize(
    "zone", ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kathmandu"]
)
def test_months_years_and_nights_across_dst(zone: str) -> None:
    tz = ZoneInfo(zone)
    for month in range(1, 13):
        now = datetime(2026, month, 15, 12, tzinfo=tz)
        this = parse_period("month", now=now)
        last = parse_period("last month", now=now)
        assert this.start.day == 1 and this.start.hour == 0 and this.end.day == 1
        assert last.end.timestamp() == this.start.timestamp() < this.end.timestamp()
        year = parse_period("year", now=now)
        assert (
            year.start.timestamp()
            <= this.start.timestamp()
            < this.end.timestamp()
            <= year.end.timestamp()
        )
    # Consecutive nights tile exactly, so the morning report never double counts a DST hour.
    day = date(2026, 1, 1)
    previous = None
    while day < date(2027, 1, 1):
        night = parse_period(
            "tonight", now=datetime.combine(day, time(7), tzinfo=tz), summary_time=time(8)
        )
        assert night.start.timestamp() < night.end.timestamp()
        assert hours(night) in {23, 23.5, 24, 24.5, 25}
        if previous is not None:
            assert night.start.timestamp() == previous.end.timestamp()
        previous = night
        day += timedelta(days=1)


def test_rolling_periods_are_elapsed_time_across_dst() -> None:
    tz = ZoneInfo("America/New_York")
    now = datetime(2026, 3, 10, 12, tzinfo=tz)
    period = parse_period("7d", now=now)
    assert hours(period) == 7 * 24
    assert period.end == now
    # A week that contained the spring-forward: the rolling start is 11:00 local, an hour earlier on the wall.
    assert period.start.hour == 11


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("km", "km"),
        ("KM", "km"),
        ("kilometres", "km"),
        ("metric", "km"),
        ("mi", "mi"),
        ("Miles", "mi"),
        ("imperial", "mi"),
    ],
)
def test_parse_units(text: str, units: str) -> None:
    assert parse_units(text) == units


@pytest.mark.parametrize("text", ["", "furlongs", "m", "x" * 5000])
def test_parse_units_rejects(text: str) -> None:
    rejected(parse_units, text)


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("Europe/London", "Europe/London"),
        ("europe/london", "Europe/London"),
        ("AMERICA/NEW_YORK", "America/New_York"),
        ("America/New York", "America/New_York"),
        ("kathmandu", "Asia/Kathmandu"),
        ("australia/lord_howe", "Australia/Lord_Howe"),
        ("utc", "UTC"),
    ],
)
def test_parse_timezone(text: str, zone: str) -> None:
    assert parse_timezone(text) == zone
    ZoneInfo(zone)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Mars/Olympus",
        "../../etc/passwd",
        "+02:00",
        "indianapolis",
        "Europe/",
        "x" * 5000,
        "europe\x00",
    ],
)
def test_parse_timezone_rejects(text: str) -> None:
    rejected(parse_timezone, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("08:00", time(8)),
        ("7:30", time(7, 30)),
        ("23:59", time(23, 59)),
        ("0:00", time(0)),
        ("7", time(7)),
    ],
)
def test_parse_clock(text: str, expected: time) -> None:
    assert parse_clock(text) == expected


@pytest.mark.parametrize(
    "text", ["", "25:00", "24:00", "7:60", "7:5", "seven", "7pm", "-1:00", "07:00:00"]
)
def test_parse_clock_rejects(text: str) -> None:
    rejected(parse_clock, text)


# --- formatting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metres", "units", "precision", "text"),
    [
        (5000, "km", None, "5.00 km"),
        (5000, "mi", None, "3.11 mi"),
        (850, "km", None, "850 m"),
        (999.4, "km", None, "999 m"),
        (999.6, "km", None, "1.00 km"),
        (850, "mi", None, "0.53 mi"),
        (42195, "km", 1, "42.2 km"),
        (42195, "mi", 0, "26 mi"),
        (850, "km", 2, "0.85 km"),
        (math.nan, "km", None, "–"),
    ],
)
def test_format_distance(metres: float, units: str, precision: int | None, text: str) -> None:
    assert format_distance(metres, units, precision=precision) == text


def test_format_both_and_speed_and_pace() -> None:
    assert format_both(5000, "km") == "5.00 km (3.11 mi)"
    assert format_both(5000, "mi") == "3.11 mi (5.00 km)"
    assert format_pace(MI, 492, "mi") == "8:12 /mi"
    assert format_pace(5000, 1530, "km") == "5:06 /km"
    assert format_pace(0, 1530, "km") == "– /km"
    assert format_speed(1.42, "mi") == "3.2 mph"
    assert format_speed(1.42, "km") == "5.1 km/h"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1530, "25:30"),
        (3900, "1:05:00"),
        (45, "0:45"),
        (59.6, "1:00"),
        (0, "0:00"),
        (50 * 3600, "50:00:00"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# --- properties --------------------------------------------------------------------------------

ZONES = st.sampled_from(
    ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]
)
NASTY = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="0123456789 .,:-kmsih", max_size=40),
    st.lists(
        st.sampled_from(
            [
                "5",
                "km",
                "mi",
                "m",
                "25:30",
                "1h",
                "05m",
                "yesterday",
                "mon",
                "2026-11-01",
                "..",
                "since",
                "last",
                "7d",
                "week",
                "1e308",
                "-",
                "٥",
                "\x00",
                "\u202e",
                "9" * 400,
                "'",
                ";",
                ",",
            ]
        ),
        max_size=8,
    ).map(" ".join),
)


@settings(max_examples=300, deadline=None)
@given(text=NASTY, units=st.sampled_from(["km", "mi"]))
def test_parse_logrun_only_raises_user_error(text: str, units: str) -> None:
    try:
        entry = parse_logrun(text, default_units=units, today=TODAY)
    except UserError as err:
        assert_friendly(err)
    else:
        assert 0 < entry.distance_m <= 1_000_000
        assert entry.duration_s is None or 0 < entry.duration_s <= 48 * 3600
        assert entry.day <= TODAY


@settings(max_examples=300, deadline=None)
@given(
    text=NASTY,
    zone=ZONES,
    moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
    summary=st.times(),
)
def test_parse_period_only_raises_user_error(
    text: str, zone: str, moment: datetime, summary: time
) -> None:
    now = moment.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
    try:
        period = parse_period(text, now=now, summary_time=summary)
    except UserError as err:
        assert_friendly(err, limit=max(260, len(PERIOD_HELP)))
    else:
        assert period.start.timestamp() < period.end.timestamp()


@settings(max_examples=200, deadline=None)
@given(
    zone=ZONES,
    moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
    word=st.sampled_from(
        [
            "today",
            "yesterday",
            "week",
            "last week",
            "month",
            "last month",
            "year",
            "all",
            "7d",
            "30d",
            "tonight",
            "since yesterday",
        ]
    ),
    summary=st.times(),
)
def test_periods_are_ordered_and_natural_ones_contain_now(
    zone: str, moment: datetime, word: str, summary: time
) -> None:
    now = moment.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
    period = parse_period(word, now=now, summary_time=summary)
    assert period.start.timestamp() < period.end.timestamp()
    if word in ("today", "week", "month", "year", "all"):
        assert period.start.timestamp() <= now.timestamp() < period.end.timestamp()
        assert period.start.time() <= time(1)  # local midnight, or the end of a DST gap at midnight
    if word == "tonight":
        assert now.timestamp() <= period.end.timestamp()


@settings(max_examples=300, deadline=None)
@given(
    metres=st.floats(min_value=10, max_value=999_000),
    units=st.sampled_from(["km", "mi"]),
    precision=st.one_of(st.none(), st.integers(min_value=2, max_value=4)),
)
def test_formatted_distances_round_trip(metres: float, units: str, precision: int | None) -> None:
    text = format_distance(metres, units, precision=precision)
    unit_m = 1000.0 if units == "km" else MI
    digits = 2 if precision is None else precision
    tolerance = 0.5 if text.endswith(" m") else 0.5 * 10**-digits * unit_m
    assert parse_distance(text, "km" if units == "mi" else "mi") == pytest.approx(
        metres, abs=tolerance * 1.0001
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ("5 km tomorrow", "future"),
        ("5 km 2025-01-01", "year ago"),
        ("5 km 12:00", "world record"),
        ("5 furlongs", "unit"),
        ("5 km banana", "banana"),
        ("1001 km", "1000 km"),
        ("5 km 49h", "48 hours"),
        ("0 km", "more than zero"),
    ],
)
def test_logrun_messages_say_what_is_wrong(args: str, fragment: str) -> None:
    assert fragment in rejected(parse_logrun, args, default_units="km", today=TODAY)
    assert "Try: /logrun 5 km 25:30 yesterday" in rejected(
        parse_logrun, args, default_units="km", today=TODAY
    )


def test_since_accepts_day_words() -> None:
    period = parse_period("since monday", now=NOW)
    assert period.start.timestamp() == local(2026, 11, 23).timestamp()
    assert period.end == NOW


# --- dates in words (issue 16) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "day", "duration"),
    [
        ("5 km 25:30 last tuesday", date(2026, 11, 24), 1530.0),  # TODAY is a Sunday
        ("5 km last sunday", date(2026, 11, 22), None),  # "last": never today itself
        ("5 km sunday", TODAY, None),
        ("5 km 25:30 28 nov", date(2026, 11, 28), 1530.0),
        ("5 km 28 November 25:30", date(2026, 11, 28), 1530.0),
        ("5 km nov 28", date(2026, 11, 28), None),
        ("5 km 28th nov 2026", date(2026, 11, 28), None),
        ("5 km 1 dec", date(2025, 12, 1), None),  # no year: the latest one so far
        ("5 km 25 min", TODAY, 1500.0),  # "min" is no month
        ("5 km 1h05m 2026-11-20", date(2026, 11, 20), 3900.0),
    ],
)
def test_logrun_reads_dates_in_words(args: str, day: date, duration: float | None) -> None:
    entry = parse_logrun(args, default_units="km", today=TODAY)
    assert (entry.day, entry.duration_s) == (day, duration)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ("5 km 11/30", "like 30 Nov"),
        ("5 km 25:30 1/2", "Is it 1 Feb or 2 Jan?"),
        ("5 km 30.11.", "like 30 Nov"),
        ("5 km 31 feb", "isn't a real date"),
        ("5 km 12/14/2026", "like 14 Dec 2026"),
    ],
)
def test_numeric_dates_are_refused_with_a_hint(args: str, said: str) -> None:
    with pytest.raises(UserError, match="") as caught:
        parse_logrun(args, default_units="km", today=TODAY)
    assert said in str(caught.value)
    assert "time I can read" not in str(caught.value)  # the date is blamed, not the time


def test_periods_take_dates_in_words() -> None:
    now = datetime(2026, 11, 29, 12, tzinfo=ZoneInfo("Europe/London"))
    assert parse_period("since 20 nov", now=now).key == "since:2026-11-20"
    assert parse_period("since last monday", now=now).key == "since:2026-11-23"
    # A range's end without a year is the first one after its start, across New Year too.
    assert parse_period("28 dec..3 jan", now=now).key == "range:2025-12-28..2026-01-03"
    with pytest.raises(UserError, match="day/month or month/day"):
        parse_period("since 11/20", now=now)
