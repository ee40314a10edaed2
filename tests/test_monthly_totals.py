"""Monthly totals (``wheel_months``, ``run_months``) are kept by triggers: whatever writes the runs
and the daily rollup, by whichever process, the months always equal what they sum, and the
standings read from them equal the standings summed run by run."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import queries
from storage.db import Database, Query
from tests.conftest import database_before

NOV_2026 = 1_793_491_200  # 2026-11-01T00:00:00Z
DAY = 86_400
PEOPLE = (1, 2, 3)

# (what, run index, person, day offset in seconds from NOV_2026, metres)
operations = st.lists(
    st.tuples(
        st.sampled_from(("add", "add", "add", "soft-delete", "delete", "move", "resize")),
        st.integers(0, 30),
        st.sampled_from(PEOPLE),
        st.integers(-70 * DAY, 70 * DAY),
        st.floats(0.1, 50_000, allow_nan=False),
    ),
    max_size=60,
)
# Period ends: month edges, a second either side of them, and anywhere.
instants = st.one_of(
    st.sampled_from(
        [
            -3600,
            0,
            NOV_2026 - 31 * DAY,
            NOV_2026 - 1,
            NOV_2026,
            NOV_2026 + 1,
            NOV_2026 + 30 * DAY,
            NOV_2026 + 61 * DAY,
            4_000_000_000,
        ]
    ),
    st.integers(NOV_2026 - 80 * DAY, NOV_2026 + 80 * DAY),
)


async def _setup(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO chats (id, platform, chat_key, created_at) VALUES (1, 'console', 'g', 0)"
        )
        for person in PEOPLE:
            await conn.execute(
                "INSERT INTO people (id, platform, user_key, display_name, updated_at) "
                "VALUES (?, 'console', ?, ?, 0)",
                (person, str(person), f"P{person}"),
            )


async def _apply(db: Database, ops: list[tuple[str, int, int, int, float]]) -> None:
    async with db.transaction() as conn:
        for what, index, person, offset, metres in ops:
            at = NOV_2026 + offset
            if what == "add":
                await conn.execute(
                    "INSERT INTO runs (chat_id, person_id, distance_m, day, ran_at, logged_at) "
                    "VALUES (1, ?, ?, '2026-11-01', ?, ?)",
                    (person, metres, at, at),
                )
            elif what == "soft-delete":
                await conn.execute(
                    "UPDATE runs SET deleted_at = 1 WHERE id = ? AND deleted_at IS NULL", (index,)
                )
            elif what == "delete":
                await conn.execute("DELETE FROM runs WHERE id = ?", (index,))
            elif what == "move":
                await conn.execute(
                    "UPDATE runs SET ran_at = ?, person_id = ? WHERE id = ?", (at, person, index)
                )
            else:
                await conn.execute("UPDATE runs SET distance_m = ? WHERE id = ?", (metres, index))


def _rows(sql: str, params: tuple = ()) -> Query[list[tuple]]:
    return Query(((sql, params),), lambda rowsets: [tuple(r) for r in rowsets[0]])


async def _check(ops: list[tuple[str, int, int, int, float]], start: int, end: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with await Database.open(Path(folder) / "m.db") as db:
            await _setup(db)
            await _apply(db, ops)
            months, truth = await db.read(
                _rows("SELECT month, person_id, distance_m, runs FROM run_months ORDER BY 1, 2"),
                _rows(
                    "SELECT CAST(strftime('%s', ran_at, 'unixepoch', 'start of month') AS INTEGER), "
                    "person_id, SUM(distance_m), COUNT(*) FROM runs WHERE deleted_at IS NULL "
                    "GROUP BY 1, 2 ORDER BY 1, 2"
                ),
            )
            assert [(m[0], m[1], m[3]) for m in months] == [(t[0], t[1], t[3]) for t in truth]
            for got, want in zip(months, truth, strict=True):
                assert got[2] == pytest.approx(want[2], rel=1e-9, abs=1e-6)
            emptied = await db.scalar("SELECT COUNT(*) FROM run_months WHERE runs <= 0")
            assert emptied == 0  # a month whose runs are all gone is deleted, residue and all
            (totals, naive) = await db.read(
                queries.person_totals_query(1, start, end),
                _rows(
                    "SELECT person_id, SUM(distance_m), COUNT(*) FROM runs WHERE chat_id = 1 "
                    "AND deleted_at IS NULL AND ran_at >= ? AND ran_at < ? "
                    "GROUP BY person_id ORDER BY person_id",
                    (start, end),
                ),
            )
            assert [(t.person_id, t.runs) for t in totals] == [(n[0], n[2]) for n in naive]
            for total, row in zip(totals, naive, strict=True):
                assert total.distance_m == pytest.approx(row[1], rel=1e-9, abs=1e-6)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, start=instants, end=instants)
def test_run_months_follow_every_write_and_standings_read_from_them_exactly(
    ops: list[tuple[str, int, int, int, float]], start: int, end: int
) -> None:
    asyncio.run(_check(ops, start, end))


async def test_the_migration_fills_the_months_from_what_is_stored(tmp_path: Path) -> None:
    """A database from before the monthly tables: opening it sums its days and runs into months,
    and the rows older versions stored from impossible clocks (year -1199) are left out."""
    path = tmp_path / "old.db"
    connection = database_before(path, "CREATE TABLE wheel_months")
    connection.execute("INSERT INTO wheels (id, name, created_at) VALUES (1, 'Ursula', 0)")
    days = [(NOV_2026 - DAY, 5, 1), (NOV_2026, 7, 0), (NOV_2026 + 5 * DAY, 11, 2)]
    days.append((-100_000_000_000 // DAY * DAY, 13, 0))
    connection.executemany(
        "INSERT INTO wheel_days (wheel_id, day, revolutions, estimated) VALUES (1, ?, ?, ?)", days
    )
    connection.execute(
        "INSERT INTO chats (id, platform, chat_key, created_at) VALUES (1, 'console', 'g', 0)"
    )
    connection.execute(
        "INSERT INTO people (id, platform, user_key, display_name, updated_at) "
        "VALUES (1, 'console', 'a', 'A', 0)"
    )
    connection.executemany(
        "INSERT INTO runs (chat_id, person_id, distance_m, day, ran_at, logged_at, deleted_at) "
        "VALUES (1, 1, ?, '2026-11-01', ?, 0, ?)",
        [(5000, NOV_2026 + 10, None), (3000, NOV_2026 + 20, None), (999, NOV_2026 + 30, 5)],
    )
    connection.close()
    async with await Database.open(path) as db:
        assert await db.fetchall("SELECT month, revolutions, estimated FROM wheel_months") == [
            (NOV_2026 - 31 * DAY, 5, 1),
            (NOV_2026, 18, 2),
        ]
        assert await db.fetchall("SELECT month, person_id, distance_m, runs FROM run_months") == [
            (NOV_2026, 1, 8000.0, 2)
        ]
        # And from now on the triggers keep them: a flush into an existing day moves its month.
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO wheel_days (wheel_id, day, revolutions, estimated) VALUES (1, ?, 4, 0) "
                "ON CONFLICT (wheel_id, day) DO UPDATE SET "
                "revolutions = revolutions + excluded.revolutions",
                (NOV_2026,),
            )
        assert (
            await db.scalar("SELECT revolutions FROM wheel_months WHERE month = ?", (NOV_2026,))
            == 22
        )
