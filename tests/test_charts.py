"""bot.core.charts: real PNGs from matplotlib (Agg) drawn in a worker thread."""

from __future__ import annotations

import struct

import numpy as np

from bot.core import charts

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


async def test_a_drawing_failure_gives_none(monkeypatch) -> None:
    def broken(*args: object) -> bytes:
        raise RuntimeError("no canvas today")

    monkeypatch.setattr(charts, "draw_hourly", broken)
    assert await charts.hourly_chart([("01", 1.0)], title="t", units="km") is None
