"""Read-side queries: wheel totals per period (hourly rollups + minute edges), standings input."""

from __future__ import annotations

import math
from dataclasses import dataclass

from storage.db import Database

HOUR = 3600


@dataclass(frozen=True, slots=True)
class WheelTotal:
    revolutions: int
    estimated: int


@dataclass(frozen=True, slots=True)
class PersonTotal:
    person_id: int
    display_name: str
    units: str | None
    distance_m: float
    runs: int


@dataclass(frozen=True, slots=True)
class Wheel:
    id: int
    name: str


async def wheels(db: Database) -> list[Wheel]:
    rows = await db.fetchall("SELECT id, name FROM wheels ORDER BY id")
    return [Wheel(*row) for row in rows]


async def wheel_total(db: Database, wheel_id: int, start: float, end: float) -> WheelTotal:
    """Revolutions in minute buckets with ``start <= minute < end``.

    Whole UTC hours come from the hourly rollup; only the partial hours at the edges read minute
    buckets, so a year costs about 8,800 rows, not 525,000.
    """
    if end <= start:
        return WheelTotal(0, 0)
    first_hour = _ceil_hour(start)
    last_hour = int(end) // HOUR * HOUR
    if first_hour >= last_hour:
        row = await db.fetchone(
            "SELECT COALESCE(SUM(revolutions), 0), COALESCE(SUM(estimated), 0) FROM wheel_minutes "
            "WHERE wheel_id = ? AND minute >= ? AND minute < ?",
            (wheel_id, start, end),
        )
    else:
        row = await db.fetchone(
            "SELECT COALESCE(SUM(r), 0), COALESCE(SUM(e), 0) FROM ("
            " SELECT revolutions AS r, estimated AS e FROM wheel_hours"
            "  WHERE wheel_id = ? AND hour >= ? AND hour < ?"
            " UNION ALL"
            " SELECT revolutions, estimated FROM wheel_minutes"
            "  WHERE wheel_id = ? AND minute >= ? AND minute < ?"
            " UNION ALL"
            " SELECT revolutions, estimated FROM wheel_minutes"
            "  WHERE wheel_id = ? AND minute >= ? AND minute < ?)",
            (
                wheel_id,
                first_hour,
                last_hour,
                wheel_id,
                start,
                first_hour,
                wheel_id,
                last_hour,
                end,
            ),
        )
    assert row is not None
    return WheelTotal(int(row[0]), int(row[1]))


def _ceil_hour(t: float) -> int:
    return -(-math.ceil(t) // HOUR) * HOUR


async def person_totals(db: Database, chat_id: int, start: float, end: float) -> list[PersonTotal]:
    """Each person's logged distance in this chat with ``start <= ran_at < end``."""
    rows = await db.fetchall(
        "SELECT people.id, people.display_name, people.units, SUM(runs.distance_m), COUNT(*) "
        "FROM runs JOIN people ON people.id = runs.person_id "
        "WHERE runs.chat_id = ? AND runs.deleted_at IS NULL AND runs.ran_at >= ? AND runs.ran_at < ? "
        "GROUP BY people.id ORDER BY people.id",
        (chat_id, start, end),
    )
    return [PersonTotal(*row) for row in rows]


async def latest_event(db: Database, wheel_id: int, kinds: tuple[str, ...]) -> tuple | None:
    """(at, kind, value, detail) of the newest event of one of ``kinds``."""
    marks = ", ".join("?" for _ in kinds)
    return await db.fetchone(
        f"SELECT at, kind, value, detail FROM sensor_events WHERE wheel_id = ? AND kind IN ({marks}) "
        "ORDER BY at DESC, id DESC LIMIT 1",
        (wheel_id, *kinds),
    )


async def last_activity(db: Database, wheel_id: int) -> int | None:
    """Start of the newest minute bucket with revolutions."""
    return await db.scalar("SELECT MAX(minute) FROM wheel_minutes WHERE wheel_id = ?", (wheel_id,))


async def run_totals_by_chat(
    db: Database, start: float, end: float
) -> list[tuple[str, str, float]]:
    """(``platform:chat``, display name, metres) for every person with runs in ``[start, end)``."""
    rows = await db.fetchall(
        "SELECT chats.platform || ':' || chats.chat_key, people.display_name, SUM(runs.distance_m) "
        "FROM runs JOIN people ON people.id = runs.person_id JOIN chats ON chats.id = runs.chat_id "
        "WHERE runs.deleted_at IS NULL AND runs.ran_at >= ? AND runs.ran_at < ? "
        "GROUP BY runs.chat_id, runs.person_id ORDER BY chats.id, people.id",
        (start, end),
    )
    return [(chat, user, float(distance)) for chat, user, distance in rows]
