"""WheelLink: one BLE wheel sensor kept connected for months, every notification fed to a sink.

The link finds the sensor (by address, or with ``sensor = "auto"`` the first device advertising the
Cycling Speed and Cadence service), connects, reads CSC Feature, subscribes to CSC Measurement (or a
DIY board's own counter characteristic) and hands every payload with its receive time to a
:class:`WheelSink`. When anything goes wrong it disconnects, waits (exponential backoff with jitter)
and starts over, forever. A silence watchdog recycles a link that claims to be connected but has
sent nothing for ``watchdog_seconds``: bleak does not notice a crashed bluetoothd, and some
sensors stop notifying without dropping the link.

Nothing here knows about the store or the bot: the sink (``bot.wheels.WheelPipeline`` in the real
program) counts, and the link only moves bytes. bleak and dbus-fast are imported inside functions,
so importing this module costs nothing when no real sensor is configured.

Why some things are done the way they are (bleak 3.1 on BlueZ):

- ``client.disconnect()`` is awaited after every session, even after the sensor dropped the link:
  bleak keeps each client's own D-Bus connection open until then.
- bleak has no battery API and BlueZ >= 5.48 hides the Battery service behind ``org.bluez.Battery1``,
  so the level is read from GATT 0x2A19 when it is there, else with a D-Bus ``Properties.Get``.
- BlueZ keeps an LE link up when the program that opened it dies (SIGKILL, power cut of the Pi's
  user session...), and a connected sensor stops advertising. Before scanning, the link therefore
  asks BlueZ for an already connected sensor and reuses that link (bleak then skips ``Connect``).
- ``Connect`` answered with ``org.bluez.Error.InProgress`` (BlueZ still busy with an earlier attempt,
  often many times in a row) is only a reason to wait: the link backs off and retries like after
  any failure, forever.
- A stale GATT cache (the sensor's services missing after connecting, bleak's
  ``KeyError: 'org.bluez.GattService1'``, or the CSC characteristic absent) does not heal by
  reconnecting: BlueZ serves the same cache again. The link disconnects, removes the device through
  the adapter (``Adapter1.RemoveDevice`` drops the cache), rediscovers it and connects again.
- Notifications are subscribed with ``StartNotify`` (bleak's default, asked for explicitly), never
  ``AcquireNotify``: under ``AcquireNotify`` BlueZ drops notifications that arrive before the CCC
  write is answered (bleak issues 1885 and 1973), and those are the first counts after a reconnect.
  ``StartNotify`` may deliver a value twice after a re-subscribe; the cumulative counter credits a
  repeat nothing.
- A wheel standing still sends nothing for hours on many sensors. When the watchdog finds the link
  silent, it first asks whether the link is alive (a battery read over the radio, else BlueZ's
  ``Connected``): if it is, the link only re-subscribes in place (no reconnect) and keeps
  listening, so an idle night costs at most one cheap check per ``watchdog_seconds``; only a link
  that fails the check is rebuilt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
import weakref
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sensors.backoff import backoff_delay
from sensors.csc import (
    BATTERY_LEVEL_UUID,
    CSC_FEATURE_UUID,
    CSC_MEASUREMENT_UUID,
    CSC_SERVICE_UUID,
    MalformedPayload,
    parse_csc_feature,
)

if TYPE_CHECKING:
    from bleak import BleakClient
    from bleak.backends.device import BLEDevice


log = logging.getLogger(__name__)
_T = TypeVar("_T")

GATT_SERVICE_UUID = "00001801-0000-1000-8000-00805f9b34fb"
DEVICE_INFORMATION_UUID = "0000180a-0000-1000-8000-00805f9b34fb"
BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY1_INTERFACE = "org.bluez.Battery1"
SERVICE_UNKNOWN = "org.freedesktop.DBus.Error.ServiceUnknown"
# What BlueZ's list of connected devices is filtered by: CSC for real sensors, and services
# (nearly) every device has, for DIY boards with a vendor service.
WELL_KNOWN_SERVICES = [
    CSC_SERVICE_UUID,
    GATT_SERVICE_UUID,
    BATTERY_SERVICE_UUID,
    DEVICE_INFORMATION_UUID,
]
DEVICE_INTERFACE = "org.bluez.Device1"
ADAPTER_INTERFACE = "org.bluez.Adapter1"
BLUEZ_IN_PROGRESS = "org.bluez.Error.InProgress"
GATT_SERVICE_INTERFACE = "org.bluez.GattService1"
# A wheel sensor sleeps whenever the hamster does: these are news, not trouble.
ROUTINE_STATES = frozenset({"connected", "dropped", "not-found", "silent", "busy"})
# Problems that mean the session is over even when they come from an optional read.
FATAL_PROBLEMS = frozenset({"no-bluetoothd", "dbus-lost", "no-dbus", "no-adapter", "powered-off"})


# --- seams --------------------------------------------------------------------------------------


class WheelSink(Protocol):
    """Where a link delivers what it hears (``bot.wheels.WheelPipeline`` has both methods)."""

    def feed(self, payload: bytes, received_at: float, sensor: str | None = None) -> None: ...

    def link_event(
        self, kind: str, at: float, value: float | None = None, detail: str = ""
    ) -> None: ...


class SensorTarget(Protocol):
    """The part of a ``[[hamsters]]`` entry a link needs (``bot.config.HamsterConfig``)."""

    @property
    def name(self) -> str: ...

    @property
    def sensor(self) -> str | None: ...

    @property
    def characteristic(self) -> str | None: ...

    @property
    def counter_format(self) -> str: ...


class LinkTimings(Protocol):
    """The ``[ble]`` settings (``bot.config.BleSettings``), all in seconds."""

    @property
    def scan_timeout(self) -> float: ...

    @property
    def connect_timeout(self) -> float: ...

    @property
    def backoff_initial(self) -> float: ...

    @property
    def backoff_max(self) -> float: ...

    @property
    def watchdog_seconds(self) -> float: ...


# --- pure helpers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkProblem:
    """Why a session ended, as one friendly line; ``kind`` groups repeats for logging."""

    kind: str
    message: str


def describe_error(err: BaseException, target: str = "the sensor") -> LinkProblem:
    """One clear line for anything a BLE session can raise (matched by class name, so this stays
    pure and importable without bleak)."""
    names = {cls.__name__ for cls in type(err).__mro__}
    if "BleakBluetoothNotAvailableError" in names:
        reason = getattr(getattr(err, "reason", None), "name", "UNKNOWN")
        if reason == "POWERED_OFF":
            return LinkProblem(
                "powered-off",
                "the Bluetooth adapter is powered off (try: bluetoothctl power on)",
            )
        if reason == "NO_BLUETOOTH":
            return LinkProblem(
                "no-adapter",
                "no Bluetooth adapter found (is the adapter plugged in and bluetoothd running?)",
            )
        if reason.startswith("DENIED"):
            return LinkProblem(
                "denied",
                "not allowed to use Bluetooth (add this user to the 'bluetooth' group)",
            )
        return LinkProblem("unavailable", f"Bluetooth is not available: {_first_line(err)}")
    if "BleakDBusError" in names:
        dbus_error = getattr(err, "dbus_error", "")
        if dbus_error == SERVICE_UNKNOWN:
            return LinkProblem(
                "no-bluetoothd",
                "bluetoothd is not running (try: sudo systemctl start bluetooth)",
            )
        if dbus_error == BLUEZ_IN_PROGRESS:
            return LinkProblem(
                "busy", "BlueZ is still busy with an earlier connection attempt; retrying"
            )
        if dbus_error.startswith("org.freedesktop.DBus.Error.AccessDenied"):
            return LinkProblem(
                "denied", "D-Bus refused access to BlueZ (add this user to the 'bluetooth' group)"
            )
        return LinkProblem("dbus", f"BlueZ said {dbus_error}: {_first_line(err)}")
    if isinstance(err, KeyError) and err.args == (GATT_SERVICE_INTERFACE,):
        # bleak building services from a cache entry whose GattService1 went away.
        return LinkProblem("stale-gatt", f"{target}'s services are missing in BlueZ's GATT cache")
    if "BleakDeviceNotFoundError" in names:
        return LinkProblem("not-found", f"{target} is not advertising (asleep or out of range)")
    if "BleakCharacteristicNotFoundError" in names:
        return LinkProblem(
            "no-characteristic",
            f"{target} has no such characteristic: {_first_line(err)} "
            "(check [[hamsters]] characteristic)",
        )
    if isinstance(err, TimeoutError):
        return LinkProblem("timeout", f"{target} did not answer in time")
    if isinstance(err, FileNotFoundError | ConnectionRefusedError):
        return LinkProblem(
            "no-dbus", "the D-Bus system bus is not reachable (is dbus running on this machine?)"
        )
    if isinstance(err, EOFError | BrokenPipeError | ConnectionResetError):
        return LinkProblem("dbus-lost", "lost the connection to D-Bus; reconnecting")
    if "BleakError" in names:
        return LinkProblem("ble", f"Bluetooth error: {_first_line(err)}")
    return LinkProblem("unexpected", f"{type(err).__name__}: {_first_line(err)}")


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:200]


def parse_battery_level(data: bytes | bytearray) -> int:
    """GATT Battery Level (0x2A19): one byte, percent."""
    if len(data) < 1 or data[0] > 100:
        raise MalformedPayload(f"battery level must be one byte 0..100, got {bytes(data).hex()}")
    return int(data[0])


def device_path(address: str, adapter: str = "hci0") -> str:
    """BlueZ's object path for a device address."""
    return f"/org/bluez/{adapter}/dev_{address.upper().replace(':', '_')}"


