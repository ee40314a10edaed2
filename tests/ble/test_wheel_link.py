"""The real WheelLink with real bleak against the fake BlueZ, counting into a real store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import BleSettings, HamsterConfig
from bot.wheels import WheelPipeline
from sensors.ble import (
    LinkProblem,
    SeenSensor,
    WheelLink,
    backoff_delay,
    describe_error,
    hamster_snippet,
    scan,
)
from sensors.csc import encode_csc_measurement
from storage import queries
from storage.db import Database
from tests.fakes.bluez import (
    CSC_MEASUREMENT,
    FakeBluez,
    PrivateBus,
    count_bus_connections,
    normalize_uuid,
)

WHEEL = "C0:FF:EE:00:00:01"
OTHER = "C0:FF:EE:00:00:02"
LAMP = "C0:FF:EE:00:00:03"
FAST = BleSettings(
    scan_timeout=1.0,
    connect_timeout=1.0,
    backoff_initial=0.02,
    backoff_max=0.1,
    watchdog_seconds=30.0,
)
WITHIN = 10.0  # bound for every wait, so a broken link fails the test instead of hanging it


class Clock:
    """Receive times under the test's control: one second per revolution is a plausible pace."""

    def __init__(self) -> None:
        self.now = 1_764_400_000.0  # in the past: a reading from the future is implausible

    def __call__(self) -> float:
        return self.now


class Rig:
    """A pipeline over a real SQLite file, the link under test and the fake sensor's counter."""

    def __init__(
        self, fake: FakeBluez, db: Database, pipeline: WheelPipeline, link: WheelLink, clock: Clock
    ) -> None:
        self.fake = fake
        self.db = db
        self.pipeline = pipeline
        self.link = link
        self.clock = clock
        self.counter = 1000
        self.char = normalize_uuid(link.characteristic)
        self.encode: Callable[[int], bytes] = encode_csc_measurement
        self.events: list[tuple[str, float | None]] = []  # sensor events, read at the end

    async def subscribed(self, sessions: int = 1) -> None:
        await eventually(
            lambda: self.link.stats.sessions >= sessions and self.link.connected.is_set()
        )

    async def turn(self, revolutions: int, seconds_each: float = 1.0) -> None:
        """Turn the wheel while subscribed; every notification must arrive."""
        for _ in range(revolutions):
            self.counter += 1
            self.clock.now += seconds_each
            before = self.pipeline.notifications
            assert self.fake.notify(WHEEL, self.char, self.encode(self.counter))
            await eventually(lambda b=before: self.pipeline.notifications > b)

    def turn_unheard(self, revolutions: int, seconds: float) -> None:
        """The hamster runs while the link is down: nobody hears it."""
        self.counter += revolutions
        self.clock.now += seconds
        assert not self.fake.notify(WHEEL, self.char, self.encode(self.counter))

    async def total(self) -> int:
        await self.pipeline.flush()
        (wheel,) = [w for w in await queries.wheels(self.db) if w.name == "Ursula"]
        return (await queries.wheel_total(self.db, wheel.id, 0, 4e9)).revolutions


async def eventually(condition: Callable[[], bool], within: float = WITHIN) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110  (conditions span the link, bleak and the store)
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def rig(
    fake: FakeBluez,
    tmp_path: Path,
    *,
    sensor: str = WHEEL,
    timings: BleSettings = FAST,
    battery_interval: float = 3600.0,
    **hamster: object,
) -> AsyncIterator[Rig]:
    config = HamsterConfig(name="Ursula", circumference_m=math.pi * 0.2, sensor=sensor, **hamster)  # type: ignore[arg-type]
    db = await Database.open(tmp_path / "hamsterbot.db")
    try:
        pipeline = await WheelPipeline.open(db, config)
        clock = Clock()
        link = WheelLink(config, timings, pipeline, battery_interval=battery_interval, clock=clock)
        task = asyncio.create_task(link.run())
        r = Rig(fake, db, pipeline, link, clock)
        try:
            yield r
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await pipeline.flush()
            r.events = [
                (kind, value)
                for kind, value in await db.fetchall(
                    "SELECT kind, value FROM sensor_events ORDER BY id"
                )
            ]
    finally:
        await db.close()


