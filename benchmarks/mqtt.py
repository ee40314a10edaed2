"""Wheels through MQTT: readings/s from gateways through a local Mosquitto into the bot's pipelines,
the bot's CPU per reading, the bot's share of one core while 1,000 readings a second arrive (the
budget: 1,000 homes at 1 reading/s under 10% of one core), and the gateway spool's write cost per
reading.

The gateways run in a child process (``python -m benchmarks.mqtt publish ...``: one spool, one
``WheelPublisher`` per home, as ``hamsterbot gateway --replay`` does), so the CPU time measured in
this process is the bot's alone: its MQTT session (``sensors.mqtt_session``: paho's parsing and
the PUBACKs, read and sent a batch at a time), decoding, counting and the periodic flushes into
SQLite. The measuring code wakes only on the pipelines' credit listeners, never on a poll, so it
adds next to nothing to that time. A pass whose credited total is not the truth fails.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bot import app
from bot import config as config_module
from sensors.csc import encode_csc_measurement
from sensors.mqtt import Backoff, WheelPublisher
from storage.spool import Spool

HOME_PREFIX = "home"


@dataclass(frozen=True, slots=True)
class MqttResult:
    homes: int
    readings: int
    per_s: float  # end to end as fast as it goes, gateway process -> broker -> bot pipeline
    bot_cpu_us: float  # bot process CPU per reading at that pace
    paced_per_s: float  # readings/s offered in the paced run (1,000 homes at 1 Hz)
    paced_seconds: float
    core_share_paced: float  # bot CPU / wall time while readings arrive at paced_per_s
    spool_write_us: float  # Spool.add, committed, per reading
    credited: int
    truth: int


def _readings(home: int, count: int, start: float) -> list[tuple[float, bytes]]:
    """One home's wheel: ``count`` notifications at 1 Hz, running two revolutions a second."""
    base = 1_000 * home
    return [
        (start + i, encode_csc_measurement(base + 2 * i, (i * 1024) & 0xFFFF)) for i in range(count)
    ]


def _config(workdir: Path, url: str, homes: int, database: str) -> config_module.Config:
    return config_module.parse(
        {
            "bot": {
                "database": str(workdir / database),
                "timezone": "UTC",
                # 1,000 wheels flushed every 60 s (the default) is 16.7 flushes a second: the same
                # rate from ``homes`` wheels.
                "flush_seconds": max(1.0, 60.0 * homes / 1000),
            },
            "mqtt": {"url": url, "client_id": f"bench-{database}"},
            "gateway": {"home": "bench"},
            "hamsters": [
                {"name": f"w{h}", "wheel_diameter_cm": 20, "sensor": f"mqtt:{HOME_PREFIX}{h}/w{h}"}
                for h in range(homes)
            ],
        }
    )


async def _publish(
    url: str, spool_file: Path, homes: int, count: int, start: float, rate: float
) -> None:
    """The child process, one gateway per home sharing a spool. ``rate == 0``: spool everything,
    then publish as fast as it goes; else spool and publish ``rate`` readings a second in all,
    spread over the homes, as live gateways do."""
    settings = config_module.parse(
        {"mqtt": {"url": url}, "hamsters": [{"name": "x", "wheel_diameter_cm": 20}]}
    ).mqtt
    with Spool.open(spool_file) as spool:
        publishers = [
            WheelPublisher(
                settings,
                spool,
                home=f"{HOME_PREFIX}{home}",
                wheel=f"w{home}",
                client_id=f"bench-gateway-{home}",
                status=False,
                backoff=Backoff(0.05, 0.5),
            )
            for home in range(homes)
        ]
        nights = [_readings(home, count, start) for home in range(homes)]
        if not rate:
            for home, night in enumerate(nights):
                spool.add_many(f"w{home}", night, "bench")
            await asyncio.gather(*(p.run(until_empty=True) for p in publishers))
            return
        running = [asyncio.create_task(p.run()) for p in publishers]
        await asyncio.gather(*(p.connected.wait() for p in publishers))
        began = time.perf_counter()
        for index in range(count * homes):
            home, tick = index % homes, index // homes
            due = began + index / rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            at, payload = nights[home][tick]
            spool.add(f"w{home}", at, payload, "bench")
            publishers[home].wake()
        while spool.count():  # noqa: ASYNC110  (the publishers drain it in this loop)
            await asyncio.sleep(0.01)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


