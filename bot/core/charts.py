"""Charts as PNG bytes: the race (cumulative distance) and the night's hourly activity.

matplotlib is imported the first time a chart is drawn (it costs most of a second at start-up) and always with
the Agg backend through ``matplotlib.figure.Figure``, which keeps no global pyplot state, so drawing in a worker
thread (``asyncio.to_thread``) is safe and the bot keeps answering while it renders. Any failure to draw gives
None: the caller sends its text without the picture.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.core.parsing import METRES_PER_MILE, Units

log = logging.getLogger(__name__)

WIDTH_IN, HEIGHT_IN, DPI = 12.0, 7.0, 100  # 1200 x 700 px: fills a phone screen in landscape
HAMSTER_COLOUR = "#e8871e"
HAMSTER_COLOURS = (HAMSTER_COLOUR, "#8c3b0c", "#f2c12e", "#c2185b")
# Fixed margins instead of tight_layout, which measures every label and costs as much as the drawing.
MARGINS = {"left": 0.08, "right": 0.98, "top": 0.91, "bottom": 0.1}
PEOPLE_COLOURS = (
    "#1f77b4",
    "#2ca02c",
    "#9467bd",
    "#d62728",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
)
_lock = threading.Lock()
# matplotlib is not thread-safe (shared font caches): one chart at a time, each in a worker thread.
_draw_lock = threading.Lock()
_matplotlib: Any = None


@dataclass(frozen=True, slots=True, eq=False)
class RaceLine:
    """One runner's cumulative distance: ``cumulative_m[i]`` is the total up to ``times[i]`` (epoch seconds)."""

    name: str
    times: np.ndarray
    cumulative_m: np.ndarray
    is_hamster: bool = False
    local_offsets: np.ndarray | None = field(default=None)  # seconds east of UTC at each time


def _unit_metres(units: Units) -> float:
    return METRES_PER_MILE if units == "mi" else 1000.0


def _load() -> Any:
    """matplotlib with the Agg backend, loaded once; None when it is not installed or broken."""
    global _matplotlib
    with _lock:
        if _matplotlib is None:
            try:
                import matplotlib

                matplotlib.use("Agg", force=True)
                from matplotlib.backends.backend_agg import FigureCanvasAgg
                from matplotlib.figure import Figure

                _matplotlib = (Figure, FigureCanvasAgg)
            except Exception:
                log.warning("matplotlib cannot be loaded; charts are off", exc_info=True)
                _matplotlib = False
        return _matplotlib or None


