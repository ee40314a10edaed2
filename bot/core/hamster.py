"""``/hamster`` and ``/hamster stats``: ``reads.hamsters_now`` / ``reads.hamster_stats`` values as chat text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.core import reads
from bot.core.model import HamsterNow, SensorStatus, Units
from bot.core.parsing import UserError, format_distance, format_speed
from bot.core.race import clean_name
from bot.core.registry import CommandContext, Reply, command
from bot.core.stats import render_hamster_stats

if TYPE_CHECKING:
    from bot.core.commands import BotCore

LOW_BATTERY = 20  # per cent
SPEED_FRESH_S = 10  # a speed older than this is no longer "now"


def render_hamsters_now(
    hamsters: Sequence[HamsterNow], *, units: Units, tz: ZoneInfo, now: float
) -> str:
    """The /hamster reply: one block per hamster."""
    blocks = []
    for hamster in hamsters:
        lines = [
            f"🐹 {clean_name(hamster.name)}",
            f"Tonight so far: {format_distance(hamster.tonight_m, units)}",
            "Last night: no data (the sensor sent nothing)"
            if hamster.last_night_m is None
            else f"Last night: {format_distance(hamster.last_night_m, units)}",
        ]
        if hamster.average_7_m is not None:
            lines.append(f"7-night average: {format_distance(hamster.average_7_m, units)}")
        lines.append(
            f"All time: {format_distance(hamster.all_time_m, units)}"
            f" ({hamster.revolutions:,} turns of the wheel)"
        )
        status = sensor_line(hamster.sensor, units=units, tz=tz, now=now)
        if status:
            lines.append(status)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n\n/hamster stats for records and streaks"


def sensor_line(sensor: SensorStatus, *, units: Units, tz: ZoneInfo, now: float) -> str | None:
    """``📡 sensor connected, last reading 3 s ago, 2.1 km/h now, battery 80%``, or None."""
    parts = []
    if sensor.online is not None:
        if sensor.online:
            parts.append("sensor connected")
        elif sensor.since:
            parts.append(f"sensor offline since {_clock(sensor.since, tz)}")
        else:
            parts.append("sensor not connected yet")
        reading = sensor.last_reading_at
        if reading:
            parts.append(f"last reading {_ago(now - reading)}")
        if sensor.speed_mps is not None and reading and now - reading < SPEED_FRESH_S:
            parts.append(f"{format_speed(sensor.speed_mps, units)} now")
    if sensor.battery is not None:
        low = " (low!)" if sensor.battery < LOW_BATTERY else ""
        parts.append(f"battery {sensor.battery}%{low}")
    return "📡 " + ", ".join(parts) if parts else None


def _clock(epoch: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch, tz).strftime("%a %H:%M")


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 5400:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


@command("hamster", "/hamster [stats]", "how far the hamster ran; stats: records and streaks")
async def hamster(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    if args and args.casefold() not in ("stats", "stat", "records"):
        raise UserError("Try /hamster, or /hamster stats for records and streaks.")
    chat, settings = await core.chat_settings(ctx)
    scope = core.scope_for(chat or ctx)
    if args:
        found = await reads.hamster_stats(core, scope, ctx.now, settings)
        blocks = [
            render_hamster_stats(s, units=settings.units, tz=settings.tz, name=clean_name(s.name))
            for s in found
        ]
        return Reply("\n\n".join(blocks))
    now = await reads.hamsters_now(core, scope, ctx.now, settings)
    return Reply(
        render_hamsters_now(now, units=settings.units, tz=settings.tz, now=ctx.now.timestamp())
    )
