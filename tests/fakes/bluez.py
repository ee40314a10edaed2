"""A fake BlueZ (``org.bluez``) on a private D-Bus daemon, for driving the real bleak backend.

Nothing in bleak is patched: bleak's BlueZ backend connects to ``DBUS_SYSTEM_BUS_ADDRESS``, which the
fixtures point at a private ``dbus-daemon`` where :class:`FakeBluez` owns ``org.bluez``.

Which bleak 3.1 calls each part serves
--------------------------------------
- ``/`` ``ObjectManager.GetManagedObjects`` (served by dbus-fast for everything exported) and the
  ``InterfacesAdded``/``InterfacesRemoved`` signals (emitted by dbus-fast on export/unexport):
  ``BlueZManager.async_init`` and its cache, used by every bleak call.
- ``Adapter1`` ``Powered``/``Roles``: ``manager.get_default_adapter`` (``set_powered(False)`` makes bleak
  raise ``BleakBluetoothNotAvailableError`` with reason ``POWERED_OFF``).
  ``SetDiscoveryFilter``/``StartDiscovery``/``StopDiscovery``: ``BleakScanner`` (active scanning).
  While discovering, every advertising device that matches the filter's ``UUIDs`` gets a
  ``PropertiesChanged(Device1, RSSI)`` each ``adv_interval``: that is what bleak's scanner turns into
  detection callbacks (``find_device_by_address``, ``find_device_by_filter``, ``discover``).
- ``Device1.Connect``/``Disconnect`` and ``Connected``/``ServicesResolved``: ``BleakClient.connect`` /
  ``disconnect`` and the ``disconnected_callback`` (bleak only reacts to ``Connected`` going False).
  The GATT tree and ``Battery1`` are exported on connect (before ``ServicesResolved`` turns True) and
  removed on disconnect, like BlueZ does for unbonded devices.
- ``GattCharacteristic1.ReadValue``/``WriteValue``/``StartNotify``/``StopNotify``/``AcquireNotify``:
  ``read_gatt_char``/``write_gatt_char``/``start_notify`` (``StartNotify`` by default; ``AcquireNotify``
  only with ``bluez={"use_start_notify": False}``)/``stop_notify``. ``GattDescriptor1.ReadValue``/
  ``WriteValue``: ``read_gatt_descriptor``/``write_gatt_descriptor``.
- ``Battery1.Percentage``: only visible through bleak's D-Bus cache (bleak has no battery API): the
  BLE code must read it itself (``Properties.Get`` on the device path) or use GATT 0x2A19.

Test controls (all on :class:`FakeBluez`; plain methods only queue D-Bus signals)
-------------------------------------------------------------------------------
``await start()`` / ``await stop()`` / ``await kill(graceful=False)`` / ``await restart()``;
``add_device(address, ...) -> FakeDevice``, ``device(address)``, ``remove_device(address)``;
``set_advertising(address, on)``, ``set_stale_gatt(address, on)``, ``notify(address, char_uuid, payload) -> bool``,
``drop_link(address)``, ``refuse_connect(address, times=1, error=..., message=...)``,
``hang_connect(address, on=True)``, ``set_powered(on)``, ``set_battery_level(address, level)``;
``await wait_for(condition, within=3.0)`` (re-checked after every client call, instead of sleeping);
counters ``connect_calls``, ``disconnect_calls``, ``start_notify_calls`` (also per ``FakeDevice``, which
also counts ``acquire_notify_calls`` and ``remove_calls``),
``FakeDevice.characteristic(uuid).writes`` for writes.

Realism choices
---------------
- ``battery1=True`` models BlueZ >= 5.48 with its battery plugin: the plugin claims the Battery Service,
  so 0x180F/0x2A19 is *not* in the GATT tree and only ``Battery1`` exists. ``battery1=False`` exports
  0x180F/0x2A19 (read + notify) in GATT. Code must cope with both.
- ``Connect`` on a device that is not advertising (sensor asleep) does not fail: like an LE connect it
  waits until the device advertises again, or until ``Disconnect`` cancels it; bleak's connect
  ``timeout`` ends the wait and bleak then calls ``Disconnect``.
- ``Disconnect`` on an unconnected device succeeds (bleak calls it after every failed connect).

Measured behaviour of bleak 3.1 against this fake (useful for ``sensors/ble.py``)
--------------------------------------------------------------------------------
Times were measured in the dev container, for orientation only (no test asserts them).

- Scan: ``find_device_by_address`` returns after the first advertisement (~0.1 s with the default
  ``adv_interval`` 0.05 s); for a device that is not advertising it returns None after its timeout.
  bleak filters ``service_uuids`` on its side too, so the filter works even without the adapter's.
- Connect ~20 ms; ``disconnect()`` ~10 ms and runs the ``disconnected_callback`` once.
- ``drop_link``: the ``disconnected_callback`` runs once within a few ms, ``is_connected`` is False.
  bleak keeps that client's own D-Bus connection open until ``client.disconnect()`` is called (which
  then sends nothing and only closes it): always call ``disconnect()`` after a drop, or leak.
- D-Bus connections: bleak's shared manager holds one per event loop, each connected ``BleakClient``
  one more. ``count_bus_connections`` sees both (the fake itself is one too).
- ``kill()`` (bluetoothd crashed, no signals): bleak does NOT watch ``NameOwnerChanged``, so no
  ``disconnected_callback`` fires and ``is_connected`` stays True. The next GATT call raises
  ``BleakDBusError`` with ``dbus_error == "org.freedesktop.DBus.Error.ServiceUnknown"``;
  ``client.disconnect()`` raises the same error but still runs the ``disconnected_callback`` and
  closes the client's D-Bus connection. Scans and connects (by address too) raise the same
  ``BleakDBusError`` -- not ``BleakDeviceNotFoundError`` nor ``BleakBluetoothNotAvailableError`` --
  until ``restart()``; afterwards the same process and even the same ``BleakClient`` reconnect.
  A Connect pending during ``kill()`` fails with ``org.bluez.Error.Failed``. Only a watchdog (no
  notification for N seconds) notices a crashed bluetoothd while nothing else is being called.
- ``kill(graceful=True)`` / ``stop()`` (``systemctl stop bluetooth``): links are dropped first, so the
  ``disconnected_callback`` fires as on a drop.
- The dbus-daemon itself dying (``PrivateBus.close()``): bleak's manager notices, logs a warning and
  runs every ``disconnected_callback`` within a few ms; ``disconnect()`` afterwards does not raise.
- ``set_powered(False)``: links drop (callback fires) and scans raise
  ``BleakBluetoothNotAvailableError`` (reason ``POWERED_OFF``). After ``set_powered(True)`` bleak only
  sees the adapter on once the signal is processed, so the very next scan may still raise that.
- A refused connect raises ``BleakDBusError`` whose ``dbus_error`` is the error given (default
  ``org.bluez.Error.Failed`` / "Software caused connection abort"); bleak does not retry except for
  ``org.bluez.Error.Failed`` with text ``le-connection-abort-by-local``.
- A hung connect (``hang_connect`` or a sleeping sensor) raises ``TimeoutError`` after the client's
  ``timeout``, and bleak then calls ``Disconnect`` (counted in ``disconnect_calls``) to cancel it.
- ``read_gatt_char`` on a characteristic without "read" raises ``BleakGATTProtocolError``.
- bleak probes ``bluetoothctl --version`` once per process before the first connect; without it on
  PATH it logs a warning and assumes BlueZ >= 5.55 (the fixture puts a fake one first on PATH).
- A test that ends with a client still connected gets "Future exception was never retrieved
  (EOFError)" noise when the daemon stops: disconnect clients in ``finally``.
"""

