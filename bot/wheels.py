"""One hamster's counting pipeline: notification bytes -> counter -> buffered store, plus live status.

Every source of notifications (the BLE link, the simulated hamster, ``replay``) calls ``WheelPipeline.feed`` with
the payload and its receive time, so all of them count exactly alike. One wheel has one writer: a pipeline counts
only once it has claimed its wheel (``open`` does, unless told not to; ``claim`` later), and ``feed`` refuses
otherwise, so a new source cannot forget it. ``feed`` does no I/O apart from the optional
capture recording; the store is written by ``flush`` (every ``flush_seconds`` and at shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.config import HamsterConfig
from bot.core.model import SensorStatus
from sensors.capture import CaptureWriter
from sensors.counter import (
    CounterEvent,
    CounterIdentity,
    CounterSettings,
    CounterState,
    RevolutionCounter,
    Update,
)
from sensors.csc import CRANK, CRANK_BITS, MalformedPayload, read_counter
from sensors.plausible import plausible_reading_time
from storage.db import Database
from storage.wheel import SensorEvent, WheelStore

log = logging.getLogger(__name__)

# A new wheel's baseline is written at once: until it is on disk, a crash would make the next
# reading a new baseline and lose whatever the hamster ran in between.
URGENT_EVENTS = frozenset({"baseline", "rebaseline", "new_counter"})


# Told (hamster name, revolutions, metres) each time revolutions are credited: the web page's live
# figures. Called inside ``feed``, so it must return at once.
CreditListener = Callable[[str, int, float], None]


def process_name() -> str:
    """How this process names itself in a wheel's lease (``hamsterbot run``), for the other one's message."""
    return " ".join(Path(arg).name if i == 0 else arg for i, arg in enumerate(sys.argv[:2]))


def counter_settings(hamster: HamsterConfig, field: str | None = None) -> CounterSettings:
    """The counter rules for ``hamster``'s counter ``field`` (a CSC crank counter is 16 bits)."""
    bits = CRANK_BITS if field == CRANK else hamster.counter_bits
    return CounterSettings(
        circumference_m=hamster.circumference_m,
        bits=bits,
        max_speed_kmh=hamster.max_speed_kmh,
        reverse_tolerance=min(hamster.reverse_tolerance, 2 ** (bits - 1) - 1),
    )


def default_sensor(hamster: HamsterConfig) -> str | None:
    """The sensor a reading comes from when its source does not say: ``"simulated"`` or the
    configured address; None (unknown) for ``"auto"`` and for a hamster without a sensor."""
    sensor = hamster.sensor
    return None if sensor is None or sensor == "auto" else sensor


