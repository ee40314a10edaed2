"""pytest fixtures for tests that run the real bleak BlueZ backend against :mod:`tests.fakes.bluez`.

Import them into a conftest (``from tests.fakes.bluez_fixtures import fake_bluez, private_bus``).

- ``private_bus``: a private ``dbus-daemon``; ``DBUS_SYSTEM_BUS_ADDRESS`` points at it (bleak only
  talks to the system bus) and a fake ``bluetoothctl`` printing ``bluetoothctl: 5.66`` is first on
  PATH, because bleak probes the BlueZ version with it once per process before connecting.
  On teardown bleak's per-event-loop ``BlueZManager`` is dropped and its D-Bus connection closed, so
  no socket outlives the test's loop (that would be a ResourceWarning) and the next test starts
  with a fresh manager.
- ``fake_bluez``: a started :class:`~tests.fakes.bluez.FakeBluez` with adapter hci0 and no devices.
"""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.bluez import FakeBluez, PrivateBus, start_private_bus

FAKE_BLUEZ_VERSION = "5.66"


def _install_fake_bluetoothctl(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "bluetoothctl"
    script.write_text(f'#!/bin/sh\necho "bluetoothctl: {FAKE_BLUEZ_VERSION}"\n')
    script.chmod(0o755)


async def close_bleak_manager() -> None:
    """Drop bleak's BlueZ manager for the running loop and close its D-Bus connection."""
    # bleak keeps one manager per event loop in a private module dict and never closes it.
    from bleak.backends.bluezdbus import manager as bleak_manager

    instance = bleak_manager._global_instances.pop(asyncio.get_running_loop(), None)
    if instance is None:
        return
    bus = instance._bus
    watcher = instance._bus_watcher_task
    if bus is not None:
        bus.disconnect()
        with contextlib.suppress(Exception):
            await bus.wait_for_disconnect()
    if watcher is not None:
        with contextlib.suppress(Exception):
            await watcher


@pytest.fixture
async def private_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[PrivateBus]:
    bus = await start_private_bus(tmp_path)
    bin_dir = tmp_path / "bin"
    _install_fake_bluetoothctl(bin_dir)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ.get('PATH', '')}")
    try:
        yield bus
    finally:
        await close_bleak_manager()
        await bus.close()


@pytest.fixture
async def fake_bluez(private_bus: PrivateBus) -> AsyncIterator[FakeBluez]:
    fake = FakeBluez(private_bus.address)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
