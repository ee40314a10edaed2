"""Standings for a chat and a period: pure functions over totals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.parsing import Units, format_distance

MEDALS = ("🥇", "🥈", "🥉")
HAMSTER = "🐹"
MAX_NAME = 32


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
