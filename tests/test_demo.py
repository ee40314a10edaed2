"""``hamsterbot demo``: its own database, a week of history at start, tonight live at demo speed."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Empty, Queue
from zoneinfo import ZoneInfo

import pytest

from bot.demo import LIVE_AFTER_FIRST_RUN_S, history_windows, plan_demo
from sensors.simulated import night_window, plan_night

CIRCUMFERENCE = 0.628
ZONES = ["UTC", "Europe/London", "America/Los_Angeles", "Asia/Kathmandu", "Australia/Lord_Howe"]


def _hours(start: datetime, count: int, step: timedelta) -> list[float]:
    return [(start + i * step).timestamp() for i in range(count)]


@pytest.mark.parametrize("zone", ZONES)
def test_plan_has_a_finished_night_and_a_week_before_it_whatever_the_time(zone: str) -> None:
    tz = ZoneInfo(zone)
    # Every 37 minutes for four days, across the DST change of 2026-03-29 in Europe.
    for wall in _hours(datetime(2026, 3, 27, tzinfo=UTC), 4 * 39, timedelta(minutes=37)):
        plan = plan_demo(wall, tz, seed=7, circumference_m=CIRCUMFERENCE, last_reading_at=None)
        opens, closes = night_window(plan.night, tz)
        assert closes <= wall  # the live night is over on the wall clock: nothing from the future
        assert wall - closes < 2 * 86400  # and it is a recent one
        first_run = plan_night(7, plan.night, tz, CIRCUMFERENCE)[0]
        assert plan.live_from == first_run.start + LIVE_AFTER_FIRST_RUN_S
        assert plan.fast_until is None  # catches the wall clock, then keeps its pace
        windows = history_windows(plan, tz)
        assert len(windows) == 9  # eight whole nights and tonight up to the live start
        assert windows[-1] == (opens, plan.live_from)
        assert all(a < b <= c for (a, b), (c, _) in itertools.pairwise(windows))


def test_a_demo_database_used_again_continues_with_the_next_night() -> None:
    tz = ZoneInfo("Europe/London")
    wall = datetime(2026, 12, 2, 15, 0, tzinfo=UTC).timestamp()
    first = plan_demo(wall, tz, seed=7, circumference_m=CIRCUMFERENCE, last_reading_at=None)
    stopped = first.live_from + 3 * 3600  # the first demo ran a while
    again = plan_demo(wall, tz, seed=7, circumference_m=CIRCUMFERENCE, last_reading_at=stopped)
    assert again.night == first.night + timedelta(days=1)
    assert again.history_from == stopped  # nothing stored twice
    assert again.fast_until == night_window(again.night, tz)[1]  # ahead of the wall clock
    # A database last used long ago: only the last eight nights are filled in.
    old = plan_demo(wall, tz, seed=7, circumference_m=CIRCUMFERENCE, last_reading_at=wall - 1e7)
    assert old.night == first.night and old.history_from == first.history_from


def hamsterbot(*args: str, cwd: Path, stdin: str | None = None, tz: str = "UTC"):
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TZ": tz},
    )


def miles(label: str, text: str) -> float:
    found = re.search(rf"{label}: ([\d.]+) mi", text)
    assert found, text
    return float(found.group(1))


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "America/Adak"])
def test_the_readme_pipe_shows_a_hamster_who_has_run(tmp_path: Path, zone: str) -> None:
    result = hamsterbot(
        "demo", cwd=tmp_path, stdin="/logrun 5 km\n/race\n/hamster stats\n", tz=zone
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert miles("Ursula 🐹", out) > 0
    for label in ("Tonight so far", "Last night", "7-night average", "All time"):
        assert miles(label, out) > 0, label
    assert re.search(r"Longest night: [\d.]+ mi", out)
    assert re.search(r"Streak: [89] nights in a row", out)
    # Its own database: never the real bot's.
    assert (tmp_path / "hamsterbot-demo.db").exists()
    assert not (tmp_path / "hamsterbot.db").exists()


def test_demo_db_option_and_a_second_start_counts_nothing_twice(tmp_path: Path) -> None:
    # A demo clock that all but stands still: nothing live is read in either run, however slow
    # the machine, so the second start must show exactly what the first stored.
    slow = ("--speedup", "0.001", "--no-web")
    first = hamsterbot("demo", "--db", "mine.db", *slow, cwd=tmp_path, stdin="/hamster\n")
    second = hamsterbot("demo", "--db", "mine.db", *slow, cwd=tmp_path, stdin="/hamster\n")
    assert first.returncode == second.returncode == 0, second.stderr
    assert miles("All time", second.stdout) == miles("All time", first.stdout) > 0
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["mine.db"]


def test_tonight_runs_live_at_demo_speed(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--speedup", "3000", "--no-web"],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TZ": "UTC"},
    )
    assert process.stdin and process.stdout and process.stderr
    lines: Queue[str] = Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()

    def tonight() -> float:
        assert process.stdin
        process.stdin.write("/hamster\n")
        process.stdin.flush()
        while True:
            line = lines.get(timeout=60)
            if line.startswith("Tonight so far"):
                return miles("Tonight so far", line)

    try:
        first = tonight()
        later = first
        # At 3000x the night moves within seconds; the clock meets the wall clock only after
        # 10-50 s, so the first answer is still tonight's. Poll until the figure moved.
        for _ in range(600):
            try:
                lines.get(timeout=0.1)
            except Empty:
                pass
            later = tonight()
            if later > first:
                break
        assert later > first > 0
    finally:
        process.stdin.close()
        process.wait(timeout=60)
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == 0
