"""SimulatedHamster: a seeded nocturnal runner that emits real CSC Measurement payloads.

It stands in for a wheel sensor in ``demo``, in tests and in benchmarks, so it behaves like one:

* Nocturnal in a given IANA timezone: runs between 20:00 and 06:00 local time, most of it around
  23:00-03:00, in bursts of 1-10 minutes at 2-6 km/h with pauses between, covering 1.8-4.6 km a
  night (inside the 1-3 mile range of a real hamster) whatever the wheel size.
* Emits CSC Measurement payloads (flags 0x01): the cumulative uint32 wheel revolution count and the
  time of the last wheel event in 1/1024 s modulo 65536, about once a second while running, and
  the last values again every few seconds while the wheel is still, as real sensors keep doing
  while connected.
* The counter starts at a seeded value close to 2**32, so the counter wraps within a few weeks of
  simulated nights and every consumer is exercised on the wrap, not only in a unit test.

Everything is a pure function of the seed: :func:`plan_night` says when the hamster runs on one
night (each night is seeded by ``(seed, date)``, so a night's plan does not depend on the window
you ask about), :func:`notifications` turns the plans into timed payloads for a window, and
:class:`SimulatedHamster` plays that stream in (optionally sped-up) real time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time as _time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sensors.csc import encode_csc_measurement

_LOGGER = logging.getLogger(__name__)

COUNTER_MODULUS = 2**32
EVENT_TIME_MODULUS = 2**16
EVENT_TIME_UNITS_PER_S = 1024

#: Local time the active window opens (on the night's date) and closes (the next morning).
NIGHT_OPENS = time(20, 0)
NIGHT_CLOSES = time(6, 0)
#: Bursts cluster around this local time (the mode of a triangular distribution over the window).
PEAK_ACTIVITY = time(1, 0)

MIN_BURST_S = 60.0
MAX_BURST_S = 600.0
MIN_SPEED_KMH = 2.0
MAX_SPEED_KMH = 6.0
MIN_PAUSE_S = 30.0
#: Nightly target distance; a night stops after the burst that reaches it, and a burst covers at
#: most 1 km (10 min at 6 km/h), so a night is 1.8-4.6 km: inside 1-3 miles with margin.
MIN_NIGHT_M = 1800.0
MAX_NIGHT_TARGET_M = 3600.0

#: Interval between notifications while running (seconds).
RUNNING_INTERVAL_S = 1.0
#: Interval between repeated notifications while still; keep-alives sit on a fixed grid of
#: epoch multiples so they do not depend on where a window starts.
STILL_INTERVAL_S = 4.0
#: A keep-alive never follows a running notification by less than this.
STILL_AFTER_RUN_S = 1.0
#: The live player never sleeps less than this much wall time; at high speed-up it delivers a
#: batch of simulated seconds per wake instead.
MIN_WALL_SLEEP_S = 0.05


@dataclass(frozen=True, slots=True)
class Burst:
    """One stretch of running at constant speed.

    Revolution ``k`` (1-based) completes at ``start + k * period_s``; the burst ends with the last.
    """

    start: float
    revolutions: int
    period_s: float

    @property
    def end(self) -> float:
        return self.start + self.revolutions * self.period_s

    def completed_by(self, at: float) -> int:
        """Revolutions of this burst completed at or before epoch time ``at``."""
        if at <= self.start:
            return 0
        return min(self.revolutions, math.floor((at - self.start) / self.period_s))

    def speed_kmh(self, circumference_m: float) -> float:
        return circumference_m / self.period_s * 3.6


def _local(night: date, at: time, tz: ZoneInfo) -> float:
    return datetime.combine(night, at, tzinfo=tz).timestamp()


def night_window(night: date, tz: ZoneInfo) -> tuple[float, float]:
    """The active window of ``night``: its 20:00 local to the next day's 06:00 local (epoch s)."""
    return _local(night, NIGHT_OPENS, tz), _local(night + timedelta(days=1), NIGHT_CLOSES, tz)


def plan_night(seed: int, night: date, tz: ZoneInfo, circumference_m: float) -> list[Burst]:
    """When the hamster runs on the night starting on local date ``night``, sorted by start."""
    if not circumference_m > 0:
        raise ValueError(f"circumference_m must be positive, got {circumference_m!r}")
    # A string seed is hashed deterministically (unlike hash() of a tuple across processes).
    rng = random.Random(f"hamster:{seed}:{night.isoformat()}")
    opens, closes = night_window(night, tz)
    peak = _local(night + timedelta(days=1), PEAK_ACTIVITY, tz)
    target_m = rng.uniform(MIN_NIGHT_M, MAX_NIGHT_TARGET_M)

    bursts: list[Burst] = []
    distance_m = 0.0
    attempts = 0
    while distance_m < target_m:
        attempts += 1
        if attempts > 1000:  # cannot happen with an hour of running in a ten-hour window
            raise RuntimeError(f"could not place the bursts of night {night} (seed {seed})")
        speed_m_s = rng.uniform(MIN_SPEED_KMH, MAX_SPEED_KMH) / 3.6
        period_s = circumference_m / speed_m_s
        revolutions = max(1, math.floor(rng.uniform(MIN_BURST_S, MAX_BURST_S) / period_s))
        duration_s = revolutions * period_s
        start = rng.triangular(opens, closes - duration_s, min(peak, closes - duration_s))
        end = start + duration_s
        if any(
            start < other.end + MIN_PAUSE_S and other.start < end + MIN_PAUSE_S for other in bursts
        ):
            continue
        bursts.append(Burst(start, revolutions, period_s))
        distance_m += revolutions * circumference_m
    bursts.sort(key=lambda burst: burst.start)
    return bursts


