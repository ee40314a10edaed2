"""`hamsterbot` as a process against the fake BlueZ: SIGKILL at random moments, scan, doctor.

The fake BlueZ runs in the test's event loop on a private bus; the bot is a real subprocess that
finds it through ``DBUS_SYSTEM_BUS_ADDRESS`` (set by the ``private_bus`` fixture, inherited).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from dbus_fast.aio import MessageBus

from sensors.csc import encode_csc_measurement
from tests.fakes.bluez import CSC_MEASUREMENT, FakeBluez, PrivateBus

WHEEL = "C0:FF:EE:00:00:01"
LAMP = "C0:FF:EE:00:00:03"
WITHIN = 20.0  # bound for every wait on the subprocess (start-up imports are the slow part)

CONFIG = """\
[bot]
database = "{db}"
timezone = "UTC"
flush_seconds = 1
log_level = "DEBUG"

[[hamsters]]
name = "Ursula"
wheel_diameter_cm = 8  # small wheel + high cap: the test spins fast without tripping the glitch rule
sensor = "{sensor}"
max_speed_kmh = 50

[ble]
scan_timeout = 1
connect_timeout = 2
backoff_initial = 0.05
backoff_max = 0.2
watchdog_seconds = 30
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("HAMSTERBOT_TELEGRAM_TOKEN", "HAMSTERBOT_DISCORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "hamsterbot.toml"
    path.write_text(CONFIG.format(db=tmp_path / "hamsterbot.db", sensor=WHEEL))
    return path


async def hamsterbot(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    async with asyncio.timeout(WITHIN * 2):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def bot_process(config: Path, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def stored_raw(db: Path) -> int | None:
    """The last raw counter the bot has committed, or None before its first commit."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT last_raw FROM wheel_state").fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else row[0]


async def subscribed(fake: FakeBluez, after: int) -> None:
    await fake.wait_for(lambda: fake.device(WHEEL).start_notify_calls > after, within=WITHIN)


async def until_stored(fake: FakeBluez, db: Path, counter: int) -> None:
    """Repeat the reading (a stationary sensor does) until the bot has committed it."""
    async with asyncio.timeout(WITHIN):
        while stored_raw(db) != counter:
            fake.notify(WHEEL, CSC_MEASUREMENT, encode_csc_measurement(counter))
            await asyncio.sleep(0.1)


async def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    fake_bluez: FakeBluez, config: Path, tmp_path: Path
) -> None:
    rng = random.Random(20261129)
    db = tmp_path / "hamsterbot.db"
    log = tmp_path / "bot.log"
    fake_bluez.add_device(WHEEL, name="Wahoo SPEED", battery_level=80, battery1=True)
    counter = 4_294_960_000  # wraps past 2**32 during the test

    def spin(revolutions: int) -> None:
        nonlocal counter
        counter = (counter + revolutions) % 2**32
        fake_bluez.notify(WHEEL, CSC_MEASUREMENT, encode_csc_measurement(counter))

    async with bot_process(config, log):
        await subscribed(fake_bluez, 0)
        await until_stored(fake_bluez, db, counter)
    baseline = counter  # the first reading: everything after it must be credited exactly once

    kills = 6
    for cycle in range(kills):
        calls = fake_bluez.device(WHEEL).start_notify_calls
        async with bot_process(config, log) as process:
            if cycle % 2 == 0:
                await subscribed(fake_bluez, calls)
            # otherwise it may die anywhere: importing, opening the store, connecting
            deadline = asyncio.get_running_loop().time() + rng.uniform(0.05, 2.5)
            while asyncio.get_running_loop().time() < deadline:
                spin(rng.choice((0, 1, 1, 2)))
                await asyncio.sleep(0.05)
            process.send_signal(signal.SIGKILL)
        spin(rng.randint(0, 20))  # the hamster runs while the bot is dead

    calls = fake_bluez.device(WHEEL).start_notify_calls
    async with bot_process(config, log) as process:
        await subscribed(fake_bluez, calls)
        for _ in range(20):
            spin(1)
            await asyncio.sleep(0.05)
        await until_stored(fake_bluez, db, counter)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WITHIN):
            assert await process.wait() == 0

    code, out, err = await hamsterbot("totals", "--json", "--config", str(config))
    assert code == 0, err
    (wheel,) = json.loads(out)["wheels"]
    assert wheel["revolutions"] == (counter - baseline) % 2**32
    assert wheel["revolutions"] > 100
    text = log.read_text()
    assert "Traceback" not in text
    assert "glitch" not in text


async def test_scan_lists_the_sensor_with_a_ready_entry(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL, name="Wahoo SPEED", rssi=-48)
    fake_bluez.add_device(LAMP, name="Lamp", service_uuids=["180a"], csc=False)
    code, out, err = await hamsterbot("scan", "--timeout", "0.5")
    assert code == 0, err
    assert WHEEL in out and "Wahoo SPEED" in out and "-48 dBm" in out
    assert LAMP not in out
    assert f'sensor = "{WHEEL}"' in out and "[[hamsters]]" in out

    code, out, _ = await hamsterbot("scan", "--timeout", "0.5", "--all")
    assert code == 0 and LAMP in out


async def test_doctor_passes_then_explains_each_bluetooth_problem_in_one_line(
    fake_bluez: FakeBluez, private_bus: PrivateBus, config: Path
) -> None:
    fake_bluez.add_device(WHEEL, name="Wahoo SPEED")
    token = {"HAMSTERBOT_TELEGRAM_TOKEN": "123456:not-a-real-token"}
    doctor = ("doctor", "--config", str(config), "--timeout", "0.5")

    code, out, err = await hamsterbot(*doctor, env=token)
    assert code == 0, out + err
    assert [line.split()[0] for line in out.splitlines()] == ["ok"] * 5
    assert "BlueZ 5.66" in out and f"{WHEEL} seen" in out
    assert "not-a-real-token" not in out + err

    fake_bluez.set_advertising(WHEEL, False)
    code, out, _ = await hamsterbot(*doctor, env=token)
    assert code == 1
    assert "FAIL  sensor Ursula:" in out and "not heard" in out

    fake_bluez.set_powered(False)
    code, out, _ = await hamsterbot(*doctor, env=token)
    assert code == 1
    (line,) = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert "powered off" in line

    await fake_bluez.stop()  # systemctl stop bluetooth
    code, out, _ = await hamsterbot(*doctor)
    assert code == 1
    failures = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failures) == 2  # Bluetooth, and no chat token
    assert "bluetoothd is not running" in failures[0]
    assert "chat" in failures[1]

    # bluetoothd running on a machine without an adapter: org.bluez owned, no Adapter1 object
    bare = MessageBus(bus_address=private_bus.address)
    await bare.connect()
    try:
        await bare.request_name("org.bluez")
        code, out, _ = await hamsterbot(*doctor, env=token)
    finally:
        bare.disconnect()
        await bare.wait_for_disconnect()
    assert code == 1
    (line,) = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert line.startswith("FAIL  bluetooth: no Bluetooth adapter found")
