"""Startup: wall time from process start until ``hamsterbot run`` answers on both platforms, and RSS then.

The child is the real ``python -m bot run --config ...`` with Telegram and Discord pointed at the fakes from
``tests/fakes`` (served from this process on 127.0.0.1) and a simulated wheel. It is ready when all of these have
happened: the log line "hamsterbot is running", Telegram's "polling as @...", Discord's "slash commands
registered", and a live gateway session on the fake Discord. RSS is read from ``/proc/<pid>/status`` at that
moment.

Whether matplotlib was imported is read from ``/proc/<pid>/maps``: importing matplotlib loads its compiled
extension modules, so a mapped file under ``/matplotlib/`` means it was imported. This needs no hook in the
bot and nothing in the child's environment, so the child is exactly what a user runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import p50, rss_mb

READY_LINES = ("hamsterbot is running", "Telegram: polling as @", "slash commands registered")
TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class StartupSample:
    ready_s: float
    rss_mb: float
    matplotlib_loaded: bool


@dataclass(frozen=True, slots=True)
class StartupResult:
    samples: tuple[StartupSample, ...]

    @property
    def ready_s(self) -> float:
        return p50([s.ready_s for s in self.samples])

    @property
    def rss_mb(self) -> float:
        return p50([s.rss_mb for s in self.samples])

    @property
    def matplotlib_loaded(self) -> bool:
        return any(s.matplotlib_loaded for s in self.samples)


def mapped_files(pid: int) -> set[str]:
    """Paths of the files a process has mapped (its shared libraries and extension modules)."""
    paths = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].startswith("/"):
            paths.add(parts[5])
    return paths


def has_matplotlib(paths: set[str]) -> bool:
    return any("/matplotlib/" in path for path in paths)


def write_config(path: Path, database: Path, telegram: object, discord: object) -> None:
    path.write_text(
        f"""
[bot]
database = "{database}"
timezone = "UTC"
units = "km"
log_level = "INFO"

[[hamsters]]
name = "Ursula"
wheel_diameter_cm = 20
sensor = "simulated"

[telegram]
base_url = "{telegram.base_url}"

[discord]
token = "{discord.token}"
guild_ids = [{discord.guild.id}]
api_base_url = "{discord.api_base_url}"
gateway_url = "{discord.gateway_url}"
""",
        encoding="utf-8",
    )


async def _one(workdir: Path, index: int) -> StartupSample:
    from tests.fakes.discord_api import FakeDiscord
    from tests.fakes.telegram_api import FakeTelegram

    telegram = FakeTelegram()
    discord = FakeDiscord()
    await telegram.start()
    await discord.start()
    try:
        config = workdir / f"startup-{index}.toml"
        write_config(config, workdir / f"startup-{index}.db", telegram, discord)
        env = {**os.environ, "HAMSTERBOT_TELEGRAM_TOKEN": telegram.token}
        env.pop("HAMSTERBOT_DISCORD_TOKEN", None)
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(config),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir,
            env=env,
        )
        try:
            return await asyncio.wait_for(_until_ready(process, discord, started), TIMEOUT_S)
        finally:
            await _stop(process)
    finally:
        await telegram.close()
        await discord.close()


async def _until_ready(
    process: asyncio.subprocess.Process, discord: object, started: float
) -> StartupSample:
    assert process.stderr is not None
    waiting = set(READY_LINES)
    log: list[str] = []
    while waiting or discord._live_connection() is None:  # type: ignore[attr-defined]
        try:
            raw = await asyncio.wait_for(process.stderr.readline(), 0.01)
        except TimeoutError:
            continue
        if not raw:
            raise RuntimeError("hamsterbot run exited before it was ready:\n" + "".join(log[-30:]))
        line = raw.decode(errors="replace")
        log.append(line)
        waiting = {marker for marker in waiting if marker not in line}
    ready_s = time.perf_counter() - started
    sample = StartupSample(ready_s, rss_mb(process.pid), has_matplotlib(mapped_files(process.pid)))
    # Keep reading so the child never blocks on a full pipe while it shuts down.
    asyncio.get_running_loop().create_task(_drain(process.stderr))
    return sample


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


async def run(workdir: Path, *, repetitions: int) -> StartupResult:
    samples = [await _one(workdir, index) for index in range(repetitions)]
    return StartupResult(tuple(samples))
