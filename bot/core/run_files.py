"""Runs from activity files: read one off the event loop, then store it unless it is already there.

Shared by the chat command and ``hamsterbot import``; reading is ``activities.read_activity`` (pure), storing
is ``storage.runs.add_run`` with its duplicate check (same person and chat, start within a minute, distance
within 1 %), both in one transaction there.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from bot.core.activities import Activity, read_activity
from storage import runs as run_store
from storage.db import Database

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
