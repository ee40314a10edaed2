"""Read-side queries: wheel totals per period (hourly rollups + minute edges), standings input."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sensors.plausible import EARLIEST_READING
from storage.db import Database
from storage.wheel import SensorEvent

HOUR = 3600
DAY = 86400
MINUTE = 60

# Reads that are not bounded by a period (first and last activity, the latest event) look only
# here: rows an older version stored from implausible capture times (a negative epoch, the year
# 57,900) must not become a "first night" no calendar can show (sensors/plausible.py).
READ_FROM = int(EARLIEST_READING)
READ_UNTIL = 32_503_680_000  # 3000-01-01T00:00:00Z


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

    Whole UTC days come from the daily rollup, the whole hours around them from the hourly one, and
    only the partial hours at the edges read minute buckets: five years of nights cost about 3,700
    rows, not 14,600 hours or 876,000 minutes.
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
        first_day = -(-first_hour // DAY) * DAY
        last_day = last_hour // DAY * DAY
        if first_day >= last_day:  # no whole UTC day inside: hours only
            first_day = last_day = last_hour
        row = await db.fetchone(
            "SELECT COALESCE(SUM(r), 0), COALESCE(SUM(e), 0) FROM ("
            " SELECT revolutions AS r, estimated AS e FROM wheel_days"
            "  WHERE wheel_id = ? AND day >= ? AND day < ?"
            " UNION ALL"
            " SELECT revolutions, estimated FROM wheel_hours"
            "  WHERE wheel_id = ? AND hour >= ? AND hour < ?"
            " UNION ALL"
            " SELECT revolutions, estimated FROM wheel_hours"
            "  WHERE wheel_id = ? AND hour >= ? AND hour < ?"
            " UNION ALL"
            " SELECT revolutions, estimated FROM wheel_minutes"
            "  WHERE wheel_id = ? AND minute >= ? AND minute < ?"
            " UNION ALL"
            " SELECT revolutions, estimated FROM wheel_minutes"
            "  WHERE wheel_id = ? AND minute >= ? AND minute < ?)",
            (
                *(wheel_id, first_day, last_day),
                *(wheel_id, first_hour, first_day),
                *(wheel_id, last_day, last_hour),
                *(wheel_id, start, first_hour),
                *(wheel_id, last_hour, end),
            ),
        )
    assert row is not None
    return WheelTotal(int(row[0]), int(row[1]))


def _ceil_hour(t: float) -> int:
    return -(-math.ceil(t) // HOUR) * HOUR


async def person_totals(db: Database, chat_id: int, start: float, end: float) -> list[PersonTotal]:
    """Each person's logged distance in this chat with ``start <= ran_at < end``."""
    rows = await db.fetchall(
        # Summed per person from the covering index first, then joined: one people lookup per
        # person rather than per run (benchmarks/query.py).
        "SELECT people.id, people.display_name, people.units, t.distance_m, t.runs FROM ("
        " SELECT person_id, SUM(distance_m) AS distance_m, COUNT(*) AS runs FROM runs"
        " WHERE chat_id = ? AND deleted_at IS NULL AND ran_at >= ? AND ran_at < ?"
        " GROUP BY person_id) AS t "
        "JOIN people ON people.id = t.person_id ORDER BY people.id",
        (chat_id, start, end),
    )
    return [PersonTotal(*row) for row in rows]


async def latest_event(db: Database, wheel_id: int, kinds: tuple[str, ...]) -> tuple | None:
    """(at, kind, value, detail) of the newest event of one of ``kinds``."""
    marks = ", ".join("?" for _ in kinds)
    return await db.fetchone(
        f"SELECT at, kind, value, detail FROM sensor_events WHERE wheel_id = ? AND kind IN ({marks}) "
        "AND at >= ? AND at < ? ORDER BY at DESC, id DESC LIMIT 1",
        (wheel_id, *kinds, READ_FROM, READ_UNTIL),
    )


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


# --- bucket series (numpy) ----------------------------------------------------------------------


