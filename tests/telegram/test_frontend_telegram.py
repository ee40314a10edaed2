"""The Telegram frontend with the real python-telegram-bot polling FakeTelegram, over a real SQLite store."""

from __future__ import annotations

import asyncio
import gzip
import logging
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from telegram import Update
from telegram.error import Forbidden
from telegram.ext import AIORateLimiter

from bot import config as config_module
from bot.core import commands as core_commands
from bot.core.commands import BotCore, Command, CommandContext, Reply
from bot.frontends import telegram as frontend_module
from bot.frontends.telegram import TelegramFrontend, TokenRedactor
from storage import chats as chat_store
from storage.db import Database
from tests.fakes.frontends import start_frontend, stop_frontend
from tests.fakes.telegram_api import FakeTelegram, SentMessage

GROUP = -1001234567
OTHER_GROUP = -1007654321
ALICE, BOB, CAROL = 1001, 1002, 1003


def png_with_every_byte() -> bytes:
    """A valid 16x16 RGB PNG whose compressed data and pixels span all byte values."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes((x * 16 + y) % 256 for x in range(48)) for y in range(16))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 0))
        + chunk(b"IEND", b"")
    )


PNG = png_with_every_byte()


@dataclass
class Bot:
    fake: FakeTelegram
    frontend: TelegramFrontend
    core: BotCore
    db: Database

    def say(self, text: str, user: int = ALICE, chat: int = GROUP, **kwargs) -> int:
        names = {ALICE: ("Alice", "Smith"), BOB: ("Bob", None), CAROL: ("Carol", None)}
        first, last = names.get(user, (f"User{user}", None))
        chat_type = kwargs.pop("chat_type", "private" if chat > 0 else "supergroup")
        self.fake.push_message(
            chat,
            text,
            user_id=user,
            first_name=first,
            last_name=last,
            chat_type=chat_type,
            **kwargs,
        )
        return len(self.fake.messages_in(chat))

    def send_file(
        self, name: str | None, data: bytes, user: int = ALICE, chat: int = GROUP, **kwargs
    ) -> int:
        """A document sent "as file", the way the Telegram apps send a .gpx or .fit."""
        first = {ALICE: "Alice", BOB: "Bob"}.get(user, f"User{user}")
        chat_type = kwargs.pop("chat_type", "private" if chat > 0 else "supergroup")
        last = "Smith" if user == ALICE else None
        self.fake.push_document(
            chat,
            name,
            data,
            user_id=user,
            first_name=first,
            last_name=last,
            chat_type=chat_type,
            **kwargs,
        )
        return len(self.fake.messages_in(chat))

    async def reply_file(
        self, name: str | None, data: bytes, user: int = ALICE, chat: int = GROUP, **kwargs
    ) -> SentMessage:
        message_id = self.send_file(name, data, user, chat, **kwargs)
        [sent] = await self.fake.wait_for_sent(
            lambda s: s.chat_id == chat and s.reply_to_message_id == message_id
        )
        return sent

    async def reply(self, text: str, user: int = ALICE, chat: int = GROUP, **kwargs) -> SentMessage:
        """Say something and wait for the bot's answer to exactly that message."""
        message_id = self.say(text, user, chat, **kwargs)
        [sent] = await self.fake.wait_for_sent(
            lambda s: s.chat_id == chat and s.reply_to_message_id == message_id
        )
        return sent


def _config(tmp_path: Path, fake: FakeTelegram) -> config_module.Config:
    return config_module.parse(
        {
            "bot": {"database": str(tmp_path / "bot.db"), "timezone": "UTC", "units": "km"},
            "hamsters": [{"name": "Ursula", "wheel_diameter_cm": 20}],
            "telegram": {"token": fake.token, "base_url": fake.base_url},
        }
    )


@pytest.fixture
async def bot(tmp_path: Path, fake_telegram: FakeTelegram) -> AsyncIterator[Bot]:
    config = _config(tmp_path, fake_telegram)
    db = await Database.open(config.bot.database)
    core = await BotCore.create(db, config)
    frontend = TelegramFrontend(
        core, config.telegram, rate_limiter=AIORateLimiter(max_retries=2), poll_timeout=1
    )
    task = await start_frontend(frontend, "Telegram")
    try:
        yield Bot(fake_telegram, frontend, core, db)
    finally:
        await stop_frontend(task)
        await db.close()


