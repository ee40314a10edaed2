"""The read side of the application: store + scope + time -> the values of ``bot.core.model``.

Every face calls these and renders the values its own way (chat text, the web page's HTML/JSON, the CLI):

* ``hamsters_now(core, scope, now, settings)`` -> list[HamsterNow]: tonight so far, last night, the 7-night
  average, all time and the sensor's status, for the hamsters in ``scope``.
* ``nights(core, name, settings, last_morning, count)`` -> list[NightDistance]: a hamster's last nights.
* ``standings(core, scope, chat, period, now, settings)`` -> Standings: a chat's race for a period.
* ``hamster_stats(core, scope, now, settings)`` -> list[Stats]: ``/hamster stats``.
* ``league(core, period, now, settings)`` -> League: every hamster the bot knows, ranked, with its home.
* ``chat_settings(config, chat)`` -> ChatSettings: a chat's settings, or the configured defaults for None.
* ``rank(entries)``: the one ranking rule (pure).

Reads never write and never flush: a live figure is the stored rows plus what the wheel pipeline holds in
memory (``WheelStore.buffered``), both taken inside ``Database.settled()`` so no flush is half done between
them. Each read asks its queries together (``asyncio.gather``): aiosqlite's thread runs them back to back,
one wait for the database instead of one per query (benchmarks/query.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

import numpy as np

from bot.config import Config, HamsterConfig
from bot.core import stats as wheel_stats
from bot.core.model import (
    NO_SENSOR,
    ChatSettings,
    HamsterNow,
    League,
    LeagueEntry,
    NightDistance,
    Scope,
    Standings,
    StandingsEntry,
    Stats,
    night_average,
)
from bot.core.periods import Period, last_night, night_bounds, parse_period
from storage import queries
from storage import runs as run_store
from storage.chats import Chat
from storage.db import Database
from storage.runs import Run
from storage.wheel import WheelStore

if TYPE_CHECKING:
    from bot.core.commands import BotCore

AVERAGE_NIGHTS = 7


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


def home_of(config: Config, hamster: HamsterConfig) -> str | None:
    """Where a hamster lives: the gateway's home for ``mqtt:HOME/WHEEL``, else this bot's own
    ``[gateway] home`` when it names one, else None (beside the bot)."""
    return hamster.home or config.gateway.home


def chat_settings(config: Config, chat: Chat | None) -> ChatSettings:
    """The chat's effective settings: its own where set, else the configured defaults."""
    summary_time = config.summary.time
    units = config.bot.units
    timezone = config.bot.timezone
    enabled = config.summary.enabled
    if chat is not None:
        if chat.summary_time:
            summary_time = time.fromisoformat(chat.summary_time)
        if chat.units in ("km", "mi"):
            units = chat.units  # type: ignore[assignment]
        timezone = chat.timezone or timezone
        enabled = enabled if chat.summary_enabled is None else chat.summary_enabled
    return ChatSettings(timezone, units, summary_time, enabled)


# --- live figures: stored rows + the pipeline's buffer (call inside db.settled()) ----------------


async def live_total(db: Database, hamster: Hamster, start: float, end: float) -> int:
    """Revolutions with ``start <= minute < end``, written or not."""
    stored = await queries.wheel_total(db, hamster.wheel_id, start, end)
    buffered = hamster.live.buffered(start, end) if hamster.live else 0
    return stored.revolutions + buffered


async def live_bins(
    db: Database, hamster: Hamster, edges: Sequence[float] | np.ndarray
) -> queries.BinTotals:
    """Revolutions between consecutive ``edges``, written or not."""
    totals = await queries.binned_totals(db, hamster.wheel_id, edges)
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
    return queries.BinTotals(totals.boundaries, revolutions, estimated)


def _with_buffer(series: queries.MinuteSeries, hamster: Hamster, measured_only: bool = False):
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
    return queries.MinuteSeries(
        series.start,
        series.end,
        unique,
        np.bincount(index, weights=revolutions).astype(np.int64),
        np.bincount(index, weights=estimated).astype(np.int64),
    )


async def live_minutes(
    db: Database, hamster: Hamster, start: float, end: float
) -> queries.MinuteSeries:
    """Every minute bucket in ``[start, end)``, written or not."""
    return _with_buffer(await queries.minute_series(db, hamster.wheel_id, start, end), hamster)


async def live_active_minutes(
    db: Database, hamster: Hamster, start: float, end: float
) -> queries.MinuteSeries:
    series = await queries.active_minutes(db, hamster.wheel_id, start, end)
    return _with_buffer(series, hamster, measured_only=True)


def night_edges(settings: ChatSettings, last_morning: date, count: int) -> list[float]:
    """The summary times bounding ``count`` nights, the last ending on ``last_morning``."""
    mornings = [last_morning - timedelta(days=n) for n in range(count, -1, -1)]
    return [night_bounds(m, settings.summary_time, settings.tz)[1].timestamp() for m in mornings]


