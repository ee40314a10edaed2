"""The command core through BotCore on a real SQLite file: what every chat platform shares."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.commands import COMMANDS, MAX_REPLY, BotCore
from storage.db import Database
from tests.conftest import make_ctx

NOW = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)  # a Wednesday evening in London


async def say(core: BotCore, text: str, **ctx):
    reply = await core.handle_text(make_ctx(ctx.pop("now", NOW), **ctx), text)
    assert reply is not None
    return reply


async def count_runs(db: Database) -> int:
    return await db.scalar("SELECT COUNT(*) FROM runs WHERE deleted_at IS NULL")


async def test_help_lists_every_command(core: BotCore) -> None:
    reply = await say(core, "/help")
    for name, spec in COMMANDS.items():
        if not spec.hidden:
            assert f"/{name}" in reply.text


async def test_logrun_confirms_in_both_units_with_pace(core: BotCore, db: Database) -> None:
    reply = await say(core, "/logrun 5 km 25:00")
    assert "5.00 km (3.11 mi)" in reply.text
    assert "5:00 /km" in reply.text
    assert "Ursula" in reply.text and "tonight" in reply.text
    assert not reply.private
    row = await db.fetchone("SELECT distance_m, duration_s, day FROM runs")
    assert row == (5000.0, 1500.0, "2026-11-25")


async def test_logrun_yesterday_is_placed_on_that_day(core: BotCore, db: Database) -> None:
    await say(core, "/logrun 3.1 mi yesterday")
    day, ran_at = await db.fetchone("SELECT day, ran_at FROM runs")
    assert day == "2026-11-24"
    assert datetime.fromtimestamp(ran_at, UTC) == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "/logrun",
        "/logrun banana",
        "/logrun 0 km",
        "/logrun 0.0000001 km",
        "/logrun -5 km",
        "/logrun nan km",
        "/logrun inf",
        "/logrun 1e308 km",
        "/logrun 2000 km",
        "/logrun 5 parsecs",
        "/logrun 42 km 0:30:00",
        "/logrun 5 km 49:00:00",
        "/logrun 5 km tomorrow",
        "/logrun 5 km 2024-01-01",
        "/logrun 5 km banana",
        "/logrun 5 km'); DROP TABLE runs;--",
        "/logrun " + "9" * 5000,
        "/logrun 5\x00 km",
        "/logrun \u0665 km",  # an Arabic-Indic digit
        "/logrun 5 km \x1b[31mred",
    ],
)
async def test_bad_logrun_is_friendly_and_stores_nothing(
    core: BotCore, db: Database, text: str
) -> None:
    reply = await say(core, text)
    assert reply.private
    assert len(reply.text) < 300
    assert "Traceback" not in reply.text and "\x00" not in reply.text and "\x1b" not in reply.text
    assert "/logrun" in reply.text or "Try" in reply.text
    assert await count_runs(db) == 0
    assert await db.scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'runs'") == 1
    # Nothing at all is stored: not even the chat or the person.
    assert await db.scalar("SELECT COUNT(*) FROM chats") == 0
    assert await db.scalar("SELECT COUNT(*) FROM people") == 0


async def test_runs_and_undo_own_run(core: BotCore, db: Database) -> None:
    await say(core, "/logrun 5 km")
    await say(core, "/logrun 10 km")
    runs = await say(core, "/runs")
    assert runs.private and "#1" in runs.text and "#2" in runs.text
    undone = await say(core, "/undo")
    assert "#2" in undone.text
    assert await count_runs(db) == 1
    again = await say(core, "/undo 2")
    assert "can't find" in again.text
    assert await count_runs(db) == 1


async def test_undo_someone_elses_run_needs_an_admin(core: BotCore, db: Database) -> None:
    await say(core, "/logrun 5 km", user="bob")
    refused = await say(core, "/undo 1", user="carol")
    assert "isn't yours" in refused.text
    assert await count_runs(db) == 1
    done = await say(core, "/undo 1", user="dora", admin=True)
    assert "Removed run #1 (Bob's)" in done.text
    assert await count_runs(db) == 0


@pytest.mark.parametrize("arg", ["abc", "-1", "1.5", "99999999999999999999", "1; DROP TABLE runs"])
async def test_undo_with_a_bad_id(core: BotCore, db: Database, arg: str) -> None:
    await say(core, "/logrun 5 km")
    reply = await say(core, f"/undo {arg}")
    assert reply.private
    assert await count_runs(db) == 1


async def test_race_names_everyone_and_the_hamster(core: BotCore, db: Database) -> None:
    await say(core, "/logrun 5 km", user="alice")
    await say(core, "/logrun 3.1 mi", user="bob")
    reply = await say(core, "/race")
    lines = reply.text.splitlines()
    assert "this week" in lines[0]
    assert lines[1].startswith("🥇 Alice") and "5.00 km" in lines[1]
    assert lines[2].startswith("🥈 Bob") and "4.99 km" in lines[2]
    assert lines[3].startswith("🥉 Ursula 🐹") and "0 m" in lines[3]
    assert "ahead of Ursula" in lines[1]
    assert not reply.private


async def test_race_with_an_unknown_period_lists_what_works(core: BotCore) -> None:
    reply = await say(core, "/race fortnight-ish")
    assert reply.private
    assert "week" in reply.text and "month" in reply.text


async def test_chats_are_isolated(core: BotCore, db: Database) -> None:
    await say(core, "/logrun 5 km", chat="a")
    await say(core, "/logrun 7 km", chat="b", user="bob")
    race_a = await say(core, "/race", chat="a")
    assert "Alice" in race_a.text and "Bob" not in race_a.text
    # Bob cannot undo (or even see) chat a's run from chat b, admin or not.
    reply = await say(core, "/undo 1", chat="b", user="bob", admin=True)
    assert "can't find" in reply.text
    assert await count_runs(db) == 2
    await say(core, "/settings units mi", chat="b", admin=True)
    assert "km" in (await say(core, "/settings", chat="a")).text.split("units:")[1].split("\n")[0]


async def test_settings_need_an_admin_in_groups(core: BotCore, db: Database) -> None:
    refused = await say(core, "/settings timezone America/New_York")
    assert refused.private and "admins" in refused.text
    assert await db.scalar("SELECT timezone FROM chats") is None
    done = await say(core, "/settings timezone america/new_york", admin=True)
    assert "America/New_York" in done.text
    private = await say(core, "/settings units mi", private=True, chat="dm")
    assert "mi" in private.text
    shown = await say(core, "/settings")
    assert "timezone: America/New_York" in shown.text


@pytest.mark.parametrize(
    "text",
    [
        "/settings timezone Mars/Olympus",
        "/settings units furlongs",
        "/settings summary 25:00",
        "/settings colour blue",
    ],
)
async def test_bad_settings_change_nothing(core: BotCore, db: Database, text: str) -> None:
    reply = await say(core, text, admin=True)
    assert reply.private
    # Nothing written, not even the chat's row.
    assert (
        await db.fetchone("SELECT timezone, units, summary_time, summary_enabled FROM chats")
        is None
    )


async def test_summary_setting_off_and_on(core: BotCore, db: Database) -> None:
    await say(core, "/settings summary off", admin=True)
    assert await db.scalar("SELECT summary_enabled FROM chats") == 0
    await say(core, "/settings summary 7:30", admin=True)
    assert await db.fetchone("SELECT summary_time, summary_enabled FROM chats") == ("07:30", 1)


async def test_personal_units_show_both(core: BotCore, db: Database) -> None:
    await say(core, "/settings myunits mi", user="bob")
    reply = await say(core, "/logrun 5", user="bob")
    assert "5.00 mi" in reply.text  # a bare number is in Bob's own units
    race = await say(core, "/race")
    assert "km (5.00 mi)" in race.text


async def test_hamster_reports_tonight_last_night_and_all_time(core: BotCore, db: Database) -> None:
    wheel = core.hamsters[0].wheel_id
    # 1000 revolutions last night (Tue 23:00 UTC) and 500 tonight (Wed 18:00 UTC).
    last_night = int(datetime(2026, 11, 24, 23, 0, tzinfo=UTC).timestamp())
    tonight = int(datetime(2026, 11, 25, 18, 0, tzinfo=UTC).timestamp())
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO wheel_minutes (wheel_id, minute, revolutions, estimated) VALUES (?, ?, ?, 0)",
            [(wheel, last_night, 1000), (wheel, tonight, 500)],
        )
        await conn.executemany(
            "INSERT INTO wheel_hours (wheel_id, hour, revolutions, estimated) VALUES (?, ?, ?, 0)",
            [(wheel, last_night, 1000), (wheel, tonight, 500)],
        )
        await conn.executemany(
            "INSERT INTO wheel_days (wheel_id, day, revolutions, estimated) VALUES (?, ?, ?, 0)",
            [(wheel, last_night // 86400 * 86400, 1000), (wheel, tonight // 86400 * 86400, 500)],
        )
    reply = await say(core, "/hamster")
    circumference = core.hamsters[0].config.circumference_m
    assert f"Tonight so far: {500 * circumference:.0f} m" in reply.text
    assert f"Last night: {1000 * circumference:.0f} m" in reply.text
    assert "1,500 turns" in reply.text


async def test_unknown_command_and_other_bots(core: BotCore) -> None:
    reply = await say(core, "/frobnicate")
    assert "/help" in reply.text and reply.private
    assert (
        await core.handle_text(make_ctx(NOW), "/race@someotherbot", bot_username="hamsterbot")
        is None
    )
    mine = await core.handle_text(make_ctx(NOW), "/race@HamsterBot week", bot_username="hamsterbot")
    assert mine is not None and "Race" in mine.text
    assert await core.handle_text(make_ctx(NOW), "just chatting") is None


async def test_every_reply_fits_a_message(core: BotCore) -> None:
    for i in range(40):
        await say(core, "/logrun 1 km", user=f"runner{i:02d}", name="N" * 200 + str(i))
    reply = await say(core, "/race all")
    assert len(reply.text) <= MAX_REPLY
    assert "N" * 40 not in reply.text  # names are shortened


@pytest.mark.parametrize("zone", ["Europe/London", "America/New_York", "Australia/Lord_Howe"])
def test_nights_tile_across_dst(zone: str) -> None:
    """Every instant belongs to exactly one night, whatever the clocks do (23, 23.5, 24.5, 25 h)."""
    from datetime import date, time, timedelta
    from zoneinfo import ZoneInfo

    from bot.core.commands import last_night
    from bot.core.summary import report_night

    tz = ZoneInfo(zone)
    lengths = set()
    for summary_time in (time(8, 0), time(2, 30)):
        previous = None
        for offset in range(370):
            day = date(2026, 1, 1) + timedelta(days=offset)
            night = report_night(day, summary_time, tz)
            if previous is not None:
                assert night.start.timestamp() == previous.end.timestamp()
            lengths.add(night.end.timestamp() - night.start.timestamp())
            # /hamster's "last night" is the same night as that morning's report.
            moment = night.end + timedelta(hours=3)
            same = last_night(moment, summary_time)
            assert (same.start.timestamp(), same.end.timestamp()) == (
                night.start.timestamp(),
                night.end.timestamp(),
            )
            previous = night
    assert 86400 in lengths and len(lengths) >= 3  # the DST nights are shorter and longer
