from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from itertools import pairwise, takewhile
from zoneinfo import ZoneInfo

import pytest

from sensors.csc import parse_csc_measurement
from sensors.simulated import (
    MIN_WALL_SLEEP_S,
    SimulatedHamster,
    initial_counter,
    night_window,
    notifications,
    plan_night,
    revolutions_between,
)

WHEEL = math.pi * 0.20
BERLIN = ZoneInfo("Europe/Berlin")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
MILE = 1609.344
MAX_SPEED_M_S = 6 / 3.6
NIGHT = date(2026, 11, 28)


def _noon(day: date, tz: ZoneInfo) -> float:
    return datetime(day.year, day.month, day.day, 12, tzinfo=tz).timestamp()


def _counters(stream: Iterator[tuple[float, bytes]]) -> list[tuple[float, int, int]]:
    readings = []
    for at, payload in stream:
        measurement = parse_csc_measurement(payload)
        assert payload[0] == 0x01
        assert measurement.crank_revolutions is None
        assert measurement.wheel_revolutions is not None
        assert measurement.last_wheel_event_time is not None
        readings.append((at, measurement.wheel_revolutions, measurement.last_wheel_event_time))
    return readings


def test_the_same_seed_gives_the_same_notifications() -> None:
    start = _noon(NIGHT, BERLIN)
    first = list(notifications(7, start, start + 86400, BERLIN, WHEEL))
    again = list(notifications(7, start, start + 86400, BERLIN, WHEEL))
    other = list(notifications(8, start, start + 86400, BERLIN, WHEEL))
    assert first == again
    assert first != other
    assert plan_night(7, NIGHT, BERLIN, WHEEL) == plan_night(7, NIGHT, BERLIN, WHEEL)
    assert plan_night(7, NIGHT, BERLIN, WHEEL) != plan_night(7, NIGHT + timedelta(1), BERLIN, WHEEL)


def test_a_longer_window_starts_with_the_shorter_one() -> None:
    start = _noon(NIGHT, BERLIN)
    short = list(notifications(3, start, start + 10 * 3600, BERLIN, WHEEL))
    long = list(notifications(3, start, start + 30 * 3600, BERLIN, WHEEL))
    assert long[: len(short)] == short
    assert all(start <= at <= start + 10 * 3600 for at, _ in short)
    assert long[len(short)][0] > start + 10 * 3600


# The end of summer time: Europe on 2026-10-25, North America on 2026-11-01.
DST_NIGHTS = {"Europe/Berlin": date(2026, 10, 24), "America/Los_Angeles": date(2026, 10, 31)}


@pytest.mark.parametrize("tz", [BERLIN, LOS_ANGELES], ids=str)
def test_the_hamster_runs_only_at_night_in_local_time(tz: ZoneInfo) -> None:
    peak_revolutions = total_revolutions = 0
    for seed in range(6):
        for night in (date(2026, 6, 20), DST_NIGHTS[str(tz)], date(2026, 11, 2)):
            opens, closes = night_window(night, tz)
            assert datetime.fromtimestamp(opens, tz).time() == time(20)
            assert datetime.fromtimestamp(closes, tz).time() == time(6)
            peak_from = datetime.combine(night, time(23), tzinfo=tz).timestamp()
            peak_to = datetime.combine(night + timedelta(days=1), time(3), tzinfo=tz).timestamp()
            for burst in plan_night(seed, night, tz, WHEEL):
                assert opens <= burst.start and burst.end <= closes
                total_revolutions += burst.revolutions
                if peak_from <= burst.start < peak_to:
                    peak_revolutions += burst.revolutions
    # 23:00-03:00 is 4 of the 10 active hours but carries most of the running.
    assert peak_revolutions > 0.5 * total_revolutions

    # What the sensor says across the change of clocks agrees: the counter moves only at night.
    night = DST_NIGHTS[str(tz)]
    opens, closes = night_window(night, tz)
    start = _noon(night, tz)
    end = _noon(night + timedelta(days=1), tz) + 2 * 3600
    readings = _counters(notifications(1, start, end, tz, WHEEL))
    moved = [at for (_, before, _), (at, after, _) in pairwise(readings) if after != before]
    assert moved
    # 20:00 to 06:00 local, plus the second it takes to report the last revolution.
    assert all(opens < at <= closes + 1.0 for at in moved)
    # Local noon to 14:00 on either day: the wheel stands still, the sensor still talks.
    for day in (night, night + timedelta(days=1)):
        noon = _noon(day, tz)
        still = [c for at, c, _ in readings if noon <= at < noon + 2 * 3600]
        assert len(still) > 100
        assert len(set(still)) == 1


@pytest.mark.parametrize("seed", range(12))
def test_a_night_covers_one_to_three_miles(seed: int) -> None:
    for night in [NIGHT + timedelta(days=n) for n in range(0, 365, 37)]:
        bursts = plan_night(seed, night, BERLIN, WHEEL)
        distance_m = sum(burst.revolutions for burst in bursts) * WHEEL
        assert 1 * MILE <= distance_m <= 3 * MILE
        opens, closes = night_window(night, BERLIN)
        for burst in bursts:
            assert opens <= burst.start and burst.end <= closes
            assert 60 - burst.period_s < burst.end - burst.start <= 600
            assert 2 <= burst.speed_kmh(WHEEL) <= 6
        for before, after in pairwise(bursts):
            assert after.start >= before.end + 30  # a pause between bursts
        if night != NIGHT or seed >= 4:
            continue
        # The notifications of the night report exactly that distance.
        start = _noon(night, BERLIN)
        readings = _counters(notifications(seed, start, start + 86400, BERLIN, WHEEL))
        reported = (readings[-1][1] - readings[0][1]) % 2**32
        assert reported == sum(burst.revolutions for burst in bursts)
        assert reported == revolutions_between(seed, start, start + 86400, BERLIN, WHEEL)


