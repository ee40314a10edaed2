"""/export and `hamsterbot export`: a chat's runs and the nightly totals, written and read back exactly."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import cli
from bot import config as config_module
from bot.core.commands import BotCore, CommandContext
from sensors.counter import CounterState, Credit
from storage import export
from storage.db import Database
from storage.wheel import WheelStore

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=LONDON)
# Ursula runs on three evenings; one burst straddles the 08:00 summary time.
BURSTS = (
    (datetime(2026, 11, 17, 22, 5, tzinfo=LONDON), 700, False),
    (datetime(2026, 11, 18, 7, 59, tzinfo=LONDON), 40, False),
    (datetime(2026, 11, 18, 8, 0, tzinfo=LONDON), 60, True),
    (datetime(2026, 11, 19, 23, 59, tzinfo=LONDON), 1234, False),
)


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "hamsterbot.toml"
    path.write_text(
        f'[bot]\ndatabase = "{tmp_path / "bot.db"}"\ntimezone = "Europe/London"\nunits = "km"\n\n'
        '[[hamsters]]\nname = "Ursula"\nwheel_diameter_cm = 20\nsensor = "simulated"\n'
    )
    return path


def ctx(user: str, chat: str = "group-1") -> CommandContext:
    return CommandContext("console", chat, user.casefold(), user, True, NOW)


async def fill(config: config_module.Config) -> None:
    async with await Database.open(config.bot.database) as db:
        store = await WheelStore.open(db, "Ursula")
        for at, revolutions, estimated in BURSTS:
            start = at.timestamp()
            store.record(
                Credit(revolutions, start, start + 30, estimated), [], CounterState(0, 0, 0)
            )
        await store.flush()
        core = await BotCore.create(db, config)
        for user, chat, words in (
            ("Alice", "group-1", "5 km 25:30 2026-11-18"),
            ("Bob", "group-1", "3.1 mi"),
            ('Zoë, "the" runner', "group-1", "marathon 4:01:02 2026-11-19"),
            ("Alice", "group-1", "1 km 2026-11-19"),
            ("Eve", "group-2", "12 km"),
        ):
            assert (await core.dispatch(ctx(user, chat), "logrun", words)).text.startswith("✅")
        await core.dispatch(ctx("Alice"), "undo", "")  # the 1 km run goes


@pytest.fixture
def setup(tmp_path: Path) -> config_module.Config:
    config = config_module.load(write_config(tmp_path))
    asyncio.run(fill(config))
    return config


def test_runs_csv_round_trips_and_holds_only_this_chats_live_runs(
    setup: config_module.Config,
) -> None:
    async def check() -> None:
        async with await Database.open(setup.bot.database) as db:
            core = await BotCore.create(db, setup)
            reply = await core.dispatch(ctx("Bob"), "export", "")
            files = dict(reply.attachments)
            assert set(files) == {"runs.csv", "nights.csv"}
            assert reply.text.startswith("📦 3 runs from this chat")
            runs = export.read_runs_csv(files["runs.csv"].decode())
            assert runs == await export.run_rows(db, 1)
            assert [(r.person, r.distance_m, r.duration_s, r.day) for r in runs] == [
                ("Alice", 5000.0, 1530.0, "2026-11-18"),
                ('Zoë, "the" runner', 42195.0, 4 * 3600 + 62.0, "2026-11-19"),
                ("Bob", 3.1 * 1609.344, None, "2026-11-20"),
            ]
            assert (
                runs[2].ran_at_epoch == NOW.timestamp() and runs[2].ran_at == "2026-11-20T09:30:00Z"
            )
            nights = export.read_nights_csv(files["nights.csv"].decode())
            assert [(n.night, n.revolutions, n.estimated_revolutions) for n in nights] == [
                ("2026-11-17", 740, 0),
                ("2026-11-18", 60, 60),
                ("2026-11-19", 1234, 0),
            ]
            assert (
                nights[0].start == "2026-11-17T08:00:00Z"
                and nights[-1].end == "2026-11-20T08:00:00Z"
            )
            circumference = setup.hamsters[0].circumference_m
            assert nights[2].distance_m == 1234 * circumference

    asyncio.run(check())


def test_cli_export_json_round_trips(
    setup: config_module.Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(tmp_path / "hamsterbot.toml")
    assert cli.main(["export", "--config", config, "--format", "json"]) == 0
    text = capsys.readouterr().out
    runs, nights = export.read_json(text)
    assert [(r.chat, r.person) for r in runs] == [
        ("console:group-1", "Alice"),
        ("console:group-1", 'Zoë, "the" runner'),
        ("console:group-1", "Bob"),
        ("console:group-2", "Eve"),
    ]
    assert sum(n.revolutions for n in nights) == sum(b[1] for b in BURSTS)
    assert json.loads(export.to_json(runs, nights)) == json.loads(text)

    assert cli.main(["export", "--config", config, "--chat", "console:group-2"]) == 0
    only = export.read_runs_csv(capsys.readouterr().out)
    assert [(r.person, r.distance_m) for r in only] == [("Eve", 12000.0)]

    assert cli.main(["export", "--config", config, "--nights"]) == 0
    assert export.read_nights_csv(capsys.readouterr().out) == nights

    assert cli.main(["export", "--config", config, "--chat", "console:nope"]) == 2
    assert 'no chat "console:nope"' in capsys.readouterr().err


def test_say_export_saves_the_files(
    setup: config_module.Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    config = str(tmp_path / "hamsterbot.toml")
    assert (
        cli.main(
            ["say", "--config", config, "--chat", "group-1", "--image-dir", str(out), "/export"]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    paths = [Path(line.removeprefix("file: ")) for line in lines if line.startswith("file: ")]
    assert [p.suffix for p in paths] == [".csv", ".csv"] and all(p.parent == out for p in paths)
    runs = export.read_runs_csv(paths[0].read_text())
    assert len(runs) == 3 and runs[0].person == "Alice"
