"""A progress bar for long command-line work (replay, import, backup), on a terminal only.

When stderr is not a terminal (piped, redirected, under systemd) nothing at all is written, so logs and
scripts see exactly what they saw before. The bar is redrawn in place at most ``redraw_s`` apart and
erased when the work ends, so the command's own result lines follow it cleanly.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 24


def _clock_text(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render_bar(fraction: float, count: int, unit: str, elapsed_s: float) -> str:
    """One line: ``[#####-----]  45%  12,345 notifications  6,100/s  0:03 left`` (pure)."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * BAR_WIDTH)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    parts = [f"[{bar}] {fraction * 100:3.0f}%", f"{count:,} {unit}"]
    if elapsed_s > 0:
        parts.append(f"{count / elapsed_s:,.0f}/s")
    if 0 < fraction < 1 and elapsed_s > 0:
        parts.append(f"{_clock_text(elapsed_s * (1 - fraction) / fraction)} left")
    return "  ".join(parts)


class Progress:
    """``update(done, count)`` as work goes on, ``close()`` at the end (or use ``with``).

    ``total`` is in whatever ``done`` counts (bytes of a file, files, pages); ``count`` is what the
    user cares about (notifications, runs) and is shown with ``unit``.
    """

    def __init__(
        self,
        total: float,
        unit: str,
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        redraw_s: float = 0.1,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream) and total > 0
        self.total = total
        self.unit = unit
        self._clock = clock
        self._started = clock()
        self._redraw_s = redraw_s
        self._next_draw = self._started
        self._width = 0

    def update(self, done: float, count: int) -> None:
        if not self.enabled:
            return
        now = self._clock()
        if now < self._next_draw:
            return
        self._next_draw = now + self._redraw_s
        line = render_bar(done / self.total, count, self.unit, now - self._started)
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def erase(self) -> None:
        """Take the bar off the line (to print something else); the next update draws it again."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._next_draw = self._clock()
        self._width = 0

    def close(self) -> None:
        """Erase the bar, so what the command prints next starts on a clean line."""
        self.erase()
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
