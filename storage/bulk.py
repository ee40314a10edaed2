"""The benchmarks' SQL: a history written straight into the tables, and the naive baselines.

The query benchmark needs five years of nights, which the pipeline would take hours to write: ``load_history``
fills the tables in a few large transactions (with the rollups exactly as ``WheelStore`` keeps them). The
baselines are what the rollups and the buffered flushes save: ``naive_wheel_total`` sums every minute bucket,
``NaiveReadings`` stores one row per notification in a transaction of its own. Nothing of the bot uses this.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from storage.db import Database, Query, Rows
from storage.queries import WheelTotal

Row = Sequence[Any]


def load_history(
    path: Path,
    wheel: str,
    minutes: Iterable[Row],
    hours: Iterable[Row],
    days: Iterable[Row],
) -> None:
    """Wheel 1 called ``wheel`` with its (minute|hour|day, revolutions, estimated) rows."""
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("INSERT INTO wheels (id, name, created_at) VALUES (1, ?, 0)", (wheel,))
        conn.executemany(
            "INSERT INTO wheel_minutes (wheel_id, minute, revolutions, estimated) VALUES (1, ?, ?, ?)",
            minutes,
        )
        conn.executemany(
            "INSERT INTO wheel_hours (wheel_id, hour, revolutions, estimated) VALUES (1, ?, ?, ?)",
            hours,
        )
        conn.executemany(
            "INSERT INTO wheel_days (wheel_id, day, revolutions, estimated) VALUES (1, ?, ?, ?)",
            days,
        )


def load_people(
    path: Path, chats: Iterable[Row], people: Iterable[Row], runs: Iterable[Row]
) -> None:
    """Chats (id, chat_key, title) on Telegram, people (id, user_key, name, units) and runs
    (chat_id, person_id, distance_m, duration_s, day, ran_at, logged_at); then ANALYZE."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        with conn:
            conn.executemany(
                "INSERT INTO chats (id, platform, chat_key, title, created_at) "
                "VALUES (?, 'telegram', ?, ?, 0)",
                chats,
            )
            conn.executemany(
                "INSERT INTO people (id, platform, user_key, display_name, units, updated_at) "
                "VALUES (?, 'telegram', ?, ?, ?, 0)",
                people,
            )
            conn.executemany(
                "INSERT INTO runs (chat_id, person_id, distance_m, duration_s, day, ran_at, logged_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                runs,
            )
        conn.execute("ANALYZE")


def naive_wheel_total_query(wheel_id: int, start: float, end: float) -> Query[WheelTotal]:
    """What the rollups save: the total straight from every minute bucket in the period."""
    statement = (
        "SELECT COALESCE(SUM(revolutions), 0), COALESCE(SUM(estimated), 0) FROM wheel_minutes "
        "WHERE wheel_id = ? AND minute >= ? AND minute < ?",
        (wheel_id, start, end),
    )

    def parse(rowsets: list[Rows]) -> WheelTotal:
        (row,) = rowsets[0]
        return WheelTotal(int(row[0]), int(row[1]))

    return Query((statement,), parse)


async def stored_sums(db: Database) -> tuple[int, int, int]:
    """All revolutions in the minute buckets, the hourly and the daily rollup."""
    tables = ("wheel_minutes", "wheel_hours", "wheel_days")
    statements = tuple((f"SELECT COALESCE(SUM(revolutions), 0) FROM {t}", ()) for t in tables)
    (sums,) = await db.read(Query(statements, lambda rowsets: tuple(r[0][0] for r in rowsets)))
    return sums


_NAIVE_TABLE = (
    "CREATE TABLE IF NOT EXISTS naive_readings (at REAL NOT NULL, raw INTEGER NOT NULL, "
    "revolutions INTEGER NOT NULL)"
)
_NAIVE_INSERT = "INSERT INTO naive_readings (at, raw, revolutions) VALUES (?, ?, ?)"


async def naive_table(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(_NAIVE_TABLE)


async def naive_insert(db: Database, row: Row) -> None:
    """One notification (at, raw, revolutions) in a transaction of its own."""
    async with db.transaction() as conn:
        await conn.execute(_NAIVE_INSERT, row)


async def small_commit(db: Database, index: int, *, durable: bool) -> None:
    """One small transaction (a throwaway wheel row), as a run or a setting commits: the commit cost."""
    async with db.transaction(durable=durable) as conn:
        await conn.execute("INSERT INTO wheels (name, created_at) VALUES (?, ?)", (f"w{index}", 0))


class BareReadings:
    """The same rows with bare aiosqlite (``execute`` then ``commit``): no write lock, one hand-off
    fewer per notification."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, path: Path) -> AsyncIterator[BareReadings]:
        async with aiosqlite.connect(path) as conn:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute(_NAIVE_TABLE)
            await conn.commit()
            yield cls(conn)

    async def insert(self, row: Row) -> None:
        await self._connection.execute(_NAIVE_INSERT, row)
        await self._connection.commit()