class WheelPipeline:
    """Decode, count and buffer one wheel's notifications."""

    def __init__(
        self,
        hamster: HamsterConfig,
        store: WheelStore,
        recorder: CaptureWriter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hamster = hamster
        self.clock = clock  # the reader's clock, for the plausibility of a reading's time
        self.store = store
        self.recorder = recorder
        state = store.state
        field = state.identity.field if state.identity is not None else None
        self.counter = RevolutionCounter(counter_settings(hamster, field), state)
        self._default_sensor = default_sensor(hamster)
        # The live status is built only when someone reads it (/hamster): building a SensorStatus
        # on every notification was a fifth of the ingest cost (benchmarks/ingest.py).
        self._status = SensorStatus(online=None, source=hamster.sensor or "")
        self._last_reading_at: float | None = None
        self._speed_mps: float | None = None
        self.malformed = 0
        self.notifications = 0
        self.credited = 0  # revolutions credited by this process
        # Set when something must reach the disk now rather than at the next periodic flush.
        self.flush_requested = asyncio.Event()
        self.listeners: list[CreditListener] = []
        self._counting = store.db.holds_wheel(store.wheel_id)

    @property
    def status(self) -> SensorStatus:
        return replace(
            self._status, last_reading_at=self._last_reading_at, speed_mps=self._speed_mps
        )

    @classmethod
    async def open(
        cls,
        db: Database,
        hamster: HamsterConfig,
        recorder: CaptureWriter | None = None,
        *,
        holder: str | None = "",
    ) -> WheelPipeline:
        """Open the wheel and claim it for counting as ``holder`` (default: this process's name).

        ``holder=None`` opens it for reading only (a chat command, the live status): ``claim``
        before feeding it. Raises ``WheelBusy`` when another process counts this wheel.
        """
        pipeline = cls(hamster, await WheelStore.open(db, hamster.name), recorder)
        if holder is not None:
            await pipeline.claim(holder or process_name())
        return pipeline

    async def claim(self, holder: str, *, wait: bool = False) -> None:
        """Become this wheel's one writer: refuse (``WheelBusy``) or ``wait`` while another holds it.

        The counter then starts again from the persisted state: whatever the other writer counted
        before letting go is on disk, and counting on from an older state would credit it twice.
        """
        if self._counting:
            return
        db, wheel_id = self.store.db, self.store.wheel_id
        if wait:
            await db.wait_for_wheel(wheel_id, self.hamster.name, holder)
        else:
            db.claim_wheel(wheel_id, self.hamster.name, holder)
        await self.store.reload()
        state = self.store.state
        field = state.identity.field if state.identity is not None else None
        self.counter = RevolutionCounter(counter_settings(self.hamster, field), state)
        self._counting = True

    def feed(self, payload: bytes, received_at: float, sensor: str | None = None) -> None:
        """Count one notification. Malformed payloads are logged and ignored.

        ``sensor`` names the device the bytes came from (the BLE link's address, an MQTT gateway's
        sensor); without it the hamster's configured sensor is assumed.
        """
        hamster = self.hamster
        if not self._counting:
            raise RuntimeError(f"{hamster.name}: claim the wheel before counting it")
        self.notifications += 1
        if self.recorder is not None:
            self.recorder.write(received_at, bytes(payload))
        counter_format = hamster.counter_format
        try:
            field, raw = read_counter(payload, counter_format)
        except MalformedPayload as err:
            self.malformed += 1
            # A sensor that sends junk does so every second: say it once, then count quietly.
            level = logging.WARNING if self.malformed == 1 else logging.DEBUG
            log.log(level, "%s: ignoring a malformed notification: %s", hamster.name, err)
            return
        if not plausible_reading_time(received_at, self.clock()):
            # sensors/plausible.py: a time from before 2000 or from the future is malformed too.
            self.malformed += 1
            level = logging.WARNING if self.malformed == 1 else logging.DEBUG
            log.log(
                level,
                "%s: ignoring a reading at an implausible time %r",
                hamster.name,
                received_at,
            )
            return
        if sensor is None:
            sensor = self._default_sensor
        counter = self.counter
        identity = counter.identity
        if (
            identity is not None
            and identity.field == field
            and (sensor is None or sensor == identity.sensor)
            and identity.counter_format == counter_format
        ):
            update = counter.update(raw, received_at)
        else:
            update = self._other_counter(
                CounterIdentity(sensor, counter_format, field), raw, received_at
            )
        self._last_reading_at = received_at
        credit, happened = update.credit, update.events
        if credit is None and not happened:
            # A repeat or the wheel rocking, most notifications: only the counter's own state
            # changed, and ``flush`` hands that to the store, so nothing is built or recorded.
            self._speed_mps = 0.0
            return
        events: list[SensorEvent] = []
        for event in happened:
            events.append(SensorEvent(event.at, event.kind, None, event.detail))
            log.info("%s: %s (%s)", hamster.name, event.kind, event.detail)
            if event.kind in URGENT_EVENTS:
                self.flush_requested.set()
        self.store.record(credit, events, self.counter.state)  # self.counter: maybe a new one
        if credit is not None:
            revolutions = credit.revolutions
            self.credited += revolutions
            metres = revolutions * hamster.circumference_m
            for listener in self.listeners:
                try:
                    listener(hamster.name, revolutions, metres)
                except Exception:  # a broken viewer must never stop the counting
                    log.exception("%s: a credit listener failed", hamster.name)
            if not credit.estimated and credit.end > credit.start:
                self._speed_mps = metres / (credit.end - credit.start)

    def _other_counter(self, reading: CounterIdentity, raw: int, at: float) -> Update:
        """A reading whose identity differs from the stored counter's (the rare path)."""
        counter = self.counter
        identity = counter.identity
        if identity is not None and identity.continues(reading):
            # The same counter, now naming its sensor (or a capture's reading of it).
            if identity.sensor is None:
                counter.identity = reading
            return counter.update(raw, at)
        old = counter.state
        self.counter = RevolutionCounter(
            counter_settings(self.hamster, reading.field), CounterState(None, None, None, reading)
        )
        update = self.counter.update(raw, at)
        if old.last_raw is None:
            return update  # a brand-new wheel: its "baseline" event says it all
        was = str(identity) if identity is not None else "a counter of unknown origin"
        detail = (
            f"new counter: {reading} replaces {was}; baseline {self.counter.state.last_raw}, "
            "nothing credited across the switch"
        )
        return Update(credit=None, events=(CounterEvent("new_counter", at, detail),))

    def link_event(
        self, kind: str, at: float, value: float | None = None, detail: str = ""
    ) -> None:
        """A sensor event from the link: connected, disconnected, battery."""
        self.store.add_event(SensorEvent(at, kind, value, detail))
        if kind == "connected":
            self._status = replace(self._status, online=True, since=at)
        elif kind == "disconnected":
            self._status = replace(self._status, online=False, since=at)
            self._speed_mps = None
        elif kind == "battery" and value is not None:
            self._status = replace(self._status, battery=int(value))

    async def flush(self) -> bool:
        self.store.state = self.counter.state
        return await self.store.flush()


def claimed(
    pipelines: WheelPipeline | list[WheelPipeline], source: Callable[[], Awaitable[None]]
) -> Callable[[], Coroutine[Any, Any, None]]:
    """``source`` run only once it holds every wheel it feeds (waiting while another process does)."""
    counted = pipelines if isinstance(pipelines, list) else [pipelines]

    async def run() -> None:
        for pipeline in counted:
            await pipeline.claim(process_name(), wait=True)
        await source()

    return run


async def flush_all(pipelines: Iterable[WheelPipeline]) -> int:
    """Flush every pipeline; a failing one is logged and keeps its buffer for the next try."""
    committed = 0
    for pipeline in pipelines:
        try:
            committed += await pipeline.flush()
        except Exception:
            log.exception("%s: could not write to the database; will retry", pipeline.hamster.name)
    return committed


async def flush_forever(pipelines: list[WheelPipeline], interval: float) -> None:
    """Flush every ``interval`` seconds, or at once when a pipeline asks, until cancelled.

    The caller flushes once more after cancelling (``Runtime.close``).
    """
    requests = [asyncio.ensure_future(p.flush_requested.wait()) for p in pipelines]
    try:
        while True:
            await asyncio.wait(requests, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            for index, pipeline in enumerate(pipelines):
                if requests[index].done():
                    pipeline.flush_requested.clear()
                    requests[index] = asyncio.ensure_future(pipeline.flush_requested.wait())
            await flush_all(pipelines)
    finally:
        for request in requests:
            request.cancel()
