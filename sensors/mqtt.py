"""Wheels that travel through an MQTT broker: the gateway's publisher and the bot's subscriber.

A gateway beside the cage publishes every raw notification to ``PREFIX/HOME/WHEEL/reading`` with
QoS 1 as JSON ``{"received_at": epoch_s, "payload_hex": "...", "sensor": "...", "seq": n}``, and a
retained ``PREFIX/HOME/WHEEL/status`` (``{"state": "online", "battery": 80}``; its last will says
``{"state": "offline"}``). The bot subscribes with a persistent session and feeds each reading to
the same sink a BLE link feeds (``bot.wheels.WheelPipeline``). DIY boards publish their cumulative
count to a topic of their own (``mqtt-counter:TOPIC``): a plain integer, or JSON with the number at
a dotted path.

Delivery is at-least-once. The wheel's counter is cumulative, so a lost reading costs nothing but
minute resolution and a repeated one adds nothing: a gateway reading no newer than the last one
handed to the sink is a redelivery and is dropped here, before it could look like the counter
going backwards (a sensor reset).

Pure parts (topics, message encoding and decoding) are plain functions. The bot's subscriber drives
paho-mqtt itself (``sensors.mqtt_session``: it reads messages in batches and acknowledges each
batch with one write, which is what keeps 1,000 homes within budget); the gateway's publisher, Home
Assistant and ``doctor`` use aiomqtt. Both are imported inside the functions that connect, so a bot
without MQTT never loads them. Both ends reconnect forever with jittered exponential backoff and
say each distinct problem once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import struct
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from aiomqtt import Client

log = logging.getLogger(__name__)
_T = TypeVar("_T")

READING = "reading"
STATUS = "status"
_U32 = struct.Struct("<I")


class MalformedMessage(ValueError):
    """An MQTT payload that is not a reading, a count or a status."""


# --- seams --------------------------------------------------------------------------------------


class BrokerSettings(Protocol):
    """The ``[mqtt]`` settings (``bot.config.MqttSettings``)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def tls(self) -> bool: ...

    @property
    def username(self) -> str | None: ...

    @property
    def password(self) -> str | None: ...

    @property
    def topic_prefix(self) -> str: ...


class WheelSink(Protocol):
    """Where readings go (``bot.wheels.WheelPipeline``; the gateway's spool)."""

    def feed(self, payload: bytes, received_at: float, sensor: str | None = None) -> None: ...

    def link_event(
        self, kind: str, at: float, value: float | None = None, detail: str = ""
    ) -> None: ...


# --- pure: topics and messages -------------------------------------------------------------------


def wheel_topic(prefix: str, home: str, wheel: str, kind: str) -> str:
    """``PREFIX/HOME/WHEEL/reading`` or ``.../status``."""
    return f"{prefix}/{home}/{wheel}/{kind}"


@dataclass(frozen=True, slots=True)
class GatewayReading:
    received_at: float
    payload: bytes
    sensor: str
    seq: int


def encode_reading(received_at: float, payload: bytes, sensor: str, seq: int) -> bytes:
    return json.dumps(
        {"received_at": received_at, "payload_hex": payload.hex(), "sensor": sensor, "seq": seq},
        separators=(",", ":"),
    ).encode()


def decode_reading(data: bytes) -> GatewayReading:
    """A gateway's reading message; MalformedMessage when it is not one."""
    return GatewayReading(*reading_fields(data))


# ``json.loads`` without its per-call work: a bytes message that opens with ``{"`` is UTF-8 by
# JSON's own detection (``json.detect_encoding``: no BOM, no zero in its first two bytes), so it
# decodes exactly as ``json.loads(data)`` would, with the decoder ``json.loads`` uses by default.
_DECODER = json.JSONDecoder()


def _json(data: bytes) -> Any:
    if type(data) is bytes and data.startswith(b'{"'):
        return _DECODER.decode(data.decode("utf-8", "surrogatepass"))
    return json.loads(data)


