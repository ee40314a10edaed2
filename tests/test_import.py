"""`hamsterbot import FILE... --chat PLATFORM:ID --user NAME`: a line per file, runs stored with their source."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from storage import chats as chat_store
from storage.db import Database
from tests.fit_writer import activity_fit
from tests.test_cli import hamsterbot

DATA = Path(__file__).parent / "data" / "activities"


def rows(db: Path) -> list[tuple]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(
            "SELECT distance_m, duration_s, day, source FROM runs WHERE deleted_at IS NULL ORDER BY id"
        ).fetchall()
    finally:
        connection.close()


def run_import(capsys, db: Path, *args: str) -> tuple[int, list[str], str]:
    config = db.parent / "hamsterbot.toml"
    config.write_text('[bot]\nunits = "km"\ntimezone = "Europe/London"\n')
    code = main(["import", "--config", str(config), "--db", str(db), *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_real_files_one_line_each_and_the_bad_ones_store_nothing(tmp_path: Path, capsys) -> None:
    db = tmp_path / "h.db"
    files = [
        DATA / "activity-small-fenix2-run.fit",
        DATA / "garmin-fenix-5-bike.fit",
        DATA / "activity-filecrc.fit",
        DATA / "korita-zbevnica.gpx",
        DATA / "test.tcx",
    ]
    code, lines, err = run_import(
        capsys, db, "--chat", "console:club", "--user", "Ann", *map(str, files)
    )
    assert code == 2 and err == ""  # some files were refused
    assert len(lines) == len(files) + 1
    assert "logged run #1, 9.01 km (5.60 mi) on Sat 15 Aug 2015, 47:12 moving" in lines[0]
    assert "not logged" in lines[1] and "cycling" in lines[1]
    assert "not logged" in lines[2] and "checksum" in lines[2]
    assert "logged run #2" in lines[3] and "14.90 km" in lines[3]
    assert "logged run #3" in lines[4] and "4.69 km" in lines[4]
    assert lines[-1].startswith("3 logged, 0 already there, 2 not logged")
    assert rows(db) == [
        (pytest.approx(9008.22), 2832.0, "2015-08-15", "activity-small-fenix2-run.fit"),
        (pytest.approx(14897.08, abs=0.01), 5900.0, "2010-10-03", "korita-zbevnica.gpx"),
        (pytest.approx(4689.24, abs=0.01), pytest.approx(1992.78), "2012-12-26", "test.tcx"),
    ]

    # A backfill run again: everything is already there, nothing doubles, exit 0.
    code, lines, _ = run_import(
        capsys, db, "--chat", "console:club", "--user", "ann", str(files[0]), str(files[4])
    )
    assert code == 0
    assert "duplicate of run #1 (9.01 km on Sat 15 Aug 2015)" in lines[0]
    assert "duplicate of run #3" in lines[1]
    assert lines[-1].startswith("0 logged, 2 already there, 0 not logged")
    assert len(rows(db)) == 3


def test_a_folder_of_exports_and_gzipped_files(tmp_path: Path, capsys) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    shutil.copy(DATA / "test.tcx", exports / "a.tcx")
    start = datetime.now(UTC) - timedelta(days=2)
    fit = activity_fit(start=start, distance_m=5000.0, timer_s=1500.0)
    (exports / "b.fit.gz").write_bytes(gzip.compress(fit))
    (exports / "notes.txt").write_text("not an activity")
    db = tmp_path / "h.db"
    code, lines, _ = run_import(capsys, db, "--chat", "console:club", "--user", "Bob", str(exports))
    assert code == 0, lines
    assert len(lines) == 3 and "a.tcx: logged run #1" in lines[0]
    assert "b.fit.gz: logged run #2, 5.00 km (3.11 mi)" in lines[1] and "25:00 moving" in lines[1]
    assert [r[3] for r in rows(db)] == ["a.tcx", "b.fit.gz"]  # the name as sent


async def _telegram_people(db_path: Path) -> None:
    async with await Database.open(db_path) as db:
        await chat_store.ensure_chat(db, "telegram", "-100123", 0.0, "Runners")
        await chat_store.ensure_person(db, "telegram", "42", "Ann Lee", 0.0)
        await chat_store.ensure_person(db, "telegram", "43", "Sam", 0.0)
        await chat_store.ensure_person(db, "telegram", "44", "Sam", 0.0)


def test_platform_people_by_name_or_id(tmp_path: Path, capsys) -> None:
    db = tmp_path / "h.db"
    asyncio.run(_telegram_people(db))
    tcx = str(DATA / "test.tcx")
    code, lines, _ = run_import(capsys, db, "--chat", "telegram:-100123", "--user", "ann lee", tcx)
    assert code == 0 and "logged run #1" in lines[0] and "for Ann Lee" in lines[-1]
    code, _, err = run_import(capsys, db, "--chat", "telegram:-100123", "--user", "Sam", tcx)
    assert code == 2 and "several people called" in err and "43, 44" in err
    code, lines, _ = run_import(capsys, db, "--chat", "telegram:-100123", "--user", "44", tcx)
    assert code == 0 and "logged run #2" in lines[0]  # Sam 44 is another person
    code, _, err = run_import(capsys, db, "--chat", "telegram:-100123", "--user", "Zed", tcx)
    assert code == 2 and "nobody called" in err
    code, _, err = run_import(capsys, db, "--chat", "telegram:-1", "--user", "Ann Lee", tcx)
    assert code == 2 and 'no chat "telegram:-1"' in err and "telegram:-100123" in err
    assert len(rows(db)) == 2


def test_import_as_a_user_runs_it(tmp_path: Path) -> None:
    """The installed entry point: exit codes and one line per file, no traceback."""
    bomb = tmp_path / "bomb.gpx"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        '<gpx version="1.1"><trk><name>&b;</name></trk></gpx>'
    )
    empty = tmp_path / "empty.fit"
    empty.write_bytes(b"")
    result = hamsterbot(
        "import", "--db", "h.db", "--chat", "console:c", "--user", "Ann",
        str(bomb), str(empty), str(DATA / "garmin-fenix-5-run.fit"),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stdout.splitlines()
    assert "bomb.gpx: not logged" in lines[0] and "XML bombs" in lines[0]
    assert "empty.fit: not logged" in lines[1] and "is empty" in lines[1]
    assert "garmin-fenix-5-run.fit: logged run #1" in lines[2]
    assert "Traceback" not in result.stderr + result.stdout
    usage = hamsterbot("import", "--chat", "nocolon", "--user", "x", "a.fit", cwd=tmp_path)
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1
    missing = hamsterbot("import", "--user", "x", "a.fit", cwd=tmp_path)
    assert missing.returncode == 2 and "--chat" in missing.stderr
