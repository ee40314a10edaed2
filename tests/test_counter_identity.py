"""Which counter a reading comes from: cadence-mode sensors, replaced sensors, a demo's database.

Every test runs the real pipeline (decode, count, buffered store) on a real SQLite file, or the real
``hamsterbot`` command on a capture.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import HamsterConfig, defaults, load, parse
from bot.wheels import WheelPipeline
from sensors.capture import CaptureWriter
from sensors.counter import CounterIdentity
from sensors.csc import encode_csc_measurement, parse_csc_measurement
from sensors.simulated import notifications, revolutions_between
from storage import queries
from storage.db import Database

T0 = 1_764_400_000.0
CIRCUMFERENCE = math.pi * 0.20
REAL = "C4:7C:8D:6A:12:34"
SPARE = "C4:7C:8D:6A:99:99"


def hamster(sensor: str | None = "simulated") -> HamsterConfig:
    return HamsterConfig(name="Ursula", circumference_m=CIRCUMFERENCE, sensor=sensor)


def wheel(counter: int) -> bytes:
    return encode_csc_measurement(counter, 0)


def crank(counter: int) -> bytes:
    return encode_csc_measurement(None, crank_revolutions=counter)


async def stored(db: Database) -> int:
    (row,) = await queries.wheels(db)
    return (await queries.wheel_total(db, row.id, 0, 2**40)).revolutions


async def events(db: Database, kind: str) -> list[str]:
    rows = await db.fetchall("SELECT detail FROM sensor_events WHERE kind = ?", (kind,))
    return [detail for (detail,) in rows]


async def test_a_cadence_mode_sensor_counts_its_crank_counter_across_the_16_bit_wrap(
    tmp_path: Path,
) -> None:
    async with await Database.open(tmp_path / "h.db") as db:
        pipeline = await WheelPipeline.open(db, hamster(REAL))
        at = T0
        for counter in range(65_530, 65_536 + 40):  # one revolution a second, through the wrap
            pipeline.feed(crank(counter), at, REAL)
            pipeline.feed(crank(counter), at + 0.5, REAL)  # a repeat
            at += 1
        await pipeline.flush()
        assert pipeline.malformed == 0
        assert pipeline.credited == await stored(db) == 45
        # Persisted as a crank counter, so after a restart it is still 16 bits wide.
        reopened = await WheelPipeline.open(db, hamster(REAL))
        assert reopened.counter.identity == CounterIdentity(REAL, "csc", "crank")
        assert reopened.counter.settings.bits == 16
        reopened.feed(crank(65_536 + 44), at + 4, REAL)
        await reopened.flush()
        assert await stored(db) == 50


async def test_flags_0x03_with_a_frozen_crank_block_count_the_wheel(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "h.db") as db:
        pipeline = await WheelPipeline.open(db, hamster(REAL))
        for second in range(30):
            payload = encode_csc_measurement(1_000 + second, second * 1024, 0xBEEF, 0xDEAD)
            pipeline.feed(payload, T0 + second, REAL)
        await pipeline.flush()
        assert await stored(db) == 29
        assert pipeline.counter.identity == CounterIdentity(REAL, "csc", "wheel")


async def test_a_switch_from_wheel_to_crank_data_credits_nothing_across_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.wheels")
    async with await Database.open(tmp_path / "h.db") as db:
        pipeline = await WheelPipeline.open(db, hamster(REAL))
        for second in range(11):
            pipeline.feed(wheel(2_000 + second), T0 + second, REAL)  # 10 credited
        # Re-seated in cadence mode: its crank counter happens to read a little above the wheel's
        # low bits, which would look like running if it were taken for the same counter.
        at = T0 + 600
        for step in range(21):
            pipeline.feed(crank(2_000 + 30 + step), at + step, REAL)  # 20 credited
        await pipeline.flush()
        assert await stored(db) == pipeline.credited == 30
        (detail,) = await events(db, "new_counter")
        assert "crank" in detail and "wheel" in detail and "nothing credited" in detail
    switches = [r for r in caplog.records if "new counter" in r.getMessage()]
    assert len(switches) == 1 and switches[0].levelno == logging.INFO


async def test_a_demo_database_then_a_real_sensor_credits_no_phantom_revolutions(
    tmp_path: Path,
) -> None:
    # The numbers: the demo left its simulated counter at 2**32 - 14,770; a day later a
    # real sensor at 50,000 would have credited 64,770 revolutions (40.7 km) across the switch.
    path = tmp_path / "hamsterbot.db"
    async with await Database.open(path) as db:
        demo = await WheelPipeline.open(db, hamster("simulated"))
        for second in range(5):
            demo.feed(wheel(2**32 - 14_774 + second), T0 + second)
        await demo.flush()
        assert await stored(db) == 4
    async with await Database.open(path) as db:
        real = await WheelPipeline.open(db, hamster(REAL))
        day_later = T0 + 86_400
        real.feed(wheel(50_000), day_later, REAL)
        real.feed(wheel(50_003), day_later + 1, REAL)
        await real.flush()
        assert real.credited == 3
        assert await stored(db) == 4 + 3
        (detail,) = await events(db, "new_counter")
        assert REAL in detail and "simulated" in detail


async def test_a_replaced_sensor_is_a_new_counter(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "h.db") as db:
        pipeline = await WheelPipeline.open(db, hamster("auto"))
        pipeline.feed(wheel(100), T0, REAL)
        pipeline.feed(wheel(110), T0 + 5, REAL)
        # After a fall the spare takes over; its counter is close by and would pass the speed cap.
        pipeline.feed(wheel(115), T0 + 10, SPARE)
        pipeline.feed(wheel(120), T0 + 15, SPARE)
        await pipeline.flush()
        assert await stored(db) == 10 + 5
        assert pipeline.counter.identity == CounterIdentity(SPARE, "csc", "wheel")


async def test_a_capture_without_a_sensor_continues_the_counter_and_adopts_the_sensor(
    tmp_path: Path,
) -> None:
    async with await Database.open(tmp_path / "h.db") as db:
        pipeline = await WheelPipeline.open(db, hamster("auto"))
        pipeline.feed(wheel(100), T0)  # a replayed capture: which sensor is not known
        pipeline.feed(wheel(110), T0 + 5)
        assert pipeline.counter.identity == CounterIdentity(None, "csc", "wheel")
        pipeline.feed(wheel(115), T0 + 10, REAL)  # the live link names its sensor: same counter
        pipeline.feed(wheel(120), T0 + 15)  # and a capture line after that: still the same
        await pipeline.flush()
        assert await stored(db) == 20
        assert pipeline.counter.identity == CounterIdentity(REAL, "csc", "wheel")


async def test_a_state_saved_before_identities_is_a_new_baseline(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "h.db") as db:
        pipeline = await WheelPipeline.open(db, hamster(REAL))
        pipeline.feed(wheel(1_000), T0, REAL)
        await pipeline.flush()
        # What an older hamsterbot left behind: a counter with no identity.
        async with db.transaction() as conn:
            await conn.execute(
                "UPDATE wheel_state SET counter_sensor = NULL, counter_format = NULL, "
                "counter_field = NULL"
            )
        upgraded = await WheelPipeline.open(db, hamster(REAL))
        assert upgraded.counter.identity is None and upgraded.counter.state.last_raw == 1_000
        upgraded.feed(wheel(1_200), T0 + 3_600, REAL)
        upgraded.feed(wheel(1_201), T0 + 3_601, REAL)
        await upgraded.flush()
        assert await stored(db) == 1
        (detail,) = await events(db, "new_counter")
        assert "unknown origin" in detail


async def test_changing_counter_format_in_the_config_is_a_new_counter(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "h.db") as db:
        pipeline = await WheelPipeline.open(db, hamster(REAL))
        pipeline.feed(wheel(1_000), T0, REAL)
        await pipeline.flush()
        diy = HamsterConfig(
            name="Ursula", circumference_m=CIRCUMFERENCE, sensor=REAL, counter_format="u32le"
        )
        again = await WheelPipeline.open(db, diy)
        again.feed((1_010).to_bytes(4, "little"), T0 + 10, REAL)
        again.feed((1_015).to_bytes(4, "little"), T0 + 15, REAL)
        await again.flush()
        assert await stored(db) == 5


# --- a cadence-mode night through `hamsterbot replay` ------------------------------------------


def cadence_night(start_counter: int) -> Iterator[tuple[float, bytes]]:
    """One simulated night as a dual-mode sensor in cadence mode sends it: crank data only."""
    tz = ZoneInfo("UTC")
    start, end = 1_764_442_800.0, 1_764_482_400.0  # 2025-11-29 19:00 -> 2025-11-30 06:00 UTC
    for at, payload in notifications(7, start, end, tz, CIRCUMFERENCE, start_counter):
        measurement = parse_csc_measurement(payload)
        assert measurement.wheel_revolutions is not None
        yield (
            at,
            encode_csc_measurement(
                None,
                crank_revolutions=measurement.wheel_revolutions,
                last_crank_event_time=measurement.last_wheel_event_time or 0,
            ),
        )


def hamsterbot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TZ": "UTC"},
    )


def test_replaying_a_cadence_mode_night_gives_the_exact_revolutions(tmp_path: Path) -> None:
    start_counter = 65_536 - 700  # the 16-bit crank counter wraps early in the night
    capture = tmp_path / "cadence.csv"
    with CaptureWriter(capture) as writer:
        lines = list(cadence_night(start_counter))
        for at, payload in lines:
            writer.write(at, payload)
    first, last = lines[0][0], lines[-1][0]
    truth = revolutions_between(7, first, last, ZoneInfo("UTC"), CIRCUMFERENCE)
    assert truth > 2 * 700  # a real night, well past the wrap
    # No configuration at all: the embedded defaults' hamster, counter_format "csc".
    result = hamsterbot("replay", "--wheel", "Ursula", str(capture), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "0 malformed payloads ignored" in result.stdout
    totals = json.loads(hamsterbot("totals", "--json", cwd=tmp_path).stdout)
    assert totals["wheels"][0]["revolutions"] == truth


# --- no phantom hamster -------------------------------------------------------------------------


def test_a_config_file_without_hamsters_has_none(tmp_path: Path) -> None:
    path = tmp_path / "hamsterbot.toml"
    path.write_text('[bot]\ntimezone = "UTC"\n', encoding="utf-8")
    assert load(path).hamsters == ()
    assert parse({}).hamsters == ()
    # The embedded defaults (no config file at all) still bring the simulated Ursula.
    assert [h.sensor for h in defaults().hamsters] == ["simulated"]


async def test_run_with_a_config_without_hamsters_counts_nothing_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bot import app

    config = tmp_path / "hamsterbot.toml"
    config.write_text(
        f'[bot]\ntimezone = "UTC"\ndatabase = "{tmp_path / "h.db"}"\n', encoding="utf-8"
    )
    caplog.set_level(logging.INFO)
    stop = asyncio.Event()

    class StopOnceRunning(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "hamsterbot is running" in record.getMessage():
                stop.set()

    handler = StopOnceRunning()
    logging.getLogger("bot.app").addHandler(handler)
    try:
        async with asyncio.timeout(30):
            await app.run(load(config), stop=stop)
    finally:
        logging.getLogger("bot.app").removeHandler(handler)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("no [[hamsters]]" in m for m in messages) == 1
    assert not any("Ursula" in m or "simulated" in m for m in messages)
    async with await Database.open(tmp_path / "h.db") as db:
        assert await queries.wheels(db) == []
