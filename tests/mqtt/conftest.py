"""Fixtures for the MQTT tests: a real Mosquitto, a small recorded night, configs and the bot."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot import app
from bot import config as config_module
from sensors.capture import CaptureWriter
from sensors.csc import encode_csc_measurement
from storage.db import Database
from tests.mqtt.broker import Mosquitto

HOME = "hollyhock"
WHEEL = "Ursula"


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path / "broker")
    await mosquitto.start()
    try:
        yield mosquitto
    finally:
        await mosquitto.stop()


def make_night(count: int = 400, *, seed: int = 3) -> list[tuple[float, bytes]]:
    """``count`` notifications a second apart, two hours ago: running, resting, a little rocking."""
    rng = random.Random(seed)
    start = round(time.time() - 7200.0)
    counter = 2**32 - 300  # wraps past 2**32 on the way
    night = []
    for index in range(count):
        phase = (index // 60) % 3
        step = rng.choice([2, 3, 4]) if phase == 0 else rng.choice([0, 0, 1, -1])
        counter = max(counter + step, 0)
        night.append((start + index + 0.25, encode_csc_measurement(counter, index * 1024)))
    return night


def write_capture(path: Path, readings: list[tuple[float, bytes]]) -> Path:
    with CaptureWriter(path) as writer:
        for at, payload in readings:
            writer.write(at, payload)
    return path


def write_config(
    path: Path,
    broker: Mosquitto,
    *,
    sensor: str = f"mqtt:{HOME}/{WHEEL}",
    database: str = "bot.db",
    extra_hamster: str = "",
    mqtt_extra: str = "",
) -> Path:
    path.write_text(
        f"""
[bot]
database = "{path.parent / database}"
timezone = "UTC"
flush_seconds = 1
log_level = "DEBUG"

[mqtt]
url = "{broker.url}"
client_id = "bot-{path.stem}"
{mqtt_extra}

[gateway]
home = "{HOME}"

[[hamsters]]
name = "{WHEEL}"
wheel_diameter_cm = 20
sensor = "{sensor}"
{extra_hamster}
""",
        encoding="utf-8",
    )
    return path


async def minutes(database: Path) -> list[tuple[int, int, int]]:
    """Every stored minute bucket of every wheel: the whole truth of what was counted."""
    async with await Database.open(database) as db:
        rows = await db.fetchall(
            "SELECT minute, revolutions, estimated FROM wheel_minutes ORDER BY minute"
        )
    return [(int(m), int(r), int(e)) for m, r, e in rows]


async def replay_reference(tmp_path: Path, broker: Mosquitto, capture: Path) -> list:
    """What ``hamsterbot replay`` counts for the same capture (a local sensor's truth)."""
    from bot.cli import main

    config = write_config(
        tmp_path / "reference.toml", broker, sensor="simulated", database="reference.db"
    )
    code = await asyncio.to_thread(
        main, ["replay", "--config", str(config), "--wheel", WHEEL, str(capture)]
    )
    assert code == 0
    return await minutes(tmp_path / "reference.db")


async def wait_until(condition: Callable[[], object], seconds: float = 30.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110  (the state lives in other tasks and processes)
            await asyncio.sleep(0.02)


class RunningBot:
    """The bot's runtime with its wheel sources started (the MQTT feed among them)."""

    def __init__(self, config_path: Path) -> None:
        self.config = config_module.load(config_path)
        self.runtime: app.Runtime | None = None

    async def start(self) -> app.Runtime:
        self.runtime = await app.open_runtime(self.config)
        app.start_wheel_sources(self.runtime)
        return self.runtime

    def pipeline(self, name: str = WHEEL):  # type: ignore[no-untyped-def]
        assert self.runtime is not None
        return self.runtime.pipelines[name]

    def last_at(self, name: str = WHEEL) -> float | None:
        return self.pipeline(name).counter.state.last_at

    async def stop(self) -> None:
        if self.runtime is not None:
            await self.runtime.close()
            self.runtime = None


@pytest.fixture
async def bots() -> AsyncIterator[Callable[[Path], RunningBot]]:
    started: list[RunningBot] = []

    def make(path: Path) -> RunningBot:
        bot = RunningBot(path)
        started.append(bot)
        return bot

    try:
        yield make
    finally:
        for bot in started:
            await bot.stop()