# --- start-up ---------------------------------------------------------------------------------


async def test_command_menus_are_registered_per_scope(bot: Bot) -> None:
    menus = {
        scope: [c["command"] for c in commands]
        for scope, commands in bot.fake.commands_by_scope.items()
    }
    assert set(menus) == {
        "default",
        "all_group_chats",
        "all_chat_administrators",
        "all_private_chats",
    }
    assert {"logrun", "race", "runs", "undo", "hamster", "help"} <= set(menus["all_group_chats"])
    assert "settings" not in menus["all_group_chats"] and "settings" not in menus["default"]
    assert "settings" in menus["all_chat_administrators"]
    assert "settings" in menus["all_private_chats"]


# --- the commands ---------------------------------------------------------------------------


async def test_two_runners_and_the_hamster_race(bot: Bot) -> None:
    alice = await bot.reply("/logrun 5 km")
    assert "Logged 5" in (alice.text or "") and "Alice Smith" in (alice.text or "")
    bob = await bot.reply("/logrun 3.1 mi", user=BOB)
    assert "Bob" in (bob.text or "")
    race = await bot.reply("/race")
    text = race.text or ""
    assert "Alice Smith" in text and "Bob" in text and "Ursula" in text
    assert text.index("Alice Smith") < text.index("Bob")  # 5 km beats 3.1 mi


async def test_addressed_commands_work_and_other_bots_commands_are_ignored(bot: Bot) -> None:
    bot.say("/logrun@someotherbot 5 km")
    bot.say("/frobnicate")  # not mine, not addressed to me: maybe another bot's
    reply = await bot.reply(f"/logrun@{bot.fake.bot_username} 2 km")
    assert "Logged 2" in (reply.text or "")
    assert len(bot.fake.sent) == 1
    unknown = await bot.reply(f"/frobnicate@{bot.fake.bot_username}")
    assert "/help" in (unknown.text or "")


async def test_bad_input_is_friendly_and_stores_nothing(bot: Bot) -> None:
    reply = await bot.reply("/logrun banana")
    assert "/logrun" in (reply.text or "") and "Traceback" not in (reply.text or "")
    runs = await bot.reply("/runs")
    assert "haven't logged any runs" in (runs.text or "")
    huge = await bot.reply("/logrun " + "9" * 5000)
    assert len(huge.text or "") < 500


async def test_runs_undo_hamster_help_and_start(bot: Bot) -> None:
    await bot.reply("/logrun 3 km 15:00")
    await bot.reply("/logrun 4 km yesterday")
    runs = await bot.reply("/runs")
    assert "#1" in (runs.text or "") and "#2" in (runs.text or "")
    refused = await bot.reply("/undo 1", user=BOB)
    assert "isn't yours" in (refused.text or "")
    undone = await bot.reply("/undo 1")
    assert "Removed run #1" in (undone.text or "")
    hamster = await bot.reply("/hamster")
    assert "Ursula" in (hamster.text or "") and "All time" in (hamster.text or "")
    stats = await bot.reply("/hamster stats")
    assert stats.text and stats.text != hamster.text
    help_text = (await bot.reply("/help")).text or ""
    assert "/logrun" in help_text and "/settings" in help_text
    start = await bot.reply("/start", user=BOB, chat=BOB)
    assert "Hi Bob" in (start.text or "")


async def test_settings_admin_only_in_groups(bot: Bot) -> None:
    refused = await bot.reply("/settings units mi", user=BOB)
    assert "admins" in (refused.text or "")
    bot.fake.set_member_status(GROUP, ALICE, "administrator")
    changed = await bot.reply("/settings units mi")
    assert "now in mi" in (changed.text or "")
    bot.fake.set_member_status(GROUP, CAROL, "creator")
    tz = await bot.reply("/settings timezone Europe/Berlin", user=CAROL)
    assert "Europe/Berlin" in (tz.text or "")
    chat = await chat_store.get_chat(bot.db, "telegram", str(GROUP))
    assert chat is not None and (chat.units, chat.timezone) == ("mi", "Europe/Berlin")


