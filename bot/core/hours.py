"""Local clock hours of a night: UTC offsets per instant and distance per wall-clock hour. Pure numpy.

Offsets change at most at quarter hours, so a day's offsets are a table of 96 and a night's hours are found
from about 100 instants, or by one integer division when the offset holds all night.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from storage.queries import MinuteSeries

MINUTE = 60
HOUR = 3600


@dataclass(frozen=True, slots=True)
class HourBin:
    start: int  # epoch where this local clock hour begins inside the night
    hour: int  # local clock hour, 0-23
    distance_m: float

    @property
    def label(self) -> str:
        return f"{self.hour:02d}"


QUARTER = 900  # seconds: UTC offsets change at most at quarter hours


def utc_offsets(times: np.ndarray, tz: ZoneInfo) -> np.ndarray:
    """UTC offset in seconds at each epoch in ``times``.

    Offsets change at most at quarter hours. Within a few UTC days (a night, a report), each day's
    96 quarter-hour offsets are a table kept per zone and day, since every chat's report on the same
    morning asks again; over longer spans zoneinfo is asked once per distinct quarter hour.
    """
    times = np.asarray(times, dtype=np.int64)
    if times.size == 0:
        return np.zeros(0, dtype=np.int64)
    first_day, last_day = int(times.min()) // DAY_S, int(times.max()) // DAY_S
    if last_day - first_day < TABLE_DAYS:
        table = np.concatenate([_day_offsets(day, tz) for day in range(first_day, last_day + 1)])
        return table[times // QUARTER - first_day * QUARTERS_A_DAY]
    quarters, index = np.unique(times // QUARTER, return_inverse=True)
    offsets = np.array([_offset(int(q) * QUARTER, tz) for q in quarters], dtype=np.int64)
    return offsets[index]


DAY_S = 86_400
QUARTERS_A_DAY = DAY_S // QUARTER
TABLE_DAYS = 3


@lru_cache(maxsize=256)
def _day_offsets(day: int, tz: ZoneInfo) -> np.ndarray:
    table = np.array(
        [_offset(day * DAY_S + q * QUARTER, tz) for q in range(QUARTERS_A_DAY)], dtype=np.int64
    )
    table.flags.writeable = False  # shared by every caller
    return table


def _offset(epoch: int, tz: ZoneInfo) -> int:
    offset = datetime.fromtimestamp(epoch, UTC).astimezone(tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def hourly_bins(series: MinuteSeries, circumference_m: float, tz: ZoneInfo) -> tuple[HourBin, ...]:
    """Distance per local clock hour over ``[series.start, series.end)``, every hour, in order of time.

    A bin starts at the first minute and wherever the local clock hour or the UTC offset changes.
    Offsets are constant within a quarter hour (``utc_offsets``), so those places are quarter-hour
    starts and the one hour boundary a quarter may hold: about 100 instants a night are looked at,
    not 1,440 minutes.
    """
    first = int(np.ceil(series.start / MINUTE)) * MINUTE
    stop = int(np.ceil(series.end / MINUTE)) * MINUTE  # after the last minute of the night
    if stop <= first:
        return ()
    minutes = series.minutes
    inside = (minutes >= first) & (minutes < stop) & (minutes % MINUTE == 0)
    offset = _constant_offset(first, stop - MINUTE, tz)
    if offset is not None:  # most nights: no clock change, every bin is one wall-clock hour
        starts, hours, index = _fixed_offset_hours(minutes[inside], first, stop, offset)
    else:
        starts, hours, index = _changing_offset_hours(minutes[inside], first, stop, tz)
    totals = np.bincount(index, weights=series.revolutions[inside], minlength=len(starts))
    return tuple(
        HourBin(start, hour, total * circumference_m)
        for start, hour, total in zip(starts, hours, totals.tolist(), strict=True)
    )


Hours = tuple[list[int], list[int], np.ndarray]  # bin starts, their clock hours, each minute's bin


def _fixed_offset_hours(minutes: np.ndarray, first: int, stop: int, offset: int) -> Hours:
    """The UTC offset is ``offset`` all night: minute m is in wall hour (m + offset) // HOUR."""
    first_hour = (first + offset) // HOUR
    count = (stop - MINUTE + offset) // HOUR - first_hour + 1
    # A bin begins at the first grid minute at or after its wall hour's start.
    starts = [first] + [
        -(-((first_hour + k) * HOUR - offset) // MINUTE) * MINUTE for k in range(1, count)
    ]
    hours = [(first_hour + k) % 24 for k in range(count)]
    return starts, hours, (minutes + offset) // HOUR - first_hour


def _changing_offset_hours(minutes: np.ndarray, first: int, stop: int, tz: ZoneInfo) -> Hours:
    """A night across a clock change: the bins are read off about 100 quarter-hour instants."""
    quarters = np.arange(-(-first // QUARTER) * QUARTER, stop, QUARTER, dtype=np.int64)
    segments = np.concatenate(([first], quarters[quarters > first]))
    offsets = utc_offsets(segments, tz)
    # The first instant of the next local hour after each segment's start, as a grid minute.
    boundary = ((segments + offsets) // HOUR + 1) * HOUR - offsets
    boundary = -(-boundary // MINUTE) * MINUTE
    ends = np.concatenate((segments[1:], [stop]))
    candidates = np.concatenate((segments, boundary[boundary < ends]))
    if candidates.size > segments.size:  # an hour boundary off the quarter hours (old zones)
        candidates = np.unique(candidates)
    offsets = utc_offsets(candidates, tz)
    wall_hour = (candidates + offsets) // HOUR
    # Consecutive stretches with the same wall-clock hour and offset form one bin; the hour repeated
    # when clocks go back shows up twice, in the order it happened.
    changes = (np.diff(wall_hour) != 0) | (np.diff(offsets) != 0)
    first_of_bin = np.concatenate(([0], np.flatnonzero(changes) + 1))
    bin_starts = candidates[first_of_bin]
    index = np.searchsorted(bin_starts, minutes, side="right") - 1
    return bin_starts.tolist(), (wall_hour[first_of_bin] % 24).tolist(), index


def _constant_offset(first: int, last: int, tz: ZoneInfo) -> int | None:
    """The UTC offset if it is the same at every instant of ``[first, last]``, else None."""
    days = range(first // DAY_S, last // DAY_S + 1)
    if len(days) > TABLE_DAYS:
        return None
    found = {_day_constant(day, tz) for day in days}
    if len(found) != 1:
        return None
    return found.pop()


@lru_cache(maxsize=256)
def _day_constant(day: int, tz: ZoneInfo) -> int | None:
    """The UTC offset of UTC ``day`` if it never changes that day, else None."""
    table = _day_offsets(day, tz)
    return int(table[0]) if bool((table == table[0]).all()) else None