def test_the_counter_is_monotonic_across_the_wrap_and_never_too_fast() -> None:
    start = _noon(NIGHT, BERLIN)
    end = start + 3 * 86400
    readings = _counters(notifications(5, start, end, BERLIN, WHEEL, start_counter=2**32 - 5000))
    assert readings[0][1] == 2**32 - 5000
    wrapped = False
    moving = 0
    previous_step = 0
    for (t0, c0, e0), (t1, c1, e1) in pairwise(readings):
        assert t1 > t0
        step = (c1 - c0) % 2**32
        assert step < 2**31  # never backwards
        wrapped |= c1 < c0
        # Whole revolutions per interval: one more than the speed allows is quantisation.
        assert step <= MAX_SPEED_M_S * (t1 - t0) / WHEEL + 1
        assert t1 - t0 <= 5.0  # every few seconds at most, still or not
        if step:
            moving += 1
        if step and previous_step:
            # Mid-burst: once a second, and the sensor's own event clock agrees on the speed.
            assert t1 - t0 == pytest.approx(1.0)
            elapsed_s = ((e1 - e0) % 2**16) / 1024
            assert step * WHEEL / elapsed_s <= MAX_SPEED_M_S * 1.01
        previous_step = step
    assert wrapped
    assert moving > 3 * 1000
    total = (readings[-1][1] - readings[0][1]) % 2**32
    assert total == revolutions_between(5, start, end, BERLIN, WHEEL)


def test_the_default_counter_is_seeded_and_close_to_the_wrap() -> None:
    assert initial_counter(1) == initial_counter(1)
    assert len({initial_counter(seed) for seed in range(20)}) > 1
    for seed in range(20):
        assert 2**32 - 2**16 <= initial_counter(seed) < 2**32
    start = _noon(NIGHT, BERLIN)
    (_, payload) = next(notifications(1, start, start + 60, BERLIN, WHEEL))
    assert parse_csc_measurement(payload).wheel_revolutions == initial_counter(1)


def test_a_window_opening_mid_burst_counts_only_what_follows() -> None:
    burst = plan_night(2, NIGHT, BERLIN, WHEEL)[0]
    start = burst.start + (burst.end - burst.start) / 2
    end = burst.end + 60
    readings = _counters(notifications(2, start, end, BERLIN, WHEEL, start_counter=0))
    expected = burst.revolutions - burst.completed_by(start)
    assert 0 < expected < burst.revolutions
    assert readings[-1][1] == expected == revolutions_between(2, start, end, BERLIN, WHEEL)


class _Stop(Exception):
    pass


class _FakeTime:
    """A wall clock that moves only when the hamster sleeps."""

    def __init__(self, now: float, run_for: float) -> None:
        self.now = now
        self.stop_at = now + run_for
        self.sleeps: list[float] = []
        self.last_wake = now

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.last_wake = self.now
        self.now += seconds
        if self.now > self.stop_at:
            raise _Stop


@pytest.mark.parametrize(("speedup", "run_for"), [(1.0, 1800.0), (600.0, 180.0)])
async def test_live_run_delivers_the_pure_stream(speedup: float, run_for: float) -> None:
    first_burst = plan_night(11, NIGHT, BERLIN, WHEEL)[0]
    wall_start = first_burst.start - 600  # still at first, then running
    fake = _FakeTime(wall_start, run_for)
    delivered: list[tuple[float, bytes]] = []

    def on_payload(payload: bytes, received_at: float) -> None:
        # Never early: the simulated moment has come.
        assert received_at <= wall_start + (fake.now - wall_start) * speedup
        delivered.append((received_at, payload))

    hamster = SimulatedHamster(
        seed=11,
        circumference_m=WHEEL,
        tz=BERLIN,
        speedup=speedup,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    with pytest.raises(_Stop):
        await hamster.run(on_payload)

    simulated_until = wall_start + (fake.last_wake - wall_start) * speedup
    expected = list(
        takewhile(
            lambda n: n[0] <= simulated_until,
            notifications(11, wall_start, math.inf, BERLIN, WHEEL),
        )
    )
    assert delivered == expected
    assert simulated_until - wall_start >= run_for * speedup - 5 * speedup
    assert any(
        parse_csc_measurement(a).wheel_revolutions != parse_csc_measurement(b).wheel_revolutions
        for (_, a), (_, b) in pairwise(delivered)
    )
    # Light: no busy loop, at most one sleep per notification, never a sliver of a sleep.
    assert all(seconds >= MIN_WALL_SLEEP_S for seconds in fake.sleeps)
    assert len(fake.sleeps) <= len(delivered) + 1
    if speedup > 1:
        assert len(delivered) > 5 * len(fake.sleeps)  # batches per wake


def test_the_live_hamster_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="speedup"):
        SimulatedHamster(seed=1, circumference_m=WHEEL, tz=BERLIN, speedup=0)
    with pytest.raises(ValueError, match="circumference"):
        SimulatedHamster(seed=1, circumference_m=0, tz=BERLIN)
