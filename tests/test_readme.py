"""The README's examples, run as written: every `hamsterbot` command it shows exits as it says.

Each command line found in the README (code blocks and inline code) must be listed below: either run here,
verbatim through bash, with what it must print, or named with the reason it cannot run here and the test that
covers it. A new example in the README without an entry here fails the first test.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from bot.cli import build_parser
from sensors.capture import HEADER, format_line
from sensors.csc import encode_csc_measurement
from storage import chats as chat_store
from storage import runs as run_store
from storage.db import Database

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
_INVOCATION = re.compile(
    r"^(?:sudo -u hamsterbot )?(?:\.venv/bin/|/opt/hamsterbot/bin/)?hamsterbot(?:\s.*)?$"
)


def readme_commands() -> set[str]:
    """Every shell command in the README that runs `hamsterbot` (a pipeline into it whole)."""
    spans: list[str] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", README, re.S):
        spans += block.splitlines()
    prose = re.sub(r"```[a-z]*\n.*?```", "", README, flags=re.S)
    spans += re.findall(r"`([^`\n]+)`", prose)
    found = set()
    for span in spans:
        span = re.split(r"\s+#\s", span)[0].strip().removeprefix("$ ")
        for part in (p.strip() for p in span.split("&&")):
            if re.search(r"\|\s*(?:\.venv/bin/)?hamsterbot\b", part):
                found.add(part)  # a pipeline into hamsterbot: run as a whole
            elif _INVOCATION.match(part):
                found.add(part)
    return found


def night_csv(folder: Path) -> None:
    with (folder / "night.csv").open("w") as out:
        out.write(HEADER + "\n")
        for second in range(600):
            out.write(format_line(1_764_540_000.0 + second, encode_csc_measurement(second, 0)))


def telegram_chat(folder: Path) -> None:
    """The chat telegram:-1001234 with a run in it, and a config file naming the database."""
    (folder / "hamsterbot.toml").write_text(
        '[bot]\ndatabase = "hamsterbot.db"\ntimezone = "UTC"\n\n'
        '[[hamsters]]\nname = "Ursula"\nwheel_diameter_cm = 20\nsensor = "simulated"\n'
    )

    async def fill() -> None:
        db = await Database.open(folder / "hamsterbot.db")
        try:
            chat = await chat_store.ensure_chat(db, "telegram", "-1001234", 1_764_400_000.0)
            alice = await chat_store.ensure_person(db, "telegram", "1", "Alice", 1_764_400_000.0)
            await run_store.add_run(
                db,
                chat_id=chat.id,
                person_id=alice.id,
                distance_m=5000.0,
                duration_s=1500.0,
                day=date(2026, 11, 28),
                ran_at=1_795_896_000.0,  # 2026-11-28 20:00 UTC: the night before 29 Nov
                logged_at=1_795_896_000.0,
            )
        finally:
            await db.close()

    asyncio.run(fill())


def exports_folder(folder: Path) -> None:
    """The chat of `telegram_chat` and a folder with a watch's export in it (a real TCX run)."""
    telegram_chat(folder)
    (folder / "exports").mkdir()
    tcx = ROOT / "tests" / "data" / "activities" / "test.tcx"
    (folder / "exports" / "test.tcx").write_bytes(tcx.read_bytes())


Check = Callable[[subprocess.CompletedProcess, Path], None]


def prints(*texts: str) -> Check:
    def check(result: subprocess.CompletedProcess, folder: Path) -> None:
        for text in texts:
            assert text in result.stdout, (text, result.stdout)

    return check


def a_hamster_who_has_run(result: subprocess.CompletedProcess, folder: Path) -> None:
    standing = re.search(r"Ursula 🐹: ([\d.]+) mi", result.stdout)
    assert standing and float(standing.group(1)) > 0, result.stdout
    assert "Logged 3.11 mi" in result.stdout
    assert (folder / "hamsterbot-demo.db").exists() and not (folder / "hamsterbot.db").exists()


def file_has(name: str, *texts: str) -> Check:
    def check(result: subprocess.CompletedProcess, folder: Path) -> None:
        content = (folder / name).read_text()
        for text in texts:
            assert text in content, (name, text, content[:500])

    return check


Setup = Callable[[Path], None]


def nothing(folder: Path) -> None:
    pass


def chat_and_backup_folder(folder: Path) -> None:
    telegram_chat(folder)
    (folder / "backups").mkdir()


