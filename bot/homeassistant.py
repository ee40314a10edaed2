"""Home Assistant: every hamster as a device with sensors, through MQTT discovery (``[mqtt] homeassistant``).

For each hamster the bot knows, retained discovery configs go to
``homeassistant/sensor/hamsterbot_SLUG/METRIC/config`` (tonight, last night and all-time distance in metres,
and battery), all reading one retained JSON state on ``PREFIX/bot/SLUG/state``. The state is read with the
same read functions as ``/hamster`` (stored totals plus the wheel buffers, no flush) and published at most
every ``flush_seconds``, and only when it changed. ``PREFIX/bot/status`` says online/offline (last will),
so Home Assistant greys the sensors out while the bot is away.

The messages are built by pure functions; ``HomeAssistantPublisher`` only connects and sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from bot import __version__
from bot.core.model import HamsterNow
from sensors.mqtt import (
    Backoff,
    BrokerSettings,
    Reporter,
    describe_error,
    make_client,
    while_connected,
)

if TYPE_CHECKING:
    from aiomqtt import Client

log = logging.getLogger(__name__)

DISCOVERY_PREFIX = "homeassistant"
# metric -> (name in Home Assistant, unit, device_class, state_class, JSON key)
METRICS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("tonight", "Tonight", "m", "distance", "measurement", "tonight_m"),
    ("last_night", "Last night", "m", "distance", "measurement", "last_night_m"),
    ("all_time", "All time", "m", "distance", "total_increasing", "all_time_m"),
    ("battery", "Battery", "%", "battery", "measurement", "battery"),
)

Message = tuple[str, bytes]


def slug(name: str) -> str:
    """A hamster's name as a topic level and an id: lowercase letters, digits and underscores."""
    text = re.sub(r"[^a-z0-9]+", "_", name.casefold()).strip("_")
    return text or "hamster"


def slugs(names: Sequence[str]) -> dict[str, str]:
    """name -> a slug unique among ``names`` (a clash gets the next free number)."""
    taken: set[str] = set()
    result = {}
    for name in names:
        base = candidate = slug(name)
        number = 2
        while candidate in taken:
            candidate, number = f"{base}_{number}", number + 1
        taken.add(candidate)
        result[name] = candidate
    return result


def status_topic(prefix: str) -> str:
    return f"{prefix}/bot/status"


def state_topic(prefix: str, hamster_slug: str) -> str:
    return f"{prefix}/bot/{hamster_slug}/state"


def discovery_messages(prefix: str, names: Sequence[str]) -> list[Message]:
    """The retained discovery configs for every hamster: one device each, four sensors."""
    messages = []
    for name, hamster_slug in slugs(names).items():
        device = {
            "identifiers": [f"hamsterbot_{hamster_slug}"],
            "name": f"{name} the hamster",
            "manufacturer": "hamsterbot",
            "model": "Hamster wheel",
            "sw_version": __version__,
        }
        for metric, label, unit, device_class, state_class, key in METRICS:
            config: dict[str, object] = {
                "name": label,
                "unique_id": f"hamsterbot_{hamster_slug}_{metric}",
                "object_id": f"{hamster_slug}_{metric}",
                "state_topic": state_topic(prefix, hamster_slug),
                "value_template": f"{{{{ value_json.{key} }}}}",
                "unit_of_measurement": unit,
                "device_class": device_class,
                "state_class": state_class,
                "availability_topic": status_topic(prefix),
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": device,
            }
            if device_class == "distance":
                config["suggested_display_precision"] = 0
            topic = f"{DISCOVERY_PREFIX}/sensor/hamsterbot_{hamster_slug}/{metric}/config"
            messages.append((topic, json.dumps(config, separators=(",", ":")).encode()))
    return messages


def state_payload(hamster: HamsterNow) -> bytes:
    """One hamster's state: metres rounded to the centimetre; null where there is no figure."""

    def metres(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return json.dumps(
        {
            "tonight_m": metres(hamster.tonight_m),
            "last_night_m": metres(hamster.last_night_m),
            "all_time_m": metres(hamster.all_time_m),
            "battery": hamster.sensor.battery,
        },
        separators=(",", ":"),
    ).encode()


class HomeAssistantPublisher:
    """Keeps Home Assistant's view of every hamster current, reconnecting forever."""

    def __init__(
        self,
        settings: BrokerSettings,
        read: Callable[[], Awaitable[list[HamsterNow]]],
        names: Sequence[str],
        *,
        client_id: str,
        interval: float,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.read = read
        self.names = list(names)
        self.slugs = slugs(self.names)
        self.client_id = client_id
        self.interval = interval
        self.backoff = backoff or Backoff()
        self.connected = asyncio.Event()
        self.published_states = 0
        self._sent: dict[str, bytes] = {}
        self._reporter = Reporter("Home Assistant")

    async def run(self) -> None:
        from aiomqtt import MqttError

        prefix = self.settings.topic_prefix
        while True:
            client = make_client(
                self.settings,
                client_id=self.client_id,
                clean_session=True,
                will=(status_topic(prefix), b"offline"),
            )
            client.pending_calls_threshold = 4 * len(METRICS) * max(len(self.names), 1) + 10
            try:
                async with client:
                    self.backoff.reset()
                    self._sent.clear()
                    self._reporter.connected(
                        f"publishing {len(self.names)} hamsters to "
                        f"{self.settings.host}:{self.settings.port}"
                    )
                    try:
                        await while_connected(client, self._session(client))
                    except asyncio.CancelledError:
                        # A clean disconnect sends no will: say it ourselves (briefly).
                        with contextlib.suppress(Exception):
                            await client.publish(
                                status_topic(prefix), b"offline", qos=1, retain=True, timeout=2
                            )
                        raise
                    finally:
                        self.connected.clear()
            except MqttError as err:
                kind, text = describe_error(err, self.settings)
                delay = self.backoff.next()
                self._reporter.problem(kind, text, delay)
                await asyncio.sleep(delay)

    async def _session(self, client: Client) -> None:
        prefix = self.settings.topic_prefix
        await self._publish(client, discovery_messages(prefix, self.names))
        await self._publish(client, [(status_topic(prefix), b"online")])
        self.connected.set()
        while True:
            await self._publish_states(client)
            # At most every flush_seconds: the figures change no faster than the disk does.
            await asyncio.sleep(self.interval)

    async def _publish_states(self, client: Client) -> None:
        prefix = self.settings.topic_prefix
        changed = []
        for hamster in await self.read():
            hamster_slug = self.slugs.get(hamster.name)
            if hamster_slug is None:
                continue
            payload = state_payload(hamster)
            if self._sent.get(hamster_slug) != payload:
                changed.append((state_topic(prefix, hamster_slug), payload))
                self._sent[hamster_slug] = payload
        await self._publish(client, changed)
        self.published_states += len(changed)

    async def _publish(self, client: Client, messages: list[Message]) -> None:
        await asyncio.gather(
            *(
                client.publish(topic, payload, qos=1, retain=True, timeout=math.inf)
                for topic, payload in messages
            )
        )