async def night_metres(
    db: Database, hamster: Hamster, settings: ChatSettings, last_morning: date, count: int
) -> list[float]:
    """Distance of each of ``count`` nights, oldest first, the last ending on ``last_morning``."""
    bins = await live_bins(db, hamster, night_edges(settings, last_morning, count))
    return [hamster.metres(int(r)) for r in bins.revolutions]


# --- the read API ---------------------------------------------------------------------------------


async def hamsters_now(
    core: BotCore, scope: Scope, now: datetime, settings: ChatSettings
) -> list[HamsterNow]:
    """Each hamster in ``scope`` at ``now``: tonight so far, last night, 7-night average, all time."""
    local_now = now.astimezone(settings.tz)
    tonight = parse_period("tonight", now=local_now, summary_time=settings.summary_time)
    night = last_night(local_now, settings.summary_time)
    start, end = tonight.start.timestamp(), now.timestamp() + 1
    hamsters = core.in_scope(scope)
    db = core.db
    async with db.settled():
        rows = await asyncio.gather(
            *(
                asyncio.gather(
                    live_total(db, h, start, end),
                    night_metres(db, h, settings, night.end.date(), AVERAGE_NIGHTS),
                    live_total(db, h, 0, end),
                    queries.latest_event(db, h.wheel_id, ("battery",)),
                )
                for h in hamsters
            )
        )
    result = []
    for hamster, (tonight_revs, nightly, all_revs, battery_row) in zip(hamsters, rows, strict=True):
        status = core.status(hamster.name) or NO_SENSOR
        if status.battery is None and battery_row is not None and battery_row[2] is not None:
            status = replace(status, battery=int(battery_row[2]))
        result.append(
            HamsterNow(
                name=hamster.name,
                home=home_of(core.config, hamster.config),
                tonight_m=hamster.metres(tonight_revs),
                last_night_m=nightly[-1] if nightly[-1] > 0 else None,
                average_7_m=night_average(nightly),
                all_time_m=hamster.metres(all_revs),
                revolutions=all_revs,
                sensor=status,
            )
        )
    return result


async def nights(
    core: BotCore, name: str, settings: ChatSettings, last_morning: date, count: int
) -> list[NightDistance]:
    """The hamster called ``name``'s last ``count`` nights, oldest first, ending on ``last_morning``."""
    hamster = core.hamster(name)
    if hamster is None:
        return []
    async with core.db.settled():
        metres = await night_metres(core.db, hamster, settings, last_morning, count)
    first = last_morning - timedelta(days=count - 1)
    return [NightDistance(first + timedelta(days=i), m) for i, m in enumerate(metres)]


def rank(entries: Sequence[StandingsEntry]) -> tuple[StandingsEntry, ...]:
    """Rank by distance; equal distances share a rank and are listed hamsters first, then by name."""
    ordered = sorted(
        entries,
        key=lambda e: (-round(e.distance_m, 3), e.kind != "hamster", e.name.casefold(), e.key),
    )
    leader = next((e for e in ordered if e.kind == "hamster"), None)
    ranked: list[StandingsEntry] = []
    for index, entry in enumerate(ordered):
        same = bool(ranked) and round(ranked[-1].distance_m, 3) == round(entry.distance_m, 3)
        gap = None
        if entry.kind != "hamster" and leader is not None:
            gap = leader.distance_m - entry.distance_m
        ranked.append(replace(entry, rank=ranked[-1].rank if same else index + 1, gap_m=gap))
    return tuple(ranked)


async def standings(
    core: BotCore,
    scope: Scope,
    chat: Chat | None,
    period: Period,
    now: datetime,
    settings: ChatSettings,
    *,
    with_average: bool = True,
    until: float | None = None,
) -> Standings:
    """The hamsters in ``scope`` and ``chat``'s runners over ``period``, up to ``now`` (inclusive) or
    ``until`` (exclusive) when given."""
    until = now.timestamp() + 1 if until is None else until
    start, end = period.start.timestamp(), min(period.end.timestamp(), until)
    hamsters = core.in_scope(scope)
    db = core.db
    morning = last_night(now.astimezone(settings.tz), settings.summary_time).end.date()
    async with db.settled():
        totals, people, averages = await asyncio.gather(
            asyncio.gather(*(live_total(db, h, start, end) for h in hamsters)),
            queries.person_totals(db, chat.id, start, end) if chat else _nobody(),
            asyncio.gather(
                *(
                    night_metres(db, h, settings, morning, AVERAGE_NIGHTS)
                    for h in (hamsters if with_average else [])
                )
            ),
        )
    entries = [
        StandingsEntry(0, h.name, "hamster", h.metres(revs), None, key=h.wheel_id)
        for h, revs in zip(hamsters, totals, strict=True)
    ]
    entries += [
        StandingsEntry(
            0,
            p.display_name,
            "person",
            p.distance_m,
            None,
            units=p.units if p.units in ("km", "mi") else None,  # type: ignore[arg-type]
            key=p.person_id,
        )
        for p in people
    ]
    ranked = rank(entries)
    leader = next((e for e in ranked if e.kind == "hamster"), None)
    average = None
    if leader is not None and with_average:
        index = next(i for i, h in enumerate(hamsters) if h.wheel_id == leader.key)
        average = night_average(averages[index])
    return Standings(period.label, period.start, period.end, ranked, period.key, average)


