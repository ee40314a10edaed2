"""Ingest: synthetic CSC notifications replayed through the real pipeline, against one commit per notification.

The capture is written to a file first (not timed) and then replayed exactly as ``hamsterbot replay`` does:
``read_capture`` parses each line, ``WheelPipeline.feed`` decodes and counts it, and the pipeline flushes on the
capture's own clock every ``flush_seconds``. The credited total must equal the synthetic truth exactly.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.config import HamsterConfig
from bot.wheels import WheelPipeline, counter_settings
from sensors.capture import HEADER, CaptureProblem, format_line, open_capture, read_capture
from sensors.counter import CounterState, RevolutionCounter
from sensors.csc import encode_csc_measurement, read_counter
from sensors.simulated import initial_counter, night_window, plan_night, revolutions_between
from storage import bulk
from storage.db import Database

log = logging.getLogger(__name__)

SEED = 7
FIRST_NIGHT = date(2026, 1, 1)  # any fixed night keeps runs reproducible
TZ = ZoneInfo("UTC")
DUPLICATE_EVERY = 997  # BLE stacks deliver the odd notification twice
ROCK_CHANCE = 0.01  # share of still seconds in which the wheel rocks back a revolution or two
FLUSH_SECONDS = 60.0  # the configured default
BENCH_HAMSTER = HamsterConfig(name="Bench", circumference_m=math.pi * 0.20)


@dataclass(frozen=True, slots=True)
class Capture:
    path: Path
    notifications: int
    revolutions: int  # the synthetic truth: what an exact counter must credit


@dataclass(frozen=True, slots=True)
class IngestResult:
    notifications: int
    seconds: float
    cpu_seconds: float
    commits: int
    credited: int
    truth: int
    naive_notifications: int
    naive_seconds: float
    bare_notifications: int = 0
    bare_seconds: float = 0.0

    @property
    def per_s(self) -> float:
        return self.notifications / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.notifications * 1e6

    @property
    def naive_per_s(self) -> float:
        return self.naive_notifications / self.naive_seconds

    @property
    def ratio(self) -> float:
        return self.per_s / self.naive_per_s

    @property
    def bare_per_s(self) -> float:
        return self.bare_notifications / self.bare_seconds if self.bare_seconds else 0.0


def night_readings(
    night: date, rng: random.Random, counter: int
) -> Iterator[tuple[float, int, int]]:
    """One night's readings ``(at, raw_counter, revolutions_added)``, one a second from 20:00 to 06:00.

    The hamster runs the bursts of the simulated hamster's plan for that night (``plan_night``: 1.8-4.6 km
    in bursts at 2-6 km/h). While it is still, the sensor repeats its count, and now and then the wheel rocks
    back a revolution or two. The third element is what the reading adds to the truth (0 for repeats and
    rocking).
    """
    opens, closes = night_window(night, TZ)
    bursts = plan_night(SEED, night, TZ, BENCH_HAMSTER.circumference_m)
    finished = 0  # revolutions of the bursts already over
    index = 0
    previous = 0
    for second in range(int(closes - opens)):
        at = opens + second + 0.25
        while index < len(bursts) and bursts[index].end <= at:
            finished += bursts[index].revolutions
            index += 1
        done = finished + (bursts[index].completed_by(at) if index < len(bursts) else 0)
        if done > previous:
            yield at, (counter + done) % 2**32, done - previous
            previous = done
        elif rng.random() < ROCK_CHANCE:
            yield at, (counter + done - rng.randint(1, 2)) % 2**32, 0
        else:
            yield at, (counter + done) % 2**32, 0


def write_capture(path: Path, nights: int) -> Capture:
    """Write ``nights`` nights at 1 Hz as a capture file; returns its size and the true revolutions."""
    rng = random.Random(f"bench:{SEED}")
    count = 0
    truth = 0
    counter = initial_counter(SEED)  # close to 2**32: the counter wraps on the measured path
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
        for night in range(nights):
            lines = []
            added = 0
            for at, raw, step in night_readings(FIRST_NIGHT + timedelta(days=night), rng, counter):
                added += step
                event_time = math.floor(at * 1024) % 65536
                line = format_line(at, encode_csc_measurement(raw, event_time))
                lines.append(line)
                count += 1
                if count % DUPLICATE_EVERY == 0:
                    lines.append(line)
                    count += 1
            counter = (counter + added) % 2**32
            truth += added
            out.write("".join(lines))
    first = night_window(FIRST_NIGHT, TZ)[0]
    last = night_window(FIRST_NIGHT + timedelta(days=nights - 1), TZ)[1]
    # Two independent accounts of the truth must agree before anything is measured against them.
    expected = revolutions_between(SEED, first, last, TZ, BENCH_HAMSTER.circumference_m)
    if truth != expected:
        raise AssertionError(f"synthetic capture: {truth} revolutions, the plan says {expected}")
    return Capture(path, count, truth)


async def replay(
    db: Database,
    capture: Capture,
    flush_seconds: float = FLUSH_SECONDS,
    *,
    pause: Callable[[], Awaitable[None]] | None = None,
    pause_every: int = 0,
) -> WheelPipeline:
    """Feed the capture through the live pipeline, flushing on the capture's clock (as ``replay`` does).

    ``pause`` is awaited after every ``pause_every`` notifications: the baselines run there, so that both
    sides of a ratio meet the same neighbours on a shared machine.
    """
    pipeline = await WheelPipeline.open(db, BENCH_HAMSTER)
    next_flush = -math.inf
    next_pause = pause_every if pause is not None and pause_every > 0 else -1
    with open_capture(capture.path) as handle:
        for item in read_capture(handle):
            if isinstance(item, CaptureProblem):
                raise AssertionError(f"synthetic capture has a bad line: {item}")
            pipeline.feed(item.payload, item.received_at)
            if item.received_at >= next_flush:
                await pipeline.flush()
                next_flush = item.received_at + flush_seconds
            if pipeline.notifications == next_pause:
                await pause()  # type: ignore[misc]
                next_pause += pause_every
    await pipeline.flush()
    return pipeline


def _counted(capture: Capture, sample: int) -> Iterator[tuple[float, int, int]]:
    """``(at, raw, revolutions credited)`` for the first ``sample`` notifications, decoded and counted."""
    counter = RevolutionCounter(counter_settings(BENCH_HAMSTER), CounterState(None, None, None))
    done = 0
    with open_capture(capture.path) as handle:
        for item in read_capture(handle):
            if isinstance(item, CaptureProblem) or done >= sample:
                return
            _field, raw = read_counter(item.payload, "csc")
            update = counter.update(raw, item.received_at)
            yield item.received_at, raw, update.credit.revolutions if update.credit else 0
            done += 1


async def naive_ingest(db: Database, capture: Capture, sample: int) -> tuple[float, int]:
    """The naive design as this program would write it: decode and count each notification, then
    one transaction for it through ``Database.transaction`` (BEGIN IMMEDIATE, INSERT, COMMIT).

    Returns the seconds the notifications took (not the set-up) and how many there were.
    """
    await bulk.naive_table(db)
    done = 0
    started = time.perf_counter()
    for row in _counted(capture, sample):
        await bulk.naive_insert(db, row)
        done += 1
    return time.perf_counter() - started, done


async def naive_bare_ingest(path: Path, capture: Capture, sample: int) -> tuple[float, int]:
    """The same with bare aiosqlite (``execute`` then ``commit``, an implicit transaction): one
    hand-off to the SQLite thread fewer per notification, and no write lock."""
    async with bulk.BareReadings.open(path) as bare:
        done = 0
        started = time.perf_counter()
        for row in _counted(capture, sample):
            await bare.insert(row)
            done += 1
        return time.perf_counter() - started, done


SLICES = 8  # the baselines run in this many slices spread through the replay


@dataclass
class _Baselines:
    """Time and notifications of the baselines so far, and the time they took out of the replay."""

    naive_seconds: float = 0.0
    naive: int = 0
    bare_seconds: float = 0.0
    bare: int = 0
    wall: float = 0.0
    cpu: float = 0.0


async def run(workdir: Path, *, nights: int, naive_sample: int) -> IngestResult:
    capture = write_capture(workdir / "ingest.csv", nights)
    log.info("ingest: %d notifications in %s", capture.notifications, capture.path)
    naive_db = await Database.open(workdir / "naive.db")
    db = await Database.open(workdir / "ingest.db")
    baselines = _Baselines()
    per_slice = -(-naive_sample // SLICES)

    async def measure_baselines() -> None:
        if baselines.naive >= naive_sample:
            return
        wall, cpu = time.perf_counter(), time.process_time()
        sample = min(per_slice, naive_sample - baselines.naive)
        seconds, done = await naive_ingest(naive_db, capture, sample)
        baselines.naive_seconds += seconds
        baselines.naive += done
        seconds, done = await naive_bare_ingest(workdir / "bare.db", capture, sample)
        baselines.bare_seconds += seconds
        baselines.bare += done
        baselines.wall += time.perf_counter() - wall
        baselines.cpu += time.process_time() - cpu

    try:
        commits_before = db.commits
        started, cpu_started = time.perf_counter(), time.process_time()
        pipeline = await replay(
            db,
            capture,
            pause=measure_baselines,
            pause_every=max(1, capture.notifications // (SLICES + 1)),
        )
        seconds = time.perf_counter() - started - baselines.wall
        cpu_seconds = time.process_time() - cpu_started - baselines.cpu
        commits = db.commits - commits_before
        stored, hours, days = await bulk.stored_sums(db)
    finally:
        await db.close()
        await naive_db.close()
    if not (pipeline.credited == stored == hours == days == capture.revolutions):
        raise AssertionError(
            f"ingest counted wrong: credited {pipeline.credited}, minutes {stored}, hours {hours}, "
            f"days {days}, truth {capture.revolutions}"
        )
    return IngestResult(
        notifications=pipeline.notifications,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        commits=commits,
        credited=pipeline.credited,
        truth=capture.revolutions,
        naive_notifications=baselines.naive,
        naive_seconds=baselines.naive_seconds,
        bare_notifications=baselines.bare,
        bare_seconds=baselines.bare_seconds,
    )