async def test_anonymous_admin_is_an_admin(bot: Bot) -> None:
    reply = await bot.reply("/settings summary 07:15", sender_chat=GROUP)
    assert "07:15" in (reply.text or "")


async def test_admin_status_is_cached_briefly(bot: Bot) -> None:
    await bot.reply("/settings units mi", user=BOB)
    await bot.reply("/settings units km", user=BOB)
    lookups = [c for c in bot.fake.calls["getChatMember"] if c.params.get("user_id") == BOB]
    assert len(lookups) == 1
    bot.frontend.admin_cache_seconds = 0
    bot.frontend._admins.clear()
    bot.fake.set_member_status(GROUP, BOB, "administrator")
    assert "now in mi" in ((await bot.reply("/settings units mi", user=BOB)).text or "")


async def test_private_chat_owner_may_change_settings(bot: Bot) -> None:
    reply = await bot.reply("/settings units mi", user=BOB, chat=BOB)
    assert "now in mi" in (reply.text or "")
    assert not bot.fake.calls["getChatMember"]


async def test_chats_are_isolated(bot: Bot) -> None:
    await bot.reply("/logrun 5 km")
    elsewhere = await bot.reply("/race all", chat=OTHER_GROUP)
    assert "Alice" not in (elsewhere.text or "") and "Ursula" in (elsewhere.text or "")
    undo = await bot.reply("/undo 1", chat=OTHER_GROUP)
    assert "can't find run #1" in (undo.text or "")


async def test_display_name_follows_the_latest_one(bot: Bot) -> None:
    await bot.reply("/logrun 5 km")
    # Reads write nothing, not even a new name; the next write (a run) takes it.
    bot.fake.push_message(GROUP, "/runs", user_id=ALICE, first_name="Ally", chat_type="supergroup")
    await bot.fake.wait_for_sent(lambda s: "Your last run:" in (s.text or ""))
    race = await bot.reply("/race", user=BOB)
    assert "Alice Smith" in (race.text or "")
    bot.fake.push_message(
        GROUP, "/logrun 1 km", user_id=ALICE, first_name="Ally", chat_type="supergroup"
    )
    await bot.fake.wait_for_sent(lambda s: "Logged 1.00 km" in (s.text or ""))
    race = await bot.reply("/race", user=BOB)
    assert "Ally" in (race.text or "") and "Alice Smith" not in (race.text or "")


async def test_edited_messages_are_not_commands(bot: Bot) -> None:
    application = bot.frontend.application
    assert application is not None
    message = {
        "message_id": 1,
        "date": 0,
        "chat": {"id": GROUP, "type": "supergroup", "title": "g"},
        "from": {"id": ALICE, "is_bot": False, "first_name": "Alice"},
        "text": "/logrun 5 km",
        "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
    }
    fresh = Update.de_json({"update_id": 1, "message": message}, application.bot)
    edited = Update.de_json(
        {"update_id": 2, "edited_message": {**message, "edit_date": 1}}, application.bot
    )
    handlers = application.handlers[0]
    assert any(h.check_update(fresh) for h in handlers)
    assert not any(h.check_update(edited) for h in handlers)


async def test_rate_limited_reply_is_retried(bot: Bot) -> None:
    bot.fake.fail_next("sendMessage", status=429, retry_after=0.05)
    reply = await bot.reply("/help")
    assert "/logrun" in (reply.text or "")
    statuses = [c.status for c in bot.fake.calls["sendMessage"]]
    assert statuses == [429, 200]


# --- images, long replies, crashes (extra core commands) ---------------------------------------


