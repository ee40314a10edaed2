"""Progress bars: on a terminal a bar with count, rate and time left; piped, nothing at all."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

from bot.progress import Progress, render_bar
from sensors.capture import HEADER, format_line
from sensors.csc import encode_csc_measurement

ROOT = Path(__file__).resolve().parent.parent


def test_render_bar_says_count_rate_and_time_left() -> None:
    line = render_bar(0.25, 12_345, "notifications", 2.0)
    assert line.startswith("[######------------------]  25%")
    assert "12,345 notifications" in line
    assert "6,172/s" in line
    assert "0:06 left" in line  # a quarter took 2 s: three quarters take 6 s
    assert "left" not in render_bar(1.0, 10, "runs", 3.0)
    assert render_bar(0.5, 1, "files", 7200.0).endswith("2:00:00 left")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_in_place_at_most_every_redraw_interval_and_erases() -> None:
    now = [0.0]
    out = Terminal()
    with Progress(1000, "notifications", stream=out, clock=lambda: now[0]) as progress:
        progress.update(100, 10)
        progress.update(200, 20)  # too soon: not drawn
        now[0] = 1.0
        progress.update(500, 50)
    frames = out.getvalue().split("\r")
    drawn = [f for f in frames if f.strip()]
    assert len(drawn) == 2 and "10 notifications" in drawn[0] and "50 notifications" in drawn[1]
    assert frames[-1] == "" and not frames[-2].strip()  # erased at the end


def test_progress_writes_nothing_when_not_a_terminal() -> None:
    out = io.StringIO()
    with Progress(1000, "files", stream=out) as progress:
        for done in range(0, 1000, 10):
            progress.update(done, done)
    assert out.getvalue() == ""


def capture(path: Path, lines: int) -> None:
    with path.open("w") as out:
        out.write(HEADER + "\n")
        for i in range(lines):
            out.write(format_line(1_764_460_800.0 + i, encode_csc_measurement(i // 2, 0)))


def test_replay_shows_a_bar_on_a_terminal_and_nothing_when_piped(tmp_path: Path) -> None:
    night = tmp_path / "night.csv"
    capture(night, 20_000)
    command = [sys.executable, "-m", "bot", "replay", "--db", "t.db", "--wheel", "Ursula"]
    env = {**os.environ, "TZ": "UTC", "PYTHONPATH": str(ROOT)}
    piped = subprocess.run(
        [*command, str(night)], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == "" and "\r" not in piped.stdout
    assert piped.stdout.startswith("Replayed 20000 notifications")

    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [*command, "--db", "u.db", str(night)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=terminal,
            env=env,
        )
        os.close(terminal)
        seen = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            seen += chunk
        assert process.stdout
        stdout = process.stdout.read().decode()
        process.stdout.close()
        assert process.wait(timeout=120) == 0
    finally:
        os.close(controller)
    text = seen.decode()
    assert "[" in text and "notifications" in text and "%" in text
    assert text.endswith("\r")  # erased before the result line
    assert stdout.startswith("Replayed 20000 notifications")


def test_import_shows_a_bar_of_files_between_its_lines_on_a_terminal(tmp_path: Path) -> None:
    data = ROOT / "tests" / "data" / "activities"
    files = [str(data / n) for n in ("garmin-fenix-5-run.fit", "test.tcx", "korita-zbevnica.gpx")]
    command = [sys.executable, "-m", "bot", "import", "--db", "t.db", "--chat", "console:c"]
    env = {**os.environ, "TZ": "UTC", "PYTHONPATH": str(ROOT)}
    piped = subprocess.run(
        [*command, "--user", "Ann", *files], cwd=tmp_path, capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert piped.stderr == "" and "\r" not in piped.stdout, piped.stderr
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [*command, "--user", "Bob", *files], cwd=tmp_path, stdout=terminal, stderr=terminal,
            env=env,
        )  # fmt: skip
        os.close(terminal)
        seen = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        process.wait(timeout=120)
    finally:
        os.close(controller)
    text = seen.decode()
    assert "0 files" in text and "%" in text  # the bar, drawn before the first file
    assert text.count("logged run #") == 3 and "3 logged, 0 already there" in text


def test_backup_shows_a_bar_of_pages_on_a_terminal_and_nothing_when_piped(tmp_path: Path) -> None:
    env = {**os.environ, "TZ": "UTC", "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "bot"]
    night = tmp_path / "night.csv"
    capture(night, 5000)
    filled = subprocess.run(
        [*base, "replay", "--db", "h.db", "--wheel", "Ursula", str(night)], cwd=tmp_path,
        capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    assert filled.returncode == 0
    piped = subprocess.run(
        [*base, "backup", "--db", "h.db", "piped.db"], cwd=tmp_path, capture_output=True,
        text=True, env=env, timeout=120,
    )  # fmt: skip
    assert piped.returncode == 0 and piped.stderr == "" and "quick_check ok" in piped.stdout
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [*base, "backup", "--db", "h.db", "tty.db"], cwd=tmp_path, stdout=terminal,
            stderr=terminal, env=env,
        )  # fmt: skip
        os.close(terminal)
        seen = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        assert process.wait(timeout=120) == 0
    finally:
        os.close(controller)
    text = seen.decode()
    assert "pages" in text and "%" in text and "quick_check ok" in text
    assert (tmp_path / "tty.db").stat().st_size == (tmp_path / "piped.db").stat().st_size
