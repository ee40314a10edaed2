"""``hamsterbot gateway``: this cage's wheels -> a local spool -> the MQTT broker -> a bot elsewhere.

The wheels are read exactly as ``run`` reads them (BLE links, the simulated hamster), but every raw
notification goes to the spool (``storage.spool``) instead of a counter, and one
``sensors.mqtt.WheelPublisher`` per wheel publishes the spool in order, deleting readings only
after the broker's PUBACK. The bot that subscribes does the counting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.config import Config, ConfigError, HamsterConfig
from sensors.csc import MalformedPayload, read_counter
from sensors.mqtt import Backoff, WheelPublisher
from storage.spool import Spool

log = logging.getLogger(__name__)


def spool_path(config: Config) -> Path:
    """Beside the database: ``hamsterbot.db`` -> ``hamsterbot-spool.db``."""
    database = config.bot.database
    return database.with_name(f"{database.stem}-spool.db")


def check_gateway_config(config: Config) -> str:
    """The home, or ConfigError naming what a gateway needs."""
    origin = str(config.source or "config")
    if config.mqtt.url is None:
        raise ConfigError(f'{origin}: [mqtt] url = "mqtt://HOST:PORT" is needed by the gateway')
    if config.gateway.home is None:
        raise ConfigError(f'{origin}: [gateway] home = "NAME" is needed by the gateway')
    for hamster in config.hamsters:
        bad = [c for c in "/+#" if c in hamster.name]
        if bad and publishable(hamster):
            raise ConfigError(
                f'{origin}: [[hamsters]] "{hamster.name}" name: must not contain "{bad[0]}" '
                "to be published as an MQTT topic level"
            )
    return config.gateway.home


def publishable(hamster: HamsterConfig) -> bool:
    """A wheel this Pi reads itself (not one fed from the broker, not one without a sensor)."""
    return bool(hamster.sensor) and hamster.mqtt_source is None


def client_id(config: Config, home: str, wheel: str) -> str:
    base = config.mqtt.client_id or f"hamsterbot-gateway-{home}"
    return f"{base}-{wheel}"


class SpoolingSink:
    """A wheel source's sink on the gateway: every notification is spooled, then published."""

    def __init__(self, spool: Spool, publisher: WheelPublisher, sensor: str) -> None:
        self.spool = spool
        self.publisher = publisher
        self.sensor = sensor
        self.spooled = 0

    def feed(self, payload: bytes, received_at: float, sensor: str | None = None) -> None:
        """Spool one notification; ``sensor`` is the BLE link's address when it knows it."""
        self.spool.add(self.publisher.wheel, received_at, bytes(payload), sensor or self.sensor)
        self.spooled += 1
        self.publisher.wake()

    def link_event(
        self, kind: str, at: float, value: float | None = None, detail: str = ""
    ) -> None:
        if kind == "battery" and value is not None:
            self.publisher.set_battery(int(value))


def make_publisher(
    config: Config,
    spool: Spool,
    hamster: HamsterConfig,
    *,
    status: bool = True,
    backoff: Backoff | None = None,
) -> WheelPublisher:
    home = check_gateway_config(config)
    return WheelPublisher(
        config.mqtt,
        spool,
        home=home,
        wheel=hamster.name,
        client_id=client_id(config, home, hamster.name),
        status=status,
        backoff=backoff,
    )


async def run_gateway(
    config: Config,
    *,
    stop: asyncio.Event | None = None,
    backoff: Callable[[], Backoff] = Backoff,
) -> None:
    """Read every local wheel and publish it until ``stop`` is set (SIGINT/SIGTERM)."""
    from bot.app import wait_for_signal

    home = check_gateway_config(config)
    wheels = [h for h in config.hamsters if publishable(h)]
    if not wheels:
        raise ConfigError(
            f"{config.source or 'config'}: no [[hamsters]] with a local sensor for the gateway"
        )
    stop = stop or asyncio.Event()
    spool = Spool.open(spool_path(config))
    tasks: list[asyncio.Task] = []
    try:
        for index, hamster in enumerate(config.hamsters):
            if not publishable(hamster):
                continue
            publisher = make_publisher(config, spool, hamster, backoff=backoff())
            tasks.append(asyncio.create_task(publisher.run(), name=f"publish:{hamster.name}"))
            tasks.append(_start_source(config, index, hamster, spool, publisher))
        waiting = spool.count()
        log.info(
            "gateway %s is running: %s -> %s:%d (%d readings waiting in %s)",
            home,
            ", ".join(f"{h.name} ({h.sensor})" for h in wheels),
            config.mqtt.host,
            config.mqtt.port,
            waiting,
            spool.path,
        )
        await wait_for_signal(stop)
        log.info("Shutting down")
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        spool.close()


def _start_source(
    config: Config, index: int, hamster: HamsterConfig, spool: Spool, publisher: WheelPublisher
) -> asyncio.Task:
    from bot.app import supervise

    if hamster.sensor == "simulated":
        sink = SpoolingSink(spool, publisher, "simulated")

        async def run_simulated() -> None:
            from sensors.simulated import SimulatedHamster

            last = spool.last_reading(hamster.name)
            start_counter = None
            if last is not None:
                with contextlib.suppress(MalformedPayload, ValueError):
                    start_counter = read_counter(last[1], hamster.counter_format)[1]
            simulated = SimulatedHamster(
                seed=config.simulation.seed + index,
                circumference_m=hamster.circumference_m,
                tz=ZoneInfo(config.bot.timezone),
                speedup=config.simulation.speedup,
                clock=time.time,
                # A real sensor keeps its count across our restarts; so does the simulated one.
                start_counter=start_counter,
            )
            await simulated.run(sink.feed)

        return asyncio.create_task(
            supervise(f"simulated wheel {hamster.name}", run_simulated),
            name=f"wheel:{hamster.name}",
        )
    from sensors.ble import WheelLink  # lazy: bleak and D-Bus only when a real sensor is used

    sink = SpoolingSink(spool, publisher, hamster.sensor or "")
    link = WheelLink(hamster, config.ble, sink)
    return asyncio.create_task(link.run(), name=f"wheel:{hamster.name}")


async def replay_through_gateway(
    config: Config,
    hamster: HamsterConfig,
    readings: Iterable[tuple[float, bytes]],
    *,
    backoff: Backoff | None = None,
) -> tuple[int, int]:
    """Spool a recorded night and publish it; returns (spooled, published) once all are acked."""
    check_gateway_config(config)
    with Spool.open(spool_path(config)) as spool:
        sensor = hamster.sensor if publishable(hamster) else "replay"
        spooled = spool.add_many(hamster.name, list(readings), sensor or "replay")
        publisher = make_publisher(config, spool, hamster, status=False, backoff=backoff)
        await publisher.run(until_empty=True)
        return spooled, publisher.published