def _night_of(at: float, tz: ZoneInfo) -> date:
    """The night (by its evening's date) whose window could contain ``at``."""
    local = datetime.fromtimestamp(at, tz)
    if local.time() < time(12, 0):
        return local.date() - timedelta(days=1)
    return local.date()


def _bursts_from(seed: int, start: float, tz: ZoneInfo, circumference_m: float) -> Iterator[Burst]:
    """Every burst that ends after ``start``, in order, forever."""
    night = _night_of(start, tz) - timedelta(days=1)
    while True:
        for burst in plan_night(seed, night, tz, circumference_m):
            if burst.end > start:
                yield burst
        night += timedelta(days=1)


def initial_counter(seed: int) -> int:
    """The seeded counter value a fresh simulated sensor starts from: within 2**16 of wrapping."""
    return COUNTER_MODULUS - random.Random(f"hamster:{seed}:counter").randrange(1, 2**16)


def _event_time(at: float) -> int:
    return math.floor(at * EVENT_TIME_UNITS_PER_S) % EVENT_TIME_MODULUS


def _still_after(at: float) -> float:
    """The first keep-alive grid point at or after ``at``."""
    return math.ceil(at / STILL_INTERVAL_S) * STILL_INTERVAL_S


def notifications(
    seed: int,
    start: float,
    end: float,
    tz: ZoneInfo,
    circumference_m: float,
    start_counter: int | None = None,
) -> Iterator[tuple[float, bytes]]:
    """The sensor's notifications ``(at, payload)`` with ``start <= at <= end``, in time order.

    ``end`` may be ``math.inf``. The counter is ``start_counter`` (default
    :func:`initial_counter`) at ``start``; revolutions completed before ``start`` are not counted,
    so a window that opens mid-burst counts only what follows. The last wheel event time is 0
    until the first revolution in the window, as on a sensor that has just booted.
    """
    counter = initial_counter(seed) if start_counter is None else start_counter % COUNTER_MODULUS
    event_time = 0
    next_still = _still_after(start)
    for burst in _bursts_from(seed, start, tz, circumference_m):
        while next_still < burst.start:
            if next_still > end:
                return
            yield next_still, encode_csc_measurement(counter, event_time)
            next_still += STILL_INTERVAL_S
        credited = burst.completed_by(start)
        last_at = next_still
        tick = 1
        while True:
            at = burst.start + tick * RUNNING_INTERVAL_S
            if at >= start:
                if at > end:
                    return
                done = min(
                    burst.revolutions, math.floor(tick * RUNNING_INTERVAL_S / burst.period_s)
                )
                if done > credited:
                    counter = (counter + done - credited) % COUNTER_MODULUS
                    event_time = _event_time(burst.start + done * burst.period_s)
                    credited = done
                yield at, encode_csc_measurement(counter, event_time)
                last_at = at
            if at >= burst.end:
                break
            tick += 1
        next_still = max(next_still, _still_after(last_at + STILL_AFTER_RUN_S))


def revolutions_between(
    seed: int, start: float, end: float, tz: ZoneInfo, circumference_m: float
) -> int:
    """True revolutions the hamster completes in ``(start, end]``, for checking consumers.

    The notifications of the same window report all of them once ``end`` is not inside a burst.
    """
    total = 0
    for burst in _bursts_from(seed, start, tz, circumference_m):
        if burst.start >= end:
            return total
        total += burst.completed_by(end) - burst.completed_by(start)
    raise AssertionError("unreachable: bursts never run out")


class SimulatedHamster:
    """Plays :func:`notifications` in real time, or ``speedup`` times faster.

    Simulated time starts at the clock's current time and runs ``speedup`` times as fast as the
    clock; ``received_at`` handed to ``on_payload`` is simulated time, the moment the sensor sent
    the notification. Between notifications it sleeps; it never sleeps less than
    :data:`MIN_WALL_SLEEP_S`, and delivers everything due on each wake, so a high speed-up costs
    a batch per wake rather than a busy loop.
    """

    def __init__(
        self,
        *,
        seed: int,
        circumference_m: float,
        tz: ZoneInfo,
        speedup: float = 1.0,
        clock: Callable[[], float] = _time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        start_counter: int | None = None,
    ) -> None:
        if not circumference_m > 0:
            raise ValueError(f"circumference_m must be positive, got {circumference_m!r}")
        if not (speedup > 0 and math.isfinite(speedup)):
            raise ValueError(f"speedup must be a positive number, got {speedup!r}")
        self.seed = seed
        self.circumference_m = circumference_m
        self.tz = tz
        self.speedup = speedup
        self.start_counter = start_counter
        self._clock = clock
        self._sleep = sleep

    async def run(self, on_payload: Callable[[bytes, float], None]) -> None:
        """Call ``on_payload(payload, received_at)`` for each notification until cancelled.

        An exception raised by ``on_payload`` ends the run: it is the caller's bug to see.
        """
        wall_start = self._clock()
        sim_start = wall_start
        _LOGGER.info(
            "simulated hamster (seed %d) starts at %s, %gx speed",
            self.seed,
            datetime.fromtimestamp(sim_start, self.tz).isoformat(timespec="seconds"),
            self.speedup,
        )
        stream = notifications(
            self.seed, sim_start, math.inf, self.tz, self.circumference_m, self.start_counter
        )
        due_at, payload = next(stream)
        while True:
            sim_now = sim_start + (self._clock() - wall_start) * self.speedup
            while due_at <= sim_now:
                on_payload(payload, due_at)
                due_at, payload = next(stream)
            await self._sleep(max((due_at - sim_now) / self.speedup, MIN_WALL_SLEEP_S))
