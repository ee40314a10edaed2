"""Issue 10, case 5: a run or a setting is on disk (the WAL fsynced) before the user is told so.

The real process under ``strace``: every write of the database's WAL that precedes the reply must be
followed by an fsync/fdatasync of the WAL, still before the reply reaches stdout. With ``synchronous =
NORMAL`` in WAL mode SQLite syncs only at checkpoints, and the reply went out with the run in the page
cache only: a power cut then loses a run the user was told was logged.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storage.db import Database

STRACE = shutil.which("strace")
# Debian's strace is a CI dependency (.ci/run installs it); without it this test cannot see fsync.
pytestmark = pytest.mark.skipif(STRACE is None and not os.environ.get("CI"), reason="needs strace")


def traced_say(tmp_path: Path, text: str, reply: str) -> list[str]:
    """The syscalls of `hamsterbot say TEXT` up to the line that writes ``reply`` to stdout."""
    db = tmp_path / "bot.db"
    if not db.exists():
        asyncio.run(_create(db))
    trace = tmp_path / "trace.txt"
    assert STRACE is not None, "strace is needed (apt-get install strace)"
    result = subprocess.run(
        [STRACE, "-f", "-y", "-s", "64", "-o", str(trace), "-e", "trace=write,pwrite64,fsync,fdatasync",
         sys.executable, "-m", "bot", "say", "--db", str(db), text],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert reply in result.stdout
    lines = trace.read_text().splitlines()
    told = next(
        i for i, line in enumerate(lines) if re.search(r"\bwrite\(1<", line) and reply in line
    )
    return lines[:told]


async def _create(path: Path) -> None:
    async with await Database.open(path):
        pass


def wal_synced_after_last_write(calls: list[str]) -> bool:
    writes = [i for i, call in enumerate(calls) if "pwrite64(" in call and "-wal>" in call]
    assert writes, "the command wrote nothing to the WAL"
    return any(
        re.search(r"\b(fsync|fdatasync)\(\d+<[^>]*-wal>", call) for call in calls[writes[-1] :]
    )


@pytest.mark.parametrize(
    ("text", "reply"),
    [("/logrun 5 km", "Logged 3.11 mi"), ("/settings units mi", "Distances are now in mi")],
    ids=["run", "setting"],
)
def test_the_reply_comes_after_the_change_is_on_disk(tmp_path: Path, text: str, reply: str) -> None:
    assert wal_synced_after_last_write(traced_say(tmp_path, text, reply))
