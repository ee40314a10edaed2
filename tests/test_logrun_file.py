"""/logrun with a file through the command core: logged like a typed run, refused without a trace."""

from __future__ import annotations

import gzip
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core.commands import BotCore
from bot.core.parsing import UserError
from bot.core.registry import Upload
from storage.db import Database
from tests.conftest import make_ctx
from tests.fit_writer import activity_fit

DATA = Path(__file__).parent / "data" / "activities"
NOW = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)  # a Wednesday evening in London
THIS_MORNING = datetime(2026, 11, 25, 7, 5, tzinfo=UTC)


def upload(name: str, data: bytes, *, size: int | None = None, fetched: list | None = None):
    async def fetch() -> bytes:
        if fetched is not None:
            fetched.append(name)
        return data

    return Upload(name, len(data) if size is None else size, fetch)


async def send(core: BotCore, name: str, data: bytes, **kwargs):
    ctx = make_ctx(kwargs.pop("now", NOW), **kwargs)
    return await core.dispatch(replace(ctx, upload=upload(name, data)), "logrun", "")


def morning_fit(**kwargs) -> bytes:
    return activity_fit(
        start=kwargs.pop("start", THIS_MORNING),
        distance_m=kwargs.pop("distance_m", 10_020.0),
        timer_s=kwargs.pop("timer_s", 3130.0),
        elapsed_s=kwargs.pop("elapsed_s", 3300.0),
        **kwargs,
    )


async def count_runs(db: Database) -> int:
    return await db.scalar("SELECT COUNT(*) FROM runs WHERE deleted_at IS NULL")


async def test_a_file_is_logged_and_answered_like_a_typed_run(core: BotCore, db: Database) -> None:
    reply = await send(core, "Morning_Run.fit", morning_fit())
    assert not reply.private
    assert reply.text.startswith(
        "✅ Logged 10.02 km (6.23 mi) for Alice from Morning_Run.fit: a run today at 07:05,"
        " 52:10 moving (5:12 /km). Run #1, /undo to take it back."
    ), reply.text
    assert "🐹 Ursula has run" in reply.text and "tonight" in reply.text
    row = await db.fetchone("SELECT distance_m, duration_s, day, ran_at, source FROM runs")
    assert row == (10_020.0, 3130.0, "2026-11-25", THIS_MORNING.timestamp(), "Morning_Run.fit")


async def test_the_day_is_the_chats_day(core: BotCore, db: Database) -> None:
    # 23:30 UTC on the 24th is 00:30 on the 25th in Auckland, still the 24th in London.
    start = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    reply = await send(core, "late.fit", morning_fit(start=start, distance_m=5000, timer_s=1500))
    assert "on Tue 24 Nov at 23:30" in reply.text
    await core.dispatch(
        make_ctx(NOW, admin=True, chat="kiwis"), "settings", "timezone Pacific/Auckland"
    )
    reply = await send(
        core, "late.fit", morning_fit(start=start, distance_m=5000, timer_s=1500), chat="kiwis"
    )
    assert "today at 12:30" not in reply.text and "on Wed 25 Nov at 12:30" in reply.text
    days = [r[0] for r in await db.fetchall("SELECT day FROM runs ORDER BY id")]
    assert days == ["2026-11-24", "2026-11-25"]


async def test_the_same_file_twice_is_a_duplicate(core: BotCore, db: Database) -> None:
    await send(core, "run.fit", morning_fit())
    again = await send(core, "run (1).fit", morning_fit(distance_m=10_050.0))  # re-exported: 0.3 %
    assert again.private
    assert (
        again.text
        == "You've logged that one already (run #1, 10.02 km on Wed 25 Nov). Nothing changed."
    )
    assert await count_runs(db) == 1
    # Bob's copy of the group run is his own run.
    assert "Run #2" in (await send(core, "run.fit", morning_fit(), user="bob")).text


async def test_real_exports_each_format(core: BotCore, db: Database) -> None:
    old = datetime(2012, 12, 27, 12, tzinfo=UTC)  # the TCX is from 2012: send it "the next day"
    reply = await send(core, "test.tcx", (DATA / "test.tcx").read_bytes(), now=old)
    assert (
        "4.69 km (2.91 mi)" in reply.text
        and "from test.tcx: a run on Wed 26 Dec at 21:29" in reply.text
    )
    hike = datetime(2010, 10, 4, 12, tzinfo=UTC)
    reply = await send(
        core, "hike.gpx.gz", gzip.compress((DATA / "korita-zbevnica.gpx").read_bytes()), now=hike
    )
    assert "14.90 km" in reply.text and "from hike.gpx.gz" in reply.text
    fenix = datetime(2015, 8, 16, tzinfo=UTC)
    reply = await send(
        core, "fenix.fit", (DATA / "activity-small-fenix2-run.fit").read_bytes(), now=fenix
    )
    assert "9.01 km" in reply.text and "47:12 moving" in reply.text
    assert await count_runs(db) == 3


async def test_bad_files_change_nothing(core: BotCore, db: Database, caplog) -> None:
    cases = {
        "ride.fit": ((DATA / "garmin-fenix-5-bike.fit").read_bytes(), "cycling"),
        "crc.fit": ((DATA / "activity-filecrc.fit").read_bytes(), "checksum"),
        "notes.gpx": (b"just some notes", "isn't a GPX, FIT or TCX"),
        "future.fit": (morning_fit(start=NOW + timedelta(days=1)), "in the future"),
        "old.fit": (morning_fit(start=NOW - timedelta(days=400)), "more than a year ago"),
        "empty.gpx": (b"", "is empty"),
    }
    for name, (data, problem) in cases.items():
        reply = await send(core, name, data)
        assert reply.private and problem in reply.text, (name, reply.text)
    assert await count_runs(db) == 0
    assert await db.scalar("SELECT COUNT(*) FROM chats") == 0  # not even a chat row
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_a_file_over_the_limit_is_not_even_fetched(core: BotCore, db: Database) -> None:
    fetched: list[str] = []
    ctx = replace(make_ctx(NOW), upload=upload("huge.fit", b"", size=26 * 2**20, fetched=fetched))
    reply = await core.dispatch(ctx, "logrun", "")
    assert reply.private and "over 25 MB" in reply.text
    assert fetched == [] and await count_runs(db) == 0


async def test_a_platform_refusal_while_fetching_is_a_friendly_reply(core: BotCore) -> None:
    async def refuse() -> bytes:
        raise UserError("big.fit is too big for Telegram bots to download (20 MB).")

    ctx = replace(make_ctx(NOW), upload=Upload("big.fit", 21 * 2**20, refuse))
    reply = await core.dispatch(ctx, "logrun", "")
    assert reply.private and "too big for Telegram" in reply.text


async def test_runs_shows_where_each_run_came_from(core: BotCore) -> None:
    await core.handle_text(make_ctx(NOW), "/logrun 5 km")
    await send(core, "Morning_Run.fit", morning_fit())
    reply = await core.handle_text(make_ctx(NOW), "/runs")
    assert reply is not None
    lines = reply.text.splitlines()
    assert lines[1] == "#1 Wed 25 Nov: 5.00 km, typed"
    assert lines[2] == "#2 Wed 25 Nov: 10.02 km in 52:10, from Morning_Run.fit"
