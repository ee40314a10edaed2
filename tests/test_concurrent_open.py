"""Issue 10, case 2: several processes opening a brand-new database at once all get the full schema."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

from storage.db import MIGRATIONS, Database


async def test_concurrent_opens_of_a_new_database_all_succeed(tmp_path: Path) -> None:
    # Separate connections, as separate processes would have: each reads the schema version and
    # migrates. Read outside the write transaction, the version was stale by the time the
    # second connection got the lock, and it ran the first migration again.
    path = tmp_path / "new.db"
    results = await asyncio.gather(*(Database.open(path) for _ in range(4)), return_exceptions=True)
    try:
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        for db in results:
            assert isinstance(db, Database)
            assert await db.scalar("PRAGMA user_version") == len(MIGRATIONS)
    finally:
        for db in results:
            if isinstance(db, Database):
                await db.close()


def test_two_say_processes_on_a_new_database_both_log_their_run(tmp_path: Path) -> None:
    """The reported reproduction: two `hamsterbot say` processes racing to create the database."""
    for trial in range(3):
        path = tmp_path / f"race{trial}.db"
        command = [sys.executable, "-m", "bot", "say", "--db", str(path)]
        with (
            subprocess.Popen([*command, "/logrun 5 km"], stdout=PIPE, stderr=PIPE) as alice,
            subprocess.Popen(
                [*command, "--user", "bob", "/logrun 3 km"], stdout=PIPE, stderr=PIPE
            ) as bob,
        ):
            outcomes = [process.communicate(timeout=120) for process in (alice, bob)]
        for process, (_, err) in zip((alice, bob), outcomes, strict=True):
            assert process.returncode == 0, err.decode()
            assert b"Traceback" not in err
        totals = subprocess.run(
            [sys.executable, "-m", "bot", "totals", "--json", "--db", str(path)],
            capture_output=True,
            check=True,
        )
        assert totals.stdout.count(b'"user"') == 2
