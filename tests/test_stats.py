"""bot.core.stats: night statistics, sessions, records and sparklines from bucket arrays."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.core import hours, stats
from storage.queries import MinuteSeries

LONDON = ZoneInfo("Europe/London")
KATHMANDU = ZoneInfo("Asia/Kathmandu")
# 2026-11-28 20:00 UTC (20:00 in London) to 2026-11-29 08:00 UTC
NIGHT_START = int(datetime(2026, 11, 28, 20, tzinfo=UTC).timestamp())
NIGHT_END = NIGHT_START + 12 * 3600


def series(buckets: dict[int, int], estimated: dict[int, int] | None = None) -> MinuteSeries:
    """``{minutes after NIGHT_START: revolutions}`` as a MinuteSeries."""
    estimated = estimated or {}
    keys = sorted(set(buckets) | set(estimated))
    return MinuteSeries(
        NIGHT_START,
        NIGHT_END,
        np.array([NIGHT_START + k * 60 for k in keys], dtype=np.int64),
        np.array([buckets.get(k, 0) + estimated.get(k, 0) for k in keys], dtype=np.int64),
        np.array([estimated.get(k, 0) for k in keys], dtype=np.int64),
    )


def test_sessions_split_on_two_still_minutes() -> None:
    # 0,1,2 | one still minute (3) joins 4 | two still minutes (7, 8) split before 9
    found = stats.sessions(series({0: 10, 1: 20, 2: 30, 4: 5, 5: 5, 6: 5, 9: 40, 30: 1}))
    assert found == [
        stats.Session(NIGHT_START, NIGHT_START + 7 * 60, 75),
        stats.Session(NIGHT_START + 9 * 60, NIGHT_START + 10 * 60, 40),
        stats.Session(NIGHT_START + 30 * 60, NIGHT_START + 31 * 60, 1),
    ]
    assert stats.sessions(series({})) == []


def test_night_stats_match_hand_computed_values() -> None:
    circumference = 0.2 * np.pi
    data = {0: 100, 1: 120, 2: 80, 65: 50, 66: 150, 67: 150, 68: 10, 200: 30}
    night = stats.night_stats(series(data, {300: 60, 301: 60}), circumference, LONDON)
    total = sum(data.values()) + 120
    assert night.revolutions == total
    assert night.estimated_revolutions == 120
    assert night.distance_m == pytest.approx(total * circumference)
    assert night.active_minutes == len(data)  # estimated minutes are not time on the wheel
    assert night.sessions == 3
    assert night.longest_session_s == 240
    assert night.longest_session_start == NIGHT_START + 65 * 60
    assert night.top_speed_mps == pytest.approx(150 * circumference / 60)
    assert night.top_speed_at == NIGHT_START + 66 * 60  # the first of two equal minutes
    assert [b.hour for b in night.hourly_m] == [20, 21, 22, 23, 0, 1, 2, 3, 4, 5, 6, 7]
    assert [round(b.distance_m / circumference) for b in night.hourly_m] == [
        300,
        360,
        0,
        30,
        0,
        120,
        0,
        0,
        0,
        0,
        0,
        0,
    ]
    assert night.most_active_hour == 21
    assert sum(b.distance_m for b in night.hourly_m) == pytest.approx(night.distance_m)


def test_hourly_bins_follow_local_clock_hours_with_45_minute_offset() -> None:
    # Kathmandu is UTC+05:45, so local hours begin at :15 UTC.
    night = stats.night_stats(series({0: 1, 14: 2, 15: 4, 74: 8, 75: 16}), 1.0, KATHMANDU)
    first = night.hourly_m[0]
    assert (first.hour, first.distance_m) == (1, 3.0)  # 01:45-01:59 local: minutes 0..14
    assert (night.hourly_m[1].hour, night.hourly_m[1].distance_m) == (2, 12.0)
    assert night.hourly_m[1].start == NIGHT_START + 15 * 60
    assert (night.hourly_m[2].hour, night.hourly_m[2].distance_m) == (3, 16.0)
    assert len(night.hourly_m) == 13  # a partial first and last local hour
    assert sum(b.distance_m for b in night.hourly_m) == 31.0


def test_hourly_bins_show_a_repeated_hour_when_clocks_go_back() -> None:
    start = int(datetime(2026, 10, 25, 0, tzinfo=UTC).timestamp())  # London: 01:00 BST
    s = MinuteSeries(
        start,
        start + 3 * 3600,
        np.array([start, start + 3600], dtype=np.int64),
        np.array([5, 7], dtype=np.int64),
        np.zeros(2, dtype=np.int64),
    )
    bins = hours.hourly_bins(s, 1.0, LONDON)
    assert [(b.hour, b.distance_m) for b in bins] == [(1, 5.0), (1, 7.0), (2, 0.0)]


def test_empty_night() -> None:
    night = stats.night_stats(series({}), 0.6, LONDON)
    assert night.distance_m == 0 and night.sessions == 0 and night.longest_session_start is None
    assert night.top_speed_at is None and night.most_active_hour is None
    assert len(night.hourly_m) == 12


def test_records_and_streak() -> None:
    active = series({0: 10, 1: 10, 2: 10, 500: 90, 900: 5})
    nights = np.array([NIGHT_START - 86400, NIGHT_START, NIGHT_START + 86400])
    found = stats.records(active, nights, np.array([100, 300, 300]), 2.0)
    assert found.longest_night_m == 600 and found.longest_night_start == NIGHT_START
    assert found.fastest_minute_mps == pytest.approx(3.0)
    assert found.fastest_minute_at == NIGHT_START + 500 * 60
    assert (found.longest_session_s, found.longest_session_start) == (180, NIGHT_START)
    assert stats.streak([2000, 100, 1700, 1609.344, 5000], 1609.344) == 3
    assert stats.streak([2000, 2000], 1609.344) == 2
    assert stats.streak([2000, 10], 1609.344) == 0
    assert stats.streak([], 1609.344) == 0


def test_sparkline() -> None:
    assert stats.sparkline([0, 1, 50, 100]) == "▁▂▅█"
    assert stats.sparkline([0, 0]) == "▁▁"
    assert stats.sparkline([]) == ""
    assert len(stats.sparkline(np.arange(24))) == 24


def test_utc_offsets_per_instant() -> None:
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    # Lord Howe leaves DST (+11) for +10:30 on 2026-04-05 at 02:00 local = 2026-04-04 15:00 UTC.
    change = int(datetime(2026, 4, 4, 15, tzinfo=UTC).timestamp())
    offsets = hours.utc_offsets(np.array([change - 60, change, change + 60]), lord_howe)
    assert offsets.tolist() == [11 * 3600, 37800, 37800]


@settings(max_examples=150, deadline=None)
@given(
    active=st.dictionaries(st.integers(0, 150), st.integers(1, 200), max_size=100),
    cuts=st.lists(st.integers(0, 151 * 60), max_size=5),
)
@example(active=dict.fromkeys(range(10), 5), cuts=[5 * 60 + 7])
def test_folding_minutes_in_pieces_equals_folding_them_at_once(
    active: dict[int, int], cuts: list[int]
) -> None:
    whole = series(active)
    end = NIGHT_START + 151 * 60
    whole = MinuteSeries(NIGHT_START, end, whole.minutes, whole.revolutions, whole.estimated)
    edges = [NIGHT_START, *sorted(NIGHT_START + c for c in cuts), end]
    bests = None
    for a, b in itertools.pairwise(edges):
        inside = (whole.minutes >= a) & (whole.minutes < b)
        chunk = MinuteSeries(
            a, b, whole.minutes[inside], whole.revolutions[inside], whole.estimated[inside]
        )
        bests = stats.fold_minutes(bests, chunk)
    at_once = stats.fold_minutes(None, whole)
    assert bests is not None
    assert (bests.fastest_revolutions, bests.fastest_at) == (
        at_once.fastest_revolutions,
        at_once.fastest_at,
    )
    assert bests.longest == at_once.longest
    # And both agree with a plain loop over the minutes.
    found = stats.sessions(whole)
    longest = max(found, key=lambda s: (s.seconds, -s.start)) if found else None
    assert at_once.longest == longest
    if active:
        top = max(active.values())
        first = min(k for k, v in active.items() if v == top)
        assert (at_once.fastest_revolutions, at_once.fastest_at) == (top, NIGHT_START + first * 60)


def minute_by_minute_bins(s: MinuteSeries, tz: ZoneInfo) -> list[tuple[int, int, float]]:
    """The reference: ask zoneinfo about every minute of the night and group equal clock hours."""
    first = -(-int(np.ceil(s.start)) // 60) * 60
    per_minute = dict(zip(s.minutes.tolist(), s.revolutions.tolist(), strict=True))
    bins: list[tuple[int, int, float]] = []
    last_key = None
    for minute in range(first, int(np.ceil(s.end)), 60):
        if minute >= s.end:
            break
        local = datetime.fromtimestamp(minute, UTC).astimezone(tz)
        key = (local.replace(minute=0, second=0), local.utcoffset())
        if key != last_key:
            bins.append((minute, local.hour, 0.0))
            last_key = key
        start, hour, total = bins[-1]
        bins[-1] = (start, hour, total + per_minute.get(minute, 0))
    return bins


ZONES = ["Europe/London", "Australia/Lord_Howe", "Asia/Kathmandu", "America/St_Johns", "UTC"]
# Days that hold a clock change in one of ZONES, and ordinary ones.
CHANGE_DAYS = [
    datetime(2026, 3, 29, tzinfo=UTC),
    datetime(2026, 10, 25, tzinfo=UTC),
    datetime(2026, 4, 4, tzinfo=UTC),
    datetime(2026, 10, 3, tzinfo=UTC),
    datetime(2026, 3, 8, tzinfo=UTC),
    datetime(2026, 11, 1, tzinfo=UTC),
    datetime(2026, 7, 1, tzinfo=UTC),
]


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    day=st.sampled_from(CHANGE_DAYS),
    start_s=st.integers(-30 * 3600, 30 * 3600),
    length_s=st.integers(0, 26 * 3600),
    active=st.dictionaries(st.integers(-10, 26 * 60), st.integers(1, 99), max_size=60),
)
@example(zone="Europe/London", day=CHANGE_DAYS[1], start_s=-3 * 3600, length_s=12 * 3600, active={})
def test_hourly_bins_equal_asking_the_zone_about_every_minute(
    zone: str, day: datetime, start_s: int, length_s: int, active: dict[int, int]
) -> None:
    # Constant-offset nights take a shortcut; nights across a clock change take the general path.
    tz = ZoneInfo(zone)
    start = day.timestamp() + start_s
    first = -(-int(start) // 60) * 60
    minutes = np.array(sorted(first + 60 * m for m in active), dtype=np.int64)
    revolutions = np.array([active[(m - first) // 60] for m in minutes.tolist()], dtype=np.int64)
    s = MinuteSeries(start, start + length_s, minutes, revolutions, np.zeros_like(revolutions))
    found = [(b.start, b.hour, b.distance_m) for b in hours.hourly_bins(s, 1.0, tz)]
    assert found == minute_by_minute_bins(s, tz)
