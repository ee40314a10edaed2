"""Issue 10, case 7: `doctor` notices a damaged database and says how to restore; `hamsterbot backup PATH`
writes a consistent copy while the bot runs."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot import cli
from bot.config import HamsterConfig
from bot.wheels import WheelPipeline
from sensors.csc import encode_csc_measurement
from storage import queries
from storage.db import Database

T0 = 1_764_400_000.0
URSULA = HamsterConfig(name="Ursula", circumference_m=0.6283, sensor="simulated")


async def fill(path: Path, seconds: int = 20_000) -> int:
    """A wheel that ran ``seconds`` at one revolution a second, flushed every minute."""
    async with await Database.open(path) as db:
        pipeline = await WheelPipeline.open(db, URSULA)
        for second in range(seconds + 1):
            pipeline.feed(encode_csc_measurement(second, 0), T0 + second)
            if second % 60 == 0:
                await pipeline.flush()
        await pipeline.flush()
    return seconds


def integrity(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return [row[0] for row in connection.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as err:
        return [str(err)]
    finally:
        connection.close()


def test_doctor_fails_a_database_with_garbage_in_the_middle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bot.db"
    asyncio.run(fill(path))
    assert cli.main(["doctor", "--db", str(path)]) == 1  # no chat token: that line fails anyway
    assert "ok    database:" in capsys.readouterr().out
    data = bytearray(path.read_bytes())
    assert len(data) > 64 * 1024
    middle = len(data) // 2 // 4096 * 4096  # the page in the middle, from its header on
    data[middle : middle + 2048] = random.Random(10).randbytes(2048)
    path.write_bytes(bytes(data))
    assert integrity(path) != ["ok"]  # the damage the report found

    assert cli.main(["doctor", "--db", str(path)]) == 1
    out, err = capsys.readouterr()
    [database] = [line for line in out.splitlines() if " database:" in line]
    assert database.startswith("FAIL  database:")
    assert "hamsterbot backup" in database and "restore" in database
    assert "Traceback" not in err


async def test_backup_while_the_bot_writes_is_a_consistent_copy(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    truth = await fill(path, 3000)
    async with await Database.open(path) as bot:
        # The bot is in the middle of a transaction while the backup runs: the copy holds
        # everything committed and nothing of the half-done write.
        async with bot.transaction() as conn:
            await conn.execute("INSERT INTO wheels (name, created_at) VALUES ('half-done', 0)")
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "backup", "--db", str(path), str(tmp_path / "copy.db"),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert b"Backed up" in out
    copy = tmp_path / "copy.db"
    assert integrity(copy) == ["ok"]
    assert not (tmp_path / "copy.db-wal").exists()
    async with await Database.open(copy) as db:
        names = [w.name for w in await queries.wheels(db)]
        assert names == ["Ursula"]
        total = await queries.wheel_total(db, 1, 0, 2**40)
        assert total.revolutions == truth


def test_backup_into_a_folder_and_bad_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bot.db"
    asyncio.run(fill(path, 100))
    folder = tmp_path / "backups"
    folder.mkdir()
    assert cli.main(["backup", "--db", str(path), str(folder)]) == 0
    [written] = folder.iterdir()
    assert written.name.startswith("bot-") and integrity(written) == ["ok"]
    capsys.readouterr()
    assert cli.main(["backup", "--db", str(path), str(tmp_path / "nope" / "x.db")]) == 2
    assert cli.main(["backup", "--db", str(tmp_path / "missing.db"), str(folder)]) == 2
    assert cli.main(["backup", "--db", str(path), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "Traceback" not in err


def test_backup_into_a_folder_that_cannot_be_written_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """/proc exists and no one (root included) can create a file in it."""
    path = tmp_path / "bot.db"
    asyncio.run(fill(path, 100))
    capsys.readouterr()
    assert cli.main(["backup", "--db", str(path), "/proc/hamsterbot-backup.db"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "cannot write the copy there" in err