# README command -> (set-up, exit code, check of what it printed or wrote)
RUN: dict[str, tuple[Setup, int, Check]] = {
    ".venv/bin/hamsterbot demo": (nothing, 0, prints()),
    "hamsterbot demo": (nothing, 0, prints()),
    "printf '/logrun 5 km\\n/race\\n' | .venv/bin/hamsterbot demo": (
        nothing,
        0,
        a_hamster_who_has_run,
    ),
    "hamsterbot --version": (nothing, 0, prints("hamsterbot ")),
    "hamsterbot replay --db test.db --wheel Ursula night.csv": (
        night_csv,
        0,
        prints("Replayed 600 notifications into Ursula: credited 599 revolutions"),
    ),
    'hamsterbot say --image-dir charts "/chart week"': (nothing, 0, prints("image: charts/")),
    "hamsterbot totals": (telegram_chat, 0, prints("telegram:-1001234 Alice: 5.000 km")),
    "hamsterbot export --config hamsterbot.toml --chat telegram:-1001234 > runs.csv": (
        telegram_chat,
        0,
        file_has("runs.csv", "run_id,", "Alice", "5000.0"),
    ),
    "hamsterbot export --config hamsterbot.toml --nights > nights.csv": (
        telegram_chat,
        0,
        file_has("nights.csv", "night"),
    ),
    "hamsterbot export --config hamsterbot.toml --format json > everything.json": (
        telegram_chat,
        0,
        file_has("everything.json", '"runs"', "Alice"),
    ),
    "hamsterbot summary --config hamsterbot.toml --chat telegram:-1001234 --date 2026-11-29 "
    "--image-dir charts": (telegram_chat, 0, prints("Good morning", "Alice")),
    "hamsterbot doctor": (nothing, 0, prints("ok    database", "ok    chat")),
    "hamsterbot backup --config hamsterbot.toml backups/": (
        chat_and_backup_folder,
        0,
        prints("Backed up hamsterbot.db to backups/hamsterbot-"),
    ),
    "hamsterbot backup --config hamsterbot.toml hamsterbot-copy.db": (
        telegram_chat,
        0,
        prints("Backed up hamsterbot.db to hamsterbot-copy.db (quick_check ok)"),
    ),
    "hamsterbot import --config hamsterbot.toml --chat telegram:-1001234 --user Alice exports/": (
        exports_folder,
        0,
        prints("exports/test.tcx: logged run #2, 2.91 mi (4.69 km)", "1 logged, 0 already there"),
    ),
}

# README command -> why it is not run here (and what covers it instead).
NOT_RUN: dict[str, str] = {
    "hamsterbot": "the program's name in prose",
    "hamsterbot run": "needs chat tokens and runs until SIGTERM: tests/test_process.py runs it on the fakes",
    "hamsterbot run --config hamsterbot.toml": "as `hamsterbot run`",
    "hamsterbot run --sync-commands global": "as `hamsterbot run`; tests/discord cover the sync",
    "hamsterbot import": "the subcommand named in prose; its example in the README runs here",
    "hamsterbot scan": "needs BlueZ on the system bus: tests/ble run it against a fake BlueZ",
    "hamsterbot gateway": "needs an MQTT broker and runs until SIGTERM: tests/mqtt run it against a "
    "real Mosquitto",
    "hamsterbot backup PATH": "a synopsis; the subcommand's own tests run it",
    "sudo -u hamsterbot hamsterbot backup --config /etc/hamsterbot/hamsterbot.toml "
    "/var/lib/hamsterbot/": "needs the service's user and folders on a Pi",
}


def test_every_readme_command_is_run_here_or_said_why_not() -> None:
    found = readme_commands()
    listed = set(RUN) | set(NOT_RUN)
    assert found - listed == set(), "README commands without a test entry"
    assert listed - found == set(), "entries for commands the README lost"


@pytest.mark.parametrize("command", sorted(RUN))
def test_readme_command_exits_as_described(tmp_path: Path, command: str) -> None:
    setup, code, check = RUN[command]
    shim = tmp_path / "bin" / "hamsterbot"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bot "$@"\n')
    shim.chmod(0o755)
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "hamsterbot").symlink_to(shim)
    setup(tmp_path)
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "PATH": f"{shim.parent}:{os.environ['PATH']}",
            "PYTHONPATH": str(ROOT),
            "TZ": "UTC",
            "HAMSTERBOT_TELEGRAM_TOKEN": "123:fake",  # doctor checks that a token is set
        },
    )
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    check(result, tmp_path)


def _section(title: str) -> str:
    start = README.index(title)
    return README[start : README.index("\n## ", start + 1)]


def test_the_subcommand_table_matches_the_program() -> None:
    """Each row of "The `hamsterbot` command" names a real subcommand and only flags it takes."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[attr-defined]
    rows = re.findall(r"^\| `([a-z-]+)([^`]*)` \|", _section("## The `hamsterbot` command"), re.M)
    assert {name for name, _ in rows} >= set(subparsers) - {"gateway", "backup"}
    for name, synopsis in rows:
        if name == "-":
            continue
        if name.startswith("--"):
            continue  # --version
        assert name in subparsers, name
        flags = {o for a in subparsers[name]._actions for o in a.option_strings}
        for flag in re.findall(r"--[a-z-]+", synopsis):
            assert flag in flags, (name, flag)


def test_config_and_db_are_on_every_subcommand_the_readme_says() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[attr-defined]
    for name, sub in subparsers.items():
        flags = {o for a in sub._actions for o in a.option_strings}
        if name == "demo":
            assert "--db" in flags and "--config" not in flags
        elif name == "scan":
            assert "--db" not in flags and "--config" not in flags
        else:
            assert {"--config", "--db"} <= flags, name


def test_the_service_file_stops_on_a_configuration_error_and_needs_no_checkout() -> None:
    unit = (ROOT / "contrib" / "hamsterbot.service").read_text()
    settings = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#")
    )
    assert settings["RestartPreventExitStatus"] == "2"  # exit 2 is a config mistake: no 5 s loop
    assert settings["Restart"] == "on-failure"
    assert "Documentation" not in settings  # no file:// path a normal install lacks
    assert settings["ExecStart"].startswith("/opt/hamsterbot/bin/hamsterbot run ")
