"""Live figures: a storage query completed with what the hamster's wheel pipeline still buffers.

``Hamster`` is a configured hamster with its wheel id and, in a running bot, the ``WheelStore`` whose
buffer holds minutes not written yet. Each ``live_*_query`` is a ``storage`` query whose rows get that
buffer added as they are parsed, so read it inside ``db.settled()`` (``Database.read`` parses before it
returns): then no flush is half done between the rows and the buffer, and nothing is flushed or committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta
from functools import lru_cache, partial
from typing import TypeVar
from zoneinfo import ZoneInfo

import numpy as np

from bot.config import HamsterConfig
from bot.core.model import ChatSettings
from bot.core.periods import night_bounds
from storage import queries
from storage.db import Database, Query
from storage.queries import BinTotals, MinuteSeries
from storage.wheel import WheelStore

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True, slots=True)
class Hamster:
    """A configured hamster, its wheel's id, and the store whose buffer holds its unwritten minutes."""

    config: HamsterConfig
    wheel_id: int
    live: WheelStore | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def metres(self, revolutions: int) -> float:
        return revolutions * self.config.circumference_m


def _plus(query: Query[T], complete: Callable[[T], U]) -> Query[U]:
    return Query(query.statements, lambda rowsets: complete(query.parse(rowsets)))


def live_total_query(hamster: Hamster, start: float, end: float) -> Query[int]:
    """Revolutions with ``start <= minute < end``, written or not."""
    live = hamster.live
    return _plus(
        queries.wheel_total_query(hamster.wheel_id, start, end),
        lambda total: total.revolutions + (live.buffered(start, end) if live else 0),
    )


def live_bins_query(hamster: Hamster, edges: Sequence[float] | np.ndarray) -> Query[BinTotals]:
    """Revolutions between consecutive ``edges``, written or not."""
    return _plus(queries.binned_totals_query(hamster.wheel_id, edges), partial(_add_bins, hamster))


def _add_bins(hamster: Hamster, totals: BinTotals) -> BinTotals:
    if hamster.live is None or totals.revolutions.size == 0:
        return totals
    extra = hamster.live.buffered_minutes(float(totals.boundaries[0]), float(totals.boundaries[-1]))
    if not extra:
        return totals
    minutes = np.array([m for m, _, _ in extra], dtype=np.float64)
    index = np.searchsorted(totals.boundaries, minutes, side="right") - 1
    revolutions, estimated = totals.revolutions.copy(), totals.estimated.copy()
    np.add.at(revolutions, index, [r for _, r, _ in extra])
    np.add.at(estimated, index, [e for _, _, e in extra])
    return BinTotals(totals.boundaries, revolutions, estimated)


def _add_minutes(hamster: Hamster, measured_only: bool, series: MinuteSeries) -> MinuteSeries:
    if hamster.live is None:
        return series
    extra = hamster.live.buffered_minutes(series.start, series.end)
    if measured_only:
        extra = [row for row in extra if row[1] > row[2]]
    if not extra:
        return series
    minutes = np.concatenate((series.minutes, np.array([m for m, _, _ in extra], np.int64)))
    revolutions = np.concatenate((series.revolutions, np.array([r for _, r, _ in extra], np.int64)))
    estimated = np.concatenate((series.estimated, np.array([e for _, _, e in extra], np.int64)))
    unique, index = np.unique(minutes, return_inverse=True)
    return MinuteSeries(
        series.start,
        series.end,
        unique,
        np.bincount(index, weights=revolutions).astype(np.int64),
        np.bincount(index, weights=estimated).astype(np.int64),
    )


def live_minutes_query(hamster: Hamster, start: float, end: float) -> Query[MinuteSeries]:
    """Every minute bucket in ``[start, end)``, written or not."""
    query = queries.minute_series_query(hamster.wheel_id, start, end)
    return _plus(query, partial(_add_minutes, hamster, False))


def live_active_minutes_query(hamster: Hamster, start: float, end: float) -> Query[MinuteSeries]:
    """Minutes with measured revolutions in ``[start, end)``, written or not."""
    query = queries.active_minutes_query(hamster.wheel_id, start, end)
    return _plus(query, partial(_add_minutes, hamster, True))


async def live_total(db: Database, hamster: Hamster, start: float, end: float) -> int:
    """``live_total_query`` on its own (inside ``db.settled()``)."""
    (total,) = await db.read(live_total_query(hamster, start, end))
    return total


async def live_bins(
    db: Database, hamster: Hamster, edges: Sequence[float] | np.ndarray
) -> BinTotals:
    """``live_bins_query`` on its own (inside ``db.settled()``)."""
    (bins,) = await db.read(live_bins_query(hamster, edges))
    return bins


async def live_minutes(db: Database, hamster: Hamster, start: float, end: float) -> MinuteSeries:
    """``live_minutes_query`` on its own (inside ``db.settled()``)."""
    (series,) = await db.read(live_minutes_query(hamster, start, end))
    return series


def night_edges(settings: ChatSettings, last_morning: date, count: int) -> tuple[float, ...]:
    """The summary times bounding ``count`` nights, the last ending on ``last_morning``."""
    return _night_edges(settings.summary_time, settings.timezone, last_morning, count)


@lru_cache(maxsize=256)
def _night_edges(
    summary_time: time, timezone: str, last_morning: date, count: int
) -> tuple[float, ...]:
    # Pure, and asked by every /race and report for the same few mornings: 16 timezone
    # conversions each time were a tenth of a /race (benchmarks/query.py).
    tz = ZoneInfo(timezone)
    mornings = [last_morning - timedelta(days=n) for n in range(count, -1, -1)]
    return tuple(night_bounds(m, summary_time, tz)[1].timestamp() for m in mornings)


def night_metres_query(
    hamster: Hamster, settings: ChatSettings, last_morning: date, count: int
) -> Query[list[float]]:
    """Distance of each of ``count`` nights, oldest first, the last ending on ``last_morning``."""
    edges = night_edges(settings, last_morning, count)
    bins = _plus(_stored_bins_query(hamster.wheel_id, edges), partial(_add_bins, hamster))
    return _plus(bins, lambda totals: [hamster.metres(int(r)) for r in totals.revolutions])


@lru_cache(maxsize=256)
def _stored_bins_query(wheel_id: int, edges: tuple[float, ...]) -> Query[BinTotals]:
    # The same few nights for every /race and report: building the query (edges -> hours and cut
    # hours) was a fifth of a report's Python. A storage query holds no rows, only how to read them;
    # the buffer is added when each read is parsed.
    return queries.binned_totals_query(wheel_id, edges)