@dataclass(frozen=True, slots=True)
class SeenSensor:
    """One device heard in a scan."""

    address: str
    name: str | None
    rssi: int | None
    service_uuids: tuple[str, ...] = ()

    @property
    def speaks_csc(self) -> bool:
        return CSC_SERVICE_UUID in self.service_uuids


def hamster_snippet(seen: SeenSensor, name: str = "Ursula") -> str:
    """A ready ``[[hamsters]]`` entry for a scanned sensor."""
    lines = [
        "[[hamsters]]",
        f'name = "{name}"',
        "wheel_diameter_cm = 20  # measure across the running surface",
        f'sensor = "{seen.address}"  # {seen.name or "unnamed"}',
    ]
    if not seen.speaks_csc:
        lines.append('# not a CSC sensor: set characteristic = "UUID" and counter_format = "u32le"')
    return "\n".join(lines)


def format_seen(seen: SeenSensor) -> str:
    rssi = f"{seen.rssi} dBm" if seen.rssi is not None else "? dBm"
    kind = "CSC" if seen.speaks_csc else "other"
    return f"{seen.address}  {rssi:>8}  {kind:5}  {seen.name or '(no name)'}"


def _path_of(device: BLEDevice) -> str:
    """BlueZ's object path of a device bleak found."""
    details = device.details if isinstance(device.details, dict) else {}
    return details.get("path") or device_path(device.address)


