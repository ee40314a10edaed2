"""Runs from activity files: read one off the event loop, then store it unless it is already there.

Shared by the chat command and ``hamsterbot import``; reading is ``activities.read_activity`` (pure), storing
is ``storage.runs.add_run`` with its duplicate check (same person and chat, start within a minute, distance
within 1 %), both in one transaction there.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from bot.core import parsing
from bot.core.activities import (
    MAX_FILE_BYTES,
    Activity,
    clean_file_name,
    read_activity,
    sport_verdict,
)
from bot.core.model import Units
from bot.core.parsing import UserError, format_both, format_distance
from bot.core.race import clean_name
from storage import runs as run_store
from storage.db import Database
from storage.runs import DuplicateRun, Run

if TYPE_CHECKING:
    from bot.core.commands import BotCore
    from bot.core.registry import CommandContext, Reply

log = logging.getLogger(__name__)
# As for a typed /logrun: older runs go in with `hamsterbot import`.
OLDEST_IN_CHAT = timedelta(days=366)

ACTIVITY_SUFFIXES = (".gpx", ".fit", ".tcx", ".gpx.gz", ".fit.gz", ".tcx.gz")


@dataclass(frozen=True, slots=True)
class FileRun:
    """A run stored from a file: its number and the day it counts for in the chat's timezone."""

    run_id: int
    activity: Activity
    day: date


def looks_like_activity_file(file_name: str) -> bool:
    """By name alone: what a chat frontend picks up without being asked (no caption)."""
    return file_name.casefold().endswith(ACTIVITY_SUFFIXES)


async def read_file(
    file_name: str, data: bytes, *, now: datetime, oldest: datetime | None = None
) -> Activity:
    """``read_activity`` in a worker thread: a big file takes seconds on a Pi, the bot keeps answering."""
    return await asyncio.to_thread(read_activity, file_name, data, now=now, oldest=oldest)


async def store_file_run(
    db: Database,
    *,
    chat_id: int,
    person_id: int,
    activity: Activity,
    tz: tzinfo,
    logged_at: float,
) -> FileRun:
    """Store ``activity`` as a run at its own start time; raises ``storage.runs.DuplicateRun``."""
    day = activity.start.astimezone(tz).date()
    run_id = await run_store.add_run(
        db,
        chat_id=chat_id,
        person_id=person_id,
        distance_m=activity.distance_m,
        duration_s=activity.duration_s,
        day=day,
        ran_at=activity.start.timestamp(),
        logged_at=logged_at,
        source=activity.source,
        refuse_duplicate=True,
    )
    return FileRun(run_id, activity, day)


# --- /logrun with a file ------------------------------------------------------------------------


async def logrun_file(core: BotCore, ctx: CommandContext) -> Reply:
    """The file sent with /logrun (or on its own), logged like a typed run and answered like one."""
    from bot.core.registry import Reply
    from bot.core.runs import hamsters_tonight

    upload = ctx.upload
    assert upload is not None
    name = clean_file_name(upload.name)
    if upload.size is not None and upload.size > MAX_FILE_BYTES:
        raise UserError(too_big(name))
    # Read and check before writing anything: a refused file leaves no trace, not even a chat row.
    data = await upload.fetch()
    activity = await read_file(upload.name, data, now=ctx.now, oldest=ctx.now - OLDEST_IN_CHAT)
    _, settings, units, _ = await core.chat_and_person(ctx)
    chat = await core.ensure_chat(ctx)
    person = await core.ensure_person(ctx)
    try:
        stored = await store_file_run(
            core.db,
            chat_id=chat.id,
            person_id=person.id,
            activity=activity,
            tz=settings.tz,
            logged_at=ctx.now.timestamp(),
        )
    except DuplicateRun as dup:
        raise UserError(duplicate_text(dup.existing, units)) from None
    log.info(
        "Logged run #%d from %s (%s, %.0f m from its %s)",
        stored.run_id,
        activity.source,
        activity.file_format,
        activity.distance_m,
        activity.distance_from,
    )
    local_today = ctx.now.astimezone(settings.tz).date()
    text = render_file_run(
        stored,
        runner=clean_name(person.display_name),
        units=units,
        tz=settings.tz,
        today=local_today,
    )
    return Reply(text + await hamsters_tonight(core, chat, ctx, settings, units))


def too_big(name: str) -> str:
    return f"{name} is over {MAX_FILE_BYTES // 2**20} MB; that's more than any run needs."


def render_file_run(stored: FileRun, *, runner: str, units: Units, tz: tzinfo, today: date) -> str:
    """`✅ Logged 10.02 km (6.23 mi) for Ann from Morning_Run.fit: a run on Tue 1 Dec at 07:12, 52:10
    moving (5:13 /km). Run #4, /undo to take it back.`"""
    activity = stored.activity
    local_start = activity.start.astimezone(tz)
    when = "today" if stored.day == today else f"on {stored.day:%a %-d %b}"
    if stored.day.year != today.year:
        when += f" {stored.day:%Y}"
    text = (
        f"✅ Logged {format_both(activity.distance_m, units)} for {runner} from {activity.source}: "
        f"{_kind(activity.sport)} {when} at {local_start:%H:%M}"
    )
    duration = activity.duration_s
    if duration:
        moving = " moving" if activity.moving_s else ""
        text += (
            f", {parsing.format_duration(duration)}{moving}"
            f" ({parsing.format_pace(activity.distance_m, duration, units)})"
        )
    return text + f". Run #{stored.run_id}, /undo to take it back."


def duplicate_text(existing: Run, units: Units) -> str:
    shown = f"run #{existing.id}, {format_distance(existing.distance_m, units)} on {existing.day:%a %-d %b}"
    return f"You've logged that one already ({shown}). Nothing changed."


def _kind(sport: str | None) -> str:
    if sport_verdict(sport) == "run" and sport and any(w in sport for w in ("walk", "hik", "trek")):
        return "a walk"
    return "a run"