import asyncio
import contextlib
import logging
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import (
    DBusBool,
    DBusByte,
    DBusBytes,
    DBusDict,
    DBusInt16,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
    DBusUInt16,
)
from dbus_fast.constants import PropertyAccess
from dbus_fast.errors import DBusError
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

logger = logging.getLogger(__name__)

BLUEZ_SERVICE = "org.bluez"
ADAPTER_PATH = "/org/bluez/hci0"


def uuid16(short: int) -> str:
    """The full 128-bit form of a 16-bit Bluetooth SIG UUID, as BlueZ spells it."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


def normalize_uuid(uuid: str | int) -> str:
    """Accept 0x2A5B, "2a5b", "0x2A5B" or a full UUID; return the lower-case 128-bit form."""
    if isinstance(uuid, int):
        return uuid16(uuid)
    text = uuid.lower().removeprefix("0x")
    if len(text) <= 8:
        return f"{int(text, 16):08x}-0000-1000-8000-00805f9b34fb"
    return text


CSC_SERVICE = uuid16(0x1816)
CSC_MEASUREMENT = uuid16(0x2A5B)
CSC_FEATURE = uuid16(0x2A5C)
BATTERY_SERVICE = uuid16(0x180F)
BATTERY_LEVEL = uuid16(0x2A19)
CCCD = uuid16(0x2902)
EXTRA_SERVICE = uuid16(0xFFF0)

DBusStrList = Annotated[list[str], DBusSignature("as")]
DBusPathList = Annotated[list[str], DBusSignature("ao")]
DBusManufacturerData = Annotated[dict[int, Variant], DBusSignature("a{qv}")]
DBusFdAndMtu = Annotated[list[Any], DBusSignature("hq")]

_ERR_FAILED = "org.bluez.Error.Failed"
_ERR_NOT_READY = "org.bluez.Error.NotReady"
_ERR_NOT_PERMITTED = "org.bluez.Error.NotPermitted"
_ERR_NOT_SUPPORTED = "org.bluez.Error.NotSupported"
_ERR_IN_PROGRESS = "org.bluez.Error.InProgress"

_DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""

# AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer than that.
_MAX_SOCKET_PATH = 100


# ---------------------------------------------------------------------------------------------
# The private bus


@dataclass
class PrivateBus:
    """A running private ``dbus-daemon``; ``address`` is a D-Bus address string."""

    address: str
    process: subprocess.Popen[bytes]
    socket_dir: Path
    owns_socket_dir: bool

    async def close(self) -> None:
        """Terminate the daemon and reap it (idempotent)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.owns_socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)