# --- BlueZ helpers (I/O) ------------------------------------------------------------------------

_SCAN_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def scan_lock() -> asyncio.Lock:
    """One scan at a time per process: bleak runs every scanner over one shared D-Bus connection,
    and BlueZ keeps one discovery session per connection, so the first scanner to stop would stop
    the other's discovery too ("No discovery started")."""
    loop = asyncio.get_running_loop()
    lock = _SCAN_LOCKS.get(loop)
    if lock is None:
        lock = _SCAN_LOCKS[loop] = asyncio.Lock()
    return lock


async def scan(seconds: float, *, all_devices: bool = False) -> list[SeenSensor]:
    """Devices heard within ``seconds``, strongest first; only CSC advertisers unless ``all_devices``."""
    from bleak import BleakScanner

    kwargs: dict[str, Any] = {} if all_devices else {"service_uuids": [CSC_SERVICE_UUID]}
    async with scan_lock():
        found = await BleakScanner.discover(timeout=seconds, return_adv=True, **kwargs)
    seen = [
        SeenSensor(
            address=device.address.upper(),
            name=adv.local_name or device.name,
            rssi=adv.rssi,
            service_uuids=tuple(u.lower() for u in adv.service_uuids),
        )
        for device, adv in found.values()
    ]
    return sorted(seen, key=lambda s: -(s.rssi if s.rssi is not None else -999))


