"""Issue 10, case 3: one wheel has one writer. A second process counting the same wheel waits or
refuses with one line (exit 2); it never counts."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import pytest

from bot.config import HamsterConfig
from bot.wheels import WheelPipeline
from sensors.capture import HEADER, format_line
from sensors.csc import encode_csc_measurement
from storage import queries
from storage.db import Database, WheelBusy

T0 = 1_764_400_000.0
URSULA = HamsterConfig(name="Ursula", circumference_m=0.6283, sensor="simulated")


def write_capture(path: Path, seconds: int) -> int:
    """A steady runner: 2 revolutions a second for ``seconds``; returns the true revolutions."""
    with path.open("w") as capture:
        capture.write(HEADER + "\n")
        for second in range(seconds + 1):
            capture.write(format_line(T0 + second, encode_csc_measurement(1000 + 2 * second, 0)))
    return 2 * seconds  # the first reading is the baseline


async def wheel_revolutions(path: Path) -> int:
    async with await Database.open(path) as db:
        return sum(
            [
                (await queries.wheel_total(db, w.id, 0, 2**40)).revolutions
                for w in await queries.wheels(db)
            ]
        )


def replay(db: Path, capture: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "bot", "replay", "--db", str(db), "--wheel", "Ursula"]
    return subprocess.Popen([*command, str(capture)], stdout=PIPE, stderr=PIPE)


def test_two_concurrent_replays_of_one_capture_count_it_once(tmp_path: Path) -> None:
    capture = tmp_path / "night.csv"
    truth = write_capture(capture, 30_000)
    db = tmp_path / "bot.db"
    asyncio.run(wheel_revolutions(db))  # created first: the race here is counting, not migrating
    with replay(db, capture) as first, replay(db, capture) as second:
        outcomes = [p.communicate(timeout=300) for p in (first, second)]
    for process, (_, err) in zip((first, second), outcomes, strict=True):
        assert process.returncode in (0, 2), err.decode()
        if process.returncode == 2:
            assert (
                err.decode().count("\n") == 1 and "being counted by another process" in err.decode()
            )
    assert asyncio.run(wheel_revolutions(db)) == truth


async def test_replay_while_another_process_counts_the_wheel_refuses(tmp_path: Path) -> None:
    capture = tmp_path / "night.csv"
    write_capture(capture, 100)
    path = tmp_path / "bot.db"
    async with await Database.open(path) as db:
        live = await WheelPipeline.open(db, URSULA, holder="hamsterbot run")
        live.feed(encode_csc_measurement(5, 0), T0 - 10)
        await live.flush()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "replay", "--db", str(path), "--wheel", "Ursula",
            str(capture), stdout=PIPE, stderr=PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        assert process.returncode == 2
        assert err.decode().startswith("hamsterbot: ")
        assert err.decode().count("\n") == 1
        assert (
            'wheel "Ursula" is being counted by another process (hamsterbot run, pid'
            in err.decode()
        )
        assert b"Traceback" not in err and out == b""
        total = await queries.wheel_total(db, live.store.wheel_id, 0, 2**40)
        assert total.revolutions == 0


async def test_a_second_writer_in_the_same_process_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    async with await Database.open(path) as first, await Database.open(path) as second:
        await WheelPipeline.open(first, URSULA, holder="one")
        with pytest.raises(
            WheelBusy, match=r'"Ursula" is being counted by another process \(one, pid'
        ):
            await WheelPipeline.open(second, URSULA, holder="two")
        # Reading is not counting: a chat command's pipeline opens beside the writer.
        reader = await WheelPipeline.open(second, URSULA, holder=None)
        with pytest.raises(RuntimeError, match="claim the wheel"):
            reader.feed(encode_csc_measurement(1, 0), T0)


async def test_a_waiting_writer_takes_over_from_the_persisted_state(tmp_path: Path) -> None:
    """`run` waits while a replay counts, then counts on from where the replay left the wheel."""
    path = tmp_path / "bot.db"
    async with await Database.open(path) as db_run:
        waiting = await WheelPipeline.open(db_run, URSULA, holder=None)  # opened before the replay
        async with await Database.open(path) as db_replay:
            replaying = await WheelPipeline.open(db_replay, URSULA, holder="hamsterbot replay")
            claim = asyncio.create_task(waiting.claim("hamsterbot run", wait=True))
            for second in range(11):
                replaying.feed(encode_csc_measurement(100 + 3 * second, 0), T0 + second)
            await replaying.flush()
            await asyncio.sleep(0)
            assert not claim.done()
        await asyncio.wait_for(claim, timeout=30)  # released when the replay's database closed
        for second in range(11, 21):
            waiting.feed(encode_csc_measurement(100 + 3 * second, 0), T0 + second)
        await waiting.flush()
        assert (
            await queries.wheel_total(db_run, waiting.store.wheel_id, 0, 2**40)
        ).revolutions == 60


def test_holder_lock_files_sit_beside_the_database(tmp_path: Path) -> None:
    folder = tmp_path.resolve()

    async def holder_text() -> str:
        async with await Database.open(tmp_path / "bot.db") as db:
            pipeline = await WheelPipeline.open(db, URSULA, holder="hamsterbot replay")
            lock = db.wheel_lock_path(pipeline.store.wheel_id)
            assert lock is not None and lock.parent == folder
            return lock.read_text()

    assert asyncio.run(holder_text()).startswith("hamsterbot replay, pid ")
