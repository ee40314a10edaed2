"""The race: standings for a chat and a period (``reads.standings`` -> ``Standings``), their text and chart.

Ranking and rendering are pure; the ``/race`` and ``/chart`` handlers at the end read, rank and render.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

import numpy as np

from bot.core import reads
from bot.core.charts import RaceLine, race_chart
from bot.core.hours import utc_offsets
from bot.core.model import ChatSettings, Scope, Standings, StandingsEntry
from bot.core.parsing import Units, format_distance
from bot.core.periods import Period, parse_period
from bot.core.registry import CommandContext, Reply, command

if TYPE_CHECKING:
    from bot.core.commands import BotCore
    from storage.chats import Chat
    from storage.db import Query

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


def _entry(runner: Runner) -> StandingsEntry:
    kind: Literal["hamster", "person"] = "hamster" if runner.is_hamster else "person"
    return StandingsEntry(0, runner.name, kind, runner.distance_m, None, runner.units, runner.key)


def _runner(entry: StandingsEntry) -> Runner:
    return Runner(entry.name, entry.distance_m, entry.kind == "hamster", entry.units, entry.key)


def standings(runners: Sequence[Runner]) -> list[Standing]:
    """``rank`` over runners (the tests' and the chart's shape)."""
    return [Standing(e.rank, _runner(e), e.gap_m) for e in reads.rank([_entry(r) for r in runners])]


def clean_name(name: str) -> str:
    """A display name safe for any chat: printable, single-line, bounded."""
    text = name if name.isprintable() else "".join(c if c.isprintable() else " " for c in name)
    text = " ".join(text.split()) or "someone"
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 1] + "…"


def render_standings(board: Standings, units: Units, *, nights: bool = True) -> str:
    """The /race reply: medals, distances, the gap to the hamster, people in hamster nights."""
    label = board.period_label
    if not board.entries:
        return f"🏁 Race, {label}: nobody has run yet. Log a run with /logrun 5 km"
    lines = [f"🏁 Race, {label}"]
    leader = board.leader
    leader_name = clean_name(leader.name) if leader is not None else ""
    night_m = board.leader_average_7_m if nights else None
    for entry in board.entries:
        place = MEDALS[entry.rank - 1] if entry.rank <= len(MEDALS) else f"{entry.rank}."
        name = clean_name(entry.name) + (f" {HAMSTER}" if entry.kind == "hamster" else "")
        text = f"{place} {name}: {format_distance(entry.distance_m, units)}"
        if entry.units and entry.units != units:
            text += f" ({format_distance(entry.distance_m, entry.units)})"
        if entry.gap_m is not None and leader is not None:
            text += f", {_gap_text(entry.gap_m, units, leader_name)}"
            if night_m and night_m > 0:
                text += f", {entry.distance_m / night_m:.1f} hamster nights"
        lines.append(text)
    if not any(e.kind == "person" for e in board.entries):
        lines.append("No runs logged yet. /logrun 5 km to join the race!")
    return "\n".join(lines)


def render_race(
    rows: Sequence[Standing], *, period_label: str, units: Units, hamster_night_m: float | None
) -> str:
    """``render_standings`` for ranked runners."""
    epoch = datetime.fromtimestamp(0, UTC)
    entries = tuple(replace(_entry(s.runner), rank=s.rank, gap_m=s.gap_m) for s in rows)
    board = Standings(period_label, epoch, epoch, entries, "", hamster_night_m)
    return render_standings(board, units)


def _gap_text(gap_m: float, units: Units, hamster: str) -> str:
    if abs(gap_m) < 0.5:
        return f"level with {hamster}"
    if gap_m > 0:
        return f"{format_distance(gap_m, units)} to catch {hamster}"
    return f"{format_distance(-gap_m, units)} ahead of {hamster}"


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
    rows: Sequence[StandingsEntry],
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
    for runner in rows:
        is_hamster = runner.kind == "hamster"
        if is_hamster:
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
                is_hamster=is_hamster,
                local_offsets=utc_offsets(instants, tz),
            )
        )
    return lines


def chart_caption(board: Standings, units: Units) -> str:
    """The words under the race chart: who leads and by how much."""
    rows, period_label = board.entries, board.period_label
    if not rows or rows[0].distance_m <= 0:
        return f"📈 Race, {period_label}: nobody has run yet. /logrun 5 km to start!"
    top = rows[0]
    best = format_distance(top.distance_m, units)
    # Equal as shown, not only as stored: "0.00 mi ahead" is no lead.
    leaders = [r for r in rows if format_distance(r.distance_m, units) == best]
    head = f"📈 Race, {period_label} ({units}): "
    if len(leaders) > 1:
        names = [clean_name(r.name) for r in leaders]
        together = ", ".join(names[:-1]) + f" and {names[-1]}"
        return head + f"{together} share the lead with {best}."
    text = head + f"{clean_name(top.name)} leads with {best}"
    if len(rows) > 1:
        second = rows[1]
        text += f", {format_distance(top.distance_m - second.distance_m, units)} ahead of {clean_name(second.name)}"
    return text + "."


# --- /race and /chart -----------------------------------------------------------------------------


@command("race", "/race [PERIOD]", "standings: week (default), today, month, all…")
async def race(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    def asked(chat: Chat | None, settings: ChatSettings) -> list[Query[Standings]]:
        period = parse_period(
            args, now=ctx.now.astimezone(settings.tz), summary_time=settings.summary_time
        )
        hamsters = core.in_scope(core.scope_for(chat or ctx))
        return [reads.standings_query(hamsters, chat, period, ctx.now, settings)]

    _, settings, (board,) = await core.read_in_chat(ctx, asked)
    return Reply(render_standings(board, settings.units))


async def race_chart_lines(
    core: BotCore,
    scope: Scope,
    chat: Chat | None,
    period: Period,
    now: float,
    settings: ChatSettings,
    board: Standings,
) -> list[RaceLine]:
    """The race's cumulative distance lines over ``period`` up to ``now``: /chart and the web page."""
    end = min(period.end.timestamp(), now + 1)
    start, hamsters = period.start.timestamp(), core.in_scope(scope)
    if period.key == "all":
        # "All time" starts in 1970; the picture starts with the first thing that happened.
        firsts = await reads.first_activity(core, hamsters, chat)
        start = max(start, min(firsts)) if firsts else end - 86400
    edges = chart_edges(start, end)
    tracks, runs = await reads.race_tracks(core, hamsters, chat, edges)
    marks = [RunMark(r.display_name, r.person_id, r.ran_at, r.distance_m) for r in runs]
    return race_lines(
        [HamsterTrack(h.name, edges, metres) for h, metres in zip(hamsters, tracks, strict=True)],
        marks,
        board.entries,
        start=start,
        end=end,
        tz=settings.tz,
    )


@command("chart", "/chart [PERIOD]", "the race as a picture: week (default), month, all…")
async def chart(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    chat, settings = await core.chat_settings(ctx)
    units = settings.units
    period = parse_period(
        args, now=ctx.now.astimezone(settings.tz), summary_time=settings.summary_time
    )
    scope = core.scope_for(chat or ctx)
    board = await reads.standings(core, scope, chat, period, ctx.now, settings, with_average=False)
    lines = await race_chart_lines(core, scope, chat, period, ctx.now.timestamp(), settings, board)
    draw = core.charts.get("race") or race_chart
    image = await draw(lines, title=f"Race, {board.period_label} ({units})", units=units)
    if image is None:
        text = render_standings(board, units, nights=False)
        return Reply(text + "\n(I couldn't draw the chart this time.)")
    return Reply(chart_caption(board, units), image_png=image, image_name=f"race-{period.key}.png")
