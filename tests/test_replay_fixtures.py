"""Kept captures replayed through `hamsterbot replay`, their totals asserted.

``tests/data/simulated_night.csv`` is one night of the simulated hamster recorded by the real
program, on 2026-12-02 with libfaketime putting the clock at the evening of 2026-11-29 (so every
reading lies in the past) and the simulation at 120x::

    FAKETIME_DONT_FAKE_MONOTONIC=1 timeout -s INT 315 faketime -f '@2026-11-29 19:58:00' \\
        hamsterbot run --config night.toml --record simulated_night.csv

with ``night.toml``: ``[bot] timezone = "UTC"``, one ``[[hamsters]] name = "Ursula"``,
``wheel_diameter_cm = 20``, ``sensor = "simulated"``, and ``[simulation] seed = 7``,
``speedup = 120``. That run itself stored 4,488 revolutions.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from sensors.capture import CaptureLine, read_capture
from sensors.simulated import revolutions_between

NIGHT = Path(__file__).parent / "data" / "simulated_night.csv"
NIGHT_REVOLUTIONS = 4_488  # what the recording run stored, and what the simulator says it ran


def hamsterbot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TZ": "UTC"},
    )


def test_the_recorded_night_is_what_the_seeded_simulator_ran() -> None:
    with NIGHT.open(encoding="utf-8", newline="") as handle:
        lines = [item for item in read_capture(handle) if isinstance(item, CaptureLine)]
    assert len(lines) == 11_216
    first, last = lines[0].received_at, lines[-1].received_at
    assert revolutions_between(7, first, last, ZoneInfo("UTC"), math.pi * 0.2) == NIGHT_REVOLUTIONS


def test_replaying_the_recorded_night_gives_its_total(tmp_path: Path) -> None:
    result = hamsterbot("replay", "--wheel", "Ursula", str(NIGHT), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"credited {NIGHT_REVOLUTIONS} revolutions" in result.stdout
    totals = json.loads(hamsterbot("totals", "--json", cwd=tmp_path).stdout)
    (wheel,) = totals["wheels"]
    assert wheel["revolutions"] == NIGHT_REVOLUTIONS
    assert wheel["estimated_revolutions"] == 0  # connected all night: nothing estimated
