"""The promise: a user's mistake is one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot import config as config_module

ROOT = Path(__file__).resolve().parent.parent


def run(
    *args: str,
    cwd: Path,
    unprivileged: bool = False,
    stdin: str | None = None,
    timeout: float = 120,
):
    command = [sys.executable, "-m", "bot", *args]
    if unprivileged and os.geteuid() == 0:
        # root writes anywhere: drop the capabilities that let it, so folder modes apply.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("running as root needs setpriv (util-linux) to test folder permissions")
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]
    return subprocess.run(
        command,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TZ": "UTC", "PYTHONPATH": str(ROOT)},
    )


def one_line_exit_2(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in lines[0]


@pytest.mark.parametrize("command", [["totals"], ["say", "/race"], ["summary"], ["export"]])
def test_a_file_that_is_not_sqlite(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "notes.db").write_text("shopping list: hay, carrots, a new wheel\n" * 40)
    result = run(*command, "--db", "notes.db", cwd=tmp_path)
    one_line_exit_2(result, "notes.db", "not a hamsterbot database")


@pytest.fixture
def good_db(tmp_path: Path) -> Path:
    assert run("say", "--db", "good.db", "/logrun 5 km", cwd=tmp_path).returncode == 0
    assert run("say", "--db", "good.db", "/hamster", cwd=tmp_path).returncode == 0
    return tmp_path / "good.db"


@pytest.mark.parametrize("keep", [100, 4096, 3 * 4096])
def test_a_truncated_database(tmp_path: Path, good_db: Path, keep: int) -> None:
    (tmp_path / "cut.db").write_bytes(good_db.read_bytes()[:keep])
    for command in (["totals"], ["say", "/race"], ["export"]):
        result = run(*command, "--db", "cut.db", cwd=tmp_path)
        one_line_exit_2(result, "cut.db")


@pytest.fixture
def read_only_folder(tmp_path: Path, good_db: Path):
    folder = tmp_path / "ro"
    folder.mkdir()
    shutil.copy(good_db, folder / "good.db")
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


def test_a_database_in_a_read_only_folder_can_still_be_read(
    tmp_path: Path, read_only_folder: Path
) -> None:
    db = str(read_only_folder / "good.db")
    totals = run("totals", "--db", db, cwd=tmp_path, unprivileged=True)
    assert totals.returncode == 0, totals.stderr
    assert "console:console" in totals.stdout and "5.000 km" in totals.stdout
    race = run("say", "--db", db, "/race", cwd=tmp_path, unprivileged=True)
    assert race.returncode == 0, race.stderr
    assert "3.11 mi" in race.stdout
    for command in (["summary"], ["export"], ["say", "/hamster stats"]):
        result = run(*command, "--db", db, cwd=tmp_path, unprivileged=True)
        assert result.returncode == 0, (command, result.stderr)
    # A change is refused in one line, and nothing was written beside the file.
    logrun = run("say", "--db", db, "/logrun 3 km", cwd=tmp_path, unprivileged=True)
    one_line_exit_2(logrun, "read-only")
    assert sorted(p.name for p in read_only_folder.iterdir()) == ["good.db"]


@pytest.mark.parametrize("command", [["run"], ["demo", "--no-web"]])
def test_the_bot_refuses_a_database_it_cannot_write(
    tmp_path: Path, read_only_folder: Path, command: list[str]
) -> None:
    """`run` (and the demo) must write: refused at start in one line, not a traceback at ERROR on
    every wheel flush of a bot that keeps running."""
    db = str(read_only_folder / "good.db")
    result = run(*command, "--db", db, cwd=tmp_path, unprivileged=True, stdin="", timeout=60)
    one_line_exit_2(result, "good.db", "cannot be written")
    assert sorted(p.name for p in read_only_folder.iterdir()) == ["good.db"]


@pytest.mark.parametrize("command", [["say", "/race"], ["replay", "--wheel", "Ursula", "x.csv"]])
def test_a_new_database_in_a_read_only_folder(
    tmp_path: Path, read_only_folder: Path, command: list[str]
) -> None:
    (tmp_path / "x.csv").write_text("received_at,payload_hex\n")
    db = str(read_only_folder / "new.db")
    result = run(*command[:1], "--db", db, *command[1:], cwd=tmp_path, unprivileged=True)
    one_line_exit_2(result, "new.db", "not writable")


def test_counter_bits_and_reverse_tolerance_are_checked_together(tmp_path: Path) -> None:
    raw = {"hamsters": [{"name": "U", "wheel_diameter_cm": 20, "counter_bits": 8}]}
    raw["hamsters"][0]["reverse_tolerance"] = 500
    with pytest.raises(config_module.ConfigError, match="reverse_tolerance: must be below 128"):
        config_module.parse(raw, source=Path("h.toml"))
    raw["hamsters"][0]["reverse_tolerance"] = 127
    config_module.parse(raw, source=Path("h.toml"))
    path = tmp_path / "h.toml"
    path.write_text(
        '[[hamsters]]\nname = "U"\nwheel_diameter_cm = 20\ncounter_bits = 8\n'
        "reverse_tolerance = 500\n"
    )
    one_line_exit_2(run("run", "--config", str(path), cwd=tmp_path), "reverse_tolerance")
    doctor = run("doctor", "--config", str(path), cwd=tmp_path)
    assert doctor.returncode == 1 and "FAIL  config" in doctor.stdout


def test_a_reader_that_stops_reading_is_no_error(tmp_path: Path) -> None:
    """``hamsterbot say /help | head -1``: the pipe closes before the reply is written."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "say", "/help"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout and process.stderr
    process.stdout.close()  # long before the reply: the interpreter is still starting
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=120) == 0, stderr
    assert stderr == ""


def test_summary_for_a_morning_still_to_come_is_refused(tmp_path: Path, good_db: Path) -> None:
    from datetime import UTC, datetime, timedelta

    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    result = run("summary", "--db", str(good_db), "--date", tomorrow, cwd=tmp_path)
    one_line_exit_2(result, tomorrow, "not due yet")
    today = run("summary", "--db", str(good_db), cwd=tmp_path)
    assert today.returncode == 0 and "Good morning" in today.stdout
