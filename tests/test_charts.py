"""bot.core.charts: real PNGs from matplotlib (Agg) drawn in a worker thread."""

from __future__ import annotations

import asyncio
import struct
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from bot import cli
from bot.core import charts
from bot.core.parsing import parse_period
from sensors.counter import CounterState, Credit
from storage.db import Database
from storage.wheel import WheelStore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_hourly_chart_is_a_phone_sized_png() -> None:
    hours = [(f"{h:02d}", float(h * 100)) for h in (20, 21, 22, 23, 0, 1, 2, 3)]
    png = await charts.hourly_chart(hours, title="Ursula last night", units="km")
    assert png is not None
    assert png_size(png) == (1200, 700)


async def test_race_chart_draws_every_runner() -> None:
    t0 = 1_764_288_000
    times = np.arange(t0, t0 + 7 * 86400, 3600)
    lines = [
        charts.RaceLine("Ursula", times, np.cumsum(np.full(times.size, 60.0)), is_hamster=True),
        charts.RaceLine(
            "Alice", np.array([t0, t0 + 86400, t0 + 7 * 86400]), np.array([0, 5000.0, 5000.0])
        ),
        charts.RaceLine("Bob", np.array([t0, t0 + 7 * 86400]), np.array([0.0, 0.0])),
    ]
    png = await charts.race_chart(lines, title="Race, this week (mi)", units="mi")
    assert png is not None and png_size(png) == (1200, 700)
    empty = await charts.race_chart([], title="nobody", units="km")
    assert empty is not None and png_size(empty) == (1200, 700)


async def test_a_drawing_failure_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> bytes:
        raise RuntimeError("no canvas today")

    monkeypatch.setattr(charts, "draw_hourly", broken)
    assert await charts.hourly_chart([("01", 1.0)], title="t", units="km") is None


def test_say_chart_week_saves_a_real_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hamsterbot.toml"
    config.write_text(
        f'[bot]\ndatabase = "{tmp_path / "bot.db"}"\ntimezone = "Asia/Kathmandu"\n\n'
        '[[hamsters]]\nname = "Ursula"\nwheel_diameter_cm = 20\n'
    )
    now = time.time()
    week = parse_period("week", now=datetime.fromtimestamp(now, ZoneInfo("Asia/Kathmandu")))

    async def fill() -> None:
        async with await Database.open(tmp_path / "bot.db") as db:
            store = await WheelStore.open(db, "Ursula")
            start = week.start.timestamp()
            for at in np.linspace(start, now - 60, 20):
                store.record(Credit(300, at, at + 30, False), [], CounterState(0, 0, 0))
            await store.flush()

    asyncio.run(fill())
    args = ["say", "--config", str(config), "--chat", "g", "--user", "Alice"]
    assert cli.main([*args, "/logrun 5 km"]) == 0
    assert cli.main([*args, "--image-dir", str(tmp_path / "img"), "/chart week"]) == 0
    out = capsys.readouterr().out
    images = [
        line.removeprefix("image: ") for line in out.splitlines() if line.startswith("image: ")
    ]
    assert len(images) == 1 and "📈 Race, this week (mi)" in out
    png = Path(images[0]).read_bytes()
    assert png_size(png) == (1200, 700) and len(png) > 10_000


async def test_hostile_names_draw_as_text() -> None:
    t0 = 1_764_288_000
    names = ["$\\frac{1", "a$b$c", "🐹 Hammy", "名前", "x" * 40, "\\mathrm{oops}$"]
    lines = [
        charts.RaceLine(name, np.array([t0, t0 + 3600 * (i + 1)]), np.array([0.0, 100.0 * i]))
        for i, name in enumerate(names)
    ]
    png = await charts.race_chart(lines, title="Race, $5 week", units="km")
    assert png is not None and png_size(png) == (1200, 700)
    hourly = await charts.hourly_chart([("$", 1.0), ("01", 2.0)], title="$oops", units="mi")
    assert hourly is not None


async def test_charts_drawn_at_once_are_all_complete() -> None:
    hours = [(f"{h:02d}", float(h)) for h in range(24)]
    pngs = await asyncio.gather(
        *(charts.hourly_chart(hours, title=f"night {i}", units="km") for i in range(4))
    )
    assert all(p is not None and png_size(p) == (1200, 700) for p in pngs)
    assert len(set(pngs)) == 4  # each title drawn into its own picture
