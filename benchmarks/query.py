"""Query: /race for every period and the morning report on a database holding five years of nights.

The database is built directly with ``executemany`` in large transactions (``storage/bulk.py``) (the pipeline would take hours to write
five years): 8 hours of minute buckets a night, the hourly and daily rollups summed from exactly those minutes,
and 20,000 runs by 100 people in 10 chats. The naive baseline answers the same ``/race`` with the hamster's distance summed
from the minute buckets alone; both must produce the same text.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from benchmarks.common import p50, p95
from bot.config import HamsterConfig, defaults
from bot.core.commands import BotCore, CommandContext
from storage import bulk, queries
from storage.db import Database

log = logging.getLogger(__name__)

TIMEZONE = "Europe/London"
HAMSTER = HamsterConfig(name="Ursula", circumference_m=math.pi * 0.20)
YEARS = 5
NIGHT_MINUTES = 8 * 60  # 22:00-06:00 UTC
CHATS = 10
PEOPLE_PER_CHAT = 10
RUNS = 20_000
PERIODS = (
    "today",
    "yesterday",
    "tonight",
    "week",
    "last week",
    "7d",
    "month",
    "last month",
    "30d",
    "year",
    "all",
)
SEED = 7


@dataclass(frozen=True, slots=True)
class QueryDatabase:
    path: Path
    minutes_rows: int
    now: datetime  # the morning after the last night, when everything is asked


@dataclass(frozen=True, slots=True)
class Timings:
    """Milliseconds per repetition of one question."""

    name: str
    samples: tuple[float, ...]

    @property
    def p50_ms(self) -> float:
        return p50(self.samples)

    @property
    def p95_ms(self) -> float:
        return p95(self.samples)


@dataclass(frozen=True, slots=True)
class QueryResult:
    minutes_rows: int
    build_s: float
    race: tuple[Timings, ...]  # one per period
    naive_race: tuple[Timings, ...]
    summary: Timings | None  # None until the morning report exists

    @property
    def race_p95_ms(self) -> float:
        return p95([s for t in self.race for s in t.samples])

    @property
    def naive_race_p95_ms(self) -> float:
        return p95([s for t in self.naive_race for s in t.samples])

    @property
    def summary_p95_ms(self) -> float | None:
        return self.summary.p95_ms if self.summary else None


def night_minutes(first_night: date, nights: int) -> np.ndarray:
    """Epoch seconds of every minute 22:00-06:00 UTC of ``nights`` nights from ``first_night``."""
    first = int(datetime.combine(first_night, datetime.min.time(), tzinfo=UTC).timestamp())
    starts = first + 22 * 3600 + 86_400 * np.arange(nights, dtype=np.int64)
    return (starts[:, None] + 60 * np.arange(NIGHT_MINUTES, dtype=np.int64)[None, :]).ravel()


def rollup(
    minutes: np.ndarray, revolutions: np.ndarray, estimated: np.ndarray, seconds: int
) -> list[tuple]:
    """A rollup of minute buckets as WheelStore keeps it: sums per UTC hour (3600) or day (86400)."""
    hours, index = np.unique(minutes // seconds * seconds, return_inverse=True)
    revs = np.bincount(index, weights=revolutions).astype(np.int64)
    est = np.bincount(index, weights=estimated).astype(np.int64)
    return list(zip(hours.tolist(), revs.tolist(), est.tolist(), strict=True))


async def build(path: Path, *, years: float = YEARS, runs: int = RUNS) -> QueryDatabase:
    """Create the schema through the real Database, then fill it in bulk."""
    db = await Database.open(path)
    await db.close()
    rng = np.random.default_rng(SEED)
    last_night = date(2026, 11, 28)
    nights = round(years * 365.25)
    first_night = last_night - timedelta(days=nights - 1)
    minutes = night_minutes(first_night, nights)
    revolutions = rng.integers(1, 160, size=minutes.size, dtype=np.int64)
    # A few buckets were filled in after a gap, as a flaky link would leave them.
    estimated = np.where(rng.random(minutes.size) < 0.01, revolutions, 0).astype(np.int64)
    now = datetime(2026, 11, 29, 9, 30, tzinfo=ZoneInfo(TIMEZONE))
    bulk.load_history(
        path,
        HAMSTER.name,
        zip(minutes.tolist(), revolutions.tolist(), estimated.tolist(), strict=True),
        rollup(minutes, revolutions, estimated, 3600),
        rollup(minutes, revolutions, estimated, 86_400),
    )
    _people_and_runs(path, rng, first_night, now, runs)
    return QueryDatabase(path, int(minutes.size), now)


def _people_and_runs(
    path: Path, rng: np.random.Generator, first: date, now: datetime, runs: int
) -> None:
    chats = [(c, str(-1_000_000 - c), f"Runners {c}") for c in range(1, CHATS + 1)]
    people = CHATS * PEOPLE_PER_CHAT
    persons = [
        (p, str(p), f"Runner {p}", "km" if p % 3 == 0 else None) for p in range(1, people + 1)
    ]
    tz = ZoneInfo(TIMEZONE)
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz).timestamp()
    ran_at = np.sort(rng.uniform(start, now.timestamp() - 60, size=runs))
    person = rng.integers(1, people + 1, size=runs)
    chat = (person - 1) // PEOPLE_PER_CHAT + 1
    distance = rng.uniform(1000, 21_100, size=runs).round(1)
    rows = []
    for at, who, where, metres in zip(
        ran_at.tolist(), person.tolist(), chat.tolist(), distance.tolist(), strict=True
    ):
        day = datetime.fromtimestamp(at, tz).date().isoformat()
        rows.append((where, who, metres, metres / 3.0, day, at, at))
    bulk.load_people(path, chats, persons, rows)


@contextlib.contextmanager
def naive_totals() -> Iterator[None]:
    original = queries.wheel_total_query
    queries.wheel_total_query = bulk.naive_wheel_total_query  # type: ignore[assignment]
    try:
        yield
    finally:
        queries.wheel_total_query = original  # type: ignore[assignment]


def context(now: datetime, chat: int = 1) -> CommandContext:
    return CommandContext(
        platform="telegram",
        chat_id=str(-1_000_000 - chat),
        user_id=str((chat - 1) * PEOPLE_PER_CHAT + 1),
        display_name="Runner",
        is_admin=False,
        now=now,
    )


async def _time_race(
    core: BotCore, now: datetime, period: str, repetitions: int
) -> tuple[Timings, str]:
    samples = []
    text = ""
    for index in range(repetitions):
        ctx = context(now, chat=index % CHATS + 1)
        started = time.perf_counter()
        reply = await core.dispatch(ctx, "race", period)
        samples.append((time.perf_counter() - started) * 1000)
        if index == 0:
            text = reply.text
    return Timings(period, tuple(samples)), text


async def _time_summary(core: BotCore, now: datetime, repetitions: int) -> Timings | None:
    from bot.core import summary
    from bot.core.periods import latest_morning
    from bot.core.reads import chat_settings
    from storage import chats as chat_store

    chats = await chat_store.list_chats(core.db)
    samples = []
    for index in range(repetitions):
        chat = chats[index % len(chats)]
        settings = chat_settings(core.config, chat)
        day = latest_morning(now.astimezone(settings.tz), settings.summary_time)
        started = time.perf_counter()
        await summary.compose_report(core, chat, day, chart=False)
        samples.append((time.perf_counter() - started) * 1000)
    return Timings("summary", tuple(samples))


async def run(
    workdir: Path,
    *,
    repetitions: int,
    naive_repetitions: int,
    years: float = YEARS,
    runs: int = RUNS,
) -> QueryResult:
    started = time.perf_counter()
    built = await build(workdir / "query.db", years=years, runs=runs)
    build_s = time.perf_counter() - started
    config = defaults(built.path)
    config = replace(
        config, bot=replace(config.bot, timezone=TIMEZONE, units="km"), hamsters=(HAMSTER,)
    )
    db = await Database.open(built.path)
    try:
        core = await BotCore.create(db, config)
        for period in PERIODS:  # warm the page cache and every code path once
            await core.dispatch(context(built.now), "race", period)
        race, naive = [], []
        for period in PERIODS:
            timings, text = await _time_race(core, built.now, period, repetitions)
            with naive_totals():
                naive_timings, naive_text = await _time_race(
                    core, built.now, period, naive_repetitions
                )
            if text != naive_text:
                raise AssertionError(f"/race {period}: the rollup and the minute scan disagree")
            race.append(timings)
            naive.append(naive_timings)
        # One question, not eleven pooled: more samples keep its p95 from being the third-worst of 50.
        summary = await _time_summary(core, built.now, max(2 * repetitions, 100))
    finally:
        await db.close()
    return QueryResult(built.minutes_rows, build_s, tuple(race), tuple(naive), summary)
