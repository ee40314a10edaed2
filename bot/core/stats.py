"""The hamster's numbers from bucket arrays: nights, sessions, records, sparklines. Pure numpy, no I/O.

Minute buckets arrive as numpy arrays (``storage.queries.MinuteSeries``); everything here works on whole
arrays, so a night (1,440 minutes) or years of active minutes cost a handful of vectorised operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from bot.core.hours import HourBin, hourly_bins
from bot.core.model import Stats
from bot.core.parsing import METRES_PER_MILE, Units, format_distance, format_speed
from bot.core.periods import local_instant
from storage.queries import MinuteSeries

MINUTE = 60
HOUR = 3600
# Two or more still minutes end a session: a pause to groom or drink is part of the same run.
SESSION_GAP_S = 3 * MINUTE
SPARKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True, slots=True)
class Session:
    start: int  # epoch of the first active minute
    end: int  # epoch just after the last active minute
    revolutions: int

    @property
    def seconds(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class NightStats:
    distance_m: float
    revolutions: int
    estimated_revolutions: int
    active_minutes: int  # minutes with measured revolutions: time on the wheel
    sessions: int
    longest_session_s: int
    longest_session_start: int | None
    top_speed_mps: float  # best full minute of measured revolutions
    top_speed_at: int | None
    most_active_hour: int | None  # local clock hour with the most distance
    hourly_m: tuple[HourBin, ...]  # every local clock hour of the night, in order


@dataclass(frozen=True, slots=True)
class Records:
    """Personal bests over a wheel's history."""

    longest_night_m: float
    longest_night_start: int | None
    fastest_minute_mps: float
    fastest_minute_at: int | None
    longest_session_s: int
    longest_session_start: int | None


def _measured(series: MinuteSeries) -> tuple[np.ndarray, np.ndarray]:
    """Minutes with measured revolutions. Gap credit is spread evenly and would invent hours-long sessions."""
    measured = series.revolutions - series.estimated
    mask = measured > 0
    return series.minutes[mask], measured[mask]


def sessions(series: MinuteSeries) -> list[Session]:
    """Runs on the wheel: measured minutes separated by 2+ still minutes start a new session."""
    minutes, revolutions = _measured(series)
    if minutes.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(minutes) >= SESSION_GAP_S) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [minutes.size])) - 1
    totals = np.add.reduceat(revolutions, starts)
    return [
        Session(int(minutes[a]), int(minutes[b]) + MINUTE, int(n))
        for a, b, n in zip(starts, ends, totals, strict=True)
    ]


def _longest(found: Sequence[Session]) -> Session | None:
    # Ties go to the earliest session so a record keeps its first date.
    best = None
    for session in found:
        if best is None or session.seconds > best.seconds:
            best = session
    return best


def _fastest_minute(series: MinuteSeries, circumference_m: float) -> tuple[float, int | None]:
    minutes, measured = _measured(series)
    if measured.size == 0:
        return 0.0, None
    best = int(np.argmax(measured))  # the first of equal minutes, so a record keeps its first date
    return float(measured[best]) * circumference_m / MINUTE, int(minutes[best])


def night_stats(series: MinuteSeries, circumference_m: float, tz: ZoneInfo) -> NightStats:
    """Everything the morning report and /hamster say about one night (or any stretch of minutes)."""
    revolutions = int(series.revolutions.sum())
    _, measured = _measured(series)
    found = sessions(series)
    longest = _longest(found)
    top_speed, top_at = _fastest_minute(series, circumference_m)
    hourly = hourly_bins(series, circumference_m, tz)
    most_active = None
    if hourly and max(b.distance_m for b in hourly) > 0:
        most_active = max(hourly, key=lambda b: b.distance_m).hour
    return NightStats(
        distance_m=revolutions * circumference_m,
        revolutions=revolutions,
        estimated_revolutions=int(series.estimated.sum()),
        active_minutes=int(measured.size),
        sessions=len(found),
        longest_session_s=longest.seconds if longest else 0,
        longest_session_start=longest.start if longest else None,
        top_speed_mps=top_speed,
        top_speed_at=top_at,
        most_active_hour=most_active,
        hourly_m=hourly,
    )