# --- discovery and counting ---------------------------------------------------------------------


async def test_by_address_subscribes_and_counts_exactly(
    fake_bluez: FakeBluez, tmp_path: Path
) -> None:
    fake_bluez.add_device(OTHER, name="Neighbour")
    fake_bluez.add_device(WHEEL, name="Wahoo SPEED")
    async with rig(fake_bluez, tmp_path) as r:
        await r.subscribed()
        assert fake_bluez.device(WHEEL).connect_calls == 1
        assert fake_bluez.device(OTHER).connect_calls == 0
        await r.turn(1)  # the baseline
        await r.turn(25)
        assert await r.total() == 25
        assert r.pipeline.status.connected
    kinds = [kind for kind, _ in r.events]
    assert kinds[0] == "connected" and kinds[-1] == "disconnected"
    assert not fake_bluez.device(WHEEL).connected  # cancelling the link disconnects


async def test_auto_picks_the_csc_sensor_and_suggests_pinning_it(
    fake_bluez: FakeBluez, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_bluez.add_device(LAMP, name="Lamp", service_uuids=["180a"], csc=False)
    fake_bluez.add_device(WHEEL, name="Wahoo SPEED")
    caplog.set_level(logging.INFO, logger="sensors.ble")
    async with rig(fake_bluez, tmp_path, sensor="auto") as r:
        await r.subscribed()
        assert r.link.address == WHEEL
        await r.turn(5)
        assert await r.total() == 4
        # after a drop it goes back to the same wheel
        fake_bluez.drop_link(WHEEL)
        await r.subscribed(2)
        assert fake_bluez.device(LAMP).connect_calls == 0
    assert f'sensor = "{WHEEL}"' in caplog.text


async def test_two_wheels_side_by_side_count_apart(
    fake_bluez: FakeBluez, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_bluez.add_device(WHEEL, name="Ursula's")
    fake_bluez.add_device(OTHER, name="Hazel's", advertising=False)  # asleep at first
    async with rig(fake_bluez, tmp_path) as ursula:
        hazel_config = HamsterConfig(name="Hazel", circumference_m=0.5, sensor=OTHER)
        hazel = await WheelPipeline.open(ursula.db, hazel_config)
        link = WheelLink(hazel_config, FAST, hazel, clock=ursula.clock)
        task = asyncio.create_task(link.run())
        try:
            await ursula.subscribed()
            await ursula.turn(4)  # scanning for Hazel's sensor all the while
            fake_bluez.set_advertising(OTHER, True)
            await eventually(lambda: link.stats.sessions == 1)
            for value in range(10, 17):
                ursula.clock.now += 1
                assert fake_bluez.notify(OTHER, CSC_MEASUREMENT, encode_csc_measurement(value))
            await ursula.turn(2)
            await eventually(lambda: hazel.notifications == 7)
            assert "No discovery started" not in caplog.text
            assert hazel.credited == 6
            assert await ursula.total() == 5
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await hazel.flush()


@pytest.mark.parametrize(
    ("sensor", "left_behind", "connects"),
    [
        (WHEEL, (LAMP, WHEEL), 2),  # BlueZ's link to the wheel is reused: no new Connect
        ("auto", (LAMP, WHEEL), 2),
        ("auto", (LAMP,), 2),  # "auto" never adopts a connected non-CSC gadget
    ],
    ids=["address", "auto", "auto-ignores-gadget"],
)
async def test_a_link_left_behind_by_a_crash_is_adopted(
    fake_bluez: FakeBluez,
    tmp_path: Path,
    sensor: str,
    left_behind: tuple[str, ...],
    connects: int,
) -> None:
    from bleak import BleakClient, BleakScanner

    fake_bluez.add_device(
        LAMP,
        name="Keyboard",
        service_uuids=["180a"],
        csc=False,
        extra_characteristics=[("fff1", ["read"])],
    )
    fake_bluez.add_device(WHEEL, name="Wahoo SPEED")
    # the bot before a SIGKILL (or another program) left links; a connected sensor is silent
    leftovers = []
    for address in left_behind:
        device = await BleakScanner.find_device_by_address(address, timeout=2)
        client = BleakClient(device, timeout=2)  # type: ignore[arg-type]
        await client.connect()
        leftovers.append(client)
    try:
        async with rig(fake_bluez, tmp_path, sensor=sensor) as r:
            await r.subscribed()
            assert r.link.address == WHEEL
            assert fake_bluez.connect_calls == connects
            await r.turn(3)
            assert await r.total() == 2
    finally:
        for client in leftovers:
            await client.disconnect()


async def test_diy_counter_characteristic(fake_bluez: FakeBluez, tmp_path: Path) -> None:
    fake_bluez.add_device(
        WHEEL, name="HamsterHall", csc=False, extra_characteristics=[("fff1", ["notify", "read"])]
    )
    uuid = normalize_uuid("fff1")
    async with rig(
        fake_bluez, tmp_path, characteristic=uuid, counter_format="u16le", counter_bits=16
    ) as r:
        r.encode = lambda value: (value & 0xFFFF).to_bytes(2, "little")
        r.counter = 0xFFF0  # wraps past 16 bits on the way
        await r.subscribed()
        await r.turn(1)
        await r.turn(40)
        assert r.counter & 0xFFFF < 0xFFF0
        assert await r.total() == 40


# --- losing and regaining the link --------------------------------------------------------------


async def test_dropped_while_turning_credits_the_gap_exactly_once(
    fake_bluez: FakeBluez, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_bluez.add_device(WHEEL)
    caplog.set_level(logging.INFO, logger="sensors.ble")
    async with rig(fake_bluez, tmp_path) as r:
        await r.subscribed()
        await r.turn(1)
        await r.turn(10)
        fake_bluez.drop_link(WHEEL)
        await eventually(lambda: not r.pipeline.status.connected)
        # the wheel keeps turning while nobody listens (connected again or not yet)
        r.counter += 120
        r.clock.now += 60
        await r.subscribed(2)
        await r.turn(3)
        await r.turn(0)
        assert await r.total() == 10 + 120 + 3
        assert r.pipeline.credited == 133
        # the gap is flagged estimated, and nothing is credited twice by later repeats
        for _ in range(3):
            r.clock.now += 1
            assert fake_bluez.notify(WHEEL, CSC_MEASUREMENT, encode_csc_measurement(r.counter))
        await eventually(lambda: r.pipeline.notifications == 1 + 10 + 3 + 3)
        assert await r.total() == 133
    assert "dropped the link" in caplog.text
    assert caplog.text.count("dropped the link") == 1


async def test_refused_connects_are_retried_with_backoff(
    fake_bluez: FakeBluez, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_bluez.add_device(WHEEL)
    fake_bluez.refuse_connect(WHEEL, times=4)
    caplog.set_level(logging.INFO, logger="sensors.ble")
    async with rig(fake_bluez, tmp_path) as r:
        await r.subscribed()
        assert fake_bluez.device(WHEEL).connect_calls == 5
        await r.turn(3)
        assert await r.total() == 2
    # four identical failures, one warning
    assert caplog.text.count("Software caused connection abort") == 1


async def test_hanging_connect_times_out_and_is_cancelled(
    fake_bluez: FakeBluez, tmp_path: Path
) -> None:
    fake_bluez.add_device(WHEEL)
    fake_bluez.hang_connect(WHEEL)
    timings = replace(FAST, connect_timeout=1.0)
    async with rig(fake_bluez, tmp_path, timings=timings) as r:
        await eventually(lambda: fake_bluez.device(WHEEL).connect_calls >= 2)
        assert fake_bluez.device(WHEEL).disconnect_calls >= 1  # bleak cancelled the first one
        assert not r.link.connected.is_set()
        fake_bluez.hang_connect(WHEEL, False)
        await r.subscribed()
        await r.turn(2)
        assert await r.total() == 1


async def test_sleeping_sensor_is_found_when_it_wakes(
    fake_bluez: FakeBluez, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_bluez.add_device(WHEEL, advertising=False)
    caplog.set_level(logging.INFO, logger="sensors.ble")
    timings = replace(FAST, scan_timeout=0.2)
    async with rig(fake_bluez, tmp_path, timings=timings) as r:
        await eventually(lambda: r.link.stats.attempts >= 3)
        assert fake_bluez.connect_calls == 0  # never connects to what it has not seen
        assert caplog.text.count("not advertising") == 1
        fake_bluez.set_advertising(WHEEL, True)
        await r.subscribed()
        await r.turn(4)
        # it falls asleep again mid-night: the link drops, the wheel keeps its count
        fake_bluez.set_advertising(WHEEL, False)
        fake_bluez.drop_link(WHEEL)
        r.turn_unheard(30, 900)
        await eventually(lambda: r.link.stats.attempts >= 5)
        fake_bluez.set_advertising(WHEEL, True)
        await r.subscribed(2)
        await r.turn(1)
        assert await r.total() == 3 + 30 + 1


@pytest.mark.parametrize("battery1", [False, True], ids=["gatt-2a19", "bluez-battery1"])
async def test_battery_level_both_ways(
    fake_bluez: FakeBluez, tmp_path: Path, battery1: bool
) -> None:
    fake_bluez.add_device(WHEEL, battery_level=87, battery1=battery1)
    async with rig(fake_bluez, tmp_path, battery_interval=0.2) as r:
        await eventually(lambda: r.pipeline.status.battery == 87)
        fake_bluez.set_battery_level(WHEEL, 54)
        await eventually(lambda: r.pipeline.status.battery == 54)
    values = [value for kind, value in r.events if kind == "battery"]
    assert values[0] == 87 and values[-1] == 54


async def test_sensor_without_battery_is_fine(fake_bluez: FakeBluez, tmp_path: Path) -> None:
    fake_bluez.add_device(WHEEL)
    async with rig(fake_bluez, tmp_path, battery_interval=0.1) as r:
        await r.subscribed()
        await asyncio.sleep(0.3)  # a few battery rounds
        await r.turn(2)
        assert r.pipeline.status.battery is None
        assert r.link.stats.sessions == 1


async def test_an_unreadable_battery_does_not_cost_the_link(
    fake_bluez: FakeBluez, tmp_path: Path
) -> None:
    # a vendor 0x2A19 without "read": every battery round fails
    fake_bluez.add_device(WHEEL, extra_characteristics=[("2a19", ["notify"])])
    async with rig(fake_bluez, tmp_path, battery_interval=0.05) as r:
        await r.subscribed()
        await r.turn(3)
        await asyncio.sleep(0.3)
        await r.turn(3)
        assert r.link.stats.sessions == 1
        assert fake_bluez.connect_calls == 1
        assert await r.total() == 5


async def test_bluetoothd_crash_is_caught_by_the_watchdog(
    fake_bluez: FakeBluez, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_bluez.add_device(WHEEL)
    caplog.set_level(logging.INFO, logger="sensors.ble")
    timings = replace(FAST, watchdog_seconds=0.5)
    async with rig(fake_bluez, tmp_path, timings=timings) as r:
        await r.subscribed()
        await r.turn(1)
        await r.turn(5)
        await fake_bluez.kill()  # no signal at all: only silence tells
        await eventually(lambda: r.link.stats.watchdog_recycles >= 1)
        await eventually(lambda: "bluetoothd is not running" in caplog.text)
        r.turn_unheard(20, 30)
        await fake_bluez.restart()
        await r.subscribed(2)
        await r.turn(2)
        assert await r.total() == 5 + 20 + 2
    assert caplog.text.count("bluetoothd is not running") == 1


async def test_stopped_bluetooth_service_and_powered_off_adapter(
    fake_bluez: FakeBluez, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_bluez.add_device(WHEEL)
    caplog.set_level(logging.INFO, logger="sensors.ble")
    async with rig(fake_bluez, tmp_path) as r:
        await r.subscribed()
        await r.turn(3)
        fake_bluez.set_powered(False)
        await eventually(lambda: "powered off" in caplog.text)
        fake_bluez.set_powered(True)
        await r.subscribed(2)
        await fake_bluez.stop()  # systemctl stop bluetooth: links dropped, adapter removed
        await eventually(lambda: "no Bluetooth adapter found" in caplog.text)
        await fake_bluez.start()
        await r.subscribed(3)
        await r.turn(2)
        assert await r.total() == 4


async def test_many_drops_leak_no_dbus_connections_or_tasks(
    fake_bluez: FakeBluez, private_bus: PrivateBus, tmp_path: Path
) -> None:
    fake_bluez.add_device(WHEEL, battery_level=90, battery1=True)
    cycles = 25
    async with rig(fake_bluez, tmp_path) as r:
        await r.subscribed()
        await r.turn(1)
        connected_count = await count_bus_connections(private_bus.address)
        tasks_before = len(asyncio.all_tasks())
        for cycle in range(cycles):
            fake_bluez.drop_link(WHEEL)
            r.turn_unheard(7, 10)
            await r.subscribed(cycle + 2)
            await r.turn(1)
        assert await count_bus_connections(private_bus.address) == connected_count
        assert len(asyncio.all_tasks()) == tasks_before
        assert await r.total() == cycles * 8
        assert r.link.stats.drops == cycles
    # fake + bleak's shared manager, nothing left from any client
    assert await count_bus_connections(private_bus.address) == connected_count - 1


async def test_scan_lists_csc_sensors_or_everything(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL, name="Wahoo SPEED", rssi=-50)
    fake_bluez.add_device(OTHER, name="Garmin Speed", rssi=-70)
    fake_bluez.add_device(LAMP, name="Lamp", service_uuids=["180a"], csc=False)
    seen = await scan(0.4)
    assert [(s.address, s.name, s.rssi) for s in seen] == [
        (WHEEL, "Wahoo SPEED", -50),
        (OTHER, "Garmin Speed", -70),
    ]
    everything = await scan(0.4, all_devices=True)
    assert {s.address for s in everything} == {WHEEL, OTHER, LAMP}


# --- pure parts ---------------------------------------------------------------------------------


def test_backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() -> None:
    steps = [backoff_delay(n, 1.0, 60.0, 1.0) for n in range(9)]
    assert steps == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff_delay(3, 1.0, 60.0, 0.0) == 4.0
    assert backoff_delay(10_000, 1.0, 60.0, 0.5) == 45.0


def test_errors_become_one_clear_line() -> None:
    from bleak.exc import (
        BleakBluetoothNotAvailableError,
        BleakBluetoothNotAvailableReason,
        BleakDBusError,
        BleakDeviceNotFoundError,
    )

    def kind(err: BaseException) -> str:
        problem = describe_error(err)
        assert isinstance(problem, LinkProblem) and "\n" not in problem.message
        return problem.kind

    reason = BleakBluetoothNotAvailableReason
    assert kind(BleakBluetoothNotAvailableError("x", reason.POWERED_OFF)) == "powered-off"
    assert kind(BleakBluetoothNotAvailableError("x", reason.NO_BLUETOOTH)) == "no-adapter"
    assert kind(BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", [])) == "no-bluetoothd"
    assert kind(BleakDBusError("org.bluez.Error.Failed", ["abort"])) == "dbus"
    assert kind(BleakDeviceNotFoundError(WHEEL)) == "not-found"
    assert kind(TimeoutError()) == "timeout"
    assert kind(EOFError()) == "dbus-lost"
    assert kind(BrokenPipeError()) == "dbus-lost"
    assert kind(FileNotFoundError(2, "No such file")) == "no-dbus"
    assert kind(RuntimeError("boom\nmore")) == "unexpected"


def test_scan_snippet_is_a_valid_config(tmp_path: Path) -> None:
    from bot.config import load

    text = hamster_snippet(SeenSensor(WHEEL, "Wahoo SPEED", -50, (normalize_uuid(0x1816),)))
    path = tmp_path / "hamsterbot.toml"
    path.write_text(text + "\n")
    (hamster,) = load(path).hamsters
    assert hamster.sensor == WHEEL
    assert hamster.name == "Ursula"


def test_importing_the_link_does_not_import_bleak() -> None:
    code = "import sys, sensors.ble, bot.app, bot.cli; sys.exit('bleak' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
