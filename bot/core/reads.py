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
memory (``bot.core.live``), both taken inside ``Database.settled()`` so no flush is half done between them.
Each read is one trip to the database thread (``Database.read`` of all its queries): a /race is the chat's
settings, then one trip; the morning report is one trip (benchmarks/query.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.config import Config, HamsterConfig
from bot.core import stats as wheel_stats
from bot.core.live import (  # noqa: F401  (Hamster and the live queries: re-exported)
    Hamster,
    live_active_minutes_query,
    live_bins,
    live_bins_query,
    live_minutes,
    live_minutes_query,
    live_total,
    live_total_query,
    night_edges,
    night_metres_query,
)
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
from bot.core.periods import Period, last_night, parse_period
from storage import queries
from storage import runs as run_store
from storage.chats import Chat
from storage.db import Query, Rows
from storage.runs import Run

if TYPE_CHECKING:
    from bot.core.commands import BotCore

AVERAGE_NIGHTS = 7


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
    asked: list[Query[Any]] = []
    for h in hamsters:
        asked += [
            live_total_query(h, start, end),
            night_metres_query(h, settings, night.end.date(), AVERAGE_NIGHTS),
            live_total_query(h, 0, end),
            queries.latest_event_query(h.wheel_id, ("battery",)),
        ]
    async with core.db.settled():
        values = await core.db.read(*asked, inline=True)
    result = []
    for index, hamster in enumerate(hamsters):
        tonight_revs, nightly, all_revs, battery_row = values[4 * index : 4 * index + 4]
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
        (metres,) = await core.db.read(
            night_metres_query(hamster, settings, last_morning, count), inline=True
        )
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
        place = ranked[-1].rank if same else index + 1
        ranked.append(
            StandingsEntry(
                place, entry.name, entry.kind, entry.distance_m, gap, entry.units, entry.key
            )
        )
    return tuple(ranked)


def standings_query(
    hamsters: Sequence[Hamster],
    chat: Chat | None,
    period: Period,
    now: datetime,
    settings: ChatSettings,
    *,
    with_average: bool = True,
    until: float | None = None,
) -> Query[Standings]:
    """``standings`` as one live query, to be read with others (the morning report)."""
    until = now.timestamp() + 1 if until is None else until
    start, end = period.start.timestamp(), min(period.end.timestamp(), until)
    parts: list[Query[Any]] = [live_total_query(h, start, end) for h in hamsters]
    if chat is not None:
        parts.append(queries.person_totals_query(chat.id, start, end))
    if with_average:
        morning = last_night(now.astimezone(settings.tz), settings.summary_time).end.date()
        parts += [night_metres_query(h, settings, morning, AVERAGE_NIGHTS) for h in hamsters]
    sizes = [len(part.statements) for part in parts]

    def parse(rowsets: list[Rows]) -> Standings:
        values = []
        for part, size in zip(parts, sizes, strict=True):
            values.append(part.parse(rowsets[:size]))
            rowsets = rowsets[size:]
        totals = values[: len(hamsters)]
        people: list[queries.PersonTotal] = values[len(hamsters)] if chat is not None else []
        averages = values[len(hamsters) + (chat is not None) :]
        return _standings(hamsters, totals, people, averages, period)

    return Query(tuple(s for part in parts for s in part.statements), parse)


def _standings(
    hamsters: Sequence[Hamster],
    totals: Sequence[int],
    people: Sequence[queries.PersonTotal],
    averages: Sequence[list[float]],
    period: Period,
) -> Standings:
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
    if leader is not None and averages:
        index = next(i for i, h in enumerate(hamsters) if h.wheel_id == leader.key)
        average = night_average(averages[index])
    return Standings(period.label, period.start, period.end, ranked, period.key, average)


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
    ``until`` (exclusive) when given; with the leading hamster's 7-night average unless not wanted."""
    query = standings_query(
        core.in_scope(scope), chat, period, now, settings, with_average=with_average, until=until
    )
    async with core.db.settled():
        (board,) = await core.db.read(query, inline=True)
    return board


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
            last, total, so_far, first, nightly = await db.read(
                live_minutes_query(hamster, start, end),
                live_total_query(hamster, 0, at + 1),
                live_total_query(hamster, tonight.start.timestamp(), at + 1),
                queries.first_activity_query(hamster.wheel_id),
                night_metres_query(hamster, settings, night.end.date(), AVERAGE_NIGHTS),
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
        (older,) = await core.db.read(live_active_minutes_query(hamster, start, settled))
        bests = wheel_stats.fold_minutes(bests, older)
        core.minute_bests[hamster.wheel_id] = bests
    (recent,) = await core.db.read(live_active_minutes_query(hamster, settled, end))
    return wheel_stats.fold_minutes(bests, recent)


async def first_activity(
    core: BotCore, hamsters: Sequence[Hamster], chat: Chat | None
) -> list[float]:
    """When each hamster first ran and the chat's first run, those known: where "all time" begins."""
    asked: list[Query[Any]] = [queries.first_activity_query(h.wheel_id) for h in hamsters]
    if chat is not None:
        asked.append(queries.first_run_at_query(chat.id))
    async with core.db.settled():
        firsts = await core.db.read(*asked)
        for hamster in hamsters:
            buffered = hamster.live.buffered_minutes(0, float("inf")) if hamster.live else []
            firsts += [buffered[0][0]] if buffered else []
    return [float(f) for f in firsts if f is not None]


async def race_tracks(
    core: BotCore, hamsters: Sequence[Hamster], chat: Chat | None, edges: np.ndarray
) -> tuple[list[np.ndarray], list[Run]]:
    """Each hamster's metres between consecutive ``edges``, and the chat's runs between the ends."""
    db = core.db
    start, end = float(edges[0]), float(edges[-1])
    async with db.settled():
        bins = await db.read(*(live_bins_query(h, edges) for h in hamsters))
    runs = await run_store.runs_between(db, start, end, chat.id) if chat else []
    tracks = [b.revolutions * h.config.circumference_m for h, b in zip(hamsters, bins, strict=True)]
    return tracks, runs
