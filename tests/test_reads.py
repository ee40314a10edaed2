"""The read side: a live figure is stored totals plus the pipeline's buffer, and reading writes nothing."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot import app
from bot.config import Config
from bot.core import reads
from bot.core.model import Scope
from bot.core.parsing import format_distance
from bot.core.periods import parse_period
from sensors.simulated import notifications
from storage import queries
from storage.db import Database
from tests.conftest import make_ctx

LONDON = ZoneInfo("Europe/London")
# A Wednesday evening: tonight's running is inside this week's race.
EVENING = datetime(2026, 11, 25, 20, 0, tzinfo=LONDON).timestamp()
SEED = 5


async def stored(db: Database, wheel_id: int) -> int:
    return (await queries.wheel_total(db, wheel_id, 0, 2**40)).revolutions


async def test_a_hundred_reads_while_the_wheel_turns_commit_nothing_and_see_the_buffer(
    config: Config,
) -> None:
    runtime = await app.open_runtime(config)
    try:
        pipeline = runtime.pipelines["Ursula"]
        await pipeline.claim("test")  # this test counts the wheel (one writer per wheel)
        circumference = pipeline.hamster.circumference_m
        wheel_id = pipeline.store.wheel_id
        commits = runtime.db.commits
        feed = notifications(SEED, EVENING, EVENING + 11 * 3600, LONDON, circumference)
        calls = 0
        last_at = EVENING
        while calls < 100:
            for _ in range(100):  # the wheel turns between questions
                at, payload = next(feed)
                pipeline.feed(payload, at)
                last_at = at
            ctx = make_ctx(datetime.fromtimestamp(last_at, UTC), chat="group-1")
            race = await runtime.core.dispatch(ctx, "race", "")
            hamster = await runtime.core.dispatch(ctx, "hamster", "")
            calls += 1
            metres = format_distance(pipeline.credited * circumference, "km")
            assert f"Ursula 🐹: {metres}" in race.text
            assert f"Tonight so far: {metres}" in hamster.text
            assert f"({pipeline.credited:,} turns of the wheel)" in hamster.text
        assert pipeline.credited > 1000  # the hamster really ran meanwhile
        assert runtime.db.commits == commits  # not one flush, not one chat row
        assert await stored(runtime.db, wheel_id) == 0
        assert await runtime.db.fetchone("SELECT * FROM chats") is None
        credited = pipeline.credited
    finally:
        await runtime.close()  # the buffer is still written at shutdown, exactly as before
    async with await Database.open(config.bot.database) as db:
        assert await stored(db, wheel_id) == credited


async def test_reads_during_a_flush_count_every_revolution_once(config: Config) -> None:
    runtime = await app.open_runtime(config)
    try:
        pipeline = runtime.pipelines["Ursula"]
        await pipeline.claim("test")  # this test counts the wheel (one writer per wheel)
        core = runtime.core
        circumference = pipeline.hamster.circumference_m
        feed = notifications(SEED, EVENING, EVENING + 11 * 3600, LONDON, circumference)
        settings = reads.chat_settings(config, None)
        scope = core.scope_for(None)
        totals: list[tuple[int, int]] = []
        for _round in range(8):
            for _ in range(1000):
                at, payload = next(feed)
                pipeline.feed(payload, at)
            now = datetime.fromtimestamp(at, UTC)
            expected = pipeline.credited

            async def read(expected: int = expected, now: datetime = now) -> None:
                (ursula,) = await reads.hamsters_now(core, scope, now, settings)
                totals.append((ursula.revolutions, expected))

            # Reads queued before, beside and after the flush's transaction.
            await asyncio.gather(read(), pipeline.flush(), *(read() for _ in range(5)))
            await read()
        assert totals and all(seen == expected for seen, expected in totals)
        assert pipeline.credited > 0
    finally:
        await runtime.close()


async def test_read_functions_return_values_for_the_web(config: Config) -> None:
    runtime = await app.open_runtime(config)
    try:
        pipeline = runtime.pipelines["Ursula"]
        await pipeline.claim("test")  # this test counts the wheel (one writer per wheel)
        circumference = pipeline.hamster.circumference_m
        for at, payload in notifications(SEED, EVENING, EVENING + 4 * 3600, LONDON, circumference):
            pipeline.feed(payload, at)
        core = runtime.core
        now = datetime.fromtimestamp(EVENING + 4 * 3600, UTC)
        settings = reads.chat_settings(config, None)
        (ursula,) = await reads.hamsters_now(core, core.scope_for(None), now, settings)
        assert ursula.name == "Ursula" and ursula.revolutions == pipeline.credited > 0
        assert ursula.tonight_m == ursula.all_time_m == pipeline.credited * circumference
        assert ursula.last_night_m is None and ursula.average_7_m is None
        # The night ending on the 26th is under way: it has tonight's buffered running so far.
        nights = await reads.nights(core, "Ursula", settings, date(2026, 11, 26), 7)
        assert [n.morning.day for n in nights] == [20, 21, 22, 23, 24, 25, 26]
        assert [n.distance_m for n in nights] == [0.0] * 6 + [ursula.tonight_m]
        assert await reads.nights(core, "Nobody", settings, now.date(), 7) == []
        period = parse_period("week", now=now.astimezone(LONDON))
        board = await reads.standings(core, core.scope_for(None), None, period, now, settings)
        assert [(e.rank, e.name, e.kind) for e in board.entries] == [(1, "Ursula", "hamster")]
        assert board.entries[0].distance_m == ursula.all_time_m
        # A scope without the hamster sees nothing of it.
        empty = Scope(frozenset())
        assert await reads.hamsters_now(core, empty, now, settings) == []
        assert re.search(r"Ursula", (await core.dispatch(make_ctx(now), "race", "")).text)
    finally:
        await runtime.close()


async def test_a_race_and_a_morning_report_are_one_read_each_off_the_sqlite_thread(
    config: Config,
) -> None:
    """A /race reads the chat's row with everything else (its settings as last seen, checked in the
    same read); both are small, so with the SQLite thread idle they make no hand-off at all."""
    from bot.core.summary import compose_report
    from storage import chats as chat_store

    runtime = await app.open_runtime(config)
    try:
        core, db = runtime.core, runtime.db
        now = datetime.fromtimestamp(EVENING, UTC)
        await core.dispatch(make_ctx(now, user="ann"), "logrun", "5 km")
        chat = await chat_store.get_chat(db, "console", "group-1")
        assert chat is not None
        await core.dispatch(make_ctx(now, user="bob"), "race", "")  # the chat's row, first seen
        for period in ("week", "all", "today", "last month"):
            before, trips = db.reads, db.trips
            reply = await core.dispatch(make_ctx(now, user="bob"), "race", period)
            assert "Ursula" in reply.text
            assert ("Ann" in reply.text) == (period != "last month")
            assert db.reads - before == 1
            assert db.trips == trips
        before, trips = db.reads, db.trips
        report = await compose_report(core, chat, date(2026, 11, 26), chart=False)
        assert "Ann" in report.text and db.reads - before == 1 and db.trips == trips
    finally:
        await runtime.close()


async def test_a_race_follows_settings_changed_behind_its_back(config: Config) -> None:
    """Another process (or a bot before a restart) changes the chat's timezone: the very next
    /race reads the new row, notices, and answers in the new timezone (one read more)."""
    runtime = await app.open_runtime(config)
    try:
        core, db = runtime.core, runtime.db
        morning = datetime.fromtimestamp(EVENING - 11 * 3600, UTC)  # Wed 09:00 London, 20:00 Sydney
        now = datetime.fromtimestamp(EVENING, UTC)  # Wed 20:00 in London, Thu 07:00 in Sydney
        await core.dispatch(make_ctx(morning, user="ann"), "logrun", "5 km")
        first = await core.dispatch(make_ctx(now, user="bob"), "race", "today")
        assert "Ann" in first.text
        async with db.transaction() as conn:
            await conn.execute("UPDATE chats SET timezone = 'Australia/Sydney'")
        before = db.reads
        later = await core.dispatch(make_ctx(now, user="bob"), "race", "today")
        # Ann ran on Wednesday in both places, and it is Thursday morning in Sydney now.
        assert "Ann" not in later.text, later.text
        assert db.reads - before == 2
        before = db.reads
        again = await core.dispatch(make_ctx(now, user="bob"), "race", "today")
        assert again.text == later.text and db.reads - before == 1
    finally:
        await runtime.close()


async def test_an_inline_read_waits_its_turn_behind_work_on_the_sqlite_thread(
    tmp_path: Path,
) -> None:
    """``read(inline=True)`` runs on the loop only while aiosqlite's thread is idle; with work
    queued there, it queues behind it (never two threads on one connection at once)."""
    from storage.db import Query

    db = await Database.open(tmp_path / "inline.db")
    try:
        one = Query((("SELECT 1", ()),), lambda rowsets: rowsets[0][0][0])
        trips = db.trips
        assert await db.read(one, inline=True) == [1]
        assert db.trips == trips  # idle: read right here
        slow = asyncio.ensure_future(
            db.fetchall(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) "
                "SELECT COUNT(*) FROM c"
            )
        )
        await asyncio.sleep(0)  # queued on the thread, not finished
        assert not slow.done()
        assert await db.read(one, inline=True) == [1]
        assert slow.done() and await slow == [(300000,)]  # it went first
        assert db.trips == trips + 2
    finally:
        await db.close()
