"""People's runs. Distances in metres, times in UTC epoch seconds; undo is a soft delete."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from storage.db import Database

_RUN_COLUMNS = (
    "runs.id, runs.chat_id, runs.person_id, people.display_name, runs.distance_m, "
    "runs.duration_s, runs.day, runs.ran_at, runs.logged_at, runs.source"
)
# The same run sent twice: the same person, a start within a minute, a distance within
# 1 % of the logged one.
DUPLICATE_WINDOW_S = 60.0
DUPLICATE_DISTANCE = 0.01


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    chat_id: int
    person_id: int
    display_name: str
    distance_m: float
    duration_s: float | None
    day: date
    ran_at: float
    logged_at: float
    source: str | None = None  # None: typed; else the activity file's name


class DuplicateRun(Exception):
    """The run is already logged (``existing``); nothing was stored."""

    def __init__(self, existing: Run) -> None:
        super().__init__(f"duplicate of run #{existing.id}")
        self.existing = existing


def _run(row: tuple) -> Run:
    run_id, chat_id, person_id, name, distance_m, duration_s, day, ran_at, logged_at, source = row
    return Run(
        run_id,
        chat_id,
        person_id,
        name,
        distance_m,
        duration_s,
        date.fromisoformat(day),
        ran_at,
        logged_at,
        source,
    )


async def add_run(
    db: Database,
    *,
    chat_id: int,
    person_id: int,
    distance_m: float,
    duration_s: float | None,
    day: date,
    ran_at: float,
    logged_at: float,
    source: str | None = None,
    refuse_duplicate: bool = False,
) -> int:
    """Store a run. With ``refuse_duplicate``, a live run of the same person in the same chat that
    started within ``DUPLICATE_WINDOW_S`` with a distance within ``DUPLICATE_DISTANCE`` raises
    ``DuplicateRun`` instead; the check and the insert share one transaction."""
    async with db.transaction() as conn:
        if refuse_duplicate:
            rows = await conn.fetchall(
                f"SELECT {_RUN_COLUMNS} FROM runs JOIN people ON people.id = runs.person_id "
                "WHERE runs.person_id = ? AND runs.chat_id = ? AND runs.deleted_at IS NULL "
                "AND runs.ran_at BETWEEN ? AND ? AND ABS(runs.distance_m - ?) <= ? * runs.distance_m "
                "ORDER BY ABS(runs.ran_at - ?), runs.id LIMIT 1",
                (
                    person_id,
                    chat_id,
                    ran_at - DUPLICATE_WINDOW_S,
                    ran_at + DUPLICATE_WINDOW_S,
                    distance_m,
                    DUPLICATE_DISTANCE,
                    ran_at,
                ),
            )
            row = next(iter(rows), None)
            if row is not None:
                raise DuplicateRun(_run(row))
        cursor = await conn.execute(
            "INSERT INTO runs "
            "(chat_id, person_id, distance_m, duration_s, day, ran_at, logged_at, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chat_id,
                person_id,
                distance_m,
                duration_s,
                day.isoformat(),
                ran_at,
                logged_at,
                source,
            ),
        )
        run_id = cursor.lastrowid
    assert run_id is not None
    return run_id


async def recent_runs(db: Database, chat_id: int, person_id: int, limit: int = 10) -> list[Run]:
    rows = await db.fetchall(
        f"SELECT {_RUN_COLUMNS} FROM runs JOIN people ON people.id = runs.person_id "
        "WHERE runs.chat_id = ? AND runs.person_id = ? AND runs.deleted_at IS NULL "
        "ORDER BY runs.ran_at DESC, runs.id DESC LIMIT ?",
        (chat_id, person_id, limit),
    )
    return [_run(row) for row in rows]


async def get_run(db: Database, chat_id: int, run_id: int) -> Run | None:
    """A live run of this chat; runs of other chats are invisible here."""
    row = await db.fetchone(
        f"SELECT {_RUN_COLUMNS} FROM runs JOIN people ON people.id = runs.person_id "
        "WHERE runs.chat_id = ? AND runs.id = ? AND runs.deleted_at IS NULL",
        (chat_id, run_id),
    )
    return _run(row) if row else None


async def last_logged_run(db: Database, chat_id: int, person_id: int) -> Run | None:
    row = await db.fetchone(
        f"SELECT {_RUN_COLUMNS} FROM runs JOIN people ON people.id = runs.person_id "
        "WHERE runs.chat_id = ? AND runs.person_id = ? AND runs.deleted_at IS NULL "
        "ORDER BY runs.logged_at DESC, runs.id DESC LIMIT 1",
        (chat_id, person_id),
    )
    return _run(row) if row else None


async def delete_run(db: Database, chat_id: int, run_id: int, now: float) -> bool:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE runs SET deleted_at = ? WHERE chat_id = ? AND id = ? AND deleted_at IS NULL",
            (now, chat_id, run_id),
        )
        return cursor.rowcount == 1


async def runs_between(
    db: Database, start: float, end: float, chat_id: int | None = None
) -> list[Run]:
    """Live runs with ``start <= ran_at < end``, oldest first (for charts and export)."""
    where = "runs.deleted_at IS NULL AND runs.ran_at >= ? AND runs.ran_at < ?"
    params: tuple = (start, end)
    if chat_id is not None:
        where += " AND runs.chat_id = ?"
        params += (chat_id,)
    rows = await db.fetchall(
        f"SELECT {_RUN_COLUMNS} FROM runs JOIN people ON people.id = runs.person_id "
        f"WHERE {where} ORDER BY runs.ran_at, runs.id",
        params,
    )
    return [_run(row) for row in rows]


@dataclass(frozen=True, slots=True)
class Forgotten:
    runs: int  # rows deleted, undone ones included
    name_removed: bool  # the person's row went too: no runs of theirs are left anywhere


async def count_person_runs(db: Database, person_id: int, chat_id: int | None = None) -> int:
    """A person's live runs in one chat, or in every chat (``chat_id`` None)."""
    where, params = _person_scope(person_id, chat_id)
    return int(
        await db.scalar(f"SELECT COUNT(*) FROM runs WHERE {where} AND deleted_at IS NULL", params)
        or 0
    )


async def forget_person(db: Database, person_id: int, chat_id: int | None = None) -> Forgotten:
    """Delete a person's runs in one chat (or every chat) for good, undone ones too, and their name
    and settings once no run of theirs is left anywhere; one transaction."""
    where, params = _person_scope(person_id, chat_id)
    async with db.transaction() as conn:
        deleted = await conn.execute(f"DELETE FROM runs WHERE {where}", params)
        removed = await conn.execute(
            "DELETE FROM people WHERE id = ? AND NOT EXISTS "
            "(SELECT 1 FROM runs WHERE runs.person_id = people.id)",
            (person_id,),
        )
    return Forgotten(runs=max(deleted.rowcount, 0), name_removed=removed.rowcount == 1)


def _person_scope(person_id: int, chat_id: int | None) -> tuple[str, tuple[int, ...]]:
    # Two fixed shapes of our own, never user text.
    if chat_id is None:
        return "person_id = ?", (person_id,)
    return "person_id = ? AND chat_id = ?", (person_id, chat_id)
