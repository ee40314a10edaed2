"""``/league [PERIOD]``: every hamster the bot knows, in every home, ranked by distance.

A chat's ``/race`` shows only its own hamsters (``[[hamsters]] chats``); the league is where the homes meet.
``reads.league`` gathers the values, ``render_league`` (pure) words them; the web page serves the same values
as ``GET /api/league``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core import reads
from bot.core.model import League
from bot.core.parsing import Units, format_distance
from bot.core.periods import parse_period
from bot.core.race import HAMSTER, MEDALS, clean_name
from bot.core.registry import CommandContext, Reply, command

if TYPE_CHECKING:
    from bot.core.commands import BotCore

HERE = "here"  # the home of a hamster beside the bot when the bot names no home of its own


def render_league(league: League, units: Units) -> str:
    """The /league reply: rank, hamster, home, distance; an offline gateway is marked."""
    label = league.period_label
    if not league.entries:
        return f"🏆 League, {label}: no hamsters yet."
    lines = [f"🏆 League, {label}"]
    for entry in league.entries:
        place = MEDALS[entry.rank - 1] if entry.rank <= len(MEDALS) else f"{entry.rank}."
        home = clean_name(entry.home) if entry.home else HERE
        text = f"{place} {clean_name(entry.name)} {HAMSTER} ({home}): "
        text += format_distance(entry.distance_m, units)
        if entry.online is False:
            text += " · offline"
        lines.append(text)
    if all(e.distance_m <= 0 for e in league.entries):
        lines.append("Nobody has run yet. The wheels are waiting!")
    return "\n".join(lines)


@command("league", "/league [PERIOD]", "every hamster in every home: week (default), tonight, all…")
async def league(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    _, settings = await core.chat_settings(ctx)
    period = parse_period(
        args, now=ctx.now.astimezone(settings.tz), summary_time=settings.summary_time
    )
    return Reply(render_league(await reads.league(core, period, ctx.now, settings), settings.units))