async def adapter_path() -> str:
    """The default adapter's D-Bus path; raises bleak's errors when there is none or it is off."""
    from bleak.backends.bluezdbus.manager import get_global_bluez_manager

    manager = await get_global_bluez_manager()
    return manager.get_default_adapter()


async def bluez_version(seconds: float = 5.0) -> str | None:
    """BlueZ's version from ``bluetoothctl --version`` (what bleak itself probes), or None."""
    try:
        process = await asyncio.create_subprocess_exec(
            "bluetoothctl",
            "--version",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return None
    try:
        async with asyncio.timeout(seconds):
            out, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        return None
    match = re.search(r"(\d+\.\d+)", out.decode(errors="replace"))
    return match.group(1) if match else None


async def _call_bluez(
    path: str, interface: str, member: str, signature: str, body: list[Any]
) -> Any:
    """One method call to BlueZ on a short-lived system bus connection of our own: bleak's shared
    one is private, and an occasional call does not justify holding a second one open for months.
    Returns the reply's body, or None for a D-Bus error other than bluetoothd being gone (which
    raises bleak's ``BleakDBusError``, as bleak's own calls do)."""
    from dbus_fast import BusType, Message, MessageType
    from dbus_fast.aio import MessageBus

    bus = MessageBus(bus_type=BusType.SYSTEM)
    try:
        await bus.connect()
        reply = await bus.call(
            Message(
                destination="org.bluez",
                path=path,
                interface=interface,
                member=member,
                signature=signature,
                body=body,
            )
        )
    finally:
        bus.disconnect()
        with contextlib.suppress(Exception):
            await bus.wait_for_disconnect()
    if reply is None or reply.message_type != MessageType.METHOD_RETURN:
        if reply is not None and reply.error_name == SERVICE_UNKNOWN:
            from bleak.exc import BleakDBusError

            raise BleakDBusError(reply.error_name, reply.body)
        log.debug("BlueZ %s.%s on %s: %s", interface, member, path, reply and reply.error_name)
        return None
    return reply.body


async def _device_property(path: str, interface: str, name: str) -> Any:
    body = await _call_bluez(
        path, "org.freedesktop.DBus.Properties", "Get", "ss", [interface, name]
    )
    return None if body is None else body[0].value


async def read_battery1(path: str) -> int | None:
    """``org.bluez.Battery1.Percentage`` of the device at ``path``, or None when BlueZ has none."""
    value = await _device_property(path, BATTERY1_INTERFACE, "Percentage")
    return None if value is None else int(value)


async def read_connected(path: str) -> bool:
    """BlueZ's ``Device1.Connected`` for the device at ``path`` (False when BlueZ has no such
    device); asks bluetoothd itself, so unlike bleak's ``is_connected`` it notices a dead one."""
    return bool(await _device_property(path, DEVICE_INTERFACE, "Connected"))


async def remove_device(path: str) -> bool:
    """``Adapter1.RemoveDevice``: BlueZ forgets the device, its GATT cache included; the next
    advertisement makes it a new device. Returns whether BlueZ did it."""
    adapter = path.rsplit("/", 1)[0]
    return await _call_bluez(adapter, ADAPTER_INTERFACE, "RemoveDevice", "o", [path]) is not None


async def connected_devices(service_uuids: list[str]) -> list[BLEDevice]:
    """Devices BlueZ already holds a link to (e.g. left over from a crash of this program)."""
    from bleak import BleakAdapter

    adapter = await BleakAdapter.get()
    return await adapter.get_connected_devices(service_uuids)


# --- the link -----------------------------------------------------------------------------------


class _LinkLost(Exception):
    """A session ended without an exception from bleak (dropped link, silence)."""

    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass
class LinkStats:
    """Counters for tests, benchmarks and the closing report."""

    sessions: int = 0  # successful subscriptions
    attempts: int = 0
    drops: int = 0
    watchdog_recycles: int = 0
    notifications: int = 0
    last_reconnect_s: float | None = None  # from losing a link to the next subscription
    quiet_checks: int = 0  # silent links found alive by the watchdog's check (no reconnect)
    cache_clears: int = 0  # devices removed from BlueZ for a stale GATT cache
    reconnect_times: deque[float] = field(default_factory=lambda: deque(maxlen=1000))


class WheelLink:
    """Keep one wheel sensor connected and feed every notification into ``sink``, forever."""

    def __init__(
        self,
        target: SensorTarget,
        timings: LinkTimings,
        sink: WheelSink,
        *,
        battery_interval: float = 3600.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if not target.sensor or target.sensor == "simulated":
            raise ValueError(f"{target.name}: WheelLink needs a BLE address or 'auto'")
        self.target = target
        self.timings = timings
        self.sink = sink
        self.battery_interval = battery_interval
        self.clock = clock
        self.rng = rng or random.Random()
        self.stats = LinkStats()
        self.address: str | None = None if target.sensor == "auto" else target.sensor.upper()
        self.characteristic = (target.characteristic or CSC_MEASUREMENT_UUID).lower()
        self.connected = asyncio.Event()  # set while subscribed
        self._reported: tuple[str, str] | None = None
        self._feature_logged = False
        self._battery_missing_logged = False
        self._lost_at: float | None = None
        self._last_heard = 0.0  # loop time of the last notification (or subscription)

    @property
    def label(self) -> str:
        return f"{self.target.name}'s wheel sensor"

    async def run(self) -> None:
        """Connect, listen, reconnect, until cancelled. Never raises anything else."""
        attempt = 0
        loop = asyncio.get_running_loop()
        self._lost_at = loop.time()
        while True:
            self.stats.attempts += 1
            subscribed_before = self.stats.sessions
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except _LinkLost as lost:
                self._report(lost.problem)
            except Exception as err:  # one bad session must never end the link
                problem = describe_error(err)
                self._report(problem, exc_info=err if problem.kind == "unexpected" else None)
            if self.stats.sessions > subscribed_before:
                attempt = 0  # it worked for a while: a new problem starts from a short delay
            delay = backoff_delay(
                attempt,
                self.timings.backoff_initial,
                self.timings.backoff_max,
                self.rng.random(),
            )
            attempt += 1
            log.debug("%s: next attempt in %.2f s", self.target.name, delay)
            await asyncio.sleep(delay)

    def _report(self, problem: LinkProblem, exc_info: BaseException | None = None) -> None:
        """Log a state once; the same problem on every retry stays at debug level."""
        key = (problem.kind, problem.message)
        if key == self._reported:
            log.debug("%s: still: %s", self.target.name, problem.message)
            return
        self._reported = key
        level = logging.INFO if problem.kind in ROUTINE_STATES else logging.WARNING
        log.log(level, "%s: %s", self.label, problem.message, exc_info=exc_info)

    async def _session(self) -> None:
        from bleak import BleakClient

        device = await self._find()
        lost = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._last_heard = loop.time()
        was_subscribed = False
        stale_cache = False
        # Each reading names its sensor, so a replaced sensor is a new counter, never a jump.
        sensor = device.address.upper()

        def on_disconnect(_client: BleakClient) -> None:
            lost.set()

        def on_notification(_char: object, data: bytearray) -> None:
            self._last_heard = loop.time()
            self.stats.notifications += 1
            self.sink.feed(bytes(data), self.clock(), sensor)

        client = BleakClient(
            device, disconnected_callback=on_disconnect, timeout=self.timings.connect_timeout
        )
        try:
            log.debug("%s: connecting to %s", self.target.name, device.address)
            try:
                await client.connect()
            except KeyError as err:
                stale_cache = describe_error(err).kind == "stale-gatt"
                raise
            if client.services.get_characteristic(self.characteristic) is None:
                stale_cache = True
                raise _LinkLost(
                    LinkProblem(
                        "stale-gatt",
                        f"{device.address} shows no characteristic {self.characteristic} after "
                        "connecting: BlueZ's GATT cache of it is stale (for a DIY board, check "
                        "[[hamsters]] characteristic); removing it from BlueZ and rediscovering",
                    )
                )
            if self.characteristic == CSC_MEASUREMENT_UUID:
                await self._read_feature(client)
            await self._subscribe(client, on_notification)
            was_subscribed = True
            self.stats.sessions += 1
            now = loop.time()
            if self._lost_at is not None:
                self.stats.last_reconnect_s = now - self._lost_at
                self.stats.reconnect_times.append(now - self._lost_at)
            self._last_heard = now
            name = device.name or "unnamed"
            self.sink.link_event("connected", self.clock(), detail=f"{device.address} {name}")
            self.connected.set()
            self._report(LinkProblem("connected", f"connected to {device.address} ({name})"))
            await self._listen(client, device, lost, on_notification)
        finally:
            self.connected.clear()
            if was_subscribed:
                self._lost_at = loop.time()
            await self._disconnect(client)
            if stale_cache:
                await self._clear_cache(device)
            if was_subscribed:
                self.sink.link_event("disconnected", self.clock())

    async def _subscribe(
        self, client: BleakClient, on_notification: Callable[[object, bytearray], None]
    ) -> None:
        # StartNotify, never AcquireNotify: see the module docstring (bleak issues 1885, 1973).
        await client.start_notify(
            self.characteristic, on_notification, bluez={"use_start_notify": True}
        )

    async def _listen(
        self,
        client: BleakClient,
        device: BLEDevice,
        lost: asyncio.Event,
        on_notification: Callable[[object, bytearray], None],
    ) -> None:
        """Wait until the link drops or goes silent and fails the check; read the battery on the
        way."""
        loop = asyncio.get_running_loop()
        watchdog = self.timings.watchdog_seconds
        next_battery = loop.time()
        while True:
            now = loop.time()
            if now >= next_battery:
                await self._read_battery(client, device)
                next_battery = now + self.battery_interval
                continue
            silent = now - self._last_heard
            if silent >= watchdog:
                reason = await self._quiet_link_check(client, device, on_notification)
                if reason is None:
                    # Alive, only quiet (a hamster asleep): one check per watchdog period.
                    self.stats.quiet_checks += 1
                    self._last_heard = loop.time()
                    continue
                self.stats.watchdog_recycles += 1
                raise _LinkLost(
                    LinkProblem(
                        "silent",
                        f"the sensor sent nothing for {silent:.0f} s and {reason}; reconnecting",
                    )
                )
            wake = min(watchdog - silent, next_battery - now)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wake, 0.01)):
                    await lost.wait()
            if lost.is_set():
                self.stats.drops += 1
                raise _LinkLost(LinkProblem("dropped", "the sensor dropped the link; reconnecting"))

    async def _quiet_link_check(
        self,
        client: BleakClient,
        device: BLEDevice,
        on_notification: Callable[[object, bytearray], None],
    ) -> str | None:
        """Is a silent link alive? A battery read over the radio, else BlueZ's ``Connected``;
        alive, the notifications are subscribed again in place (a sensor that lost its
        subscription resumes; a value delivered twice credits nothing). None when alive, else
        why not."""
        try:
            async with asyncio.timeout(self.timings.connect_timeout):
                if client.services.get_characteristic(BATTERY_LEVEL_UUID) is not None:
                    level = parse_battery_level(await client.read_gatt_char(BATTERY_LEVEL_UUID))
                    self.sink.link_event("battery", self.clock(), float(level))
                elif not await read_connected(_path_of(device)):
                    return "BlueZ says it is not connected"
                with contextlib.suppress(Exception):
                    await client.stop_notify(self.characteristic)
                await self._subscribe(client, on_notification)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            return f"the link check failed ({describe_error(err).message})"
        log.debug("%s: quiet, but the link is alive; re-subscribed", self.target.name)
        return None

    async def _clear_cache(self, device: BLEDevice) -> None:
        """Remove the device from BlueZ (its GATT cache goes with it); the next session scans."""
        self.stats.cache_clears += 1
        try:
            async with asyncio.timeout(self.timings.connect_timeout):
                removed = await remove_device(_path_of(device))
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.debug("%s: RemoveDevice: %s", self.target.name, describe_error(err).message)
            return
        log.debug("%s: removed %s from BlueZ: %s", self.target.name, device.address, removed)

    async def _find(self) -> BLEDevice:
        """The sensor: an existing BlueZ link, else the first advertisement that matches."""
        from bleak import BleakScanner
        from bleak.exc import BleakDeviceNotFoundError

        # "auto" must never adopt some other connected gadget (a keyboard, headphones).
        services = WELL_KNOWN_SERVICES if self.address else [CSC_SERVICE_UUID]
        for device in await connected_devices(services):
            if self.address is None or device.address.upper() == self.address:
                log.debug("%s: reusing BlueZ's link to %s", self.target.name, device.address)
                return self._chosen(device)
        if self.address is not None:
            wanted = self.address

            def matches(device: BLEDevice, _adv: Any) -> bool:
                return device.address.upper() == wanted

            # An address is precise, so no UUID filter: a DIY board may advertise anything.
            async with scan_lock():
                found = await BleakScanner.find_device_by_filter(
                    matches, timeout=self.timings.scan_timeout
                )
        else:

            def speaks_csc(_device: BLEDevice, adv: Any) -> bool:
                return CSC_SERVICE_UUID in {u.lower() for u in adv.service_uuids}

            async with scan_lock():
                found = await BleakScanner.find_device_by_filter(
                    speaks_csc,
                    timeout=self.timings.scan_timeout,
                    service_uuids=[CSC_SERVICE_UUID],
                )
        if found is None:
            raise BleakDeviceNotFoundError(self.address or "auto", "no advertisement heard")
        return self._chosen(found)

    def _chosen(self, device: BLEDevice) -> BLEDevice:
        if self.address is None:
            # Stay with this wheel for the life of the process, so a neighbour's sensor cannot
            # take over after a drop.
            self.address = device.address.upper()
            log.info(
                '%s: sensor = "auto" chose %s (%s); pin it in the config: sensor = "%s"',
                self.target.name,
                self.address,
                device.name or "unnamed",
                self.address,
            )
        return device

    async def _read_feature(self, client: BleakClient) -> None:
        if client.services.get_characteristic(CSC_FEATURE_UUID) is None:
            return
        try:
            data = await self._optional_read(client.read_gatt_char(CSC_FEATURE_UUID))
            feature = parse_csc_feature(data or b"")
        except MalformedPayload as err:
            log.debug("%s: unreadable CSC Feature: %s", self.target.name, err)
            return
        if self._feature_logged:
            return
        self._feature_logged = True
        if not feature.wheel_revolution_data:
            log.info(
                "%s: CSC sensor in cadence mode (crank data only): counting its crank revolutions",
                self.target.name,
            )
        else:
            log.info(
                "%s: CSC sensor with wheel data%s",
                self.target.name,
                " and crank data" if feature.crank_revolution_data else "",
            )

    async def _read_battery(self, client: BleakClient, device: BLEDevice) -> None:
        level: int | None = None
        if client.services.get_characteristic(BATTERY_LEVEL_UUID) is not None:
            data = await self._optional_read(client.read_gatt_char(BATTERY_LEVEL_UUID))
            try:
                level = None if data is None else parse_battery_level(data)
            except MalformedPayload as err:
                log.debug("%s: %s", self.target.name, err)
        else:
            level = await self._optional_read(read_battery1(_path_of(device)))
        if level is None:
            if not self._battery_missing_logged:
                self._battery_missing_logged = True
                log.info("%s: the sensor does not report its battery level", self.target.name)
            return
        self.sink.link_event("battery", self.clock(), float(level))

    async def _optional_read(self, read: Coroutine[Any, Any, _T]) -> _T | None:
        """A read the link can live without (feature, battery): a failure is logged, not fatal,
        unless BlueZ or D-Bus itself is gone -- then the session must end now."""
        try:
            async with asyncio.timeout(self.timings.connect_timeout):
                return await read
        except asyncio.CancelledError:
            raise
        except Exception as err:
            problem = describe_error(err)
            if problem.kind in FATAL_PROBLEMS:
                raise
            log.debug("%s: optional read failed: %s", self.target.name, problem.message)
            return None

    async def _disconnect(self, client: BleakClient) -> None:
        """Always disconnect, even after a drop (bleak leaks the client's D-Bus connection
        otherwise); with bluetoothd gone this raises, but bleak has cleaned up by then."""
        try:
            async with asyncio.timeout(self.timings.connect_timeout):
                await client.disconnect()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.debug("%s: disconnect: %s", self.target.name, describe_error(err).message)