def _spawn_dbus_daemon(tmp_path: Path) -> PrivateBus:
    daemon = shutil.which("dbus-daemon") or "/usr/bin/dbus-daemon"
    if not Path(daemon).exists():
        # deliberately not a skip: a missing daemon must not silently hide the BLE tests
        raise RuntimeError("dbus-daemon not found: install Debian's 'dbus' package")
    socket_dir = Path(tmp_path)
    owns_socket_dir = False
    if len(str(socket_dir / "bus")) > _MAX_SOCKET_PATH:
        socket_dir = Path(tempfile.mkdtemp(prefix="hb-dbus-"))
        owns_socket_dir = True
    config = Path(tmp_path) / "dbus-private.conf"
    config.write_text(_DBUS_CONFIG.format(socket=socket_dir / "bus"))
    # the daemon complains harmlessly (fd limit) on stderr; keep it out of test output
    with open(Path(tmp_path) / "dbus-daemon.log", "wb") as log:
        process = subprocess.Popen(
            [daemon, f"--config-file={config}", "--nofork", "--nopidfile", "--print-address"],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            stderr=log,
        )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        code = process.wait()
        process.stdout.close()
        raise RuntimeError(f"dbus-daemon exited with {code} before printing its address")
    return PrivateBus(line.decode().strip(), process, socket_dir, owns_socket_dir)


async def start_private_bus(tmp_path: Path) -> PrivateBus:
    """Start a ``dbus-daemon`` that allows everything, listening on a unix socket under tmp_path."""
    return await asyncio.to_thread(_spawn_dbus_daemon, tmp_path)


async def count_bus_connections(address: str) -> int:
    """Unique connection names on the bus, not counting the connection used to ask."""
    bus = MessageBus(bus_address=address)
    await bus.connect()
    try:
        reply = await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="ListNames",
            )
        )
        assert reply is not None and reply.message_type == MessageType.METHOD_RETURN, reply
        unique = [name for name in reply.body[0] if name.startswith(":")]
        return len(unique) - 1
    finally:
        bus.disconnect()
        await bus.wait_for_disconnect()


# ---------------------------------------------------------------------------------------------
# D-Bus interfaces (thin: all state and decisions live in FakeBluez / FakeDevice)


class _Adapter(ServiceInterface):
    def __init__(self, fake: "FakeBluez") -> None:
        super().__init__("org.bluez.Adapter1")
        self._fake = fake

    @dbus_method()
    def SetDiscoveryFilter(self, properties: DBusDict) -> None:
        self._fake._set_discovery_filter(properties)

    @dbus_method()
    def StartDiscovery(self) -> None:
        self._fake._start_discovery()

    @dbus_method()
    def StopDiscovery(self) -> None:
        self._fake._stop_discovery()

    @dbus_method()
    def RemoveDevice(self, device: DBusObjectPath) -> None:
        self._fake._remove_device_by_path(device)

    @dbus_method()
    def GetDiscoveryFilters(self) -> DBusStrList:
        return ["UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData", "Discoverable"]

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return self._fake.adapter_address

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> DBusStr:
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> DBusStr:
        return "hamsterbot-fake"

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> DBusStr:
        return "hamsterbot-fake"

    @dbus_property()
    def Powered(self) -> DBusBool:
        return self._fake.powered

    @Powered.setter
    def Powered(self, value: DBusBool) -> None:
        self._fake.set_powered(value)

    @dbus_property(access=PropertyAccess.READ)
    def Discovering(self) -> DBusBool:
        return self._fake.discovering

    @dbus_property(access=PropertyAccess.READ)
    def Roles(self) -> DBusStrList:
        return ["central", "peripheral"]

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> DBusStrList:
        return []


