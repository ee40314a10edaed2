"""The fake BlueZ, proven with plain bleak calls (no project code)."""

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakDBusError,
    BleakError,
    BleakGATTProtocolError,
)
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from tests.fakes.bluez import (
    BATTERY_LEVEL,
    CSC_FEATURE,
    CSC_MEASUREMENT,
    CSC_SERVICE,
    FakeBluez,
    PrivateBus,
    count_bus_connections,
)

WHEEL = "C0:FF:EE:00:00:01"
OTHER = "C0:FF:EE:00:00:02"
# Real payloads: flags 0x01 (wheel data), cumulative revolutions, last event time (1/1024 s)
PAYLOADS = [
    bytes.fromhex("010a0000000004"),
    bytes.fromhex("010b0000000008"),
    bytes.fromhex("010d000000000c"),
]
SCAN_TIMEOUT = 2.0


async def _connected_client(fake: FakeBluez, **kwargs: object) -> BleakClient:
    device = await BleakScanner.find_device_by_address(WHEEL, timeout=SCAN_TIMEOUT)
    assert device is not None
    client = BleakClient(device, timeout=SCAN_TIMEOUT, **kwargs)  # type: ignore[arg-type]
    await client.connect()
    return client


class _Collector:
    """Collects notification payloads; ``wait(n)`` returns once n have arrived."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self._changed = asyncio.Event()

    def __call__(self, _char: object, data: bytearray) -> None:
        self.payloads.append(bytes(data))
        self._changed.set()

    async def wait(self, count: int) -> list[bytes]:
        # bounded so a broken fake fails the test instead of hanging it
        async with asyncio.timeout(3):
            while len(self.payloads) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.payloads


async def _get_property(address: str, path: str, interface: str, name: str) -> object:
    bus = MessageBus(bus_address=address)
    await bus.connect()
    try:
        reply = await bus.call(
            Message(
                destination="org.bluez",
                path=path,
                interface="org.freedesktop.DBus.Properties",
                member="Get",
                signature="ss",
                body=[interface, name],
            )
        )
        assert reply is not None and reply.message_type == MessageType.METHOD_RETURN, reply
        return reply.body[0].value
    finally:
        bus.disconnect()
        await bus.wait_for_disconnect()


async def test_scan_finds_advertising_device_by_uuid_and_address(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL, name="Wheel")
    fake_bluez.add_device(OTHER, name="Lamp", service_uuids=["180a"], csc=False)

    by_uuid = await BleakScanner.discover(timeout=0.3, service_uuids=[CSC_SERVICE])
    assert [d.address for d in by_uuid] == [WHEEL]

    device = await BleakScanner.find_device_by_address(WHEEL, timeout=SCAN_TIMEOUT)
    assert device is not None
    assert device.name == "Wheel"


async def test_scan_does_not_find_sleeping_device(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL, advertising=False)
    assert await BleakScanner.find_device_by_address(WHEEL, timeout=0.3) is None

    fake_bluez.set_advertising(WHEEL, True)
    assert await BleakScanner.find_device_by_address(WHEEL, timeout=SCAN_TIMEOUT) is not None

    fake_bluez.set_advertising(WHEEL, False)
    assert await BleakScanner.find_device_by_address(WHEEL, timeout=0.3) is None


async def test_connect_read_feature_and_notifications_in_order(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL, csc_feature=0x0003)
    client = await _connected_client(fake_bluez)
    try:
        assert await client.read_gatt_char(CSC_FEATURE) == b"\x03\x00"
        received = _Collector()
        await client.start_notify(CSC_MEASUREMENT, received)
        assert fake_bluez.start_notify_calls == 1
        for payload in PAYLOADS:
            assert fake_bluez.notify(WHEEL, CSC_MEASUREMENT, payload)
        assert await received.wait(len(PAYLOADS)) == PAYLOADS
    finally:
        await client.disconnect()
    assert fake_bluez.connect_calls == 1
    assert fake_bluez.disconnect_calls == 1
    assert not fake_bluez.device(WHEEL).connected


async def test_notifications_through_acquire_notify(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL)
    client = await _connected_client(fake_bluez)
    try:
        received = _Collector()
        await client.start_notify(
            CSC_MEASUREMENT,
            received,
            bluez={"use_start_notify": False},
        )
        assert fake_bluez.device(WHEEL).characteristic(CSC_MEASUREMENT).acquired is not None
        for payload in PAYLOADS:
            assert fake_bluez.notify(WHEEL, CSC_MEASUREMENT, payload)
        assert await received.wait(len(PAYLOADS)) == PAYLOADS
        await client.stop_notify(CSC_MEASUREMENT)
    finally:
        await client.disconnect()


async def test_notify_without_subscriber_is_dropped(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL)
    assert not fake_bluez.notify(WHEEL, CSC_MEASUREMENT, PAYLOADS[0])
    client = await _connected_client(fake_bluez)
    try:
        assert not fake_bluez.notify(WHEEL, CSC_MEASUREMENT, PAYLOADS[0])
    finally:
        await client.disconnect()


async def test_battery_via_gatt_characteristic(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL, battery_level=87)
    client = await _connected_client(fake_bluez)
    try:
        assert await client.read_gatt_char(BATTERY_LEVEL) == bytes([87])
        fake_bluez.set_battery_level(WHEEL, 86)
        assert await client.read_gatt_char(BATTERY_LEVEL) == bytes([86])
    finally:
        await client.disconnect()


async def test_battery_via_battery1_hides_gatt_battery_service(
    fake_bluez: FakeBluez, private_bus: PrivateBus
) -> None:
    device = fake_bluez.add_device(WHEEL, battery_level=55, battery1=True)
    client = await _connected_client(fake_bluez)
    try:
        assert client.services.get_characteristic(BATTERY_LEVEL) is None
        percentage = await _get_property(
            private_bus.address, device.path, "org.bluez.Battery1", "Percentage"
        )
        assert percentage == 55
        fake_bluez.set_battery_level(WHEEL, 54)
        assert (
            await _get_property(
                private_bus.address, device.path, "org.bluez.Battery1", "Percentage"
            )
            == 54
        )
    finally:
        await client.disconnect()


async def test_drop_link_fires_disconnected_callback(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL)
    dropped = asyncio.Event()
    client = await _connected_client(fake_bluez, disconnected_callback=lambda _c: dropped.set())
    assert client.is_connected
    fake_bluez.drop_link(WHEEL)
    async with asyncio.timeout(3):
        await dropped.wait()
    assert not client.is_connected
    await client.disconnect()  # no-op, but must not raise

    # the sensor comes back: a new client connects again
    client = await _connected_client(fake_bluez)
    assert client.is_connected
    await client.disconnect()
    assert fake_bluez.connect_calls == 2


async def test_refused_connect_raises_dbus_error(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL)
    fake_bluez.refuse_connect(WHEEL, times=1, error="org.bluez.Error.Failed")
    device = await BleakScanner.find_device_by_address(WHEEL, timeout=SCAN_TIMEOUT)
    assert device is not None
    client = BleakClient(device, timeout=SCAN_TIMEOUT)
    with pytest.raises(BleakDBusError) as excinfo:
        await client.connect()
    assert excinfo.value.dbus_error == "org.bluez.Error.Failed"
    assert not client.is_connected

    await client.connect()  # only refused once
    assert client.is_connected
    await client.disconnect()
    assert fake_bluez.connect_calls == 2


async def test_hung_connect_times_out_and_is_cancelled(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL)
    fake_bluez.hang_connect(WHEEL)
    device = await BleakScanner.find_device_by_address(WHEEL, timeout=SCAN_TIMEOUT)
    assert device is not None
    client = BleakClient(device, timeout=0.3)
    with pytest.raises(TimeoutError):
        await client.connect()
    assert not client.is_connected
    assert fake_bluez.connect_calls == 1
    # bleak cancels the pending connection with Disconnect
    assert fake_bluez.disconnect_calls == 1
    assert fake_bluez.device(WHEEL).pending_connect is None


async def test_connect_to_sleeping_sensor_times_out(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL)
    device = await BleakScanner.find_device_by_address(WHEEL, timeout=SCAN_TIMEOUT)
    assert device is not None
    fake_bluez.set_advertising(WHEEL, False)
    with pytest.raises(TimeoutError):
        await BleakClient(device, timeout=0.3).connect()
    assert not fake_bluez.device(WHEEL).connected


async def test_powered_off_adapter_is_not_available(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL)
    dropped = asyncio.Event()
    await _connected_client(fake_bluez, disconnected_callback=lambda _c: dropped.set())
    fake_bluez.set_powered(False)
    async with asyncio.timeout(3):
        await dropped.wait()
    with pytest.raises(BleakBluetoothNotAvailableError):
        await BleakScanner.discover(timeout=0.1)
    fake_bluez.set_powered(True)
    # bleak learns about Powered from a signal, so the first scan may still see it off
    async with asyncio.timeout(3):
        while True:
            try:
                found = await BleakScanner.find_device_by_address(WHEEL, timeout=SCAN_TIMEOUT)
                break
            except BleakBluetoothNotAvailableError:
                await asyncio.sleep(0.01)
    assert found is not None


async def test_kill_while_connected_does_not_hang(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL)
    dropped: list[bool] = []
    client = await _connected_client(
        fake_bluez, disconnected_callback=lambda _c: dropped.append(True)
    )
    async with asyncio.timeout(5):
        await fake_bluez.kill()
        await asyncio.sleep(0.05)
        assert dropped == []  # a crashed bluetoothd sends nothing
        assert client.is_connected
        # bleak does not watch the org.bluez name, so it only learns from the next call
        with pytest.raises(BleakDBusError) as excinfo:
            await client.read_gatt_char(CSC_FEATURE)
        assert excinfo.value.dbus_error == "org.freedesktop.DBus.Error.ServiceUnknown"
        with pytest.raises(BleakDBusError):
            await client.disconnect()
    assert dropped == [True]
    assert not client.is_connected

    with pytest.raises(BleakError):
        await BleakScanner.discover(timeout=0.1)

    await fake_bluez.restart()
    client = await _connected_client(fake_bluez)
    assert await client.read_gatt_char(CSC_FEATURE) == b"\x01\x00"
    await client.disconnect()


async def test_graceful_kill_fires_disconnected_callback(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL)
    dropped = asyncio.Event()
    client = await _connected_client(fake_bluez, disconnected_callback=lambda _c: dropped.set())
    await fake_bluez.kill(graceful=True)
    async with asyncio.timeout(3):
        await dropped.wait()
    assert not client.is_connected
    await client.disconnect()


async def test_connect_cycles_do_not_leak_bus_connections(
    fake_bluez: FakeBluez, private_bus: PrivateBus
) -> None:
    fake_bluez.add_device(WHEEL)
    device = await BleakScanner.find_device_by_address(WHEEL, timeout=SCAN_TIMEOUT)
    assert device is not None
    baseline = await count_bus_connections(private_bus.address)
    for _ in range(20):
        async with BleakClient(device, timeout=SCAN_TIMEOUT) as client:
            await client.start_notify(CSC_MEASUREMENT, lambda _c, _d: None)
    assert await count_bus_connections(private_bus.address) == baseline
    assert fake_bluez.connect_calls == 20
    assert fake_bluez.start_notify_calls == 20


async def test_count_bus_connections_sees_a_new_connection(private_bus: PrivateBus) -> None:
    before = await count_bus_connections(private_bus.address)
    bus = MessageBus(bus_address=private_bus.address)
    await bus.connect()
    try:
        assert await count_bus_connections(private_bus.address) == before + 1
    finally:
        bus.disconnect()
        await bus.wait_for_disconnect()


async def test_kill_while_connect_is_pending_answers_the_connect(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL)
    fake_bluez.hang_connect(WHEEL)
    device = await BleakScanner.find_device_by_address(WHEEL, timeout=SCAN_TIMEOUT)
    assert device is not None
    connecting = asyncio.create_task(BleakClient(device, timeout=3).connect())
    await fake_bluez.wait_for(lambda: fake_bluez.connect_calls == 1)
    async with asyncio.timeout(3):
        await fake_bluez.kill()
        with pytest.raises(BleakDBusError) as excinfo:
            await connecting
    assert excinfo.value.dbus_error == "org.bluez.Error.Failed"


async def test_drop_then_disconnect_releases_the_client_bus(
    fake_bluez: FakeBluez, private_bus: PrivateBus
) -> None:
    fake_bluez.add_device(WHEEL)
    device = await BleakScanner.find_device_by_address(WHEEL, timeout=SCAN_TIMEOUT)
    assert device is not None
    baseline = await count_bus_connections(private_bus.address)
    dropped = asyncio.Event()
    client = BleakClient(
        device, timeout=SCAN_TIMEOUT, disconnected_callback=lambda _c: dropped.set()
    )
    await client.connect()
    fake_bluez.drop_link(WHEEL)
    async with asyncio.timeout(3):
        await dropped.wait()
    # bleak keeps the client's own D-Bus connection open after a drop...
    assert await count_bus_connections(private_bus.address) == baseline + 1
    # ...until disconnect() is called
    await client.disconnect()
    assert await count_bus_connections(private_bus.address) == baseline


async def test_gatt_permissions_and_extra_characteristics(fake_bluez: FakeBluez) -> None:
    control_point = "00002a55-0000-1000-8000-00805f9b34fb"
    device = fake_bluez.add_device(WHEEL, extra_characteristics=[(0x2A55, ["write", "indicate"])])
    client = await _connected_client(fake_bluez)
    try:
        with pytest.raises(BleakGATTProtocolError):
            await client.read_gatt_char(CSC_MEASUREMENT)  # notify only
        await client.write_gatt_char(control_point, b"\x01\x00\x00\x00\x00", response=True)
        assert device.characteristic(0x2A55).writes == [b"\x01\x00\x00\x00\x00"]
        handles = sorted(c.handle for c in client.services.characteristics.values())
        assert len(handles) == len(set(handles)) == 3
    finally:
        await client.disconnect()


async def test_pending_connect_completes_when_sensor_wakes(fake_bluez: FakeBluez) -> None:
    fake_bluez.add_device(WHEEL)
    device = await BleakScanner.find_device_by_address(WHEEL, timeout=SCAN_TIMEOUT)
    assert device is not None
    fake_bluez.set_advertising(WHEEL, False)
    client = BleakClient(device, timeout=3)
    connecting = asyncio.create_task(client.connect())
    await fake_bluez.wait_for(lambda: fake_bluez.device(WHEEL).pending_connect is not None)
    assert not connecting.done()
    fake_bluez.set_advertising(WHEEL, True)
    async with asyncio.timeout(3):
        await connecting
    try:
        assert client.is_connected
        assert await client.read_gatt_char(CSC_FEATURE) == b"\x01\x00"
    finally:
        await client.disconnect()
