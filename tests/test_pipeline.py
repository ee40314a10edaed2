"""The whole counting pipeline on a real SQLite file: exact across flushes, crashes and restarts."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import HamsterConfig
from bot.wheels import WheelPipeline, flush_all
from sensors.csc import encode_csc_measurement
from storage import queries
from storage.db import Database

T0 = 1_764_400_000.0
WHEEL = HamsterConfig(name="Ursula", circumference_m=0.6283, sensor="simulated")
WHEEL16 = HamsterConfig(name="Pip", circumference_m=0.6283, counter_bits=16, counter_format="u16le")


def payload(hamster: HamsterConfig, counter: int) -> bytes:
    if hamster.counter_format == "u16le":
        return (counter % 65536).to_bytes(2, "little")
    return encode_csc_measurement(counter % 2**32, 0)


async def stored_revolutions(db: Database) -> int:
    total = 0
    for wheel in await queries.wheels(db):
        total += (await queries.wheel_total(db, wheel.id, 0, 2**40)).revolutions
    return total


# An operation is (kind, amount): run N seconds, sleep through a gap while running, repeat readings,
# flush, crash (drop the unflushed buffer) or restart cleanly, or a malformed payload.
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("run"), st.integers(1, 90)),
        st.tuples(st.just("gap"), st.integers(91, 20_000)),
        st.tuples(st.just("repeat"), st.integers(1, 5)),
        st.tuples(st.just("flush"), st.just(0)),
        st.tuples(st.just("crash"), st.just(0)),
        st.tuples(st.just("restart"), st.just(0)),
        st.tuples(st.just("junk"), st.just(0)),
    ),
    min_size=1,
    max_size=40,
)


@pytest.mark.parametrize("hamster", [WHEEL, WHEEL16], ids=["csc32", "u16"])
@settings(max_examples=40, deadline=None)
@given(ops=OPS, start=st.integers(0, 2**32 - 1), seed=st.integers(0, 2**16))
async def test_credited_equals_truth_across_crashes(
    tmp_path_factory: pytest.TempPathFactory,
    hamster: HamsterConfig,
    ops: list[tuple[str, int]],
    start: int,
    seed: int,
) -> None:
    rng = random.Random(seed)
    path = tmp_path_factory.mktemp("pipe") / "h.db"
    db = await Database.open(path)
    try:
        pipeline = await WheelPipeline.open(db, hamster)
        counter, now, truth = start, T0, 0
        pipeline.feed(payload(hamster, counter), now)  # the baseline, which asks to be flushed now
        assert pipeline.flush_requested.is_set()
        await pipeline.flush()
        for kind, amount in ops:
            if kind == "run":
                for _ in range(amount):
                    step = rng.randint(0, 4)  # at most ~9 km/h on this wheel
                    counter, now, truth = counter + step, now + 1.0, truth + step
                    pipeline.feed(payload(hamster, counter), now)
            elif kind == "gap":
                # The sensor sleeps or the link is down while the hamster runs; then one reading.
                step = rng.randint(0, amount * 2)
                counter, now, truth = counter + step, now + amount, truth + step
                pipeline.feed(payload(hamster, counter), now)
            elif kind == "repeat":
                for _ in range(amount):
                    now += 1.0
                    pipeline.feed(payload(hamster, counter), now)
            elif kind == "flush":
                await pipeline.flush()
            elif kind == "crash":
                # SIGKILL: whatever was buffered is gone, and so is the in-memory counter state.
                pipeline = await WheelPipeline.open(db, hamster)
            elif kind == "restart":
                await pipeline.flush()
                pipeline = await WheelPipeline.open(db, hamster)
            elif kind == "junk":
                pipeline.feed(b"\x01", now)  # too short for either format
        # The sensor keeps reporting: after a crash, the next reading credits what was lost.
        pipeline.feed(payload(hamster, counter), now + 1.0)
        await flush_all([pipeline])
        assert await stored_revolutions(db) == truth
    finally:
        await db.close()


async def test_idle_sensor_makes_no_commits(db: Database) -> None:
    pipeline = await WheelPipeline.open(db, WHEEL)
    pipeline.feed(payload(WHEEL, 100), T0)
    await pipeline.flush()  # the baseline is worth a commit
    commits = db.commits
    for second in range(1, 3600):
        pipeline.feed(payload(WHEEL, 100), T0 + second)
        if second % 60 == 0:
            await pipeline.flush()
    assert db.commits == commits
    assert pipeline.status.speed_mps == 0.0


async def test_live_status_follows_the_wheel(db: Database) -> None:
    pipeline = await WheelPipeline.open(db, WHEEL)
    pipeline.feed(payload(WHEEL, 10), T0)
    pipeline.link_event("connected", T0)
    pipeline.feed(payload(WHEEL, 13), T0 + 1)
    assert pipeline.status.connected is True
    assert pipeline.status.last_reading_at == T0 + 1
    assert pipeline.status.speed_mps == pytest.approx(3 * 0.6283)
    pipeline.link_event("battery", T0 + 2, 17)
    pipeline.link_event("disconnected", T0 + 3)
    assert pipeline.status.battery == 17
    assert pipeline.status.connected is False and pipeline.status.since == T0 + 3
    await pipeline.flush()
    kinds = [row[0] for row in await db.fetchall("SELECT kind FROM sensor_events ORDER BY id")]
    assert kinds == ["baseline", "connected", "battery", "disconnected"]


async def test_recorder_gets_every_notification(tmp_path: Path, db: Database) -> None:
    from sensors.capture import CaptureLine, CaptureWriter, read_capture

    capture = tmp_path / "rec.csv"
    with CaptureWriter(capture) as recorder:
        pipeline = WheelPipeline(WHEEL, (await WheelPipeline.open(db, WHEEL)).store, recorder)
        pipeline.feed(payload(WHEEL, 5), T0)
        pipeline.feed(b"", T0 + 1)  # even junk is recorded: a capture is the raw truth
        pipeline.feed(payload(WHEEL, 9), T0 + 2)
    lines = [
        x for x in read_capture(capture.read_text().splitlines()) if isinstance(x, CaptureLine)
    ]
    assert [(x.received_at, x.payload) for x in lines] == [
        (T0, payload(WHEEL, 5)),
        (T0 + 1, b""),
        (T0 + 2, payload(WHEEL, 9)),
    ]