async def _picture(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    return Reply(f"picture for {args or 'nothing'}", image_png=PNG, image_name="night.png")


async def _essay(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    return Reply("\n".join(f"line {i:04d} " + "x" * 60 for i in range(55)))


async def _broken(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    raise RuntimeError("database is on fire at /secret/path")


@pytest.fixture
def extra_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, handler in (("picture", _picture), ("essay", _essay), ("broken", _broken)):
        monkeypatch.setitem(
            core_commands.COMMANDS,
            name,
            Command(name, f"/{name} [WHAT]", f"test {name}", handler),
        )


async def test_photo_bytes_arrive_intact_with_caption(extra_commands: None, bot: Bot) -> None:
    sent = await bot.reply("/picture last night")
    assert sent.method == "sendPhoto"
    assert sent.photo == PNG and sent.photo_filename == "night.png"
    assert sent.caption == "picture for last night"


async def test_long_text_is_split_cleanly(
    extra_commands: None, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(frontend_module, "MAX_MESSAGE", 2000)  # core caps replies at 4096
    message_id = bot.say("/essay")
    parts = await bot.fake.wait_for_sent(lambda s: s.chat_id == GROUP, count=2)
    assert parts[0].reply_to_message_id == message_id
    assert all(len(p.text or "") <= 2000 for p in parts)
    assert "\n".join(p.text or "" for p in parts) == (await _essay(None, None, "")).text  # type: ignore[arg-type]


async def test_a_crash_gets_a_short_apology(
    extra_commands: None, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="bot.frontends.telegram"):
        reply = await bot.reply("/broken")
    assert reply.text == frontend_module.SORRY
    assert any("database is on fire" in r.getMessage() or r.exc_info for r in caplog.records)


async def test_chart_arrives_as_a_photo_and_export_as_documents(bot: Bot) -> None:
    await bot.reply("/logrun 5 km")
    chart = await bot.reply("/chart week")
    assert chart.method == "sendPhoto" and (chart.photo or b"").startswith(b"\x89PNG")
    message_id = bot.say("/export")
    sent = await bot.fake.wait_for_sent(lambda s: s.method == "sendDocument", count=2)
    assert {s.document_filename for s in sent} == {"runs.csv", "nights.csv"}
    runs_csv = next(s.document for s in sent if s.document_filename == "runs.csv") or b""
    assert b"Alice Smith" in runs_csv
    [text] = [s for s in bot.fake.sent if s.reply_to_message_id == message_id]
    assert "runs.csv" in (text.text or "")


async def test_a_crashed_start_is_restarted_by_the_supervisor(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    from bot.app import supervise

    config = _config(tmp_path, fake_telegram)
    db = await Database.open(config.bot.database)
    try:
        core = await BotCore.create(db, config)
        frontend = TelegramFrontend(core, config.telegram, poll_timeout=1)
        # A server error at start (a rejected token is different: it turns Telegram off).
        fake_telegram.fail_next("getMe", status=502, description="Bad Gateway")
        task = asyncio.create_task(supervise("Telegram", frontend.run, initial=0.01))
        try:
            async with asyncio.timeout(5):
                await frontend.ready.wait()
            assert [c.status for c in fake_telegram.calls["getMe"]][:2] == [502, 200]
            fake_telegram.push_message(GROUP, "/help", user_id=ALICE, first_name="Alice")
            [reply] = await fake_telegram.wait_for_sent()
            assert "/logrun" in (reply.text or "")
        finally:
            await stop_frontend(task)
    finally:
        await db.close()


# --- sending outside a command (the morning report) -------------------------------------------


async def test_send_fails_then_succeeds(bot: Bot) -> None:
    bot.fake.add_chat(GROUP, "supergroup")
    chat = await chat_store.ensure_chat(bot.db, "telegram", str(GROUP), 0.0)
    bot.fake.fail_next("sendPhoto", status=403)
    report = Reply("Good morning! Ursula ran 2 km.", image_png=PNG, image_name="night.png")
    with pytest.raises(Forbidden):
        await bot.frontend.send(chat, report)
    await bot.frontend.send(chat, report)
    [sent] = [s for s in bot.fake.sent if s.chat_id == GROUP]
    assert (sent.method, sent.caption, sent.photo) == ("sendPhoto", report.text, PNG)


async def test_send_long_caption_goes_as_photo_then_text(bot: Bot) -> None:
    bot.fake.add_chat(GROUP, "supergroup")
    chat = await chat_store.ensure_chat(bot.db, "telegram", str(GROUP), 0.0)
    report = Reply("x" * 1500, image_png=PNG)
    await bot.frontend.send(chat, report)
    sent = [s for s in bot.fake.sent if s.chat_id == GROUP]
    assert [(s.method, s.caption, s.text) for s in sent] == [
        ("sendPhoto", None, None),
        ("sendMessage", None, "x" * 1500),
    ]


async def test_send_without_a_connection_raises(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    frontend = TelegramFrontend(None, _config(tmp_path, fake_telegram).telegram)  # type: ignore[arg-type]
    chat = chat_store.Chat(1, "telegram", "123", None, None, None, None, None)
    with pytest.raises(ConnectionError):
        await frontend.send(chat, Reply("hello"))


# --- the token stays secret -------------------------------------------------------------------


async def test_token_never_reaches_the_log(
    tmp_path: Path, fake_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    uninstall = frontend_module.install_redactor([fake_telegram.token])
    try:
        config = _config(tmp_path, fake_telegram)
        db = await Database.open(config.bot.database)
        try:
            core = await BotCore.create(db, config)
            frontend = TelegramFrontend(core, config.telegram, poll_timeout=1)
            task = await start_frontend(frontend, "Telegram")
            fake_telegram.push_message(GROUP, "/help", user_id=ALICE, first_name="Alice")
            await fake_telegram.wait_for_sent()
            logging.getLogger("test").warning("leak %s", f"url/bot{fake_telegram.token}/getMe")
            await stop_frontend(task)
        finally:
            await db.close()
    finally:
        uninstall()
    text = caplog.text
    assert "leak url/bot[token]/getMe" in text
    assert fake_telegram.token not in text


def test_redactor_scrubs_arguments_and_tracebacks() -> None:
    redactor = TokenRedactor(["123:SECRET"])
    try:
        raise ValueError("bad url https://x/bot123:SECRET/getMe")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, "f", 1, "got %s", ("123:SECRET",), sys.exc_info()
        )
    assert redactor.filter(record)
    assert record.getMessage() == "got [token]"
    assert "SECRET" not in (record.exc_text or "")


def test_pure_pieces() -> None:
    assert frontend_module.api_urls(None) is None
    assert frontend_module.api_urls("http://h:8081") == (
        "http://h:8081/bot",
        "http://h:8081/file/bot",
    )
    assert frontend_module.api_urls("http://h:8081/bot") == (
        "http://h:8081/bot",
        "http://h:8081/file/bot",
    )
    assert frontend_module.command_args("/logrun@hamsterbot  5 km  yesterday ") == "5 km  yesterday"
    assert frontend_module.command_args("/race") == ""
    assert frontend_module.display_name("Alice", None) == "Alice"
    assert frontend_module.display_name("Alice", "Smith") == "Alice Smith"
    assert frontend_module.reply_plan(Reply("hi", image_png=b"x")) == ("hi", [])
    assert frontend_module.reply_plan(Reply("hi")) == (None, ["hi"])


async def test_a_rejected_token_turns_telegram_off_instead_of_retrying(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    from dataclasses import replace

    from bot.frontends import FrontendOff

    config = _config(tmp_path, fake_telegram)
    wrong = replace(config.telegram, token="123:not-the-token")
    async with await Database.open(config.bot.database) as db:
        core = await BotCore.create(db, config)
        with pytest.raises(FrontendOff, match="rejected the bot token") as caught:
            await TelegramFrontend(core, wrong, poll_timeout=1).run()
        assert "not-the-token" not in str(caught.value)


def test_the_redactor_never_raises_on_a_malformed_log_call() -> None:
    redactor = TokenRedactor(["123:SECRET"])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s", (1,), None)
    assert redactor.filter(record) is True


async def test_names_with_markup_are_sent_as_plain_text(bot: Bot) -> None:
    """Telegram messages carry no parse mode, so a name's markup shows literally (issue 16)."""
    bot.fake.push_message(
        GROUP,
        "/logrun 5 km",
        user_id=4242,
        first_name="[Free](https://e.vil) *b*",
        last_name=None,
        chat_type="supergroup",
    )
    sent = await bot.fake.wait_for_sent(lambda s: "Logged" in (s.text or ""))
    assert sent[0].parse_mode is None
    assert "[Free](https://e.vil) *b*" in (sent[0].text or "")


# --- activity files ----------------------------------------------------------------------------------

DATA = Path(__file__).parent.parent / "data" / "activities"


def recent_run_fit(hours_ago: float = 2.0, **kwargs) -> bytes:
    from datetime import UTC, datetime, timedelta

    from tests.fit_writer import activity_fit

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=hours_ago)
    return activity_fit(
        start=start,
        distance_m=kwargs.pop("distance_m", 8046.72),
        timer_s=kwargs.pop("timer_s", 2400.0),
        **kwargs,
    )


async def _file_runs(db: Database) -> list[tuple]:
    return await db.fetchall(
        "SELECT distance_m, source FROM runs WHERE deleted_at IS NULL ORDER BY id"
    )


async def test_an_activity_file_is_downloaded_and_logged(bot: Bot) -> None:
    reply = await bot.reply_file("Morning Run.fit", recent_run_fit())
    text = reply.text or ""
    assert text.startswith(
        "✅ Logged 8.05 km (5.00 mi) for Alice Smith from Morning Run.fit: a run"
    )
    assert "40:00 moving (4:58 /km)" in text and "🐹 Ursula has run" in text
    assert len(bot.fake.calls["getFile"]) == 1 and len(bot.fake.downloads) == 1
    assert await _file_runs(bot.db) == [(8046.72, "Morning Run.fit")]
    runs = await bot.reply("/runs")
    assert "from Morning Run.fit" in (runs.text or "")
    again = await bot.reply_file("Morning Run (1).fit", recent_run_fit())
    assert "logged that one already (run #1" in (again.text or "")
    assert len(await _file_runs(bot.db)) == 1


async def test_any_file_captioned_logrun_is_read_and_other_files_are_left_alone(bot: Bot) -> None:
    bot.send_file("minutes.pdf", b"%PDF-1.4 not a run")  # shared in the group: not for me
    bot.send_file("run.fit", recent_run_fit(), caption="/race")  # another command's caption
    bot.send_file("run.fit", recent_run_fit(), caption="/logrun@someotherbot")
    export = gzip.compress(recent_run_fit(hours_ago=30, distance_m=5000, timer_s=1500))
    reply = await bot.reply_file(
        "export_123",
        export,
        caption=f"/logrun@{bot.fake.bot_username}",
        mime_type="application/gzip",
    )
    assert "Logged 5.00 km" in (reply.text or "") and "from export_123" in (reply.text or "")
    assert len(bot.fake.sent) == 1  # only that one was answered
    assert len(bot.fake.calls["getFile"]) == 1


async def test_bad_files_get_a_friendly_reply_and_store_nothing(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    ride = await bot.reply_file("ride.fit", (DATA / "garmin-fenix-5-bike.fit").read_bytes())
    assert "cycling" in (ride.text or "") and "runs and walks" in (ride.text or "")
    old = await bot.reply_file("test.tcx", (DATA / "test.tcx").read_bytes())  # from 2012
    assert "more than a year ago" in (old.text or "") and "hamsterbot import" in (old.text or "")
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><gpx><trk><name>&b;</name></trk></gpx>'
    )
    assert "XML bombs" in ((await bot.reply_file("bomb.gpx", bomb)).text or "")
    cut = recent_run_fit()[:-30]
    assert "cut short" in ((await bot.reply_file("cut.fit", cut)).text or "")
    assert await _file_runs(bot.db) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_files_too_big_are_refused_before_or_at_download(bot: Bot) -> None:
    over_telegram = await bot.reply_file("long.gpx", b" " * (20 * 2**20 + 1))
    assert "too big for a bot to download" in (over_telegram.text or "")
    assert bot.fake.downloads == []
    over_ours = await bot.reply_file("huge.fit", bytes(25 * 2**20 + 1))
    assert "over 25 MB" in (over_ours.text or "")
    assert len(bot.fake.calls["getFile"]) == 1  # the second was never asked for
    assert await _file_runs(bot.db) == []