def spool_write_us(workdir: Path, count: int) -> float:
    """``Spool.add`` (one committed INSERT, WAL, synchronous=NORMAL) per reading, in microseconds."""
    payloads = _readings(0, count, time.time())
    with Spool.open(workdir / "spool-write.db") as spool:
        started = time.perf_counter()
        for at, payload in payloads:
            spool.add("w", at, payload, "bench")
        elapsed = time.perf_counter() - started
    return elapsed / count * 1e6


@dataclass(frozen=True, slots=True)
class _Pass:
    readings: int  # measured: from the first reading the bot saw to the last
    wall_s: float
    cpu_s: float
    credited: int


async def _one_pass(
    workdir: Path, url: str, name: str, homes: int, count: int, rate: float
) -> _Pass:
    """A fresh bot database and spool; the child publishes; this process counts."""
    runtime = await app.open_runtime(_config(workdir, url, homes, f"{name}.db"))
    try:
        app.start_wheel_sources(runtime)
        assert runtime.mqtt is not None
        async with asyncio.timeout(30):
            await runtime.mqtt.connected.wait()
        start = round(time.time() - 86400)
        last = start + count - 1
        arguments = [url, str(workdir / f"{name}-spool.db"), homes, count, start, rate]
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.mqtt", "publish", json.dumps(arguments)
        )
        pipelines = list(runtime.pipelines.values())
        # Woken by the pipelines' credit listeners, not by polling: a poll every 10 ms costs this
        # process ~2% of a core on its own (each wake-up finds the caches cold), which is the
        # benchmark's work, not the bot's. Every reading here credits two revolutions.
        by_name = {p.hamster.name: p for p in pipelines}
        finished: set[str] = set()
        done = asyncio.Event()
        marks: list[float] = []  # wall, cpu and readings counted at the first credit

        def credited(name: str, revolutions: int, metres: float) -> None:
            if not marks:
                marks.extend(
                    (
                        time.perf_counter(),
                        time.process_time(),
                        sum(p.notifications for p in pipelines),
                    )
                )
            pipeline = by_name[name]
            # ``notifications`` first: ``counter.state`` builds a CounterState on every call.
            if pipeline.notifications >= count and pipeline.counter.state.last_at == last:
                finished.add(name)
                if len(finished) == len(pipelines):
                    done.set()

        for pipeline in pipelines:
            pipeline.listeners.append(credited)
        async with asyncio.timeout(600):
            await done.wait()
            await app.flush_all(pipelines)
            wall = time.perf_counter() - marks[0]
            cpu = time.process_time() - marks[1]
            if await child.wait() != 0:
                raise RuntimeError("the publishing gateway process failed")
        credited_total = sum(p.credited for p in pipelines)
        truth = homes * 2 * (count - 1)
        if credited_total != truth:
            raise AssertionError(f"mqtt {name}: credited {credited_total}, the wheels ran {truth}")
        return _Pass(homes * count - int(marks[2]), wall, cpu, credited_total)
    finally:
        await runtime.close()


async def run(
    workdir: Path, *, homes: int, readings_per_home: int, paced_seconds: float
) -> MqttResult:
    from tests.mqtt.broker import Mosquitto, find_mosquitto

    binary = find_mosquitto()
    if binary is None:
        raise RuntimeError(
            "the MQTT benchmark needs Debian's mosquitto (apt-get install mosquitto)"
        )
    broker = Mosquitto(workdir / "broker", binary=binary)
    await broker.start()
    try:
        flood = await _one_pass(workdir, broker.url, "flood", homes, readings_per_home, 0)
        # 1,000 homes at 1 reading/s: the same message rate, from ``homes`` gateways.
        rate = 1000.0
        paced_count = max(2, round(rate * paced_seconds / homes))
        paced = await _one_pass(workdir, broker.url, "paced", homes, paced_count, rate)
    finally:
        await broker.stop()
    return MqttResult(
        homes=homes,
        readings=homes * readings_per_home,
        per_s=flood.readings / flood.wall_s if flood.wall_s > 0 else 0.0,
        bot_cpu_us=flood.cpu_s / max(flood.readings, 1) * 1e6,
        paced_per_s=paced.readings / paced.wall_s if paced.wall_s > 0 else 0.0,
        paced_seconds=paced.wall_s,
        core_share_paced=paced.cpu_s / paced.wall_s if paced.wall_s > 0 else 0.0,
        spool_write_us=spool_write_us(workdir, min(homes * readings_per_home, 20_000)),
        credited=flood.credited,
        truth=homes * 2 * (readings_per_home - 1),
    )


if __name__ == "__main__" and sys.argv[1:2] == ["publish"]:
    url, spool_file, homes, count, start, rate = json.loads(sys.argv[2])
    asyncio.run(_publish(url, Path(spool_file), homes, count, start, rate))