@dataclass(frozen=True, slots=True, eq=False)
class MinuteBests:
    """Fastest minute and longest session over the minutes folded in so far.

    Folding is incremental so the bot reads a wheel's history once per process and afterwards only the
    newest minutes: ``open_minutes`` keep the session that may still continue past ``through``.
    """

    through: float  # every minute before this is folded in
    fastest_revolutions: int = 0
    fastest_at: int | None = None
    longest: Session | None = None
    open_minutes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    open_revolutions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def fold_minutes(bests: MinuteBests | None, chunk: MinuteSeries) -> MinuteBests:
    """``bests`` plus the measured minutes of ``chunk`` (which starts where ``bests`` ends)."""
    minutes, measured = _measured(chunk)
    if bests is None:
        bests = MinuteBests(chunk.start)
    fastest, fastest_at = bests.fastest_revolutions, bests.fastest_at
    if measured.size:
        best = int(np.argmax(measured))  # the first of equal minutes: a record keeps its first date
        if int(measured[best]) > fastest:
            fastest, fastest_at = int(measured[best]), int(minutes[best])
    all_minutes = np.concatenate((bests.open_minutes, minutes))
    all_revolutions = np.concatenate((bests.open_revolutions, measured))
    joined = MinuteSeries(
        bests.through, chunk.end, all_minutes, all_revolutions, np.zeros_like(all_revolutions)
    )
    found = sessions(joined)
    longest = bests.longest
    candidate = _longest(found)
    if candidate is not None and (longest is None or candidate.seconds > longest.seconds):
        longest = candidate
    open_minutes = open_revolutions = np.zeros(0, dtype=np.int64)
    if found and chunk.end - (found[-1].end - MINUTE) < SESSION_GAP_S:
        keep = all_minutes >= found[-1].start
        open_minutes, open_revolutions = all_minutes[keep], all_revolutions[keep]
    return MinuteBests(
        max(chunk.end, bests.through),
        fastest,
        fastest_at,
        longest,
        open_minutes,
        open_revolutions,
    )


def records_of(
    bests: MinuteBests,
    night_starts: np.ndarray,
    night_revolutions: np.ndarray,
    circumference_m: float,
) -> Records:
    """Personal bests: the longest night (from nightly totals), fastest minute and longest session."""
    night_revolutions = np.asarray(night_revolutions)
    if night_revolutions.size and night_revolutions.max() > 0:
        best_night = int(np.argmax(night_revolutions))
        longest_night = float(night_revolutions[best_night]) * circumference_m
        longest_night_start: int | None = int(night_starts[best_night])
    else:
        longest_night, longest_night_start = 0.0, None
    longest = bests.longest
    return Records(
        longest_night_m=longest_night,
        longest_night_start=longest_night_start,
        fastest_minute_mps=bests.fastest_revolutions * circumference_m / MINUTE,
        fastest_minute_at=bests.fastest_at,
        longest_session_s=longest.seconds if longest else 0,
        longest_session_start=longest.start if longest else None,
    )


def records(
    active: MinuteSeries,
    night_starts: np.ndarray,
    night_revolutions: np.ndarray,
    circumference_m: float,
) -> Records:
    """Personal bests from all of a wheel's minutes at once."""
    return records_of(fold_minutes(None, active), night_starts, night_revolutions, circumference_m)


def streak(night_metres: Sequence[float] | np.ndarray, threshold_m: float) -> int:
    """Consecutive nights at or over ``threshold_m`` counted back from the newest."""
    values = np.asarray(night_metres, dtype=np.float64)
    below = np.flatnonzero(values < threshold_m)
    return int(values.size if below.size == 0 else values.size - 1 - below[-1])


def current_streak(night_metres: Sequence[float] | np.ndarray, threshold_m: float) -> int:
    """The streak through the last complete night; the night in progress (the last value) joins it once over."""
    values = np.asarray(night_metres, dtype=np.float64)
    if values.size == 0:
        return 0
    return streak(values[:-1], threshold_m) + int(values[-1] >= threshold_m)


