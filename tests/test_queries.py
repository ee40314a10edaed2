"""storage.queries: bucket series and period totals read from the hourly rollup agree with minute buckets."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.parsing import parse_period
from sensors.counter import CounterState, Credit
from storage import queries
from storage.db import Database
from storage.wheel import SensorEvent, WheelStore

T0 = 1_764_288_000  # 2025-11-28 00:00 UTC, a whole hour


async def write_minutes(
    db: Database,
    name: str,
    buckets: dict[int, tuple[int, int]],
    events: list[SensorEvent] = (),
    flush_every: int = 0,
) -> WheelStore:
    """Write ``{minute: (measured, estimated)}`` through the real flush path (minutes + rollup).

    ``flush_every`` > 0 flushes after that many credits, so buckets and hours are upserted repeatedly.
    """
    store = await WheelStore.open(db, name)
    state = CounterState(0, 0, 0.0)
    credits = 0
    for minute, (measured, estimated) in sorted(buckets.items()):
        for revolutions, flag in ((measured, False), (estimated, True)):
            if not revolutions:
                continue
            # Split in two credits so the same minute and hour are written in different flushes.
            half = revolutions // 2
            for part in (half, revolutions - half):
                if part:
                    store.record(Credit(part, minute, minute + 30, flag), [], state)
                    credits += 1
                    if flush_every and credits % flush_every == 0:
                        await store.flush()
    for event in events:
        store.add_event(event)
    await store.flush()
    return store


async def naive_total(db: Database, wheel_id: int, start: float, end: float) -> int:
    value = await db.scalar(
        "SELECT COALESCE(SUM(revolutions), 0) FROM wheel_minutes "
        "WHERE wheel_id = ? AND minute >= ? AND minute < ?",
        (wheel_id, start, end),
    )
    return int(value)


async def test_minute_series_returns_buckets_in_range_oldest_first(db: Database) -> None:
    store = await write_minutes(
        db, "Ursula", {T0 + 120: (5, 0), T0: (3, 2), T0 + 60: (0, 4), T0 + 3600: (7, 0)}
    )
    series = await queries.minute_series(db, store.wheel_id, T0, T0 + 3600)
    assert series.minutes.tolist() == [T0, T0 + 60, T0 + 120]
    assert series.revolutions.tolist() == [5, 4, 5]
    assert series.estimated.tolist() == [2, 4, 0]
    assert series.minutes.dtype == np.int64
    assert series.total == 14
    empty = await queries.minute_series(db, store.wheel_id, T0 + 7200, T0 + 9000)
    assert empty.minutes.size == 0 and empty.total == 0


async def test_hour_series_counts_only_minutes_inside_the_period(db: Database) -> None:
    store = await write_minutes(
        db,
        "Ursula",
        {T0 + 60: (1, 0), T0 + 1800: (10, 0), T0 + 3600: (100, 5), T0 + 7260: (1000, 0)},
    )
    series = await queries.hour_series(db, store.wheel_id, T0 + 600, T0 + 7200 + 120)
    assert series.hours.tolist() == [T0, T0 + 3600, T0 + 7200]
    assert series.revolutions.tolist() == [10, 105, 1000]
    assert series.estimated.tolist() == [0, 5, 0]


async def test_events_between_filters_by_time_and_kind(db: Database) -> None:
    events = [
        SensorEvent(T0 + 10, "connected"),
        SensorEvent(T0 + 20, "battery", 87.0),
        SensorEvent(T0 + 30, "disconnected", None, "timeout"),
        SensorEvent(T0 + 99, "connected"),
    ]
    store = await write_minutes(db, "Ursula", {}, events)
    found = await queries.events_between(db, store.wheel_id, T0 + 10, T0 + 99)
    assert [e.kind for e in found] == ["connected", "battery", "disconnected"]
    assert found[1].value == 87.0 and found[2].detail == "timeout"
    only = await queries.events_between(
        db, store.wheel_id, T0, T0 + 100, ("connected", "disconnected")
    )
    assert [e.at for e in only] == [T0 + 10, T0 + 30, T0 + 99]
    assert await queries.events_between(db, store.wheel_id, T0, T0 + 100, ()) == []


async def test_binned_totals_splits_at_boundaries_inside_hours(db: Database) -> None:
    store = await write_minutes(db, "Ursula", {T0 + m * 60: (m + 1, 0) for m in range(0, 180, 7)})
    edges = [T0 - 45 * 60, T0 + 15 * 60, T0 + 3600, T0 + 3600 + 45 * 60, T0 + 4 * 3600]
    binned = await queries.binned_totals(db, store.wheel_id, edges)
    expected = [await naive_total(db, store.wheel_id, a, b) for a, b in itertools.pairwise(edges)]
    assert binned.revolutions.tolist() == expected
    assert sum(expected) == sum(m + 1 for m in range(0, 180, 7))


# --- property: rollup + edges == minute buckets, in zones with 30- and 45-minute offsets ----------------

ZONES = ("Asia/Kathmandu", "Australia/Lord_Howe", "Asia/Kolkata", "Europe/London", "UTC")
PERIODS = ("today", "yesterday", "week", "last week", "month", "tonight", "last 7 days", "3d")
SPAN_MINUTES = (
    40 * 24 * 60
)  # buckets spread over 40 days around a DST change in Lord Howe and London

bucket_maps = st.dictionaries(
    st.integers(0, SPAN_MINUTES),
    st.tuples(st.integers(0, 500), st.integers(0, 50)).filter(lambda v: v[0] + v[1] > 0),
    max_size=120,
)


async def _check_property(
    buckets: dict[int, tuple[int, int]],
    zone: str,
    period: str,
    now_minute: int,
    extra: list[int],
    flush_every: int,
) -> None:
    base = 1_774_000_000 // 3600 * 3600  # March 2026: Lord Howe and London change clocks in here
    with tempfile.TemporaryDirectory() as folder:
        async with await Database.open(Path(folder) / "p.db") as db:
            store = await write_minutes(
                db,
                "Ursula",
                {base + m * 60: v for m, v in buckets.items()},
                flush_every=flush_every,
            )
            rollup = await db.scalar("SELECT COALESCE(SUM(revolutions), 0) FROM wheel_hours")
            assert rollup == sum(m + e for m, e in buckets.values())
            wheel = store.wheel_id
            now = datetime.fromtimestamp(base + now_minute * 60 + 17, UTC).astimezone(
                ZoneInfo(zone)
            )
            chosen = parse_period(period, now=now, summary_time=time(7, 30))
            start, end = chosen.start.timestamp(), chosen.end.timestamp()
            truth = await naive_total(db, wheel, start, end)
            assert (await queries.wheel_total(db, wheel, start, end)).revolutions == truth
            assert (await queries.hour_series(db, wheel, start, end)).total == truth
            assert (await queries.minute_series(db, wheel, start, end)).total == truth
            # Local midnights (and odd instants) as bins: every bin equals its minute buckets.
            days = [
                (chosen.start + timedelta(days=i)).astimezone(UTC).timestamp() for i in range(4)
            ]
            edges = sorted({start, end, *days, *(base + e for e in extra)})
            binned = await queries.binned_totals(db, wheel, edges)
            for (a, b), got in zip(
                itertools.pairwise(edges), binned.revolutions.tolist(), strict=True
            ):
                assert got == await naive_total(db, wheel, a, b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    buckets=bucket_maps,
    zone=st.sampled_from(ZONES),
    period=st.sampled_from(PERIODS),
    now_minute=st.integers(0, SPAN_MINUTES),
    extra=st.lists(st.integers(0, SPAN_MINUTES * 60), max_size=6),
    flush_every=st.integers(0, 7),
)
def test_rollup_totals_equal_minute_buckets(
    buckets: dict[int, tuple[int, int]],
    zone: str,
    period: str,
    now_minute: int,
    extra: list[int],
    flush_every: int,
) -> None:
    asyncio.run(_check_property(buckets, zone, period, now_minute, extra, flush_every))


async def test_cut_hours_are_read_by_primary_key_ranges(db: Database) -> None:
    """The plan, not the clock: each cut hour must be an index range, never a scan of all minutes."""
    plan = await db.fetchall("EXPLAIN QUERY PLAN " + queries.CUT_HOUR_MINUTES_SQL, ("[0]", 1))
    details = [row[-1] for row in plan]
    assert details[0].startswith("SCAN cut")
    assert any("minute>? AND minute<?" in d for d in details), details
    for sql in ("SELECT * FROM wheel_hours WHERE wheel_id = ? AND hour >= ? AND hour < ?",):
        (row,) = await db.fetchall("EXPLAIN QUERY PLAN " + sql, (1, 0, 1))
        assert "PRIMARY KEY (wheel_id=? AND hour>? AND hour<?)" in row[-1]
