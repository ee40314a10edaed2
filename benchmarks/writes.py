"""Writes: commits per simulated hour while the hamster runs and while the wheel is idle.

The simulated hamster's notifications (a real sensor's cadence: 1 Hz while running, a repeat every 4 s while
still) drive the real pipeline on a simulated clock, flushed as ``flush_forever`` does: every ``flush_seconds``,
and at once when the pipeline asks (a new baseline). Each commit is charged to the UTC hour it happens in.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.config import HamsterConfig
from bot.wheels import WheelPipeline
from sensors.simulated import notifications, revolutions_between
from storage import bulk
from storage.db import Database

HOUR = 3600
SEED = 7
TZ = ZoneInfo("Europe/London")
START = datetime(2026, 11, 2, 12, 0, tzinfo=UTC).timestamp()  # noon: nobody runs at noon
HAMSTER = HamsterConfig(name="Sim", circumference_m=math.pi * 0.20, sensor="simulated")


@dataclass(frozen=True, slots=True)
class WritesResult:
    days: int
    notifications: int
    commits: int
    running_hours: int  # hours in which revolutions were credited
    idle_hours: int  # no revolutions, and nothing left over from the hour before
    tail_hours: int  # no revolutions, but the last ones of a burst were flushed in it
    startup_commits: int  # the first hour: "connected" and the baseline
    running_commits: int
    idle_commits: int
    credited: int
    truth: int
    durable_commit_ms: float = 0.0  # median: a run or a setting (synchronous = FULL, WAL fsynced)
    normal_commit_ms: float = 0.0  # median: a wheel flush (synchronous = NORMAL)

    @property
    def commits_per_hour_running(self) -> float:
        return self.running_commits / self.running_hours if self.running_hours else 0.0

    @property
    def commits_per_hour_idle(self) -> float:
        return self.idle_commits / self.idle_hours if self.idle_hours else 0.0


def classify_hours(
    credit_times: list[float], start: float, end: float, flush_seconds: float
) -> dict[int, str]:
    """``running``, ``idle`` or ``tail`` for each UTC hour starting in ``[start, end)``.

    The first hour is ``startup``: connecting and the new wheel's baseline are written then, whatever the
    hamster does.
    """
    credited_hours = {int(at) // HOUR * HOUR for at in credit_times}
    ordered = sorted(credit_times)
    kinds = {}
    index = 0
    last_credit = -math.inf
    for hour in range(int(start) // HOUR * HOUR, int(end), HOUR):
        while index < len(ordered) and ordered[index] < hour:
            last_credit = ordered[index]
            index += 1
        if hour == int(start) // HOUR * HOUR:
            kinds[hour] = "startup"
        elif hour in credited_hours:
            kinds[hour] = "running"
        elif hour - last_credit >= flush_seconds:
            kinds[hour] = "idle"
        else:
            kinds[hour] = "tail"
    return kinds


async def run(workdir: Path, *, days: int, flush_seconds: float = 60.0) -> WritesResult:
    end = START + days * 86_400
    db = await Database.open(workdir / "writes.db")
    try:
        pipeline = await WheelPipeline.open(db, HAMSTER)
        pipeline.link_event("connected", START, detail="simulated sensor")
        commit_hours: Counter[int] = Counter()
        credit_times: list[float] = []
        next_flush = START + flush_seconds
        count = 0

        async def flush(at: float) -> None:
            if await pipeline.flush():
                commit_hours[int(at) // HOUR * HOUR] += 1

        stream = notifications(SEED, START, end, TZ, HAMSTER.circumference_m)
        for at, payload in stream:
            while at >= next_flush:
                await flush(next_flush)
                next_flush += flush_seconds
            credited = pipeline.credited
            pipeline.feed(payload, at)
            count += 1
            if pipeline.credited > credited:
                credit_times.append(at)
            if pipeline.flush_requested.is_set():
                pipeline.flush_requested.clear()
                await flush(at)
                next_flush = at + flush_seconds
        while next_flush <= end:
            await flush(next_flush)
            next_flush += flush_seconds
        commits = db.commits
    finally:
        await db.close()
    kinds = classify_hours(credit_times, START, end, flush_seconds)
    truth = revolutions_between(SEED, START, end, TZ, HAMSTER.circumference_m)
    if pipeline.credited != truth:
        raise AssertionError(f"writes: credited {pipeline.credited}, the hamster ran {truth}")
    by_kind = Counter(kinds.values())
    charged: Counter[str] = Counter()
    for hour, n in commit_hours.items():
        charged[kinds.get(hour, "tail")] += n
    durable_ms, normal_ms = await commit_costs(workdir / "commits.db")
    return WritesResult(
        durable_commit_ms=durable_ms,
        normal_commit_ms=normal_ms,
        days=days,
        notifications=count,
        commits=commits,
        running_hours=by_kind["running"],
        idle_hours=by_kind["idle"],
        tail_hours=by_kind["tail"],
        startup_commits=charged["startup"],
        running_commits=charged["running"],
        idle_commits=charged["idle"],
        credited=pipeline.credited,
        truth=truth,
    )


async def commit_costs(path: Path, rounds: int = 100) -> tuple[float, float]:
    """Median wall ms of one small commit made durable (the default: a run, a setting) and of one
    that is not (a wheel flush), interleaved so both meet the same disk and the same neighbours."""
    durable: list[float] = []
    normal: list[float] = []
    async with await Database.open(path) as db:
        for index in range(rounds * 2):
            is_durable = index % 2 == 0
            started = time.perf_counter()
            await bulk.small_commit(db, index, durable=is_durable)
            (durable if is_durable else normal).append((time.perf_counter() - started) * 1000)
    return statistics.median(durable), statistics.median(normal)