def _empty() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True, eq=False)
class MinuteSeries:
    """Minute buckets with ``start <= minute < end``, oldest first; only minutes with revolutions."""

    start: float
    end: float
    minutes: np.ndarray = field(default_factory=_empty)  # int64 epoch of each minute's start
    revolutions: np.ndarray = field(default_factory=_empty)  # int64, estimated included
    estimated: np.ndarray = field(default_factory=_empty)  # int64, the estimated part

    @property
    def total(self) -> int:
        return int(self.revolutions.sum())


@dataclass(frozen=True, slots=True, eq=False)
class HourSeries:
    """Revolutions per UTC hour that overlaps ``[start, end)``, counting only minutes inside it."""

    start: float
    end: float
    hours: np.ndarray = field(default_factory=_empty)  # int64 epoch of each UTC hour's start
    revolutions: np.ndarray = field(default_factory=_empty)
    estimated: np.ndarray = field(default_factory=_empty)

    @property
    def total(self) -> int:
        return int(self.revolutions.sum())


@dataclass(frozen=True, slots=True, eq=False)
class BinTotals:
    """Revolutions in each ``[boundaries[i], boundaries[i + 1])``."""

    boundaries: np.ndarray  # float64, ascending
    revolutions: np.ndarray  # int64, len(boundaries) - 1
    estimated: np.ndarray


def _columns(rows: list[tuple], width: int = 3) -> list[np.ndarray]:
    if not rows:
        return [_empty() for _ in range(width)]
    table = np.asarray(rows, dtype=np.int64).reshape(len(rows), width)
    return [np.ascontiguousarray(table[:, i]) for i in range(width)]


async def minute_series(db: Database, wheel_id: int, start: float, end: float) -> MinuteSeries:
    """Every minute bucket in ``[start, end)``: for a night or a record scan, not for long periods."""
    if end <= start:
        return MinuteSeries(start, end)
    rows = await db.fetchall(
        "SELECT minute, revolutions, estimated FROM wheel_minutes "
        "WHERE wheel_id = ? AND minute >= ? AND minute < ? ORDER BY minute",
        (wheel_id, start, end),
    )
    minutes, revolutions, estimated = _columns(rows)
    return MinuteSeries(start, end, minutes, revolutions, estimated)


# CROSS JOIN keeps the cut hours as the outer loop, so each is a primary-key range search; with a plain
# JOIN SQLite scans every minute of the wheel once per cut hour (seconds on years of data).
CUT_HOUR_MINUTES_SQL = (
    "SELECT m.minute, m.revolutions, m.estimated "
    "FROM json_each(?) AS cut CROSS JOIN wheel_minutes AS m "
    "ON m.wheel_id = ? AND m.minute >= cut.value AND m.minute < cut.value + 3600 "
    "ORDER BY m.minute"
)


