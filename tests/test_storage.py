"""The store: migrations, WAL, the exact minute split, buffered flushes, rollups and period totals."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.counter import CounterState, Credit
from storage import queries
from storage.db import MIGRATIONS, Database, StorageError
from storage.wheel import SensorEvent, WheelStore, spread_credit


async def test_open_creates_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    async with await Database.open(path) as db:
        assert await db.scalar("PRAGMA user_version") == len(MIGRATIONS)
        assert (await db.scalar("PRAGMA journal_mode")).lower() == "wal"
        assert await db.scalar("PRAGMA foreign_keys") == 1
    # Reopening applies nothing twice.
    async with await Database.open(path) as db:
        assert await db.scalar("PRAGMA user_version") == len(MIGRATIONS)


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    connection.close()
    with pytest.raises(StorageError, match="newer hamsterbot"):
        await Database.open(path)


async def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        await Database.open(tmp_path / "nope" / "h.db")


async def test_transaction_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO wheels (name, created_at) VALUES ('x', 0)")
            raise RuntimeError("boom")
    assert await db.scalar("SELECT COUNT(*) FROM wheels") == 0
    commits = db.commits
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO wheels (name, created_at) VALUES ('x', 0)")
    assert db.commits == commits + 1


def test_spread_short_credit_lands_in_its_minute() -> None:
    credit = Credit(revolutions=3, start=120.5, end=121.5, estimated=False)
    assert spread_credit(credit) == [(120, 3)]


def test_spread_of_nothing_within_a_minute_is_no_bucket() -> None:
    assert spread_credit(Credit(revolutions=0, start=120.5, end=121.5, estimated=False)) == []


def test_spread_across_a_minute_boundary_is_proportional() -> None:
    credit = Credit(revolutions=10, start=55.0, end=65.0, estimated=False)
    assert spread_credit(credit) == [(0, 5), (60, 5)]


def test_spread_gap_is_even_and_exact() -> None:
    # 100 revolutions over 10 minutes: 10 a minute.
    credit = Credit(revolutions=100, start=600.0, end=1200.0, estimated=True)
    assert spread_credit(credit) == [(600 + 60 * i, 10) for i in range(10)]


def test_spread_few_revolutions_over_a_long_gap() -> None:
    credit = Credit(revolutions=3, start=0.0, end=3600.0 * 24, estimated=True)
    buckets = spread_credit(credit)
    assert sum(n for _, n in buckets) == 3
    assert len(buckets) == 3  # evenly placed, not bunched at one end
    assert buckets[0][0] >= 6 * 3600


@settings(max_examples=300, deadline=None)
@given(
    revolutions=st.integers(1, 50_000),
    start=st.floats(1.6e9, 1.9e9, allow_nan=False),
    length=st.floats(0, 7 * 86400, allow_nan=False),
)
def test_spread_is_exact_and_inside_the_interval(
    revolutions: int, start: float, length: float
) -> None:
    credit = Credit(revolutions, start, start + length, length > 90)
    buckets = spread_credit(credit)
    assert sum(n for _, n in buckets) == revolutions
    assert all(n > 0 for _, n in buckets)
    minutes = [m for m, _ in buckets]
    assert minutes == sorted(set(minutes))
    assert minutes[0] >= int(start) // 60 * 60 - 60
    assert minutes[-1] <= int(start + length) // 60 * 60


async def test_flush_writes_buckets_rollup_state_and_events_in_one_commit(db: Database) -> None:
    store = await WheelStore.open(db, "Ursula")
    state = CounterState(last_raw=110, high_water=110, last_at=3605.0)
    store.record(Credit(10, 3595.0, 3605.0, False), [SensorEvent(3605.0, "baseline")], state)
    commits = db.commits
    assert await store.flush() is True
    assert db.commits == commits + 1
    minutes = await db.fetchall("SELECT minute, revolutions FROM wheel_minutes ORDER BY minute")
    assert minutes == [(3540, 5), (3600, 5)]
    hours = await db.fetchall("SELECT hour, revolutions FROM wheel_hours ORDER BY hour")
    assert hours == [(0, 5), (3600, 5)]
    assert await db.fetchone("SELECT last_raw, high_water, last_at FROM wheel_state") == (
        110,
        110,
        3605.0,
    )
    assert await db.scalar("SELECT kind FROM sensor_events") == "baseline"
    reopened = await WheelStore.open(db, "Ursula")
    assert reopened.state == state
    assert reopened.wheel_id == store.wheel_id


async def test_idle_wheel_writes_nothing(db: Database) -> None:
    store = await WheelStore.open(db, "Ursula")
    commits = db.commits
    # Stationary repeats only move the in-memory state.
    store.record(None, [], CounterState(5, 5, 100.0))
    store.record(None, [], CounterState(5, 5, 101.0))
    assert await store.flush() is False
    assert db.commits == commits


async def test_failed_flush_keeps_the_buffer(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    broken = await Database.open(path)
    store = await WheelStore.open(broken, "Ursula")
    store.record(Credit(7, 10.0, 11.0, False), [], CounterState(7, 7, 11.0))
    await broken.close()
    with pytest.raises(ValueError):  # aiosqlite: "no active connection"
        await store.flush()
    assert store.pending
    async with await Database.open(path) as db:
        store._db = db  # the same buffer, a working database again
        assert await store.flush() is True
        assert await db.scalar("SELECT SUM(revolutions) FROM wheel_minutes") == 7
        assert await db.scalar("SELECT last_raw FROM wheel_state") == 7


@settings(max_examples=25, deadline=None)
@given(
    buckets=st.lists(
        st.tuples(st.integers(0, 3 * 24 * 60), st.integers(1, 500)), min_size=0, max_size=60
    ),
    window=st.tuples(st.floats(0, 3 * 86400), st.floats(0, 3 * 86400)),
)
async def test_period_total_from_rollup_equals_sum_of_minutes(
    tmp_path_factory: pytest.TempPathFactory,
    buckets: list[tuple[int, int]],
    window: tuple[float, float],
) -> None:
    base = 1_764_000_000  # 2025-11-24, a whole hour
    path = tmp_path_factory.mktemp("rollup") / "r.db"
    async with await Database.open(path) as db:
        store = await WheelStore.open(db, "Ursula")
        for minute, revolutions in buckets:
            at = base + minute * 60 + 30
            store.record(Credit(revolutions, at - 1, at, False), [], CounterState(0, 0, at))
            if minute % 3 == 0:
                await store.flush()
        await store.flush()
        start, end = base + min(window), base + max(window)
        total = await queries.wheel_total(db, store.wheel_id, start, end)
        expected = sum(r for m, r in buckets if start <= base + m * 60 < end)
        assert total.revolutions == expected


async def test_overlapping_flushes_keep_state_behind_unwritten_buckets(tmp_path: Path) -> None:
    """A flush that fails must not be overtaken by a later one that stores newer counter state."""
    async with await Database.open(tmp_path / "h.db") as db:
        store = await WheelStore.open(db, "Ursula")
        store.record(Credit(5, 10.0, 11.0, False), [], CounterState(5, 5, 11.0))
        real_write = store._write
        calls = 0

        async def first_write_fails(*args):
            nonlocal calls
            calls += 1
            if calls == 1:
                await asyncio.sleep(0.01)  # the second flush arrives while this one is writing
                raise OSError("disk I/O error")
            await real_write(*args)

        store._write = first_write_fails
        first = asyncio.create_task(store.flush())
        await asyncio.sleep(0)
        store.record(Credit(3, 11.0, 12.0, False), [], CounterState(8, 8, 12.0))
        second = asyncio.create_task(store.flush())
        with pytest.raises(OSError):
            await first
        assert await second is True
        # The second flush wrote both credits together with the newest state.
        assert await db.scalar("SELECT SUM(revolutions) FROM wheel_minutes") == 8
        assert await db.scalar("SELECT high_water FROM wheel_state") == 8


class _CancelOn:
    """Wraps the connection: cancels ``victim`` the moment ``statement`` is sent to SQLite's thread,
    as SIGTERM or a timed-out chat command would."""

    def __init__(self, connection, statement: str) -> None:
        self._connection, self.statement, self.victim = connection, statement, None

    def __getattr__(self, name: str):
        return getattr(self._connection, name)

    def execute(self, sql: str, *args):
        if sql == self.statement and self.victim is not None:
            self.victim.cancel()
            self.victim = None
        return self._connection.execute(sql, *args)


@pytest.mark.parametrize("statement", ["BEGIN IMMEDIATE", "COMMIT"])
async def test_a_cancelled_flush_writes_each_revolution_exactly_once(
    tmp_path: Path, statement: str
) -> None:
    async with await Database.open(tmp_path / "h.db") as db:
        store = await WheelStore.open(db, "Ursula")
        store.record(Credit(100, 1000.0, 1010.0, False), [], CounterState(100, 100, 1010.0))
        real = db._connection
        trap = _CancelOn(real, statement)
        db._connection = trap
        flush = asyncio.create_task(store.flush())
        trap.victim = flush
        with pytest.raises(asyncio.CancelledError):
            await flush
        db._connection = real
        await store.flush()  # what Runtime.close does after cancelling the flusher
        assert await db.scalar("SELECT SUM(revolutions) FROM wheel_minutes") == 100
        assert await db.scalar("SELECT SUM(revolutions) FROM wheel_hours") == 100
        # The connection is not left inside a transaction: other writes still work.
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO wheels (name, created_at) VALUES ('Pip', 0)")
        assert not real.in_transaction
