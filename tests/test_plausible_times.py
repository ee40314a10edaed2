"""Issue 10, case 4: a reading's time must be plausible (sensors/plausible.py); an implausible one is
malformed, never stored, never moves the baseline; gap spreading is bounded; reads never raise."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from bot import cli
from bot.config import HamsterConfig
from bot.wheels import WheelPipeline
from sensors.capture import HEADER
from sensors.counter import Credit
from sensors.csc import encode_csc_measurement
from storage import queries
from storage.db import Database
from storage.wheel import spread_credit

T0 = 1_764_400_000.0  # 2025-11-29
URSULA = HamsterConfig(name="Ursula", circumference_m=0.6283, sensor="simulated")


def capture(path: Path, lines: list[tuple[str, int]]) -> Path:
    """A capture from (received_at as written, wheel counter) pairs."""
    body = "".join(f"{at},{encode_csc_measurement(counter, 0).hex()}\n" for at, counter in lines)
    path.write_text(HEADER + "\n" + body)
    return path


def steady(start: float, counter: int, seconds: int) -> list[tuple[str, int]]:
    return [(f"{start + s:.3f}", counter + 2 * s) for s in range(seconds + 1)]


def replay(tmp_path: Path, file: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code = cli.main(["replay", "--db", str(tmp_path / "bot.db"), "--wheel", "Ursula", str(file)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err
    return out


async def stored(path: Path) -> int:
    async with await Database.open(path) as db:
        return sum(
            [
                (await queries.wheel_total(db, w.id, 0, 2**40)).revolutions
                for w in await queries.wheels(db)
            ]
        )


def total(tmp_path: Path) -> int:
    import asyncio

    return asyncio.run(stored(tmp_path / "bot.db"))


def test_a_capture_in_milliseconds_is_malformed_and_poisons_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    millis = [(f"{(T0 + s) * 1000:.0f}", 10 + 2 * s) for s in range(60)]
    out = replay(tmp_path, capture(tmp_path / "ms.csv", millis), capsys)
    assert "credited 0 revolutions" in out and "60 malformed" in out
    assert total(tmp_path) == 0
    # The right capture of the same night still counts in full: nothing was "already counted".
    out = replay(tmp_path, capture(tmp_path / "s.csv", steady(T0, 10, 600)), capsys)
    assert "credited 1200 revolutions" in out
    assert total(tmp_path) == 1200


def test_an_overflowing_time_is_skipped_and_the_replay_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = steady(T0, 10, 100)
    lines.insert(50, ("1e19", 5000))
    out = replay(tmp_path, capture(tmp_path / "c.csv", lines), capsys)
    assert "credited 200 revolutions" in out and "1 malformed" in out
    assert total(tmp_path) == 200


def test_a_far_future_line_below_the_high_water_mark_credits_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = steady(T0, 1000, 100)
    lines.insert(
        60, (f"{time.time() + 10 * 365 * 86400:.3f}", 900)
    )  # ten years ahead, counter back
    out = replay(tmp_path, capture(tmp_path / "c.csv", lines), capsys)
    assert "credited 200 revolutions" in out
    assert total(tmp_path) == 200


@pytest.mark.parametrize("at", [-100_000_000_000.0, 0.0, 946_684_799.0, time.time() + 3600])
async def test_the_pipeline_never_stores_an_implausible_reading(db: Database, at: float) -> None:
    pipeline = await WheelPipeline.open(db, URSULA)
    pipeline.feed(encode_csc_measurement(100, 0), T0)
    await pipeline.flush()
    before = pipeline.counter.state
    pipeline.feed(encode_csc_measurement(50, 0), at)
    assert pipeline.malformed == 1
    assert pipeline.counter.state == before
    assert not pipeline.store.pending
    pipeline.feed(encode_csc_measurement(104, 0), T0 + 2)  # the next good reading counts as usual
    await pipeline.flush()
    assert (await queries.wheel_total(db, pipeline.store.wheel_id, 0, 2**40)).revolutions == 4


def test_an_old_capture_into_a_new_database_is_plausible(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = replay(tmp_path, capture(tmp_path / "old.csv", steady(1_000_000_000.0, 0, 30)), capsys)
    assert "credited 60 revolutions" in out and "0 malformed" in out


def test_spreading_a_huge_gap_is_bounded() -> None:
    # Years of gap and millions of revolutions: the split used to make one bucket per revolution.
    credit = Credit(revolutions=3_000_000, start=T0 - 5 * 365 * 86400, end=T0, estimated=True)
    buckets = spread_credit(credit)
    assert sum(r for _, r in buckets) == credit.revolutions
    assert len(buckets) <= 31 * 24 * 60
    assert all(credit.start < minute + 60 and minute <= credit.end for minute, _ in buckets)
    sparse = Credit(revolutions=10_000, start=0.0, end=T0, estimated=True)
    assert sum(r for _, r in spread_credit(sparse)) == 10_000


def test_reads_never_raise_whatever_is_in_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows an older version stored from implausible capture times: every read still answers."""
    path = tmp_path / "bot.db"
    replay(tmp_path, capture(tmp_path / "good.csv", steady(T0, 10, 100)), capsys)
    poisoned = (-100_000_000_000, 1_765_000_000_000)  # year -1199 and year 57,900
    with sqlite3.connect(path) as connection:
        for minute in poisoned:
            for table, key, step in (
                ("wheel_minutes", "minute", 60),
                ("wheel_hours", "hour", 3600),
                ("wheel_days", "day", 86400),
            ):
                connection.execute(
                    f"INSERT INTO {table} (wheel_id, {key}, revolutions, estimated) "
                    "VALUES (1, ?, 7, 0)",
                    (minute // step * step,),
                )
            connection.execute(
                "INSERT INTO sensor_events (wheel_id, at, kind, detail) VALUES (1, ?, 'battery', '')",
                (minute,),
            )
    connection.close()
    db = ["--db", str(path)]
    for argv in (
        ["say", *db, "/hamster stats"],
        ["say", *db, "/hamster"],
        ["say", *db, "/race all"],
        ["export", *db],
        ["export", *db, "--nights"],
        ["export", *db, "--format", "json"],
        ["summary", *db],
        ["totals", *db, "--json"],
    ):
        code = cli.main(argv)
        out, err = capsys.readouterr()
        assert code == 0, (argv, err)
        assert "internal error" not in err and "out of range" not in out, argv
