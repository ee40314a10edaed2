"""Wiring and lifecycle: store, wheels, frontends, scheduler; SIGINT/SIGTERM shut down cleanly.

Everything runs in one asyncio loop. Each long-lived part (a wheel source, a chat frontend, the flusher) runs
under ``supervise``: if it crashes it is logged and restarted with backoff, and it never takes the others down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.config import (
    DISCORD_TOKEN_ENV,
    TELEGRAM_TOKEN_ENV,
    Config,
    HamsterConfig,
    WebSettings,
)
from bot.core.commands import BotCore
from bot.core.model import SensorStatus
from bot.core.reads import Hamster
from bot.core.scheduler import PartSplit, Sender, SummaryScheduler
from bot.frontends import FrontendOff
from bot.wheels import WheelPipeline, claimed, flush_all, flush_forever
from sensors.backoff import backoff_delay
from sensors.capture import CaptureWriter
from storage.db import Database, StorageError

if TYPE_CHECKING:
    from bot.frontends.web import WebServer
    from sensors.mqtt import MqttWheelFeed

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class DemoClock:
    """Simulated time: starts at ``start`` (default ``lead`` seconds before the wall clock) and runs
    ``speedup`` times faster than the wall clock until it reaches ``fast_until`` (default: the wall
    clock's time, so it catches up and never writes timestamps from the future), then keeps pace with
    the wall clock. ``demo`` shows a whole night in about a minute."""

    def __init__(
        self,
        speedup: float,
        lead: float = 0.0,
        wall: Clock = time.time,
        *,
        start: float | None = None,
        fast_until: float | None = None,
    ) -> None:
        self._wall = wall
        self._origin_wall = wall()
        self._origin_sim = self._origin_wall - lead if start is None else start
        if fast_until is None:  # until it meets the (moving) wall clock
            lead = self._origin_wall - self._origin_sim
            if lead <= 0:
                fast_until = self._origin_sim
            elif speedup > 1:
                fast_until = self._origin_wall + lead / (speedup - 1)
            else:
                fast_until = math.inf
        self._fast_until = fast_until
        # The wall time at which the fast part ends.
        self._slow_from = self._origin_wall + max(self._fast_until - self._origin_sim, 0.0) / max(
            speedup, 1e-9
        )
        self.speedup = speedup

    def __call__(self) -> float:
        wall = self._wall()
        if wall < self._slow_from:
            return self._origin_sim + (wall - self._origin_wall) * self.speedup
        return max(self._fast_until, self._origin_sim) + (wall - self._slow_from)

    @property
    def rate(self) -> float:
        return self.speedup if self._wall() < self._slow_from else 1.0

    async def sleep(self, simulated_seconds: float) -> None:
        await asyncio.sleep(max(simulated_seconds / self.rate, 0.05))


@dataclass
class Runtime:
    """The open database, the command core and one pipeline per hamster."""

    config: Config
    db: Database
    core: BotCore
    pipelines: dict[str, WheelPipeline]
    recorder: CaptureWriter | None = None
    tasks: list[asyncio.Task] = field(default_factory=list)
    senders: dict[str, Sender] = field(default_factory=dict)  # platform -> post to a chat
    # platform -> how its sender splits a report into messages (each recorded as it goes out)
    report_parts: dict[str, PartSplit] = field(default_factory=dict)
    web: WebServer | None = None
    mqtt: MqttWheelFeed | None = None  # the broker connection, when a hamster is fed from MQTT

    def live_status(self, name: str) -> SensorStatus | None:
        pipeline = self.pipelines.get(name)
        return pipeline.status if pipeline else None

    async def close(self) -> None:
        """Stop tasks, flush the wheels, close the database: on every exit path."""
        if self.web is not None:
            await self.web.close()
            self.web = None
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
        try:
            await flush_all(self.pipelines.values())
        finally:
            if self.recorder is not None:
                self.recorder.close()
            await self.db.close()


async def open_runtime(
    config: Config, *, record: Path | None = None, writable: bool = False
) -> Runtime:
    """``writable``: the caller must write (``run``, ``demo``); a database that could only be
    opened read-only is then refused at once, not on every wheel flush for ever."""
    db = await Database.open(config.bot.database)
    if writable and db.read_only:
        await db.close()
        raise StorageError(
            f"{config.bot.database} is in a folder that cannot be written, and the bot must write "
            "to it: give the user running hamsterbot write access to the folder"
        )
    recorder = None
    try:
        recorder = CaptureWriter(record) if record else None
        pipelines = {}
        for hamster in config.hamsters:
            # Read-only until a wheel source starts: `say` or `export` beside `run` count nothing.
            pipelines[hamster.name] = await WheelPipeline.open(db, hamster, recorder, holder=None)
        # The core reads each wheel's buffer as it is (live figures); it never flushes.
        stores = {name: pipeline.store for name, pipeline in pipelines.items()}
        hamsters = [Hamster(h, stores[h.name].wheel_id, stores[h.name]) for h in config.hamsters]
        core = BotCore(
            db,
            config,
            hamsters,
            live=lambda name: pipelines[name].status if name in pipelines else None,
        )
        return Runtime(config, db, core, pipelines, recorder)
    except BaseException:
        if recorder is not None:
            recorder.close()
        await db.close()
        raise


async def supervise(
    name: str,
    factory: Callable[[], Awaitable[None]],
    *,
    initial: float = 1.0,
    cap: float = 60.0,
) -> None:
    """Run ``factory()`` forever: log each crash in one line and restart it with jittered
    exponential backoff.

    A network that is down fails the same way every minute for hours: each failure is one line, and
    its traceback is logged once, at DEBUG. Any other crash is a bug: its traceback is logged once at
    ERROR, later repeats in one line.
    """
    attempt = 0
    traced: set[type[BaseException]] = set()

    def pause() -> float:
        nonlocal attempt
        if time.monotonic() - started > 10 * cap:
            attempt = 0  # it ran fine for a long while: this is a new problem
        attempt += 1
        return backoff_delay(attempt - 1, initial, cap, random.random(), spread=0.4)

    while True:
        started = time.monotonic()
        try:
            await factory()
            delay = pause()
            log.warning("%s stopped by itself; restarting", name)
        except asyncio.CancelledError:
            raise
        except FrontendOff as err:
            log.error("%s is off: %s", name, err)
            return
        except Exception as err:
            delay = pause()
            first = type(err) not in traced
            traced.add(type(err))
            network = _is_network_error(err)
            log.error(
                "%s failed: %s; restarting in %.0f s",
                name,
                _one_line(err),
                delay,
                exc_info=first and not network,
            )
            if first and network:
                log.debug("%s: the network failure in full", name, exc_info=True)
        await asyncio.sleep(delay)


# Library errors that mean "the network or the server is unreachable": python-telegram-bot's
# NetworkError/TimedOut, httpx's TransportError, aiohttp's ClientError (matched by name: importing
# the chat libraries here would load them for every subcommand).
_NETWORK_ERROR_NAMES = frozenset({"NetworkError", "TimedOut", "TransportError", "ClientError"})


def _is_network_error(err: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError | TimeoutError):
            return True
        if any(cls.__name__ in _NETWORK_ERROR_NAMES for cls in type(current).__mro__):
            return True
        current = current.__cause__ or current.__context__
    return False


def _one_line(err: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def start_wheel_sources(runtime: Runtime, clock: Clock | DemoClock = time.time) -> None:
    """One task per hamster that has a sensor, plus the periodic flusher."""
    config = runtime.config
    for index, hamster in enumerate(config.hamsters):
        pipeline = runtime.pipelines[hamster.name]
        if hamster.sensor == "simulated":
            runtime.tasks.append(
                asyncio.create_task(
                    supervise(
                        f"simulated wheel {hamster.name}",
                        claimed(pipeline, _simulated_factory(runtime, index, pipeline, clock)),
                    ),
                    name=f"wheel:{hamster.name}",
                )
            )
        elif hamster.mqtt_source:
            continue  # one broker connection for all of them, below
        elif hamster.sensor:
            from sensors.ble import (
                WheelLink,  # lazy: bleak and D-Bus only when a real sensor is used
            )

            link = WheelLink(hamster, config.ble, pipeline)
            runtime.tasks.append(
                asyncio.create_task(claimed(pipeline, link.run)(), name=f"wheel:{hamster.name}")
            )
    mqtt_wheels = [h for h in config.hamsters if h.mqtt_source]
    if mqtt_wheels:
        feed = runtime.mqtt = mqtt_feed(runtime, mqtt_wheels)
        counted = [runtime.pipelines[h.name] for h in mqtt_wheels]
        runtime.tasks.append(
            asyncio.create_task(
                supervise("MQTT wheels", claimed(counted, feed.run)), name="wheels:mqtt"
            )
        )
    runtime.tasks.append(
        asyncio.create_task(
            flush_forever(list(runtime.pipelines.values()), config.bot.flush_seconds),
            name="flusher",
        )
    )


def start_homeassistant(runtime: Runtime) -> None:
    """``[mqtt] homeassistant = true``: every hamster in Home Assistant, through MQTT discovery."""
    config = runtime.config
    if not (config.mqtt.homeassistant and config.mqtt.url):
        return
    from datetime import datetime

    from bot.core import reads
    from bot.core.model import HamsterNow
    from bot.homeassistant import HomeAssistantPublisher

    core = runtime.core
    settings = reads.chat_settings(config, None)

    async def read() -> list[HamsterNow]:
        now = datetime.now(settings.tz)
        return await reads.hamsters_now(core, core.scope_for(None), now, settings)

    publisher = HomeAssistantPublisher(
        config.mqtt,
        read,
        [h.name for h in config.hamsters],
        client_id=f"{bot_client_id(config)}-homeassistant",
        interval=config.bot.flush_seconds,
    )
    runtime.tasks.append(
        asyncio.create_task(supervise("Home Assistant", publisher.run), name="homeassistant")
    )


def bot_client_id(config: Config) -> str:
    """Stable across restarts, so the broker keeps the bot's persistent session."""
    return config.mqtt.client_id or f"hamsterbot-bot-{socket.gethostname()}"


def mqtt_feed(runtime: Runtime, hamsters: list[HamsterConfig]) -> MqttWheelFeed:
    """The bot's one broker connection, feeding every ``mqtt:``/``mqtt-counter:`` hamster."""
    from sensors.mqtt import MqttWheel, MqttWheelFeed

    wheels = []
    for hamster in hamsters:
        pipeline = runtime.pipelines[hamster.name]
        wheels.append(
            MqttWheel(
                hamster.name,
                hamster.sensor or "",
                pipeline,
                value=hamster.value,
                # Readings up to the stored counter's time were counted before a restart.
                last_at=pipeline.counter.state.last_at,
            )
        )
    return MqttWheelFeed(runtime.config.mqtt, wheels, client_id=bot_client_id(runtime.config))


def _simulated_factory(
    runtime: Runtime, index: int, pipeline: WheelPipeline, clock: Clock | DemoClock
) -> Callable[[], Awaitable[None]]:
    from sensors.simulated import SimulatedHamster

    config = runtime.config

    async def run_simulated() -> None:
        now = clock()
        pipeline.link_event("connected", now, detail="simulated sensor")
        sleep = clock.sleep if isinstance(clock, DemoClock) else asyncio.sleep
        hamster = SimulatedHamster(
            seed=config.simulation.seed + index,
            circumference_m=pipeline.hamster.circumference_m,
            tz=ZoneInfo(config.bot.timezone),
            speedup=1.0 if isinstance(clock, DemoClock) else config.simulation.speedup,
            clock=clock,
            sleep=sleep,
            # A real sensor keeps its count across our restarts; so does the simulated one.
            start_counter=pipeline.counter.state.last_raw,
        )
        await hamster.run(pipeline.feed)

    return run_simulated


async def wait_for_signal(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def start_frontends(runtime: Runtime, *, sync_global: bool = False) -> dict[str, Sender]:
    """Telegram and Discord, each under ``supervise``; a platform without a token is off.

    Returns (and adds to ``runtime.senders``) platform -> ``send`` of each frontend started.
    """
    config = runtime.config
    senders: dict[str, Sender] = {}
    if config.telegram.token:
        from bot.frontends.telegram import TelegramFrontend  # lazy: only when configured
        from bot.frontends.telegram import report_parts as telegram_parts

        telegram = TelegramFrontend(runtime.core, config.telegram)
        runtime.tasks.append(
            asyncio.create_task(supervise("Telegram", telegram.run), name="frontend:telegram")
        )
        senders["telegram"] = telegram.send
        runtime.report_parts["telegram"] = telegram_parts
    else:
        log.info("Telegram is off: no [telegram] token or %s", TELEGRAM_TOKEN_ENV)
    if config.discord.token:
        from bot.frontends.discord import DiscordFrontend  # lazy: only when configured
        from bot.frontends.discord import report_parts as discord_parts

        discord = DiscordFrontend(runtime.core, config.discord, sync_global=sync_global)
        runtime.tasks.append(
            asyncio.create_task(supervise("Discord", discord.run), name="frontend:discord")
        )
        senders["discord"] = discord.send
        runtime.report_parts["discord"] = discord_parts
        if not config.discord.guild_ids and not sync_global:
            log.warning(
                "Discord: no [discord] guild_ids, so no slash commands are registered; "
                "add your server's id or run once with --sync-commands global"
            )
    else:
        log.info("Discord is off: no [discord] token or %s", DISCORD_TOKEN_ENV)
    runtime.senders.update(senders)
    return senders


async def start_web(
    runtime: Runtime,
    settings: WebSettings,
    clock: Clock | DemoClock = time.time,
    *,
    next_free: bool = False,
) -> str:
    """The public page: its live figures follow every pipeline's credits. Returns its address."""
    from bot.frontends.web import WebServer  # lazy: aiohttp only when the page is served
    from bot.frontends.web_reads import CoreReads

    server = WebServer(
        CoreReads(runtime.core, runtime.pipelines, clock), settings, runtime.config.bot.units
    )
    url = await server.start(next_free=next_free)
    runtime.web = server
    for pipeline in runtime.pipelines.values():
        pipeline.listeners.append(server.hub.credit)
    runtime.core.after_command = lambda ctx: server.hub.race_changed()
    runtime.core.web_url = settings.public_url or url
    return url


def start_scheduler(
    runtime: Runtime, senders: Mapping[str, Sender], clock: Clock = time.time
) -> SummaryScheduler | None:
    """The morning reports for every chat of a platform that has a sender (platform -> send)."""
    if not senders:
        return None
    scheduler = SummaryScheduler(runtime.core, senders, parts=runtime.report_parts, clock=clock)
    runtime.tasks.append(
        asyncio.create_task(supervise("morning reports", scheduler.run), name="scheduler")
    )
    return scheduler


async def run(
    config: Config,
    *,
    record: Path | None = None,
    stop: asyncio.Event | None = None,
    senders: Mapping[str, Sender] | None = None,
    sync_commands: str | None = None,
) -> None:
    """``hamsterbot run``: everything configured, until SIGINT/SIGTERM.

    ``sync_commands="global"`` also registers the Discord slash commands globally (rate-limited
    by Discord, so only on request).
    """
    unredact = _redact_tokens(config)  # before anything can log
    try:
        runtime = await open_runtime(config, record=record, writable=True)
        stop = stop or asyncio.Event()
        try:
            start_wheel_sources(runtime)
            start_homeassistant(runtime)
            start_frontends(runtime, sync_global=sync_commands == "global")
            runtime.senders.update(senders or {})
            start_scheduler(runtime, runtime.senders)
            if config.web is not None:
                await start_web(runtime, config.web)
            if config.hamsters:
                names = ", ".join(f"{h.name} ({h.sensor or 'no sensor'})" for h in config.hamsters)
            else:
                names = f"no wheel is counted ({config.source} has no [[hamsters]])"
            log.info("hamsterbot is running: %s; database %s", names, config.bot.database)
            await wait_for_signal(stop)
            log.info("Shutting down")
        finally:
            await runtime.close()
    finally:
        unredact()


def _redact_tokens(config: Config) -> Callable[[], None]:
    """Belt and braces: no log line may carry a bot token, whichever library wrote it."""
    tokens = [t for t in (config.telegram.token, config.discord.token) if t]
    # The broker password too, unless it is so short that hiding it would mangle ordinary text.
    if config.mqtt.password and len(config.mqtt.password) >= 6:
        tokens.append(config.mqtt.password)
    if not tokens:
        return lambda: None
    from bot.frontends.redact import install_redactor

    return install_redactor(tokens)
