"""RevolutionCounter: one unit test per counting rule, then a simulated hamster run as a property."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sensors.counter import (
    CounterEvent,
    CounterSettings,
    CounterState,
    Credit,
    RevolutionCounter,
    Update,
)

T0 = 1_764_400_000.0  # a UTC epoch second in late 2025
# 0.5 m wheel at 10 km/h: 5.56 revolutions a second; allowed(2 s) = 12, allowed(10 s) = 56.
HALF_METRE = CounterSettings(circumference_m=0.5)


def started(raw: int, settings: CounterSettings = HALF_METRE, at: float = T0) -> RevolutionCounter:
    counter = RevolutionCounter(settings)
    counter.update(raw, at)
    return counter


def credit(revolutions: int, start: float, end: float, estimated: bool = False) -> Update:
    return Update(credit=Credit(revolutions, start, end, estimated), events=())


NOTHING = Update(credit=None, events=())


# --- the speed cap ------------------------------------------------------------------------


def test_allowed_follows_the_formula() -> None:
    assert HALF_METRE.allowed(10.0) == 56  # floor(2.777.. * 10 / 0.5) + 1
    assert HALF_METRE.allowed(2.0) == 12
    assert HALF_METRE.allowed(0.1) == 12  # jitter: never judged over less than min_window_s
    assert HALF_METRE.allowed(-30.0) == 12  # a clock stepping back counts as no time
    assert HALF_METRE.allowed(3600.0) == 20001
    assert CounterSettings(circumference_m=0.5, min_window_s=0.0).allowed(0.0) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"circumference_m": 0.0},
        {"circumference_m": -1.0},
        {"circumference_m": math.nan},
        {"circumference_m": 0.5, "bits": 0},
        {"circumference_m": 0.5, "bits": 65},
        {"circumference_m": 0.5, "max_speed_kmh": 0.0},
        {"circumference_m": 0.5, "reverse_tolerance": -1},
        {"circumference_m": 0.5, "bits": 8, "reverse_tolerance": 128},
        {"circumference_m": 0.5, "gap_seconds": -1.0},
        {"circumference_m": 0.5, "min_window_s": math.inf},
    ],
)
def test_settings_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CounterSettings(**kwargs)  # type: ignore[arg-type]


# --- rule 1: baseline ---------------------------------------------------------------------


def test_first_reading_of_a_new_wheel_only_sets_the_baseline() -> None:
    counter = RevolutionCounter(HALF_METRE)
    assert counter.state == CounterState(last_raw=None, high_water=None, last_at=None)
    update = counter.update(123_456, T0)
    assert update.credit is None
    assert update.events == (
        CounterEvent(kind="baseline", at=T0, detail="first reading 123456, baseline set"),
    )
    assert counter.state == CounterState(last_raw=123_456, high_water=123_456, last_at=T0)


def test_a_restored_wheel_does_not_rebaseline() -> None:
    state = CounterState(last_raw=1000, high_water=1000, last_at=T0)
    counter = RevolutionCounter(HALF_METRE, state)
    # Everything the hamster ran while the process was down is credited, over the gap.
    assert counter.update(4000, T0 + 3600) == credit(3000, T0, T0 + 3600, estimated=True)


def test_state_without_high_water_uses_the_last_reading() -> None:
    counter = RevolutionCounter(HALF_METRE, CounterState(last_raw=50, high_water=None, last_at=T0))
    assert counter.state == CounterState(last_raw=50, high_water=50, last_at=T0)
    assert counter.update(55, T0 + 1) == credit(5, T0, T0 + 1)


def test_state_with_a_reading_but_no_time_is_refused() -> None:
    with pytest.raises(ValueError, match="no time"):
        RevolutionCounter(HALF_METRE, CounterState(last_raw=50, high_water=50, last_at=None))


def test_non_finite_time_is_refused() -> None:
    counter = started(10)
    with pytest.raises(ValueError, match="finite"):
        counter.update(11, math.nan)
    assert counter.state == CounterState(last_raw=10, high_water=10, last_at=T0)


# --- rule 2: forward, wraps, duplicates ---------------------------------------------------


def test_forward_run_is_credited_over_the_interval_since_the_last_reading() -> None:
    counter = started(100)
    assert counter.update(105, T0 + 1) == credit(5, T0, T0 + 1)
    assert counter.update(111, T0 + 2) == credit(6, T0 + 1, T0 + 2)
    assert counter.state == CounterState(last_raw=111, high_water=111, last_at=T0 + 2)


def test_32_bit_wrap() -> None:
    counter = started(2**32 - 3)
    assert counter.update(4, T0 + 2) == credit(7, T0, T0 + 2)
    assert counter.state.high_water == 4


def test_16_bit_wrap() -> None:
    counter = started(65_530, CounterSettings(circumference_m=0.5, bits=16))
    assert counter.update(2, T0 + 2) == credit(8, T0, T0 + 2)
    assert counter.update(9, T0 + 3) == credit(7, T0 + 2, T0 + 3)


def test_raw_values_are_masked_to_the_counter_width() -> None:
    counter = started(2**16 + 10, CounterSettings(circumference_m=0.5, bits=16))
    assert counter.state.last_raw == 10
    assert counter.update(2**17 + 13, T0 + 1) == credit(3, T0, T0 + 1)


def test_duplicates_credit_nothing_but_move_the_time() -> None:
    counter = started(500)
    assert counter.update(500, T0 + 1) == NOTHING
    assert counter.update(500, T0 + 1) == NOTHING  # the same notification twice
    assert counter.state == CounterState(last_raw=500, high_water=500, last_at=T0 + 1)
    # The next revolutions happened after the last reading that showed the wheel still.
    assert counter.update(503, T0 + 2) == credit(3, T0 + 1, T0 + 2)


def test_speed_cap_boundary() -> None:
    counter = started(0)
    assert counter.update(56, T0 + 10) == credit(56, T0, T0 + 10)
    over = started(0)
    update = over.update(57, T0 + 10)
    assert update.credit is None
    assert [event.kind for event in update.events] == ["glitch"]


# --- rocking ------------------------------------------------------------------------------


def test_rocking_backwards_and_forwards_never_adds_distance() -> None:
    counter = started(1000)
    at = T0
    for _ in range(20):
        at += 1
        assert counter.update(995, at) == NOTHING
        at += 1
        assert counter.update(1000, at) == NOTHING
    assert counter.state == CounterState(last_raw=1000, high_water=1000, last_at=at)


def test_after_rocking_only_the_new_high_water_is_credited() -> None:
    counter = started(1000)
    assert counter.update(990, T0 + 1) == NOTHING
    assert counter.state == CounterState(last_raw=990, high_water=1000, last_at=T0 + 1)
    assert counter.update(998, T0 + 2) == NOTHING  # still short of the mark
    assert counter.update(1004, T0 + 3) == credit(4, T0 + 2, T0 + 3)


def test_rocking_across_the_wrap() -> None:
    counter = started(3, CounterSettings(circumference_m=0.5, bits=16))
    assert counter.update(65_530, T0 + 1) == NOTHING  # 9 back, through zero
    assert counter.update(5, T0 + 2) == credit(2, T0 + 1, T0 + 2)


def test_reverse_tolerance_is_inclusive() -> None:
    counter = started(1000)
    assert counter.update(1000 - 16, T0 + 1) == NOTHING
    beyond = started(1000)
    assert [e.kind for e in beyond.update(1000 - 17, T0 + 1).events] == ["glitch"]


# --- resets -------------------------------------------------------------------------------


def test_sensor_reset_credits_from_zero() -> None:
    counter = started(51_234)
    update = counter.update(12, T0 + 5)
    assert update.credit == Credit(12, T0, T0 + 5, estimated=False)
    assert update.events == (
        CounterEvent(
            kind="reset", at=T0 + 5, detail="counter dropped 51234 -> 12, credited 12 from zero"
        ),
    )
    assert counter.state == CounterState(last_raw=12, high_water=12, last_at=T0 + 5)
    assert counter.update(15, T0 + 6) == credit(3, T0 + 5, T0 + 6)


def test_reset_to_exactly_zero_records_the_event_without_a_credit() -> None:
    counter = started(51_234)
    update = counter.update(0, T0 + 1)
    assert update.credit is None
    assert [event.kind for event in update.events] == ["reset"]
    assert counter.state.high_water == 0


def test_reset_after_a_long_gap_allows_more() -> None:
    counter = started(900_000)
    update = counter.update(3000, T0 + 3600)
    assert update.credit == Credit(3000, T0, T0 + 3600, estimated=True)
    assert [event.kind for event in update.events] == ["reset"]


# --- glitches and rebaselines -------------------------------------------------------------


def test_glitch_is_ignored_and_does_not_move_the_baseline() -> None:
    counter = started(1000)
    update = counter.update(2_000_000_000, T0 + 1)
    assert update.credit is None
    assert update.events == (
        CounterEvent(
            kind="glitch",
            at=T0 + 1,
            detail="counter jumped 1000 -> 2000000000 in 1.0 s (at most 12 plausible), ignored",
        ),
    )
    assert counter.state == CounterState(last_raw=1000, high_water=1000, last_at=T0)
    # The next good reading is judged against the last good one, over the whole interval.
    assert counter.update(1010, T0 + 2) == credit(10, T0, T0 + 2)


def test_small_corrupt_reading_after_glitch_is_not_a_reset() -> None:
    counter = started(1000)
    counter.update(700_000, T0 + 1)
    # Had the glitch moved the baseline, 1003 would look like a drop from 700000: a reset.
    update = counter.update(1003, T0 + 2)
    assert update == credit(3, T0, T0 + 2)


def test_glitch_then_plausible_step_from_it_is_a_rebaseline() -> None:
    counter = started(1000)
    counter.update(5_000_000, T0 + 1)
    update = counter.update(5_000_004, T0 + 2)
    assert update.credit == Credit(4, T0 + 1, T0 + 2, estimated=False)
    assert update.events == (
        CounterEvent(
            kind="rebaseline",
            at=T0 + 2,
            detail="sensor jumped 1000 -> 5000000 and kept counting to 5000004, credited 4",
        ),
    )
    assert counter.state == CounterState(last_raw=5_000_004, high_water=5_000_004, last_at=T0 + 2)
    assert counter.update(5_000_010, T0 + 3) == credit(6, T0 + 2, T0 + 3)


def test_rebaseline_step_is_speed_capped_from_the_candidate() -> None:
    counter = started(1000)
    counter.update(5_000_000, T0 + 1)
    update = counter.update(5_000_013, T0 + 2)  # 13 > allowed(1 s) = 12
    assert update.credit is None
    assert [event.kind for event in update.events] == ["glitch"]


def test_a_good_reading_clears_the_candidate() -> None:
    counter = started(1000)
    counter.update(5_000_000, T0 + 1)
    assert counter.update(1002, T0 + 2) == credit(2, T0, T0 + 2)
    update = counter.update(5_000_003, T0 + 3)
    assert update.credit is None
    assert [event.kind for event in update.events] == ["glitch"]


@pytest.mark.parametrize("between", [1000, 995])  # a duplicate, a rock back
def test_duplicate_or_rocking_clears_the_candidate(between: int) -> None:
    counter = started(1000)
    counter.update(5_000_000, T0 + 1)
    assert counter.update(between, T0 + 2) == NOTHING
    assert [e.kind for e in counter.update(5_000_003, T0 + 3).events] == ["glitch"]


def test_second_unrelated_glitch_replaces_the_candidate() -> None:
    counter = started(1000)
    counter.update(5_000_000, T0 + 1)
    assert [e.kind for e in counter.update(9_000_000, T0 + 2).events] == ["glitch"]
    update = counter.update(9_000_005, T0 + 3)
    assert [e.kind for e in update.events] == ["rebaseline"]
    assert update.credit == Credit(5, T0 + 2, T0 + 3, estimated=False)


def test_a_sensor_stuck_on_a_bad_value_records_one_glitch() -> None:
    counter = started(1000)
    assert [e.kind for e in counter.update(5_000_000, T0 + 1).events] == ["glitch"]
    assert counter.update(5_000_000, T0 + 30) == NOTHING
    assert counter.update(5_000_000, T0 + 60) == NOTHING
    # The candidate's time was refreshed: 5 revolutions in one second is plausible from it.
    update = counter.update(5_000_005, T0 + 61)
    assert update.credit == Credit(5, T0 + 60, T0 + 61, estimated=False)


def test_candidate_is_not_persisted() -> None:
    counter = started(1000)
    counter.update(5_000_000, T0 + 1)
    restarted = RevolutionCounter(HALF_METRE, counter.state)
    update = restarted.update(5_000_004, T0 + 2)
    assert update.credit is None
    assert [event.kind for event in update.events] == ["glitch"]


# --- time ---------------------------------------------------------------------------------


def test_gap_credit_is_estimated() -> None:
    counter = started(0)
    assert counter.update(600, T0 + 600) == credit(600, T0, T0 + 600, estimated=True)
    # Exactly gap_seconds is not yet a gap.
    assert counter.update(650, T0 + 690) == credit(50, T0 + 600, T0 + 690, estimated=False)


def test_receive_jitter_behind_the_last_reading_is_no_time() -> None:
    counter = started(100)
    # Within clock_slack_s: notifications handled out of order, judged with zero elapsed time.
    assert counter.update(112, T0 - 1.5) == credit(12, T0 - 1.5, T0 - 1.5)
    assert counter.update(117, T0 - 0.5) == credit(5, T0 - 1.5, T0 - 0.5)


def test_a_clock_behind_the_last_reading_defers_and_loses_nothing() -> None:
    # A Pi without a real-time clock boots an hour in the past after a power cut.
    counter = started(1000)
    update = counter.update(1500, T0 - 1200)
    assert update.credit is None and [e.kind for e in update.events] == ["clock_behind"]
    assert counter.update(1600, T0 - 1199) == NOTHING  # once per episode
    assert counter.state == CounterState(1000, 1000, T0)
    # NTP answers: the first reading on the right clock credits everything since, exactly.
    assert counter.update(1700, T0 + 300) == credit(700, T0, T0 + 300, estimated=True)


def test_a_clock_far_behind_is_followed() -> None:
    # The stored time was the wrong one (the clock ran days ahead): counting must not stop.
    counter = started(1000)
    days = HALF_METRE.clock_wait_s + 86400
    assert counter.update(1005, T0 - days) == credit(5, T0 - days, T0 - days)
    assert counter.state.last_at == T0 - days
    assert counter.update(1009, T0 - days + 1) == credit(4, T0 - days, T0 - days + 1)


# --- state round trip ---------------------------------------------------------------------

ROUND_TRIP_READINGS = [
    (100, 0.0),
    (105, 1.0),
    (105, 2.0),  # duplicate
    (98, 3.0),  # rocking: last_raw differs from high_water
    (2**31, 4.0),  # glitch
    (111, 5.0),
    (116, 6.0),
    (3, 7.0),  # reset
    (5, 8.0),
    (400, 600.0),  # gap
    (405, 601.0),
]


@pytest.mark.parametrize("split", range(1, len(ROUND_TRIP_READINGS)))
def test_state_round_trip_continues_exactly(split: int) -> None:
    reference = RevolutionCounter(HALF_METRE)
    expected = [reference.update(raw, T0 + dt) for raw, dt in ROUND_TRIP_READINGS]

    first = RevolutionCounter(HALF_METRE)
    got = [first.update(raw, T0 + dt) for raw, dt in ROUND_TRIP_READINGS[:split]]
    state = first.state
    # As the store would persist and load it: plain ints and a float.
    restored = CounterState(state.last_raw, state.high_water, state.last_at)
    second = RevolutionCounter(HALF_METRE, restored)
    got += [second.update(raw, T0 + dt) for raw, dt in ROUND_TRIP_READINGS[split:]]

    assert got == expected
    assert second.state == reference.state
    total = sum(u.credit.revolutions for u in expected if u.credit)
    assert total == 5 + 6 + 5 + 3 + 2 + 395 + 5


# --- the property: a simulated hamster night ----------------------------------------------


@dataclass
class Night:
    """A true hamster run and what its sensor reported, built from a list of steps.

    ``position`` is the sensor's cumulative count since its last reset (unbounded; the sensor
    reports it mod 2**bits). The truth: every time ``position`` rises above ``peak`` (its
    highest value since the last reset, or the first reading), the rise is run distance.
    Revolutions turned after a reset count from the reset.
    """

    settings: CounterSettings
    at: float
    position: int
    peak: int = field(init=False)
    truth: int = 0
    accepted_at: float = field(init=False)  # time of the last reading the counter may accept
    readings: list[tuple[str, int, float]] = field(default_factory=list)
    resets: int = 0
    glitches: int = 0
    wraps: int = 0
    rocks: int = 0

    def __post_init__(self) -> None:
        self.peak = self.position
        self.accepted_at = self.at
        self.emit("read")

    @property
    def modulus(self) -> int:
        return 2**self.settings.bits

    def cap(self, seconds: float) -> int:
        # Strictly inside the counter's cap so float rounding never decides a test.
        speed = self.settings.max_speed_kmh / 3.6
        return max(0, math.floor(speed * seconds / self.settings.circumference_m) - 1)

    def emit(self, kind: str, raw: int | None = None) -> None:
        value = self.position % self.modulus if raw is None else raw
        self.readings.append((kind, value, self.at))
        if kind != "glitch":
            self.accepted_at = self.at

    def move(self, revolutions: int) -> None:
        self.wraps += (self.position + revolutions) // self.modulus - self.position // self.modulus
        self.position += revolutions
        if self.position > self.peak:
            self.truth += self.position - self.peak
            self.peak = self.position


def _run(night: Night, fractions: list[float], jitter: float) -> None:
    for fraction in fractions:
        dt = 1.0 + jitter
        night.at += dt
        night.move(math.floor(fraction * night.cap(1.0)))
        night.emit("read")


def _gap(night: Night, seconds: float, fraction: float) -> None:
    night.at += seconds
    revolutions = math.floor(fraction * night.cap(seconds))
    # Only fwd mod 2**bits is observable: keep a 16-bit gap well inside one turn of the counter.
    night.move(min(revolutions, night.modulus // 2))
    night.emit("read")


def _rock(night: Night, back: int, forward_fraction: float) -> None:
    room = night.settings.reverse_tolerance - (night.peak - night.position)
    back = min(back, room)
    if back <= 0:
        return
    night.rocks += 1
    night.at += 1.0
    night.position -= back
    night.emit("read")
    night.at += 1.0
    night.move(math.floor(forward_fraction * night.cap(1.0)))
    night.emit("read")


def _reset(night: Night, seconds: float, fraction: float) -> None:
    # A reset is only distinguishable when the counter was clear of the rocking band above zero
    # and of the wrap below 2**bits (see the ambiguities in sensors/counter.py).
    at = night.at + seconds
    window = night.settings.allowed(at - night.accepted_at) + 1
    high_water = night.peak % night.modulus
    if not night.settings.reverse_tolerance + window < high_water < night.modulus - window:
        return
    night.at = at
    night.resets += 1
    night.position = night.peak = 0
    night.move(math.floor(fraction * night.cap(seconds)))
    night.emit("read")


def _glitch(night: Night) -> None:
    if night.readings[-1][0] == "glitch":
        return  # single glitches: a repeat of the same bad value records no second event
    at = night.at + 0.25
    window = night.settings.allowed(at - night.accepted_at) + 1
    high_water = night.peak % night.modulus
    modulus = night.modulus

    def distance(raw: int) -> int:
        return min((raw - high_water) % modulus, (high_water - raw) % modulus)

    raw = max((modulus // 4, modulus // 2, 3 * modulus // 4), key=distance)
    if distance(raw) <= max(window, night.settings.reverse_tolerance) or raw <= window:
        return
    night.at = at
    night.glitches += 1
    night.emit("glitch", raw)


def _duplicate(night: Night, dt: float) -> None:
    night.at += dt
    night.emit("read")


_fraction = st.floats(min_value=0.0, max_value=1.0)
_step = st.one_of(
    st.tuples(st.just("run"), st.lists(_fraction, min_size=1, max_size=20), st.floats(-0.5, 0.5)),
    st.tuples(st.just("pause"), st.floats(min_value=1.0, max_value=600.0)),
    st.tuples(
        st.just("gap"),
        st.one_of(st.floats(60.0, 3600.0), st.floats(3600.0, 12 * 3600.0)),
        _fraction,
    ),
    st.tuples(st.just("duplicate"), st.sampled_from([0.0, 0.5, 1.0])),
    st.tuples(st.just("rock"), st.integers(min_value=1, max_value=32), _fraction),
    st.tuples(st.just("reset"), st.floats(min_value=0.5, max_value=5.0), _fraction),
    st.tuples(st.just("glitch")),
    st.tuples(st.just("restart")),
)


@st.composite
def nights(draw: st.DrawFn) -> tuple[Night, list[tuple]]:
    bits = draw(st.sampled_from([16, 32]))
    modulus = 2**bits
    counter_settings = CounterSettings(
        circumference_m=draw(st.sampled_from([0.35, 0.5, 0.628, 0.94])),
        bits=bits,
        reverse_tolerance=draw(st.sampled_from([0, 4, 16])),
    )
    start = draw(
        st.one_of(
            st.integers(min_value=modulus - 300, max_value=modulus - 1),  # about to wrap
            st.integers(min_value=0, max_value=40),
            st.integers(min_value=0, max_value=modulus - 1),
        )
    )
    night = Night(settings=counter_settings, at=T0, position=start)
    return night, draw(st.lists(_step, max_size=30))


@settings(max_examples=300, deadline=None)
@given(nights())
def test_credited_revolutions_equal_the_true_run(case: tuple[Night, list[tuple]]) -> None:
    night, steps = case
    restarts = set()
    for step in steps:
        match step:
            case ("run", fractions, jitter):
                _run(night, fractions, jitter)
            case ("pause", seconds):
                night.at += seconds
            case ("gap", seconds, fraction):
                _gap(night, seconds, fraction)
            case ("duplicate", dt):
                _duplicate(night, dt)
            case ("rock", back, fraction):
                _rock(night, back, fraction)
            case ("reset", seconds, fraction):
                _reset(night, seconds, fraction)
            case ("glitch",):
                _glitch(night)
            case ("restart",):
                restarts.add(len(night.readings))

    counter = RevolutionCounter(night.settings)
    credits: list[Credit] = []
    kinds: list[str] = []
    for index, (_, raw, at) in enumerate(night.readings):
        if index in restarts:
            counter = RevolutionCounter(night.settings, counter.state)
        update = counter.update(raw, at)
        kinds += [event.kind for event in update.events]
        if update.credit is not None:
            credits.append(update.credit)

    assert sum(c.revolutions for c in credits) == night.truth
    for c in credits:
        assert c.revolutions > 0
        assert c.start <= c.end
        assert c.estimated == (c.end - c.start > night.settings.gap_seconds)
    assert kinds.count("baseline") == 1
    assert kinds.count("reset") == night.resets
    assert kinds.count("glitch") == night.glitches
    assert "rebaseline" not in kinds
    # Coverage of the generator, shown by --hypothesis-show-statistics.
    event(f"{night.settings.bits} bits")
    for name, count in [
        ("reset", night.resets),
        ("glitch", night.glitches),
        ("wrap", night.wraps),
        ("restart", len(restarts)),
        ("estimated credit", sum(c.estimated for c in credits)),
        ("rocking", night.rocks),
    ]:
        if count:
            event(name)
