"""Read-side queries: wheel totals per period (hourly rollups + minute edges), standings input.

Each ``*_query`` function returns a ``Query`` (SQL + how its rows become a value); ``Database.read`` asks
several at once in one trip to the SQLite thread. The plain ``async`` functions ask one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from sensors.plausible import EARLIEST_READING
from storage.db import MONTHS_UNTIL, Database, Query, Rows
from storage.wheel import SensorEvent

HOUR = 3600
DAY = 86400
MINUTE = 60

# Reads that are not bounded by a period (first and last activity, the latest event) look only
# here: rows an older version stored from implausible capture times (a negative epoch, the year
# 57,900) must not become a "first night" no calendar can show (sensors/plausible.py).
READ_FROM = int(EARLIEST_READING)
READ_UNTIL = MONTHS_UNTIL  # 3000-01-01T00:00:00Z, where the monthly tables end too


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


def wheel_total_query(wheel_id: int, start: float, end: float) -> Query[WheelTotal]:
    """Revolutions in minute buckets with ``start <= minute < end``.

    Whole UTC months come from the monthly rollup, the whole days around them from the daily one,
    the whole hours around those from the hourly one, and only the partial hours at the edges read
    minute buckets: five years of nights cost about 200 rows, not 876,000 minutes.
    """
    if end <= start:
        return Query((), lambda _: WheelTotal(0, 0))
    first_hour = _ceil_hour(start)
    last_hour = int(end) // HOUR * HOUR
    if first_hour >= last_hour:
        statement: tuple[str, Sequence[object]] = (
            "SELECT COALESCE(SUM(revolutions), 0), COALESCE(SUM(estimated), 0) FROM wheel_minutes "
            "WHERE wheel_id = ? AND minute >= ? AND minute < ?",
            (wheel_id, start, end),
        )
    else:
        first_day = -(-first_hour // DAY) * DAY
        last_day = last_hour // DAY * DAY
        if first_day >= last_day:  # no whole UTC day inside: hours only
            first_day = last_day = last_hour
        first_month, last_month = month_span(first_day, last_day)
        statement = (
            "SELECT COALESCE(SUM(r), 0), COALESCE(SUM(e), 0) FROM ("
            " SELECT revolutions AS r, estimated AS e FROM wheel_months"
            "  WHERE wheel_id = ? AND month >= ? AND month < ?"
            " UNION ALL"
            " SELECT revolutions, estimated FROM wheel_days"
            "  WHERE wheel_id = ? AND day >= ? AND day < ?"
            " UNION ALL"
            " SELECT revolutions, estimated FROM wheel_days"
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
                *(wheel_id, first_month, last_month),
                *(wheel_id, first_day, first_month),
                *(wheel_id, last_month, last_day),
                *(wheel_id, first_hour, first_day),
                *(wheel_id, last_day, last_hour),
                *(wheel_id, start, first_hour),
                *(wheel_id, last_hour, end),
            ),
        )
    return Query((statement,), _wheel_total)


def month_span(start: float, end: float) -> tuple[float, float]:
    """``(first, last)``: the whole UTC months inside ``[start, end)`` are ``[first, last)``, and
    ``[start, first)`` and ``[last, end)`` are what lies outside them. Only months from 1970 to
    3000 count; with no whole month inside, ``first == last == end``: everything is outside."""
    low, high = max(start, 0), min(end, MONTHS_UNTIL)
    if high <= low:
        return end, end
    first = datetime.fromtimestamp(low, UTC)
    first_month = datetime(first.year, first.month, 1, tzinfo=UTC)
    if first_month.timestamp() < low:
        first_month = datetime(first.year + first.month // 12, first.month % 12 + 1, 1, tzinfo=UTC)
    last = datetime.fromtimestamp(high, UTC)
    last_month = datetime(last.year, last.month, 1, tzinfo=UTC)
    if first_month >= last_month:
        return end, end
    return first_month.timestamp(), last_month.timestamp()


def _wheel_total(rowsets: list[Rows]) -> WheelTotal:
    (row,) = rowsets[0]
    return WheelTotal(int(row[0]), int(row[1]))


async def wheel_total(db: Database, wheel_id: int, start: float, end: float) -> WheelTotal:
    (total,) = await db.read(wheel_total_query(wheel_id, start, end))
    return total


def _ceil_hour(t: float) -> int:
    return -(-math.ceil(t) // HOUR) * HOUR


def person_totals_query(chat_id: int, start: float, end: float) -> Query[list[PersonTotal]]:
    """Each person's logged distance in this chat with ``start <= ran_at < end``.

    Whole UTC months come from ``run_months`` (kept by triggers on ``runs``), the runs around them
    from the covering index: "all time" over five years reads about 600 rows, not 20,000 runs.
    """
    first_month, last_month = month_span(start, end)
    statement = (
        # Summed per person first, then joined: one people lookup per person rather than per run.
        "SELECT people.id, people.display_name, people.units, t.distance_m, t.runs FROM ("
        " SELECT person_id, SUM(d) AS distance_m, SUM(n) AS runs FROM ("
        "  SELECT person_id, distance_m AS d, runs AS n FROM run_months"
        "   WHERE chat_id = ? AND month >= ? AND month < ?"
        "  UNION ALL"
        "  SELECT person_id, distance_m, 1 FROM runs"
        "   WHERE chat_id = ? AND deleted_at IS NULL AND ran_at >= ? AND ran_at < ?"
        "  UNION ALL"
        "  SELECT person_id, distance_m, 1 FROM runs"
        "   WHERE chat_id = ? AND deleted_at IS NULL AND ran_at >= ? AND ran_at < ?"
        " ) GROUP BY person_id HAVING SUM(n) > 0) AS t "
        "JOIN people ON people.id = t.person_id ORDER BY people.id",
        (
            *(chat_id, first_month, last_month),
            *(chat_id, start, first_month),
            *(chat_id, last_month, end),
        ),
    )
    return Query((statement,), lambda rowsets: [PersonTotal(*row) for row in rowsets[0]])


def latest_event_query(wheel_id: int, kinds: tuple[str, ...]) -> Query[tuple | None]:
    """(at, kind, value, detail) of the newest event of one of ``kinds``."""
    marks = ", ".join("?" for _ in kinds)
    statement = (
        f"SELECT at, kind, value, detail FROM sensor_events WHERE wheel_id = ? AND kind IN ({marks}) "
        "AND at >= ? AND at < ? ORDER BY at DESC, id DESC LIMIT 1",
        (wheel_id, *kinds, READ_FROM, READ_UNTIL),
    )
    return Query((statement,), lambda rowsets: tuple(rowsets[0][0]) if rowsets[0] else None)


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


def _minutes_query(where: str, wheel_id: int, start: float, end: float) -> Query[MinuteSeries]:
    """Minute buckets of one wheel in ``[start, end)`` that match ``where``, in order.

    Read as three comma-separated columns rather than a row per minute: a night's 480 rows as
    Python tuples cost twice the SQL itself, and a year's records scan held a tuple per minute
    (benchmarks/query.py, the morning report)."""
    if end <= start:
        return Query((), lambda _: MinuteSeries(start, end))
    sql = (
        "SELECT COUNT(*), group_concat(CAST(minute AS INTEGER)), "
        "group_concat(CAST(revolutions AS INTEGER)), group_concat(CAST(estimated AS INTEGER)) "
        f"FROM wheel_minutes WHERE wheel_id = ? AND minute >= ? AND minute < ?{where}"
    )

    def parse(rowsets: list[Rows]) -> MinuteSeries:
        ((count, *columns),) = rowsets[0]
        if not count:
            return MinuteSeries(start, end)
        minutes, revolutions, estimated = (
            np.fromstring(text, dtype=np.int64, sep=",") for text in columns
        )
        if not minutes.size == revolutions.size == estimated.size == count:
            raise ValueError("wheel_minutes: a column did not read back whole")
        if np.any(minutes[1:] <= minutes[:-1]):  # group_concat keeps the key's order; make sure
            order = np.argsort(minutes, kind="stable")
            minutes, revolutions, estimated = minutes[order], revolutions[order], estimated[order]
        return MinuteSeries(start, end, minutes, revolutions, estimated)

    return Query(((sql, (wheel_id, start, end)),), parse)


def minute_series_query(wheel_id: int, start: float, end: float) -> Query[MinuteSeries]:
    """Every minute bucket in ``[start, end)``: for a night or a record scan, not for long periods."""
    return _minutes_query("", wheel_id, start, end)


async def minute_series(db: Database, wheel_id: int, start: float, end: float) -> MinuteSeries:
    (series,) = await db.read(minute_series_query(wheel_id, start, end))
    return series


# CROSS JOIN keeps the cut hours as the outer loop, so each is a primary-key range search; with a plain
# JOIN SQLite scans every minute of the wheel once per cut hour (seconds on years of data).
CUT_HOUR_MINUTES_SQL = (
    "SELECT m.minute, m.revolutions, m.estimated "
    "FROM json_each(?) AS cut CROSS JOIN wheel_minutes AS m "
    "ON m.wheel_id = ? AND m.minute >= cut.value AND m.minute < cut.value + 3600 "
    "ORDER BY m.minute"
)


def _points_query(
    wheel_id: int, boundaries: np.ndarray
) -> Query[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(time, revolutions, estimated) points that can be binned exactly by ``boundaries``.

    Whole UTC hours with no boundary inside come from the rollup as one point each; only the hours that a
    boundary cuts are read minute by minute. The cost is O(hours + cut hours x 60), never O(minutes).
    """
    first, last = float(boundaries[0]), float(boundaries[-1])
    cut = np.unique((boundaries[boundaries % HOUR != 0] // HOUR * HOUR).astype(np.int64))
    statements: list[tuple[str, Sequence[object]]] = [
        (
            "SELECT hour, revolutions, estimated FROM wheel_hours "
            "WHERE wheel_id = ? AND hour >= ? AND hour < ? ORDER BY hour",
            (wheel_id, _ceil_hour(first), int(last) // HOUR * HOUR),
        )
    ]
    if cut.size:
        # One parameter whatever the number of cut hours (SQLite caps bound variables).
        statements.append((CUT_HOUR_MINUTES_SQL, (json.dumps(cut.tolist()), wheel_id)))

    def parse(rowsets: list[Rows]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hours, hour_revs, hour_est = _columns(rowsets[0])
        if not cut.size:  # boundaries on whole hours (nights ending at 07:00): the hours, in order
            return hours, hour_revs, hour_est
        keep = ~np.isin(hours, cut)
        minutes, minute_revs, minute_est = _columns(rowsets[1])
        inside = (minutes >= first) & (minutes < last)
        times = np.concatenate([hours[keep], minutes[inside]])
        revs = np.concatenate([hour_revs[keep], minute_revs[inside]])
        est = np.concatenate([hour_est[keep], minute_est[inside]])
        order = np.argsort(times, kind="stable")
        return times[order], revs[order], est[order]

    return Query(tuple(statements), parse)


def binned_totals_query(
    wheel_id: int, boundaries: Sequence[float] | np.ndarray
) -> Query[BinTotals]:
    """Revolutions between consecutive ``boundaries`` (ascending epoch seconds), exactly.

    Nights ending at a summary time, local days in a +05:45 zone, the hours of a chart: each bin equals the sum
    of its minute buckets, read at O(hours) cost.
    """
    edges = np.asarray(boundaries, dtype=np.float64)
    bins = max(edges.size - 1, 0)
    if bins == 0 or edges[-1] <= edges[0]:
        empty = BinTotals(edges, np.zeros(bins, np.int64), np.zeros(bins, np.int64))
        return Query((), lambda _: empty)
    if np.any(np.diff(edges) < 0):
        raise ValueError("boundaries must be ascending")
    points = _points_query(wheel_id, edges)

    def parse(rowsets: list[Rows]) -> BinTotals:
        times, revs, est = points.parse(rowsets)
        index = np.searchsorted(edges, times, side="right") - 1
        return BinTotals(
            edges,
            np.bincount(index, weights=revs, minlength=bins).astype(np.int64)[:bins],
            np.bincount(index, weights=est, minlength=bins).astype(np.int64)[:bins],
        )

    return Query(points.statements, parse)


async def binned_totals(
    db: Database, wheel_id: int, boundaries: Sequence[float] | np.ndarray
) -> BinTotals:
    (totals,) = await db.read(binned_totals_query(wheel_id, boundaries))
    return totals


async def hour_series(db: Database, wheel_id: int, start: float, end: float) -> HourSeries:
    """Revolutions per UTC hour overlapping ``[start, end)``, only hours with revolutions; O(hours)."""
    if end <= start:
        return HourSeries(start, end)
    (points,) = await db.read(_points_query(wheel_id, np.asarray([start, end], dtype=np.float64)))
    times, revs, est = points
    if times.size == 0:
        return HourSeries(start, end)
    hours = times // HOUR * HOUR
    unique, index = np.unique(hours, return_inverse=True)
    summed = np.bincount(index, weights=revs).astype(np.int64)
    summed_est = np.bincount(index, weights=est).astype(np.int64)
    nonzero = summed > 0
    return HourSeries(start, end, unique[nonzero], summed[nonzero], summed_est[nonzero])


def events_between_query(
    wheel_id: int, start: float, end: float, kinds: Sequence[str] | None = None
) -> Query[list[SensorEvent]]:
    """Sensor events with ``start <= at < end``, oldest first; all kinds unless ``kinds`` is given."""
    sql = "SELECT at, kind, value, detail FROM sensor_events WHERE wheel_id = ? AND at >= ? AND at < ?"
    params: list = [wheel_id, start, end]
    if kinds is not None:
        if not kinds:
            return Query((), lambda _: [])
        sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
        params.extend(kinds)

    def parse(rowsets: list[Rows]) -> list[SensorEvent]:
        return [
            SensorEvent(float(at), kind, value, detail) for at, kind, value, detail in rowsets[0]
        ]

    return Query(((sql + " ORDER BY at, id", params),), parse)


async def events_between(
    db: Database,
    wheel_id: int,
    start: float,
    end: float,
    kinds: Sequence[str] | None = None,
) -> list[SensorEvent]:
    (events,) = await db.read(events_between_query(wheel_id, start, end, kinds))
    return events


def _scalar(rowsets: list[Rows]) -> Any:
    rows = rowsets[0]
    return rows[0][0] if rows else None


def first_activity_query(wheel_id: int) -> Query[int | None]:
    """Start of the oldest hour with revolutions (from the rollup)."""
    sql = "SELECT MIN(hour) FROM wheel_hours WHERE wheel_id = ? AND hour >= ? AND hour < ?"
    return Query(((sql, (wheel_id, READ_FROM, READ_UNTIL)),), _scalar)


async def first_activity(db: Database, wheel_id: int) -> int | None:
    (first,) = await db.read(first_activity_query(wheel_id))
    return first


def active_minutes_query(wheel_id: int, start: float, end: float) -> Query[MinuteSeries]:
    """Minutes with measured (not estimated) revolutions in ``[start, end)``: the input of records.

    Rows exist only for minutes the wheel turned, so a year of a busy hamster is tens of thousands of rows.
    """
    return _minutes_query(" AND revolutions > estimated", wheel_id, start, end)


async def active_minutes(db: Database, wheel_id: int, start: float, end: float) -> MinuteSeries:
    (series,) = await db.read(active_minutes_query(wheel_id, start, end))
    return series


def first_run_at_query(chat_id: int) -> Query[float | None]:
    """When the oldest live run of this chat was run."""
    sql = "SELECT MIN(ran_at) FROM runs WHERE chat_id = ? AND deleted_at IS NULL"
    return Query(((sql, (chat_id,)),), _scalar)