def _figure() -> Any:
    loaded = _load()
    if loaded is None:
        return None
    figure_class, canvas_class = loaded
    figure = figure_class(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    canvas_class(figure)
    return figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    # Light compression: a chart is a few hundred KB at most either way, and level 6 is slow.
    figure.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def _style(axes: Any) -> None:
    axes.grid(True, axis="y", alpha=0.3)
    axes.spines["top"].set_visible(False)
    axes.spines["right"].set_visible(False)
    axes.tick_params(labelsize=14)


def draw_hourly(hours: Sequence[tuple[str, float]], title: str, units: Units) -> bytes | None:
    """Bars of distance per hour (synchronous; call through ``hourly_chart``)."""
    figure = _figure()
    if figure is None:
        return None
    per_unit = _unit_metres(units)
    axes = figure.add_subplot(1, 1, 1)
    labels = [_plain(label) for label, _ in hours]
    values = [metres / per_unit for _, metres in hours]
    axes.bar(range(len(values)), values, color=HAMSTER_COLOUR, width=0.8)
    axes.set_xticks(range(len(labels)), labels)
    axes.set_ylabel(units, fontsize=16)
    axes.set_title(_plain(title), fontsize=20)
    _style(axes)
    figure.subplots_adjust(**MARGINS)
    return _png(figure)


def draw_race(lines: Sequence[RaceLine], title: str, units: Units) -> bytes | None:
    """Cumulative distance, one step line per runner, the hamster thick and orange (synchronous)."""
    figure = _figure()
    if figure is None:
        return None
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    per_unit = _unit_metres(units)
    axes = figure.add_subplot(1, 1, 1)
    people = iter(PEOPLE_COLOURS * (len(lines) // len(PEOPLE_COLOURS) + 1))
    hamsters = iter(HAMSTER_COLOURS * (len(lines) // len(HAMSTER_COLOURS) + 1))
    for line in lines:
        offsets = line.local_offsets if line.local_offsets is not None else 0
        # Local wall time as naive datetimes: the axis then reads in the chat's clock.
        when = (np.asarray(line.times, dtype=np.int64) + offsets).astype("datetime64[s]")
        distance = np.asarray(line.cumulative_m, dtype=np.float64) / per_unit
        final = float(distance[-1]) if distance.size else 0.0
        if line.is_hamster:
            # The wheel turns all night: a line through the samples, thick, in hamster colours.
            label = f"{_plain(line.name)} (hamster): {final:.2f} {units}"
            axes.plot(when, distance, color=next(hamsters), linewidth=5, label=label, zorder=3)
        else:
            # A run counts when it is logged: a step.
            label = f"{_plain(line.name)}: {final:.2f} {units}"
            axes.step(when, distance, where="post", color=next(people), linewidth=2.5, label=label)
    axes.set_ylabel(f"distance ({units})", fontsize=16)
    axes.set_title(_plain(title), fontsize=20)
    axes.set_ylim(bottom=0)
    locator = AutoDateLocator(minticks=4, maxticks=9)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    if lines:
        axes.legend(loc="upper left", fontsize=14, frameon=False)
    _style(axes)
    figure.subplots_adjust(**MARGINS)
    return _png(figure)


def _plain(text: str) -> str:
    """Text as itself: a ``$`` in a chat name would otherwise start matplotlib's math mode."""
    return text.replace("$", r"\$")


def _locked(draw: Any, *args: Any) -> bytes | None:
    with _draw_lock, warnings.catch_warnings():
        # A name with an emoji or a script the font lacks draws as boxes; no need to warn each time.
        warnings.filterwarnings(
            "ignore", message=r"Glyph .* missing from font", category=UserWarning
        )
        return draw(*args)


async def _render(draw: Any, *args: Any) -> bytes | None:
    try:
        return await asyncio.to_thread(_locked, draw, *args)
    except Exception:
        log.exception("Drawing a chart failed")
        return None


async def hourly_chart(hours: list[tuple[str, float]], *, title: str, units: Units) -> bytes | None:
    """PNG of distance per hour (``[("22", metres), ...]``), or None when matplotlib cannot render."""
    return await _render(draw_hourly, list(hours), title, units)


async def race_chart(lines: list[RaceLine], *, title: str, units: Units) -> bytes | None:
    """PNG of the race's cumulative distance lines, or None when matplotlib cannot render."""
    return await _render(draw_race, list(lines), title, units)


PREVIEW_SIZE_PX = (1200, 630)  # what Telegram, Discord and Open Graph crawlers show best


def draw_preview(title: str, headline: str, lines: Sequence[str]) -> bytes | None:
    """A link preview card: a title, one big figure and a few lines of text (synchronous)."""
    loaded = _load()
    if loaded is None:
        return None
    figure_class, canvas_class = loaded
    width, height = PREVIEW_SIZE_PX
    figure = figure_class(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="#fff8ee")
    canvas_class(figure)
    figure.text(0.06, 0.80, _plain(title), fontsize=34, color="#5a2d0c", weight="bold")
    figure.text(0.06, 0.50, _plain(headline), fontsize=64, color=HAMSTER_COLOUR, weight="bold")
    for index, line in enumerate(lines[:3]):
        figure.text(0.06, 0.32 - index * 0.09, _plain(line), fontsize=26, color="#3b3b3b")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


async def preview_image(title: str, headline: str, lines: list[str]) -> bytes | None:
    """PNG of a link preview card, or None when matplotlib cannot render."""
    return await _render(draw_preview, title, headline, list(lines))
