"""Standings for a chat and a period: pure functions over totals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from bot.core.charts import RaceLine
from bot.core.parsing import Units, format_distance
from bot.core.stats import utc_offsets

MEDALS = ("🥇", "🥈", "🥉")
HAMSTER = "🐹"
MAX_NAME = 32
HOUR = 3600
MAX_CHART_POINTS = 1000  # more points than a phone has pixels across buys nothing


@dataclass(frozen=True, slots=True)
class Runner:
    name: str
    distance_m: float
    is_hamster: bool = False
    units: Units | None = None  # a person's own units, shown beside the chat's when they differ
    key: int = 0  # stable tie-breaker (person id, wheel id)


@dataclass(frozen=True, slots=True)
class Standing:
    rank: int
    runner: Runner
    gap_m: float | None  # to the leading hamster: positive = behind; None for hamsters


def standings(runners: Sequence[Runner]) -> list[Standing]:
    """Rank by distance; equal distances share a rank and are listed hamsters first, then by name."""
    ordered = sorted(
        runners,
        key=lambda r: (-round(r.distance_m, 3), not r.is_hamster, r.name.casefold(), r.key),
    )
    leader = next((r for r in ordered if r.is_hamster), None)
    result: list[Standing] = []
    for index, runner in enumerate(ordered):
        if result and round(result[-1].runner.distance_m, 3) == round(runner.distance_m, 3):
            rank = result[-1].rank
        else:
            rank = index + 1
        gap = None if runner.is_hamster or leader is None else leader.distance_m - runner.distance_m
        result.append(Standing(rank, runner, gap))
    return result


def clean_name(name: str) -> str:
    """A display name safe for any chat: printable, single-line, bounded."""
    text = "".join(ch if ch.isprintable() else " " for ch in name)
    text = " ".join(text.split()) or "someone"
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 1] + "…"


def render_race(
    rows: Sequence[Standing], *, period_label: str, units: Units, hamster_night_m: float | None
) -> str:
    """The /race reply: medals, distances, the gap to the hamster, people in hamster nights."""
    if not rows:
        return f"🏁 Race, {period_label}: nobody has run yet. Log a run with /logrun 5 km"
    lines = [f"🏁 Race, {period_label}"]
    leader = next((s.runner for s in rows if s.runner.is_hamster), None)
    for row in rows:
        runner = row.runner
        place = MEDALS[row.rank - 1] if row.rank <= len(MEDALS) else f"{row.rank}."
        name = clean_name(runner.name) + (f" {HAMSTER}" if runner.is_hamster else "")
        text = f"{place} {name}: {format_distance(runner.distance_m, units)}"
        if runner.units and runner.units != units:
            text += f" ({format_distance(runner.distance_m, runner.units)})"
        if row.gap_m is not None and leader is not None:
            text += f", {_gap_text(row.gap_m, units, clean_name(leader.name))}"
            if hamster_night_m and hamster_night_m > 0:
                nights = runner.distance_m / hamster_night_m
                text += f", {nights:.1f} hamster nights"
        lines.append(text)
    if sum(1 for s in rows if not s.runner.is_hamster) == 0:
        lines.append("No runs logged yet. /logrun 5 km to join the race!")
    return "\n".join(lines)


def _gap_text(gap_m: float, units: Units, hamster: str) -> str:
    if abs(gap_m) < 0.5:
        return f"level with {hamster}"
    if gap_m > 0:
        return f"{format_distance(gap_m, units)} to catch {hamster}"
    return f"{format_distance(-gap_m, units)} ahead of {hamster}"


def leading_hamster(rows: Sequence[Standing]) -> Runner | None:
    return next((s.runner for s in rows if s.runner.is_hamster), None)


def chart_edges(start: float, end: float) -> np.ndarray:
    """Sample instants for a race chart: the period's ends plus whole UTC hours between them.

    Whole hours come straight from the hourly rollup; the step grows with the period (one hour for a week,
    a day for a year...) so a chart never has more than about ``MAX_CHART_POINTS`` points.
    """
    if end <= start:
        return np.array([start, start], dtype=np.float64)
    hours = max(1, int(np.ceil((end - start) / HOUR / MAX_CHART_POINTS)))
    step = hours * HOUR
    first = -(-int(np.ceil(start)) // step) * step
    inner = np.arange(first, end, step, dtype=np.float64)
    inner = inner[(inner > start) & (inner < end)]
    return np.concatenate(([start], inner, [end]))


@dataclass(frozen=True, slots=True, eq=False)
class HamsterTrack:
    """A hamster's distance between consecutive ``edges`` (from ``storage.queries.binned_totals``)."""

    name: str
    edges: np.ndarray
    metres: np.ndarray  # len(edges) - 1


@dataclass(frozen=True, slots=True)
class RunMark:
    name: str
    key: int
    ran_at: float
    distance_m: float


def race_lines(
    hamsters: Sequence[HamsterTrack],
    runs: Sequence[RunMark],
    rows: Sequence[Standing],
    *,
    start: float,
    end: float,
    tz: ZoneInfo,
) -> list[RaceLine]:
    """Cumulative distance lines for the chart, in the order of the standings ``rows``."""
    hamster_tracks = {track.name: track for track in hamsters}
    by_person: dict[int, list[RunMark]] = {}
    for run in runs:
        by_person.setdefault(run.key, []).append(run)
    lines = []
    for row in rows:
        runner = row.runner
        if runner.is_hamster:
            track = hamster_tracks.get(runner.name)
            if track is None:
                continue
            times = np.asarray(track.edges, dtype=np.float64)
            cumulative = np.concatenate(([0.0], np.cumsum(track.metres, dtype=np.float64)))
        else:
            marks = sorted(by_person.get(runner.key, []), key=lambda m: m.ran_at)
            times = np.array([start, *(m.ran_at for m in marks), end], dtype=np.float64)
            steps = np.array([0.0, *(m.distance_m for m in marks), 0.0])
            cumulative = np.cumsum(steps)
        instants = times.astype(np.int64)
        lines.append(
            RaceLine(
                clean_name(runner.name),
                instants,
                cumulative,
                is_hamster=runner.is_hamster,
                local_offsets=utc_offsets(instants, tz),
            )
        )
    return lines


def chart_caption(rows: Sequence[Standing], *, period_label: str, units: Units) -> str:
    """The words under the race chart: who leads and by how much."""
    if not rows or rows[0].runner.distance_m <= 0:
        return f"📈 Race, {period_label}: nobody has run yet. /logrun 5 km to start!"
    top = rows[0].runner
    text = f"📈 Race, {period_label} ({units}): {clean_name(top.name)} leads with {format_distance(top.distance_m, units)}"
    if len(rows) > 1:
        second = rows[1].runner
        text += f", {format_distance(top.distance_m - second.distance_m, units)} ahead of {clean_name(second.name)}"
    return text + "."