def sparkline(values: Sequence[float] | np.ndarray) -> str:
    """``▁▂▃▅▇``: zero is the lowest bar, any activity at least the second, the busiest the highest."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return ""
    peak = float(array.max())
    if peak <= 0:
        return SPARKS[0] * array.size
    levels = np.where(array > 0, 1 + np.rint(array / peak * (len(SPARKS) - 2)), 0).astype(int)
    return "".join(SPARKS[i] for i in levels)


def night_boundaries(first: float, last: float, summary_time: time, tz: ZoneInfo) -> np.ndarray:
    """Summary times (epoch s) from the one at or before ``first`` to the first at or after ``last``.

    Consecutive boundaries are the nights of the morning report: 23 or 25 hours long across DST. A Python loop
    over days, not minutes.
    """

    def at(day: date) -> float:
        return local_instant(day, summary_time, tz).timestamp()

    day = datetime.fromtimestamp(first, tz).date()
    while at(day) > first:
        day -= timedelta(days=1)
    edges = [at(day)]
    while edges[-1] < last:
        day += timedelta(days=1)
        edges.append(at(day))
    return np.array(edges, dtype=np.float64)


STREAK_M = METRES_PER_MILE


def _day(epoch: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch, tz).strftime("%a %-d %b %Y")


def _moment(epoch: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch, tz).strftime("%a %-d %b %Y %H:%M")


def _minutes(seconds: int) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def render_hamster_stats(report: Stats, *, units: Units, tz: ZoneInfo, name: str) -> str:
    """The ``/hamster stats`` block for one hamster (``name`` already cleaned for the chat)."""
    last = report.last_night
    lines = [f"🐹 {name}'s stats", f"Tonight so far: {format_distance(report.tonight_m, units)}"]
    night = f"Last night: {format_distance(last.distance_m, units)}"
    if last.distance_m <= 0:
        night = "Last night: no data (the sensor sent nothing)"
    if last.active_minutes:
        runs = "run" if last.sessions == 1 else "runs"
        night += f", {_minutes(last.active_minutes * 60)} on the wheel in {last.sessions} {runs}"
    lines.append(night)
    busy = [i for i, b in enumerate(last.hourly_m) if b.distance_m > 0]
    if busy:
        # From the first to the last hour with running: the quiet daytime says nothing.
        shown = last.hourly_m[busy[0] : busy[-1] + 1]
        spark = sparkline([b.distance_m for b in shown])
        lines.append(f"{spark} {shown[0].hour:02d}:00–{(shown[-1].hour + 1) % 24:02d}:00")
    if report.week_average_m is not None:
        lines.append(f"7-night average: {format_distance(report.week_average_m, units)}")
    lines.append(
        f"All time: {format_distance(report.all_time_m, units)} ({report.all_time_revolutions:,} turns of the wheel)"
    )
    best = report.records
    # The streak's bar is one mile, said in the chat's units.
    threshold = "1 mile" if units == "mi" else format_distance(STREAK_M, units, precision=1)
    if best.longest_night_start is not None:
        lines.append(
            f"🏆 Longest night: {format_distance(best.longest_night_m, units)} (night of {_day(best.longest_night_start, tz)})"
        )
    if best.fastest_minute_at is not None:
        lines.append(
            f"⚡ Fastest minute: {format_speed(best.fastest_minute_mps, units)} ({_moment(best.fastest_minute_at, tz)})"
        )
    if best.longest_session_start is not None:
        lines.append(
            f"⏱️ Longest session: {_minutes(best.longest_session_s)} ({_moment(best.longest_session_start, tz)})"
        )
    if report.streak_nights:
        nights = "night" if report.streak_nights == 1 else "nights"
        lines.append(f"🔥 Streak: {report.streak_nights} {nights} in a row over {threshold}")
    else:
        lines.append(f"🔥 No streak of nights over {threshold} right now.")
    return "\n".join(lines)
