"""BlueZ's bad days, through the real WheelLink and real bleak against the fake BlueZ.

InProgress on Connect, a stale GATT cache, notifications delivered twice after a re-subscribe, a
sensor that goes quiet without dropping the link, and StartNotify rather than AcquireNotify.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from sensors.ble import LinkProblem, describe_error
from sensors.csc import encode_csc_measurement
from tests.ble.test_wheel_link import FAST, WHEEL, eventually, rig
from tests.fakes.bluez import CSC_MEASUREMENT, FakeBluez

IN_PROGRESS = "org.bluez.Error.InProgress"


async def test_connect_in_progress_many_times_backs_off_and_never_gives_up(
    fake_bluez: FakeBluez, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_bluez.add_device(WHEEL)
    fake_bluez.refuse_connect(WHEEL, times=6, error=IN_PROGRESS, message="In Progress")
    caplog.set_level(logging.DEBUG, logger="sensors.ble")
    async with rig(fake_bluez, tmp_path) as r:
        await r.subscribed()
        assert fake_bluez.device(WHEEL).connect_calls == 7
        assert r.link.stats.attempts == 7
        await r.turn(1)
        await r.turn(9)
        assert await r.total() == 9
    busy = [
        rec
        for rec in caplog.records
        if "still busy" in rec.getMessage() and rec.levelno >= logging.INFO
    ]
    assert len(busy) == 1 and busy[0].levelno == logging.INFO  # said once, not six times
    # Backed off: the delays grew (jittered doubling from backoff_initial up to backoff_max).
    waits = [
        float(rec.getMessage().rsplit(" in ", 1)[1].split()[0])
        for rec in caplog.records
        if "next attempt in" in rec.getMessage()
    ]
    assert len(waits) >= 6 and max(waits[:6]) > FAST.backoff_initial


def test_in_progress_and_a_missing_gatt_service_have_their_own_words() -> None:
    from bleak.exc import BleakDBusError

    assert describe_error(BleakDBusError(IN_PROGRESS, ["In Progress"])).kind == "busy"
    stale = describe_error(KeyError("org.bluez.GattService1"))
    assert stale == LinkProblem("stale-gatt", stale.message) and "GATT cache" in stale.message
    assert describe_error(KeyError("something else")).kind == "unexpected"


async def test_a_stale_gatt_cache_is_removed_and_the_sensor_rediscovered(
    fake_bluez: FakeBluez, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    device = fake_bluez.add_device(WHEEL, battery_level=80)
    fake_bluez.set_stale_gatt(WHEEL)  # connects resolve services, but no CSC among them
    caplog.set_level(logging.INFO, logger="sensors.ble")
    async with rig(fake_bluez, tmp_path) as r:
        await r.subscribed()
        assert device.remove_calls == 1  # removed through the adapter once...
        assert r.link.stats.cache_clears == 1
        assert device.connect_calls == 2  # ...and connected again after rediscovery
        await r.turn(1)
        await r.turn(12)
        assert await r.total() == 12
    assert "GATT cache" in caplog.text


async def test_notifications_delivered_twice_after_a_resubscribe_are_credited_once(
    fake_bluez: FakeBluez, tmp_path: Path
) -> None:
    fake_bluez.add_device(WHEEL)
    async with rig(fake_bluez, tmp_path) as r:
        await r.subscribed()
        await r.turn(1)
        await r.turn(20)
        fake_bluez.drop_link(WHEEL)
        r.turn_unheard(30, seconds=60)
        await r.subscribed(2)
        # BlueZ hands the cached value again on the new subscription, then every value comes
        # twice for a while (two subscriptions racing inside the stack).
        for _ in range(2):
            r.clock.now += 0.2
            assert fake_bluez.notify(WHEEL, r.char, r.encode(r.counter))
        for _ in range(10):
            r.counter += 1
            r.clock.now += 1
            for _copy in range(2):
                before = r.pipeline.notifications
                assert fake_bluez.notify(WHEEL, r.char, r.encode(r.counter))
                await eventually(lambda b=before: r.pipeline.notifications > b)
        assert r.pipeline.notifications == 1 + 20 + 2 + 20
        assert await r.total() == 20 + 30 + 10


async def test_subscribes_with_start_notify_not_acquire_notify(
    fake_bluez: FakeBluez, tmp_path: Path
) -> None:
    device = fake_bluez.add_device(WHEEL)
    async with rig(fake_bluez, tmp_path) as r:
        await r.subscribed()
        fake_bluez.drop_link(WHEEL)
        await r.subscribed(2)
        await r.turn(3)
        assert device.start_notify_calls == 2
        assert device.acquire_notify_calls == 0
        assert device.characteristic(CSC_MEASUREMENT).acquired is None


@pytest.mark.parametrize("battery", [True, False], ids=["battery-read", "connected-check"])
async def test_a_quiet_sensor_costs_no_reconnects_and_its_first_reading_credits_its_night(
    fake_bluez: FakeBluez, tmp_path: Path, battery: bool
) -> None:
    device = fake_bluez.add_device(WHEEL, battery_level=70 if battery else None)
    timings = replace(FAST, watchdog_seconds=0.2)
    async with rig(fake_bluez, tmp_path, timings=timings) as r:
        await r.subscribed()
        await r.turn(1)
        await r.turn(10)
        # The hamster sleeps: the sensor keeps the link but sends nothing for many watchdog
        # periods. Each period costs one check (and a re-subscribe in place), never a reconnect.
        await eventually(lambda: r.link.stats.quiet_checks >= 5)
        assert device.connect_calls == 1 and r.link.stats.watchdog_recycles == 0
        assert r.link.stats.sessions == 1 and device.connected
        assert device.start_notify_calls == 1 + r.link.stats.quiet_checks
        # It wakes having counted 400 turns on its own (say it missed the subscription meanwhile):
        # the first reading credits them.
        r.counter += 400
        r.clock.now += 3600
        before = r.pipeline.notifications
        assert fake_bluez.notify(WHEEL, r.char, encode_csc_measurement(r.counter))
        await eventually(lambda: r.pipeline.notifications > before)
        await r.turn(5)
        assert await r.total() == 10 + 400 + 5
        assert device.connect_calls == 1


async def test_a_quiet_link_that_fails_the_check_is_rebuilt(
    fake_bluez: FakeBluez, tmp_path: Path
) -> None:
    # BlueZ says the link is gone although no signal came (bleak missed it): reconnect.
    device = fake_bluez.add_device(WHEEL)
    timings = replace(FAST, watchdog_seconds=0.3)
    async with rig(fake_bluez, tmp_path, timings=timings) as r:
        await r.subscribed()
        await r.turn(1)
        await r.turn(4)
        # The link drops but the signal is lost: BlueZ's Connected is False, bleak never heard.
        fake_bluez.drop_link(WHEEL, signal=False)
        await eventually(lambda: r.link.stats.watchdog_recycles >= 1)
        await r.subscribed(2)
        await r.turn(4)
        assert await r.total() == 8
        assert device.connect_calls == 2


async def test_a_cadence_mode_sensor_counts_over_the_link_through_the_16_bit_wrap(
    fake_bluez: FakeBluez, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_bluez.add_device(WHEEL, name="BK467", csc_feature=0x0002)  # crank data only
    caplog.set_level(logging.INFO, logger="sensors.ble")
    async with rig(fake_bluez, tmp_path) as r:
        r.encode = lambda counter: encode_csc_measurement(None, crank_revolutions=counter)
        r.counter = 65_520
        await r.subscribed()
        await r.turn(1)
        await r.turn(40)  # 65,521 ... 65,535, 0 ... 24
        assert r.pipeline.malformed == 0
        assert await r.total() == 40
    assert "cadence mode" in caplog.text