def reading_fields(data: bytes) -> tuple[float, bytes, str, int]:
    """``decode_reading`` as a tuple ``(received_at, payload, sensor, seq)``: what the bot's
    subscriber uses, so a reading builds no GatewayReading on its way to the pipeline."""
    try:
        message = _json(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedMessage(f"not JSON: {_shown(data)}") from err
    if type(message) is not dict:
        raise MalformedMessage(f"not a JSON object: {_shown(data)}")
    received_at = message.get("received_at")
    payload_hex = message.get("payload_hex")
    if type(received_at) is float:  # what a gateway sends (time.time()); JSON makes no subclass
        if not math.isfinite(received_at):
            raise MalformedMessage(f"received_at is not a time in epoch seconds: {_shown(data)}")
    elif (
        isinstance(received_at, bool)
        or not isinstance(received_at, (int, float))
        or not math.isfinite(received_at)
    ):
        raise MalformedMessage(f"received_at is not a time in epoch seconds: {_shown(data)}")
    else:
        received_at = float(received_at)
    if not isinstance(payload_hex, str):
        raise MalformedMessage(f"payload_hex is missing: {_shown(data)}")
    try:
        payload = bytes.fromhex(payload_hex)
    except ValueError as err:
        raise MalformedMessage(f"payload_hex is not hex: {_shown(data)}") from err
    sensor = message.get("sensor")
    seq = message.get("seq")
    return (
        received_at,
        payload,
        sensor if isinstance(sensor, str) else "",
        seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
    )


def decode_count(data: bytes, path: str | None = None) -> int:
    """A DIY board's cumulative count: a plain number, or JSON with the number at ``path``.

    ``path`` is dotted (``"COUNTER.C1"`` for Tasmota's ``{"COUNTER": {"C1": 1234}}``); a whole
    float (ESPHome's ``1234.0``) is the integer it spells. MalformedMessage otherwise.
    """
    try:
        value: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedMessage(f"not a number or JSON: {_shown(data)}") from err
    for key in path.split(".") if path else ():
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise MalformedMessage(f'no "{path}" in {_shown(data)}')
    if isinstance(value, str):  # some firmwares quote their numbers
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float):
        where = f'"{path}"' if path else "the payload"
        raise MalformedMessage(f"{where} is not a number: {_shown(data)}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise MalformedMessage(f"the count is not a whole number: {_shown(data)}")
    if value < 0:
        raise MalformedMessage(f"the count is negative: {_shown(data)}")
    return int(value)


def count_payload(count: int) -> bytes:
    """A DIY count as the bare little-endian counter the pipeline reads (``counter_format =
    "u32le"``): its low 32 bits, which keep every ``counter_bits`` width the counter applies."""
    return _U32.pack(count & 0xFFFFFFFF)


def encode_status(online: bool, battery: int | None = None) -> bytes:
    status: dict[str, object] = {"state": "online" if online else "offline"}
    if battery is not None:
        status["battery"] = battery
    return json.dumps(status, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    online: bool
    battery: int | None


def decode_status(data: bytes) -> GatewayStatus:
    try:
        message = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedMessage(f"not JSON: {_shown(data)}") from err
    if not isinstance(message, dict) or message.get("state") not in ("online", "offline"):
        raise MalformedMessage(f'not a status {{"state": "online"|"offline"}}: {_shown(data)}')
    battery = message.get("battery")
    if isinstance(battery, bool) or not isinstance(battery, int) or not 0 <= battery <= 100:
        battery = None
    return GatewayStatus(message["state"] == "online", battery)


def _shown(data: bytes, limit: int = 80) -> str:
    text = repr(bytes(data[:limit]))
    return text + "..." if len(data) > limit else text


# --- connections ---------------------------------------------------------------------------------


def make_client(
    settings: BrokerSettings,
    *,
    client_id: str,
    clean_session: bool,
    will: tuple[str, bytes] | None = None,
    keepalive: int = 30,
) -> Client:
    """An aiomqtt client (not yet connected) for ``settings``; the will is retained, QoS 1."""
    import aiomqtt  # lazy: only a bot or gateway that uses MQTT loads it

    tls_context = None
    if settings.tls:
        import ssl

        tls_context = ssl.create_default_context()
    return aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username,
        password=settings.password,
        identifier=client_id,
        clean_session=clean_session,
        will=aiomqtt.Will(will[0], will[1], qos=1, retain=True) if will else None,
        keepalive=keepalive,
        tls_context=tls_context,
        logger=logging.getLogger("sensors.mqtt.paho"),
    )


def describe_error(error: BaseException, settings: BrokerSettings) -> tuple[str, str]:
    """``(kind, one line for a person)`` for a failed or lost connection. Never the password."""
    where = f"{settings.host}:{settings.port}"
    code = getattr(error, "rc", None)
    value = getattr(code, "value", code)
    if value in (4, 5, 134, 135):  # CONNACK: bad user name or password / not authorised
        return (
            "login",
            f"the broker at {where} refused the login (check [mqtt] username and password, "
            "or HAMSTERBOT_MQTT_PASSWORD)",
        )
    text = str(error) or type(error).__name__
    cause = error.__cause__ or error.__context__
    if cause is not None and str(cause):
        text = f"{text}: {cause}"
    if "refused" in text.lower() or "unreachable" in text.lower() or "errno" in text.lower():
        return "unreachable", f"cannot reach the broker at {where} ({text})"
    return "lost", f"lost the broker at {where} ({text})"


class Reporter:
    """Logs each kind of connection problem once, until a connection succeeds again."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._last_kind: str | None = None

    def problem(self, kind: str, text: str, retry_in: float) -> None:
        level = logging.WARNING if kind != self._last_kind else logging.DEBUG
        if kind == "login" and kind != self._last_kind:
            level = logging.ERROR
        log.log(level, "%s: %s; retrying in %.0f s", self.name, text, retry_in)
        self._last_kind = kind

    def connected(self, text: str) -> None:
        log.info("%s: %s", self.name, text)
        self._last_kind = None


@dataclass
class Backoff:
    initial: float = 1.0
    cap: float = 60.0
    _delay: float = field(default=0.0, init=False)

    def next(self) -> float:
        self._delay = min(self._delay * 2, self.cap) if self._delay else self.initial
        return self._delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self._delay = 0.0


async def while_connected(client: Client, work: Coroutine[Any, Any, _T]) -> _T:
    """Run ``work`` until it ends or the connection drops (then raise the MqttError).

    aiomqtt's ``publish`` waits for its PUBACK until a timeout and does not notice a dropped
    connection, but its message iterator does.
    """

    async def watch() -> None:
        async for _ in client.messages:
            pass

    watcher = asyncio.ensure_future(watch())
    job = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({watcher, job}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (watcher, job):
            task.cancel()
        await asyncio.gather(watcher, job, return_exceptions=True)
    if job in done:
        return job.result()
    watcher.result()  # the MqttError
    raise AssertionError("unreachable: the watcher only ends by raising")


# --- the bot: subscribe and feed ---------------------------------------------------------------


@dataclass
class MqttWheel:
    """One hamster fed from the broker."""

    name: str
    sensor: str  # "mqtt:HOME/WHEEL" or "mqtt-counter:TOPIC"
    sink: WheelSink
    value: str | None = None  # mqtt-counter: the dotted path of the count
    last_at: float | None = None  # the newest reading handed to the sink (restored from storage)
    online: bool | None = None
    battery: int | None = None
    duplicates: int = 0
    malformed: int = 0


class MqttWheelFeed:
    """The bot's one broker connection: subscribes to every MQTT wheel, feeds their sinks.

    A persistent session (``clean_session = False`` with a stable client id), so readings published
    while the bot is down wait at the broker and arrive when it is back. The connection is a
    ``sensors.mqtt_session.Session``: messages are read in batches, each acknowledged after
    ``handle`` has fed it to its sink.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        wheels: list[MqttWheel],
        *,
        client_id: str,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.connected = asyncio.Event()
        self.messages = 0
        self._routes: dict[str, tuple[str, MqttWheel]] = {}
        for wheel in wheels:
            if wheel.sensor.startswith("mqtt-counter:"):
                self._routes[wheel.sensor.removeprefix("mqtt-counter:")] = ("count", wheel)
            else:
                home, _, name = wheel.sensor.removeprefix("mqtt:").partition("/")
                prefix = settings.topic_prefix
                self._routes[wheel_topic(prefix, home, name, READING)] = ("reading", wheel)
                self._routes[wheel_topic(prefix, home, name, STATUS)] = ("status", wheel)
        self._reporter = Reporter("MQTT")

    @property
    def topics(self) -> list[str]:
        return list(self._routes)

    async def run(self) -> None:
        """Connect, subscribe and feed, reconnecting forever; returns only when cancelled."""
        from sensors.mqtt_session import BrokerError, Session

        while True:
            session = Session(
                self.settings,
                client_id=self.client_id,
                clean_session=False,
                on_message=self._on_message,
            )
            try:
                await session.run(self.topics, self._on_subscribed)  # ends by raising
            except BrokerError as err:
                self.connected.clear()
                kind, text = describe_error(err, self.settings)
                delay = self.backoff.next()
                self._reporter.problem(kind, text, delay)
                await asyncio.sleep(delay)

    def _on_subscribed(self) -> None:
        self.backoff.reset()
        self.connected.set()
        self._reporter.connected(
            f"connected to {self.settings.host}:{self.settings.port}, {len(self._routes)} topics"
        )

    def _on_message(self, topic: str, payload: bytes) -> None:
        """Called for each message paho decodes (inside the event loop), before its PUBACK."""
        try:
            self.handle(topic, payload, self.clock())
        except Exception:
            # Raised into paho, it would drop the connection and the reading would come back
            # for ever: log it and carry on.
            log.exception("MQTT: could not handle a message on %s", topic)

    def handle(self, topic: str, payload: bytes, now: float) -> None:
        """Route one message to its wheel. Pure apart from the sinks; malformed ones are logged."""
        route = self._routes.get(topic)
        if route is None:
            return
        self.messages += 1
        kind, wheel = route
        try:
            if kind == "reading":
                received_at, reading, sensor, _ = reading_fields(payload)
                last_at = wheel.last_at
                if last_at is not None and received_at <= last_at:
                    wheel.duplicates += 1  # redelivered, or older than what we counted
                    return
                wheel.last_at = received_at
                # The gateway's sensor address: another sensor is another counter (a new baseline).
                wheel.sink.feed(reading, received_at, sensor or None)
            elif kind == "count":
                count = decode_count(payload, wheel.value)
                wheel.last_at = now
                wheel.sink.feed(count_payload(count), now)
            else:
                self._status(wheel, decode_status(payload), now)
        except MalformedMessage as err:
            wheel.malformed += 1
            level = logging.WARNING if wheel.malformed == 1 else logging.DEBUG
            log.log(level, "%s: ignoring a malformed message on %s: %s", wheel.name, topic, err)

    def _status(self, wheel: MqttWheel, status: GatewayStatus, now: float) -> None:
        if status.online != wheel.online:
            wheel.online = status.online
            kind = "connected" if status.online else "disconnected"
            wheel.sink.link_event(kind, now, detail=f"gateway {wheel.sensor}")
        if status.battery is not None and status.battery != wheel.battery:
            wheel.battery = status.battery
            wheel.sink.link_event("battery", now, status.battery)


# --- the gateway: publish from the spool ---------------------------------------------------------


class Spool(Protocol):
    """What the publisher needs of ``storage.spool.Spool``."""

    def pending(self, wheel: str, *, after: int = 0, limit: int = 100) -> list[Any]: ...

    def acknowledged(self, readings: list[Any]) -> None: ...


class WheelPublisher:
    """Publishes one wheel's spooled readings in order and deletes each batch after its PUBACKs.

    One connection per wheel, so each wheel has its own last will on its own status topic. The
    spool is the persistence, so the session is clean: after a reconnect everything still in the
    spool is published again (the subscriber drops what it already had).
    """

    def __init__(
        self,
        settings: BrokerSettings,
        spool: Spool,
        *,
        home: str,
        wheel: str,
        client_id: str,
        window: int = 100,
        status: bool = True,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.wheel = wheel
        self.client_id = client_id
        self.window = window
        self.status = status
        self.backoff = backoff or Backoff()
        self.reading_topic = wheel_topic(settings.topic_prefix, home, wheel, READING)
        self.status_topic = wheel_topic(settings.topic_prefix, home, wheel, STATUS)
        self.battery: int | None = None
        self.published = 0
        self.connected = asyncio.Event()
        self._wake = asyncio.Event()
        self._status_sent: bytes | None = None
        self._reporter = Reporter(f"MQTT {wheel}")

    def wake(self) -> None:
        """Something new is in the spool (or the battery changed)."""
        self._wake.set()

    def set_battery(self, level: int) -> None:
        self.battery = level
        self._wake.set()

    async def run(self, *, until_empty: bool = False) -> None:
        """Publish forever (or, with ``until_empty``, until the wheel's spool is empty)."""
        from aiomqtt import MqttError

        while True:
            will = (self.status_topic, encode_status(False)) if self.status else None
            client = make_client(
                self.settings, client_id=self.client_id, clean_session=True, will=will
            )
            # A window of publishes awaiting their PUBACKs is the plan, not a backlog to warn of.
            client.pending_calls_threshold = self.window + 10
            try:
                async with client:
                    self.backoff.reset()
                    self._status_sent = None
                    self._reporter.connected(
                        f"connected to {self.settings.host}:{self.settings.port}"
                    )
                    self.connected.set()
                    try:
                        await while_connected(client, self._drain(client, until_empty))
                    except asyncio.CancelledError:
                        await self._say_offline(client)
                        raise
                    finally:
                        self.connected.clear()
                    await self._say_offline(client)
                    return
            except MqttError as err:
                kind, text = describe_error(err, self.settings)
                delay = self.backoff.next()
                self._reporter.problem(kind, text, delay)
                await asyncio.sleep(delay)

    async def _drain(self, client: Client, until_empty: bool) -> None:
        while True:
            self._wake.clear()
            await self._send_status(client)
            batch = self.spool.pending(self.wheel, limit=self.window)
            if not batch:
                if until_empty:
                    return
                await self._wake.wait()
                continue
            await asyncio.gather(
                *(
                    client.publish(
                        self.reading_topic,
                        encode_reading(r.received_at, r.payload, r.sensor, r.seq),
                        qos=1,
                        timeout=math.inf,
                    )
                    for r in batch
                )
            )
            self.spool.acknowledged(batch)
            self.published += len(batch)

    async def _say_offline(self, client: Client) -> None:
        """A clean disconnect sends no will: say it ourselves (best effort, briefly)."""
        if not self.status:
            return
        try:
            await client.publish(
                self.status_topic, encode_status(False), qos=1, retain=True, timeout=2
            )
        except Exception as err:  # going away anyway; the will covers a dead connection
            log.debug("%s: could not publish offline status: %s", self.wheel, err)

    async def _send_status(self, client: Client) -> None:
        if not self.status:
            return
        status = encode_status(True, self.battery)
        if status != self._status_sent:
            await client.publish(self.status_topic, status, qos=1, retain=True, timeout=math.inf)
            self._status_sent = status