async def _points(
    db: Database, wheel_id: int, boundaries: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time, revolutions, estimated) points that can be binned exactly by ``boundaries``.

    Whole UTC hours with no boundary inside come from the rollup as one point each; only the hours that a
    boundary cuts are read minute by minute. The cost is O(hours + cut hours x 60), never O(minutes).
    """
    first, last = float(boundaries[0]), float(boundaries[-1])
    cut = np.unique((boundaries[boundaries % HOUR != 0] // HOUR * HOUR).astype(np.int64))
    hour_rows = await db.fetchall(
        "SELECT hour, revolutions, estimated FROM wheel_hours "
        "WHERE wheel_id = ? AND hour >= ? AND hour < ? ORDER BY hour",
        (wheel_id, _ceil_hour(first), int(last) // HOUR * HOUR),
    )
    hours, hour_revs, hour_est = _columns(hour_rows)
    keep = ~np.isin(hours, cut)
    minute_rows: list[tuple] = []
    if cut.size:
        # One parameter whatever the number of cut hours (SQLite caps bound variables).
        minute_rows = await db.fetchall(CUT_HOUR_MINUTES_SQL, (json.dumps(cut.tolist()), wheel_id))
    minutes, minute_revs, minute_est = _columns(minute_rows)
    inside = (minutes >= first) & (minutes < last)
    times = np.concatenate([hours[keep], minutes[inside]])
    revs = np.concatenate([hour_revs[keep], minute_revs[inside]])
    est = np.concatenate([hour_est[keep], minute_est[inside]])
    order = np.argsort(times, kind="stable")
    return times[order], revs[order], est[order]


async def binned_totals(
    db: Database, wheel_id: int, boundaries: Sequence[float] | np.ndarray
) -> BinTotals:
    """Revolutions between consecutive ``boundaries`` (ascending epoch seconds), exactly.

    Nights ending at a summary time, local days in a +05:45 zone, the hours of a chart: each bin equals the sum
    of its minute buckets, read at O(hours) cost.
    """
    edges = np.asarray(boundaries, dtype=np.float64)
    bins = max(edges.size - 1, 0)
    if bins == 0 or edges[-1] <= edges[0]:
        return BinTotals(edges, np.zeros(bins, np.int64), np.zeros(bins, np.int64))
    if np.any(np.diff(edges) < 0):
        raise ValueError("boundaries must be ascending")
    times, revs, est = await _points(db, wheel_id, edges)
    index = np.searchsorted(edges, times, side="right") - 1
    return BinTotals(
        edges,
        np.bincount(index, weights=revs, minlength=bins).astype(np.int64)[:bins],
        np.bincount(index, weights=est, minlength=bins).astype(np.int64)[:bins],
    )


async def hour_series(db: Database, wheel_id: int, start: float, end: float) -> HourSeries:
    """Revolutions per UTC hour overlapping ``[start, end)``, only hours with revolutions; O(hours)."""
    if end <= start:
        return HourSeries(start, end)
    times, revs, est = await _points(db, wheel_id, np.asarray([start, end], dtype=np.float64))
    if times.size == 0:
        return HourSeries(start, end)
    hours = times // HOUR * HOUR
    unique, index = np.unique(hours, return_inverse=True)
    summed = np.bincount(index, weights=revs).astype(np.int64)
    summed_est = np.bincount(index, weights=est).astype(np.int64)
    nonzero = summed > 0
    return HourSeries(start, end, unique[nonzero], summed[nonzero], summed_est[nonzero])


async def events_between(
    db: Database,
    wheel_id: int,
    start: float,
    end: float,
    kinds: Sequence[str] | None = None,
) -> list[SensorEvent]:
    """Sensor events with ``start <= at < end``, oldest first; all kinds unless ``kinds`` is given."""
    sql = "SELECT at, kind, value, detail FROM sensor_events WHERE wheel_id = ? AND at >= ? AND at < ?"
    params: list = [wheel_id, start, end]
    if kinds is not None:
        if not kinds:
            return []
        sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
        params.extend(kinds)
    rows = await db.fetchall(sql + " ORDER BY at, id", params)
    return [SensorEvent(float(at), kind, value, detail) for at, kind, value, detail in rows]


async def first_activity(db: Database, wheel_id: int) -> int | None:
    """Start of the oldest hour with revolutions (from the rollup)."""
    return await db.scalar(
        "SELECT MIN(hour) FROM wheel_hours WHERE wheel_id = ? AND hour >= ? AND hour < ?",
        (wheel_id, READ_FROM, READ_UNTIL),
    )


async def active_minutes(db: Database, wheel_id: int, start: float, end: float) -> MinuteSeries:
    """Minutes with measured (not estimated) revolutions in ``[start, end)``: the input of records.

    Rows exist only for minutes the wheel turned, so a year of a busy hamster is tens of thousands of rows.
    """
    rows = await db.fetchall(
        "SELECT minute, revolutions, estimated FROM wheel_minutes "
        "WHERE wheel_id = ? AND minute >= ? AND minute < ? AND revolutions > estimated "
        "ORDER BY minute",
        (wheel_id, start, end),
    )
    minutes, revolutions, estimated = _columns(rows)
    return MinuteSeries(start, end, minutes, revolutions, estimated)


async def first_run_at(db: Database, chat_id: int) -> float | None:
    """When the oldest live run of this chat was run."""
    return await db.scalar(
        "SELECT MIN(ran_at) FROM runs WHERE chat_id = ? AND deleted_at IS NULL", (chat_id,)
    )