class _Device(ServiceInterface):
    def __init__(self, fake: "FakeBluez", device: "FakeDevice") -> None:
        super().__init__("org.bluez.Device1")
        self._fake = fake
        self._device = device

    @dbus_method()
    async def Connect(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._fake._inflight_connects.add(task)
        try:
            await self._fake._connect(self._device)
        finally:
            self._fake._inflight_connects.discard(task)

    @dbus_method()
    def Disconnect(self) -> None:
        self._fake._disconnect(self._device)

    @dbus_method()
    def Pair(self) -> None:
        self._device.paired = True
        self.emit_properties_changed({"Paired": True, "Bonded": True})

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return self._device.address

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> DBusStr:
        return "random"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> DBusStr:
        return self._device.name

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> DBusStr:
        return self._device.name

    @dbus_property(access=PropertyAccess.READ)
    def Adapter(self) -> DBusObjectPath:
        return ADAPTER_PATH

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> DBusStrList:
        return list(self._device.service_uuids)

    @dbus_property(access=PropertyAccess.READ)
    def Paired(self) -> DBusBool:
        return self._device.paired

    @dbus_property(access=PropertyAccess.READ)
    def Bonded(self) -> DBusBool:
        return self._device.paired

    @dbus_property()
    def Trusted(self) -> DBusBool:
        return self._device.trusted

    @Trusted.setter
    def Trusted(self, value: DBusBool) -> None:
        self._device.trusted = value

    @dbus_property(access=PropertyAccess.READ)
    def Blocked(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def LegacyPairing(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Connected(self) -> DBusBool:
        return self._device.connected

    @dbus_property(access=PropertyAccess.READ)
    def ServicesResolved(self) -> DBusBool:
        return self._device.services_resolved

    @dbus_property(access=PropertyAccess.READ)
    def RSSI(self) -> DBusInt16:
        return self._device.rssi

    @dbus_property(access=PropertyAccess.READ)
    def ManufacturerData(self) -> DBusManufacturerData:
        return {k: Variant("ay", v) for k, v in self._device.manufacturer_data.items()}

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> DBusDict:
        return {}


class _Battery(ServiceInterface):
    def __init__(self, device: "FakeDevice") -> None:
        super().__init__("org.bluez.Battery1")
        self._device = device

    @dbus_property(access=PropertyAccess.READ)
    def Percentage(self) -> DBusByte:
        return self._device.battery_level or 0

    @dbus_property(access=PropertyAccess.READ)
    def Source(self) -> DBusStr:
        return "GATT Battery Service"


class _GattService(ServiceInterface):
    def __init__(self, uuid: str, device_path: str) -> None:
        super().__init__("org.bluez.GattService1")
        self.uuid = uuid
        self.device_path = device_path

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Device(self) -> DBusObjectPath:
        return self.device_path

    @dbus_property(access=PropertyAccess.READ)
    def Includes(self) -> DBusPathList:
        return []


class _GattCharacteristic(ServiceInterface):
    def __init__(self, fake: "FakeBluez", char: "FakeCharacteristic", service_path: str) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._fake = fake
        self._char = char
        self._service_path = service_path

    @dbus_method()
    def ReadValue(self, options: DBusDict) -> DBusBytes:
        return self._fake._read_char(self._char)

    @dbus_method()
    def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        self._fake._write_char(self._char, bytes(value))

    @dbus_method()
    def StartNotify(self) -> None:
        self._fake._start_notify(self._char)

    @dbus_method()
    def StopNotify(self) -> None:
        self._fake._stop_notify(self._char)

    @dbus_method()
    def AcquireNotify(self, options: DBusDict) -> DBusFdAndMtu:
        return self._fake._acquire_notify(self._char)

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._char.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> DBusObjectPath:
        return self._service_path

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self._char.value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> DBusBool:
        return self._char.notifying

    @dbus_property(access=PropertyAccess.READ)
    def NotifyAcquired(self) -> DBusBool:
        return self._char.acquired is not None

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return list(self._char.flags)

    @dbus_property(access=PropertyAccess.READ)
    def MTU(self) -> DBusUInt16:
        return self._fake.mtu


class _GattDescriptor(ServiceInterface):
    def __init__(self, fake: "FakeBluez", char: "FakeCharacteristic", char_path: str) -> None:
        super().__init__("org.bluez.GattDescriptor1")
        self._fake = fake
        self._char = char
        self._char_path = char_path

    @dbus_method()
    def ReadValue(self, options: DBusDict) -> DBusBytes:
        self._fake._require_link(self._char.device)
        return b"\x01\x00" if self._char.notifying else b"\x00\x00"

    @dbus_method()
    def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        # BlueZ refuses CCCD writes over D-Bus: notifications go through StartNotify.
        raise DBusError(_ERR_NOT_PERMITTED, "Write not permitted")

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return CCCD

    @dbus_property(access=PropertyAccess.READ)
    def Characteristic(self) -> DBusObjectPath:
        return self._char_path

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return b""

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return ["read", "write"]


# ---------------------------------------------------------------------------------------------
# Test-facing state


@dataclass
class FakeCharacteristic:
    """One GATT characteristic of a fake device; ``value`` is what ReadValue answers."""

    device: "FakeDevice"
    uuid: str
    flags: tuple[str, ...]
    value: bytes = b""
    handle: int = 0
    path: str = ""
    notifying: bool = False
    writes: list[bytes] = field(default_factory=list)
    # (our end, the end handed to the client) of an AcquireNotify socketpair
    acquired: tuple[socket.socket, socket.socket | None] | None = None
    interface: _GattCharacteristic | None = None

    @property
    def can_notify(self) -> bool:
        return "notify" in self.flags or "indicate" in self.flags


@dataclass
class FakeDevice:
    """State of one fake sensor. Counters count D-Bus calls made by clients."""

    address: str
    name: str
    rssi: int
    service_uuids: list[str]
    battery_level: int | None
    battery1: bool
    advertising: bool = True
    connected: bool = False
    services_resolved: bool = False
    paired: bool = False
    trusted: bool = False
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    gatt: list[tuple[str, list[FakeCharacteristic]]] = field(default_factory=list)
    connect_calls: int = 0
    disconnect_calls: int = 0
    start_notify_calls: int = 0  # StartNotify and AcquireNotify
    acquire_notify_calls: int = 0
    remove_calls: int = 0  # Adapter1.RemoveDevice of this device
    stale_gatt: bool = False  # connects resolve services without CSC until RemoveDevice
    forgotten: bool = False  # removed by RemoveDevice: re-appears on its next advertisement
    refuse_remaining: int = 0
    refuse_error: str = _ERR_FAILED
    refuse_message: str = "Software caused connection abort"
    hang: bool = False
    pending_connect: "asyncio.Future[None] | None" = None
    interface: _Device | None = None
    battery_interface: _Battery | None = None
    gatt_paths: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{ADAPTER_PATH}/dev_{self.address.upper().replace(':', '_')}"

    def characteristic(self, uuid: str | int) -> FakeCharacteristic:
        wanted = normalize_uuid(uuid)
        for _service_uuid, chars in self.gatt:
            for char in chars:
                if char.uuid == wanted:
                    return char
        raise KeyError(f"{self.address} has no characteristic {wanted}")


class FakeBluez:
    """A fake bluetoothd with one adapter (``/org/bluez/hci0``) on the bus at ``bus_address``.

    Controls are plain methods (they only queue D-Bus signals) except ``start``/``stop``/``kill``/
    ``restart``, which are coroutines. Counters: ``connect_calls``, ``disconnect_calls``,
    ``start_notify_calls`` (sums over devices; each :class:`FakeDevice` has its own too).
    """

    def __init__(
        self,
        bus_address: str,
        *,
        adapter_address: str = "00:1A:7D:DA:71:13",
        adv_interval: float = 0.05,
        mtu: int = 23,
    ) -> None:
        self.bus_address = bus_address
        self.adapter_address = adapter_address
        self.adv_interval = adv_interval
        self.mtu = mtu
        self.powered = True
        self.discovering = False
        self.discovery_uuids: set[str] = set()
        self.devices: dict[str, FakeDevice] = {}
        self._bus: MessageBus | None = None
        self._adapter = _Adapter(self)
        self._advertiser: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._inflight_connects: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._bus is not None

    async def start(self) -> None:
        """Connect to the bus, own ``org.bluez`` and export the adapter and every added device."""
        if self._bus is not None:
            return
        bus = MessageBus(bus_address=self.bus_address, negotiate_unix_fd=True)
        await bus.connect()
        self._bus = bus
        bus.export(ADAPTER_PATH, self._adapter)
        for device in self.devices.values():
            self._export_device(device)
        await bus.request_name(BLUEZ_SERVICE)

    async def stop(self) -> None:
        """Drop every link, then leave the bus (like ``systemctl stop bluetooth``)."""
        await self.kill(graceful=True)

    async def kill(self, *, graceful: bool = False) -> None:
        """bluetoothd gone: release ``org.bluez`` and disconnect from the bus.

        ``graceful=False`` is a crash: clients get no signal at all. ``graceful=True`` first drops
        every link (``Connected`` False) and removes every object (``InterfacesRemoved``).
        """
        bus = self._bus
        if bus is None:
            return
        # a bus that died under us (daemon gone) can neither send nor release anything
        alive = bus.connected
        for device in self.devices.values():
            self._fail_pending_connect(device, "Operation was cancelled")
        if self._inflight_connects and alive:
            # let the cancelled Connect calls send their error replies before the bus goes away
            await asyncio.wait(self._inflight_connects)
        for device in self.devices.values():
            if device.connected:
                self._end_link(device, emit=graceful and alive)
        self._stop_discovery_state(emit=graceful and alive)
        logger.debug("fake bluetoothd killed (graceful=%s, bus alive=%s)", graceful, alive)
        if graceful and alive:
            for device in self.devices.values():
                self._unexport_device(device)
            bus.unexport(ADAPTER_PATH)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._bus = None
        if alive:
            with contextlib.suppress(Exception):
                await bus.release_name(BLUEZ_SERVICE)
        bus.disconnect()
        with contextlib.suppress(Exception):
            # replays the error that killed the bus, if it died on its own
            await bus.wait_for_disconnect()
        # _finalize unexported everything without signals; forget interface bookkeeping
        for device in self.devices.values():
            self._unexport_gatt(device)
            device.interface = None

    async def restart(self) -> None:
        """Come back after :meth:`kill`: adapter powered, devices known but unconnected."""
        await self.kill()
        self.powered = True
        await self.start()

    # -- devices ----------------------------------------------------------------------------

    def add_device(
        self,
        address: str,
        *,
        name: str = "Wheel",
        rssi: int = -60,
        service_uuids: Iterable[str | int] | None = None,
        csc: bool = True,
        csc_feature: int = 0x0001,
        battery_level: int | None = None,
        battery1: bool = False,
        extra_characteristics: Iterable[tuple[str | int, Iterable[str]]] = (),
        advertising: bool = True,
        manufacturer_data: dict[int, bytes] | None = None,
    ) -> FakeDevice:
        """Add a sensor. ``service_uuids`` are the advertised UUIDs (default: CSC when ``csc``).

        GATT: CSC service (0x2A5B notify + CCCD, 0x2A5C read = ``csc_feature`` little-endian) when
        ``csc``; Battery Service 0x180F/0x2A19 (read, notify) when ``battery_level`` is set and not
        ``battery1``; ``Battery1`` on the device instead when ``battery1``. ``extra_characteristics``
        (uuid, flags) go into a vendor service 0xFFF0.
        """
        address = address.upper()
        if address in self.devices:
            raise ValueError(f"device {address} already added")
        if service_uuids is None:
            service_uuids = [CSC_SERVICE] if csc else []
        device = FakeDevice(
            address=address,
            name=name,
            rssi=rssi,
            service_uuids=[normalize_uuid(u) for u in service_uuids],
            battery_level=battery_level,
            battery1=battery1,
            advertising=advertising,
            manufacturer_data=dict(manufacturer_data or {}),
        )
        if csc:
            device.gatt.append(
                (
                    CSC_SERVICE,
                    [
                        FakeCharacteristic(device, CSC_MEASUREMENT, ("notify",)),
                        FakeCharacteristic(
                            device, CSC_FEATURE, ("read",), csc_feature.to_bytes(2, "little")
                        ),
                    ],
                )
            )
        if battery_level is not None and not battery1:
            device.gatt.append(
                (
                    BATTERY_SERVICE,
                    [
                        FakeCharacteristic(
                            device, BATTERY_LEVEL, ("read", "notify"), bytes([battery_level])
                        )
                    ],
                )
            )
        extras = [
            FakeCharacteristic(device, normalize_uuid(uuid), tuple(flags))
            for uuid, flags in extra_characteristics
        ]
        if extras:
            device.gatt.append((EXTRA_SERVICE, extras))
        self._assign_handles(device)
        self.devices[address] = device
        if self._bus is not None:
            self._export_device(device)
        return device

    def device(self, address: str) -> FakeDevice:
        return self.devices[address.upper()]

    def set_stale_gatt(self, address: str, on: bool = True) -> None:
        """BlueZ's GATT cache of the device is stale: connects resolve services without the CSC
        service (``ServicesResolved`` still turns True), until a client removes the device with
        ``Adapter1.RemoveDevice`` (which drops the cache) and it is discovered again."""
        self.device(address).stale_gatt = on

    def remove_device(self, address: str) -> None:
        """Forget a device (BlueZ's temporary-device expiry): ``InterfacesRemoved`` for it."""
        device = self.devices.pop(address.upper())
        self._fail_pending_connect(device, "Operation was cancelled")
        if device.connected:
            self._end_link(device)
        self._unexport_device(device)

    def set_advertising(self, address: str, on: bool) -> None:
        """A device is only seen by discovery while advertising; ``False`` = sensor asleep."""
        device = self.device(address)
        device.advertising = on
        pending = device.pending_connect
        if on and pending is not None and not pending.done() and not device.hang:
            pending.set_result(None)

    def set_powered(self, on: bool) -> None:
        """Adapter ``Powered``; powering off drops every link and stops discovery."""
        if on == self.powered:
            return
        self.powered = on
        # Powered goes first so a client woken by the drops already sees the adapter off
        self._adapter.emit_properties_changed({"Powered": on})
        if not on:
            for device in self.devices.values():
                self._fail_pending_connect(device, "Operation was cancelled")
                if device.connected:
                    self._end_link(device)
            self._stop_discovery_state(emit=True)

    def set_battery_level(self, address: str, level: int) -> None:
        """Change the battery level; emitted as ``Battery1.Percentage`` or a 0x2A19 notification."""
        device = self.device(address)
        device.battery_level = level
        if device.battery_interface is not None:
            device.battery_interface.emit_properties_changed({"Percentage": level})
        if not device.battery1 and any(s == BATTERY_SERVICE for s, _ in device.gatt):
            char = device.characteristic(BATTERY_LEVEL)
            char.value = bytes([level])
            if device.connected:
                self.notify(address, BATTERY_LEVEL, bytes([level]))

    def notify(self, address: str, char_uuid: str | int, payload: bytes) -> bool:
        """Send a notification; returns False when nobody subscribed (it is dropped, like radio).

        Goes to the AcquireNotify socket if the client acquired it, else a ``PropertiesChanged``
        ``Value`` on a characteristic with a StartNotify session.
        """
        device = self.device(address)
        char = device.characteristic(char_uuid)
        if not device.connected:
            return False
        if char.acquired is not None:
            try:
                char.acquired[0].send(payload)
            except OSError:
                self._release_acquired(char)
                return False
            return True
        if not char.notifying or char.interface is None:
            return False
        char.value = bytes(payload)
        char.interface.emit_properties_changed({"Value": char.value})
        return True

    def drop_link(self, address: str, *, signal: bool = True) -> None:
        """The sensor went out of range: ``ServicesResolved`` and ``Connected`` turn False.

        ``signal=False``: the ``PropertiesChanged`` for it never reaches the client (a lost
        signal): ``Connected`` reads False, but bleak's ``disconnected_callback`` does not run.
        """
        device = self.device(address)
        if device.connected:
            self._end_link(device, emit=signal)
            if not signal:
                self._unexport_gatt(device)

    def refuse_connect(
        self,
        address: str,
        times: int = 1,
        error: str = _ERR_FAILED,
        message: str = "Software caused connection abort",
    ) -> None:
        """The next ``times`` Connect calls fail with D-Bus error ``error`` / ``message``."""
        device = self.device(address)
        device.refuse_remaining = times
        device.refuse_error = error
        device.refuse_message = message

    def hang_connect(self, address: str, on: bool = True) -> None:
        """Connect never answers until Disconnect (or ``hang_connect(..., False)`` lets it finish)."""
        device = self.device(address)
        device.hang = on
        pending = device.pending_connect
        if not on and pending is not None and not pending.done() and device.advertising:
            pending.set_result(None)

    async def wait_for(self, condition: Callable[[], bool], within: float = 3.0) -> None:
        """Wait until ``condition()`` holds; it is re-checked after every client call and control.

        Raises TimeoutError after ``within`` seconds so a broken client fails instead of hanging.
        """
        async with asyncio.timeout(within):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    def _touch(self) -> None:
        self._changed.set()

    @property
    def connect_calls(self) -> int:
        return sum(d.connect_calls for d in self.devices.values())

    @property
    def disconnect_calls(self) -> int:
        return sum(d.disconnect_calls for d in self.devices.values())

    @property
    def start_notify_calls(self) -> int:
        return sum(d.start_notify_calls for d in self.devices.values())

    # -- internals: export ------------------------------------------------------------------

    @staticmethod
    def _assign_handles(device: FakeDevice) -> None:
        # service, then per characteristic: declaration (names the object), value, CCCD
        handle = 1
        for _uuid, chars in device.gatt:
            handle += 1
            for char in chars:
                char.handle = handle
                handle += 3 if char.can_notify else 2

    def _export_device(self, device: FakeDevice) -> None:
        assert self._bus is not None
        device.interface = _Device(self, device)
        self._bus.export(device.path, device.interface)

    def _unexport_device(self, device: FakeDevice) -> None:
        self._unexport_gatt(device)
        if self._bus is not None and device.interface is not None:
            self._bus.unexport(device.path)
        device.interface = None

    def _export_gatt(self, device: FakeDevice) -> None:
        bus = self._bus
        assert bus is not None
        for service_uuid, chars in device.gatt:
            if device.stale_gatt and service_uuid == CSC_SERVICE:
                continue
            service_handle = chars[0].handle - 1
            service_path = f"{device.path}/service{service_handle:04x}"
            bus.export(service_path, _GattService(service_uuid, device.path))
            device.gatt_paths.append(service_path)
            for char in chars:
                char.path = f"{service_path}/char{char.handle:04x}"
                char.interface = _GattCharacteristic(self, char, service_path)
                bus.export(char.path, char.interface)
                device.gatt_paths.append(char.path)
                if char.can_notify:
                    desc_path = f"{char.path}/desc{char.handle + 2:04x}"
                    bus.export(desc_path, _GattDescriptor(self, char, char.path))
                    device.gatt_paths.append(desc_path)
        if device.battery1 and device.battery_level is not None:
            device.battery_interface = _Battery(device)
            bus.export(device.path, device.battery_interface)

    def _unexport_gatt(self, device: FakeDevice) -> None:
        bus = self._bus
        if bus is not None:
            if device.battery_interface is not None:
                bus.unexport(device.path, device.battery_interface)
            for path in reversed(device.gatt_paths):
                bus.unexport(path)
        device.battery_interface = None
        device.gatt_paths.clear()
        for _uuid, chars in device.gatt:
            for char in chars:
                char.interface = None

    # -- internals: discovery ---------------------------------------------------------------

    def _set_discovery_filter(self, properties: dict[str, Variant]) -> None:
        uuids = properties.get("UUIDs")
        self.discovery_uuids = {normalize_uuid(u) for u in uuids.value} if uuids else set()

    def _start_discovery(self) -> None:
        if not self.powered:
            raise DBusError(_ERR_NOT_READY, "Resource Not Ready")
        if self.discovering:
            return
        self.discovering = True
        self._adapter.emit_properties_changed({"Discovering": True})
        self._advertiser = asyncio.get_running_loop().create_task(self._advertise())

    def _stop_discovery(self) -> None:
        if not self.powered:
            raise DBusError(_ERR_NOT_READY, "Resource Not Ready")
        if not self.discovering:
            raise DBusError(_ERR_FAILED, "No discovery started")
        self._stop_discovery_state(emit=True)

    def _stop_discovery_state(self, *, emit: bool) -> None:
        if self._advertiser is not None:
            self._advertiser.cancel()
            self._advertiser = None
        if self.discovering:
            self.discovering = False
            if emit:
                self._adapter.emit_properties_changed({"Discovering": False})

    async def _advertise(self) -> None:
        while True:
            for device in list(self.devices.values()):
                if not device.advertising or device.connected:
                    continue
                if self.discovery_uuids and not self.discovery_uuids & set(device.service_uuids):
                    continue
                if device.interface is None:
                    if not device.forgotten or self._bus is None:
                        continue
                    device.forgotten = False  # discovered again: a new Device1 object
                    self._export_device(device)
                assert device.interface is not None
                device.interface.emit_properties_changed({"RSSI": device.rssi})
            await asyncio.sleep(self.adv_interval)

    def _remove_device_by_path(self, path: str) -> None:
        """``Adapter1.RemoveDevice``: BlueZ forgets the device and its GATT cache; the radio
        device is still there, so its next advertisement during discovery brings it back."""
        for device in self.devices.values():
            if device.path == path and device.interface is not None:
                device.remove_calls += 1
                self._fail_pending_connect(device, "Operation was cancelled")
                if device.connected:
                    self._end_link(device)
                self._unexport_device(device)
                device.stale_gatt = False
                device.forgotten = True
                self._touch()
                return
        raise DBusError("org.bluez.Error.DoesNotExist", "Does Not Exist")

    # -- internals: links -------------------------------------------------------------------

    async def _connect(self, device: FakeDevice) -> None:
        device.connect_calls += 1
        self._touch()
        if not self.powered:
            raise DBusError(_ERR_NOT_READY, "Resource Not Ready")
        if device.connected:
            raise DBusError("org.bluez.Error.AlreadyConnected", "Already Connected")
        if device.pending_connect is not None:
            raise DBusError(_ERR_IN_PROGRESS, "In Progress")
        if device.refuse_remaining > 0:
            device.refuse_remaining -= 1
            raise DBusError(device.refuse_error, device.refuse_message)
        if device.hang or not device.advertising:
            device.pending_connect = asyncio.get_running_loop().create_future()
            try:
                await device.pending_connect
            finally:
                device.pending_connect = None
        if self._bus is None or device.interface is None:
            raise DBusError(_ERR_FAILED, "Operation was cancelled")
        device.connected = True
        device.interface.emit_properties_changed({"Connected": True})
        self._export_gatt(device)
        device.services_resolved = True
        device.interface.emit_properties_changed({"ServicesResolved": True})
        self._touch()

    def _disconnect(self, device: FakeDevice) -> None:
        device.disconnect_calls += 1
        self._touch()
        self._fail_pending_connect(device, "Operation was cancelled")
        if device.connected:
            self._end_link(device)

    def _fail_pending_connect(self, device: FakeDevice, message: str) -> None:
        if device.pending_connect is not None and not device.pending_connect.done():
            device.pending_connect.set_exception(DBusError(_ERR_FAILED, message))

    def _end_link(self, device: FakeDevice, *, emit: bool = True) -> None:
        for _uuid, chars in device.gatt:
            for char in chars:
                self._release_acquired(char)
                char.notifying = False
        device.connected = False
        device.services_resolved = False
        self._touch()
        if emit and device.interface is not None:
            device.interface.emit_properties_changed({"ServicesResolved": False})
            device.interface.emit_properties_changed({"Connected": False})
        if emit:
            self._unexport_gatt(device)

    def _require_link(self, device: FakeDevice) -> None:
        if not device.connected:
            raise DBusError(_ERR_FAILED, "Not connected")

    # -- internals: GATT --------------------------------------------------------------------

    def _read_char(self, char: FakeCharacteristic) -> bytes:
        self._require_link(char.device)
        if "read" not in char.flags:
            raise DBusError(_ERR_NOT_PERMITTED, "Read not permitted")
        return char.value

    def _write_char(self, char: FakeCharacteristic, value: bytes) -> None:
        self._require_link(char.device)
        if "write" not in char.flags and "write-without-response" not in char.flags:
            raise DBusError(_ERR_NOT_PERMITTED, "Write not permitted")
        char.writes.append(value)
        char.value = value
        self._touch()

    def _start_notify(self, char: FakeCharacteristic) -> None:
        char.device.start_notify_calls += 1
        self._touch()
        self._require_link(char.device)
        if not char.can_notify:
            raise DBusError(_ERR_NOT_SUPPORTED, "Operation is not supported")
        if char.acquired is not None:
            raise DBusError(_ERR_NOT_PERMITTED, "Notify acquired")
        if char.notifying:
            return
        char.notifying = True
        self._touch()
        if char.interface is not None:
            char.interface.emit_properties_changed({"Notifying": True})

    def _stop_notify(self, char: FakeCharacteristic) -> None:
        self._require_link(char.device)
        if not char.notifying or char.acquired is not None:
            raise DBusError(_ERR_FAILED, "No notify session started")
        char.notifying = False
        if char.interface is not None:
            char.interface.emit_properties_changed({"Notifying": False})

    def _acquire_notify(self, char: FakeCharacteristic) -> list[Any]:
        char.device.start_notify_calls += 1
        char.device.acquire_notify_calls += 1
        self._touch()
        self._require_link(char.device)
        if not char.can_notify:
            raise DBusError(_ERR_NOT_SUPPORTED, "Operation is not supported")
        if char.notifying or char.acquired is not None:
            raise DBusError(_ERR_IN_PROGRESS, "Notify already acquired")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        char.acquired = (ours, theirs)
        char.notifying = True
        # dbus-fast sends the fd with the reply after this returns; our copy of the client's end
        # must outlive that send, and must then be closed so that the client closing its fd is
        # a real hang-up on our end.
        timer = asyncio.get_running_loop().call_later(0.5, self._close_client_end, char, theirs)
        self._timers.add(timer)
        if char.interface is not None:
            char.interface.emit_properties_changed({"NotifyAcquired": True, "Notifying": True})
        return [theirs.fileno(), self.mtu]

    @staticmethod
    def _close_client_end(char: FakeCharacteristic, theirs: socket.socket) -> None:
        theirs.close()
        if char.acquired is not None and char.acquired[1] is theirs:
            char.acquired = (char.acquired[0], None)

    def _release_acquired(self, char: FakeCharacteristic) -> None:
        if char.acquired is None:
            return
        ours, theirs = char.acquired
        char.acquired = None
        char.notifying = False
        ours.close()
        if theirs is not None:
            theirs.close()
        if char.interface is not None:
            char.interface.emit_properties_changed({"NotifyAcquired": False, "Notifying": False})


__all__ = [
    "ADAPTER_PATH",
    "BATTERY_LEVEL",
    "BATTERY_SERVICE",
    "BLUEZ_SERVICE",
    "CSC_FEATURE",
    "CSC_MEASUREMENT",
    "CSC_SERVICE",
    "FakeBluez",
    "FakeCharacteristic",
    "FakeDevice",
    "PrivateBus",
    "count_bus_connections",
    "normalize_uuid",
    "start_private_bus",
    "uuid16",
]
