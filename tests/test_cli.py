"""`hamsterbot` as a user runs it: subprocesses, exit codes, the say/replay/totals contracts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sensors.csc import encode_csc_measurement

T0 = 1_764_460_800.0  # 2025-11-30 00:00 UTC


def hamsterbot(*args: str, cwd: Path, stdin: str | None = None, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TZ": "UTC", **(env or {})},
    )


def test_version(tmp_path: Path) -> None:
    result = hamsterbot("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("hamsterbot ")


def test_wrong_usage_is_one_line_exit_2(tmp_path: Path) -> None:
    result = hamsterbot("frobnicate", cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[bot]\nunit = "km"\n', 'unknown key "unit" (did you mean "units"?)'),
        ('[bot]\ntimezone = "Mars/Base"\n', "unknown timezone"),
        ('[bot]\nunits = "furlongs"\n', "[bot] units"),
        (
            '[[hamsters]]\nname = "U"\nwheel_diameter_cm = 200\n',
            "wheel_diameter_cm: must be between 8 and 60",
        ),
        ('[[hamsters]]\nname = "U"\n', "exactly one of wheel_diameter_cm or wheel_circumference_m"),
        (
            '[[hamsters]]\nname = "U"\nwheel_diameter_cm = 20\n[[hamsters]]\nname = "U"\nwheel_diameter_cm = 20\n',
            "duplicate hamster name",
        ),
        ("[bot\n", "not valid TOML"),
        ('[bot]\nflush_seconds = "often"\n', "[bot] flush_seconds: expected a number"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    result = hamsterbot("say", "--config", str(path), "/race", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and message in lines[0]
    assert not (tmp_path / "hamsterbot.db").exists()


def test_missing_config_file(tmp_path: Path) -> None:
    result = hamsterbot("totals", "--config", "nope.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.toml: no such file" in result.stderr


def test_say_logs_runs_and_race_names_everyone(tmp_path: Path) -> None:
    assert hamsterbot("say", "--user", "Alice", "/logrun 5 km", cwd=tmp_path).returncode == 0
    bob = hamsterbot("say", "--user", "Bob", "/logrun 3.1 mi", cwd=tmp_path)
    assert "Logged 3.10 mi" in bob.stdout
    race = hamsterbot("say", "/race", cwd=tmp_path)
    assert race.returncode == 0
    assert "Alice" in race.stdout and "Bob" in race.stdout and "Ursula" in race.stdout
    banana = hamsterbot("say", "/logrun banana", cwd=tmp_path)
    assert banana.returncode == 0 and "Try" in banana.stdout
    totals = json.loads(hamsterbot("totals", "--json", cwd=tmp_path).stdout)
    assert {(r["user"], round(r["distance_m"])) for r in totals["runs"]} == {
        ("Alice", 5000),
        ("Bob", 4989),
    }
    assert all(r["chat"] == "console:console" for r in totals["runs"])


def test_demo_answers_piped_commands_and_exits_0(tmp_path: Path) -> None:
    result = hamsterbot("demo", cwd=tmp_path, stdin="/logrun 5 km\n/race\n/hamster\n/nonsense\n")
    assert result.returncode == 0, result.stderr
    assert "Logged 3.11 mi" in result.stdout
    assert "Race" in result.stdout and "Ursula" in result.stdout
    assert "All time" in result.stdout
    assert "/help" in result.stdout
    assert (tmp_path / "hamsterbot-demo.db").exists()
    # The page is served too, on 127.0.0.1:8080 or the next free port.
    assert re.search(r"The hamster's page: http://127\.0\.0\.1:80[0-9]{2}\n", result.stdout)


class Capture:
    """A hand-written sensor night with every awkward thing a real one does, and its true count."""

    def __init__(self) -> None:
        self.lines = ["received_at,payload_hex"]
        self.t = T0
        self.counter = 2**32 - 40  # wraps within the first minute
        self.truth = 0
        self.started = False

    def reading(self, dt: float = 1.0) -> None:
        self.t += dt
        self.lines.append(f"{self.t:.3f},{encode_csc_measurement(self.counter % 2**32, 0).hex()}")
        self.started = True

    def run(self, seconds: int, per_second: int = 3) -> None:
        for _ in range(seconds):
            self.counter += per_second
            self.truth += per_second if self.started else 0
            self.reading()

    def split(self) -> int:
        return len(self.lines)


def night() -> tuple[Capture, int]:
    cap = Capture()
    cap.reading()  # baseline
    cap.run(30)  # across the 32-bit wrap
    for _ in range(5):
        cap.reading()  # the wheel stops; the sensor repeats itself
    cap.lines.append(cap.lines[-1])  # an exact duplicate notification
    cap.counter += 900  # asleep for 20 minutes while the hamster ran 900 turns
    cap.truth += 900
    cap.reading(1200)
    cap.counter -= 6  # rocking back...
    cap.reading()
    cap.counter += 6  # ...and forward again: nothing new
    cap.reading()
    cap.run(10)
    cap.lines.append(
        f"{cap.t + 0.5:.3f},{encode_csc_measurement(3_000_000_000, 0).hex()}"
    )  # a glitch
    cap.run(10)
    restart_at = cap.split()
    cap.lines.append("not,a,line")
    cap.lines.append(f"{cap.t:.3f},zz")
    cap.lines.append(f"{cap.t:.3f},0102")  # truncated CSC
    cap.lines.append(f"{cap.t:.3f},")  # empty payload
    cap.counter = 0  # battery swap: the sensor starts again from zero...
    cap.reading(300)
    cap.run(20, per_second=2)  # ...and counts from there
    return cap, restart_at


def test_replay_with_a_restart_in_between_is_exact(tmp_path: Path) -> None:
    cap, restart_at = night()
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("\n".join(cap.lines[:restart_at]) + "\n")
    second.write_text("\n".join([cap.lines[0], *cap.lines[restart_at:]]) + "\n")
    one = hamsterbot("replay", "--wheel", "Ursula", str(first), cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    two = hamsterbot("replay", "--wheel", "ursula", str(second), cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    # Unreadable lines are reported with their line numbers (the header is line 1).
    assert f"{second}:2: skipped" in two.stderr and f"{second}:3: skipped" in two.stderr
    assert "malformed payloads ignored" in two.stdout
    totals = json.loads(hamsterbot("totals", "--json", cwd=tmp_path).stdout)
    (wheel,) = totals["wheels"]
    assert wheel["name"] == "Ursula"
    assert wheel["revolutions"] == cap.truth
    assert wheel["estimated_revolutions"] == 900
    assert wheel["distance_m"] == pytest.approx(cap.truth * 0.2 * 3.141592653589793, abs=0.01)
    events = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sqlite3,sys; print(sorted({r[0] for r in sqlite3.connect(sys.argv[1]).execute('select kind from sensor_events')}))",
            str(tmp_path / "hamsterbot.db"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "baseline" in events and "glitch" in events and "reset" in events


def test_replaying_the_same_capture_twice_adds_nothing(tmp_path: Path) -> None:
    cap, _ = night()
    path = tmp_path / "n.csv"
    path.write_text("\n".join(cap.lines) + "\n")
    hamsterbot("replay", "--wheel", "Ursula", str(path), cwd=tmp_path)
    once = json.loads(hamsterbot("totals", "--json", cwd=tmp_path).stdout)["wheels"][0][
        "revolutions"
    ]
    hamsterbot("replay", "--wheel", "Ursula", str(path), cwd=tmp_path)
    twice = json.loads(hamsterbot("totals", "--json", cwd=tmp_path).stdout)["wheels"][0][
        "revolutions"
    ]
    assert once == twice == cap.truth


def test_totals_since_until(tmp_path: Path) -> None:
    cap = Capture()
    cap.reading()
    cap.run(60)
    cap.reading(7200)  # two hours later, still
    cap.run(60)
    path = tmp_path / "n.csv"
    path.write_text("\n".join(cap.lines) + "\n")
    hamsterbot("replay", "--wheel", "Ursula", str(path), cwd=tmp_path)
    early = json.loads(
        hamsterbot("totals", "--json", "--until", "2025-11-30T01:00:00Z", cwd=tmp_path).stdout
    )
    late = json.loads(
        hamsterbot("totals", "--json", "--since", "2025-11-30T01:00", cwd=tmp_path).stdout
    )
    assert early["wheels"][0]["revolutions"] == 180
    assert late["wheels"][0]["revolutions"] == 180
    bad = hamsterbot("totals", "--json", "--since", "last tuesday", cwd=tmp_path)
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_replay_unknown_wheel_and_missing_file(tmp_path: Path) -> None:
    result = hamsterbot("replay", "--wheel", "Nobody", "x.csv", cwd=tmp_path)
    assert result.returncode == 2 and 'no hamster called "Nobody"' in result.stderr
    result = hamsterbot("replay", "--wheel", "Ursula", "missing.csv", cwd=tmp_path)
    assert result.returncode == 2 and "missing.csv" in result.stderr


@pytest.mark.parametrize(
    "option",
    [
        ["--lead-hours", "nan"],
        ["--lead-hours", "1e9"],
        ["--lead-hours", "-5"],
        ["--history-nights", "100000"],
        ["--history-nights", "-1"],
    ],
)
def test_demo_options_out_of_range_are_one_line_exit_2(tmp_path: Path, option: list[str]) -> None:
    result = hamsterbot("demo", "--no-web", "--db", "d.db", *option, cwd=tmp_path, stdin="")
    assert result.returncode == 2, result.stderr[-500:]
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-500:]
    assert option[0] in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "d.db").exists()


def test_totals_with_until_before_since_is_refused(tmp_path: Path) -> None:
    """An empty answer with exit 0 would read as "nothing ran"; the chat refuses such a range too."""
    assert hamsterbot("say", "--db", "t.db", "/logrun 5 km", cwd=tmp_path).returncode == 0
    result = hamsterbot(
        "totals",
        "--db",
        "t.db",
        "--json",
        "--since",
        "2026-12-01",
        "--until",
        "2026-11-01",
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "--until" in result.stderr, result.stdout
    assert len(result.stderr.strip().splitlines()) == 1