async def league(core: BotCore, period: Period, now: datetime, settings: ChatSettings) -> League:
    """Every hamster the bot knows over ``period`` (up to ``now``), ranked by distance, with homes."""
    board = await standings(core, core.everyone(), None, period, now, settings, with_average=False)
    by_id = {h.wheel_id: h for h in core.hamsters}
    entries = []
    for entry in board.entries:
        hamster = by_id[entry.key]
        status = core.status(hamster.name)
        entries.append(
            LeagueEntry(
                entry.rank,
                entry.name,
                home_of(core.config, hamster.config),
                entry.distance_m,
                status.online if status else None,
            )
        )
    return League(board.period_label, board.start, board.end, tuple(entries), board.period_key)


async def _nobody() -> list[queries.PersonTotal]:
    return []


async def hamster_stats(
    core: BotCore, scope: Scope, now: datetime, settings: ChatSettings
) -> list[Stats]:
    """Records, streaks and last night's shape for each hamster in ``scope``."""
    local_now = now.astimezone(settings.tz)
    tz, at = settings.tz, now.timestamp()
    tonight = parse_period("tonight", now=local_now, summary_time=settings.summary_time)
    night = last_night(local_now, settings.summary_time)
    start, end = night.start.timestamp(), night.end.timestamp()
    db = core.db
    result = []
    for hamster in core.in_scope(scope):
        circumference = hamster.config.circumference_m
        async with db.settled():
            last, total, so_far, first, nightly = await asyncio.gather(
                live_minutes(db, hamster, start, end),
                live_total(db, hamster, 0, at + 1),
                live_total(db, hamster, tonight.start.timestamp(), at + 1),
                queries.first_activity(db, hamster.wheel_id),
                night_metres(db, hamster, settings, night.end.date(), AVERAGE_NIGHTS),
            )
            edges = wheel_stats.night_boundaries(
                at if first is None else first, at, settings.summary_time, tz
            )
            bins = await live_bins(db, hamster, edges)
            bests = await _minute_bests(core, hamster, start, at + 1)
        streak = wheel_stats.current_streak(bins.revolutions * circumference, wheel_stats.STREAK_M)
        result.append(
            Stats(
                name=hamster.name,
                tonight_m=hamster.metres(so_far),
                last_night=wheel_stats.night_stats(last, circumference, tz),
                week_average_m=night_average(nightly),
                all_time_m=hamster.metres(total),
                all_time_revolutions=total,
                records=wheel_stats.records_of(bests, edges[:-1], bins.revolutions, circumference),
                streak_nights=streak,
            )
        )
    return result


async def _minute_bests(
    core: BotCore, hamster: Hamster, settled: float, end: float
) -> wheel_stats.MinuteBests:
    """Fastest minute and longest session up to ``end`` (inside ``db.settled()``).

    Minutes before ``settled`` (last night's start) no longer change, so they are folded once per process
    and kept; each call then reads only the minutes since, about a night's worth.
    """
    bests = core.minute_bests.get(hamster.wheel_id)
    if bests is None or bests.through > settled:
        bests = None
    start = 0.0 if bests is None else bests.through
    if start < settled:
        older = await live_active_minutes(core.db, hamster, start, settled)
        bests = wheel_stats.fold_minutes(bests, older)
        core.minute_bests[hamster.wheel_id] = bests
    recent = await live_active_minutes(core.db, hamster, settled, end)
    return wheel_stats.fold_minutes(bests, recent)


async def first_activity(
    core: BotCore, hamsters: Sequence[Hamster], chat: Chat | None
) -> list[float]:
    """When each hamster first ran and the chat's first run, those known: where "all time" begins."""
    db = core.db
    firsts = await asyncio.gather(
        *(queries.first_activity(db, h.wheel_id) for h in hamsters),
        queries.first_run_at(db, chat.id) if chat else _none(),
    )
    known = [float(f) for f in firsts if f is not None]
    for hamster in hamsters:
        buffered = hamster.live.buffered_minutes(0, float("inf")) if hamster.live else []
        known += [float(buffered[0][0])] if buffered else []
    return known


async def _none() -> None:
    return None


async def race_tracks(
    core: BotCore, hamsters: Sequence[Hamster], chat: Chat | None, edges: np.ndarray
) -> tuple[list[np.ndarray], list[Run]]:
    """Each hamster's metres between consecutive ``edges``, and the chat's runs between the ends."""
    db = core.db
    start, end = float(edges[0]), float(edges[-1])
    async with db.settled():
        bins, runs = await asyncio.gather(
            asyncio.gather(*(live_bins(db, h, edges) for h in hamsters)),
            run_store.runs_between(db, start, end, chat.id) if chat else _no_runs(),
        )
    tracks = [b.revolutions * h.config.circumference_m for h, b in zip(hamsters, bins, strict=True)]
    return tracks, list(runs)


async def _no_runs() -> list[Run]:
    return []
