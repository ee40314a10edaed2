"""The Discord frontend with the real discord.py client against FakeDiscord, over a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import discord
import discord.gateway
import discord.http
import pytest

from bot import config as config_module
from bot.core import commands as core_commands
from bot.core.commands import BotCore, Command, CommandContext, Reply, split_text
from bot.frontends import discord as frontend_module
from bot.frontends.discord import DiscordFrontend, HamsterClient
from storage import chats as chat_store
from storage.db import Database
from tests.fakes.discord_api import ADMINISTRATOR, FakeDiscord, Recorded, Upload
from tests.fakes.frontends import start_frontend, stop_frontend

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8  # every byte value, twice over
MANAGE_GUILD = 1 << 5


@dataclass
class Bot:
    fake: FakeDiscord
    frontend: DiscordFrontend
    core: BotCore
    db: Database

    async def run(self, user: str, name: str, options: dict | None = None, **kwargs) -> int:
        who = self.fake.user_named(user)
        channel = kwargs.pop("channel", self.fake.channel.id)
        return await self.fake.send_interaction(
            self.fake.guild.id, channel, who.id, name, options or {}, **kwargs
        )

    async def answer(self, interaction_id: int) -> Recorded:
        """What the user finally sees: the direct reply, or the followup after a deferral."""

        def visible(r: Recorded) -> bool:
            if r.interaction_id != interaction_id:
                return False
            return r.kind == "followup" or (r.kind == "callback" and r.callback_type == 4)

        return await self.fake.wait_for(visible)

    def all_for(self, interaction_id: int) -> list[Recorded]:
        return [r for r in self.fake.responses if r.interaction_id == interaction_id]


def _config(tmp_path: Path, fake: FakeDiscord) -> config_module.Config:
    return config_module.parse(
        {
            "bot": {"database": str(tmp_path / "bot.db"), "timezone": "UTC", "units": "km"},
            "hamsters": [{"name": "Ursula", "wheel_diameter_cm": 20}],
            "discord": {
                "token": fake.token,
                "guild_ids": [fake.guild.id],
                "api_base_url": fake.api_base_url,
                "gateway_url": fake.gateway_url,
            },
        }
    )


@pytest.fixture
def restore_discord_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket,
        "DEFAULT_GATEWAY",
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
    )

    async def no_identify_wait(self, shard_id, *, initial=False) -> None:
        return None  # discord.py waits 5 s before a re-IDENTIFY; the fake has no identify limit

    monkeypatch.setattr(HamsterClient, "before_identify_hook", no_identify_wait)


@pytest.fixture
async def bot(
    tmp_path: Path, fake_discord: FakeDiscord, restore_discord_urls: None
) -> AsyncIterator[Bot]:
    config = _config(tmp_path, fake_discord)
    db = await Database.open(config.bot.database)
    core = await BotCore.create(db, config)
    frontend = DiscordFrontend(core, config.discord, guild_ready_timeout=0.05, defer_after=0.5)
    task = await start_frontend(frontend, "Discord")
    try:
        yield Bot(fake_discord, frontend, core, db)
    finally:
        await stop_frontend(task)
        await db.close()


# --- registration ---------------------------------------------------------------------------


async def test_commands_are_registered_in_the_guild_with_their_options(bot: Bot) -> None:
    registered = {c["name"]: c for c in bot.fake.registered_commands(bot.fake.guild.id)}
    assert {"logrun", "race", "runs", "undo", "hamster", "help", "settings"} <= set(registered)
    visible = {n for n, spec in core_commands.COMMANDS.items() if not spec.hidden} - {"start"}
    assert set(registered) == visible
    assert bot.fake.registered_commands() == []  # no global sync unless asked

    def options(name: str) -> list[tuple[str, int, bool]]:
        return [
            (o["name"], o["type"], o.get("required", False)) for o in registered[name]["options"]
        ]

    assert options("logrun") == [
        ("distance", 3, False),
        ("duration", 3, False),
        ("date", 3, False),
        ("file", 11, False),  # an attachment
    ]
    assert options("race") == [("period", 3, False)]
    assert registered["race"]["options"][0]["autocomplete"] is True  # free text, with suggestions
    assert options("undo") == [("run_id", 4, False)]
    assert options("runs") == options("help") == options("export") == []
    assert options("hamster") == [("stats", 5, False)]
    assert options("chart") == options("race")
    assert options("settings") == [
        ("timezone", 3, False),
        ("units", 3, False),
        ("summary", 3, False),
    ]
    settings = registered["settings"]
    assert int(settings["default_member_permissions"]) == MANAGE_GUILD
    assert settings["options"][0]["autocomplete"] is True
    assert [c["value"] for c in settings["options"][1]["choices"]] == ["km", "mi"]


async def test_global_sync_only_on_request(
    tmp_path: Path, fake_discord: FakeDiscord, restore_discord_urls: None
) -> None:
    config = _config(tmp_path, fake_discord)
    db = await Database.open(config.bot.database)
    try:
        core = await BotCore.create(db, config)
        frontend = DiscordFrontend(core, config.discord, sync_global=True, guild_ready_timeout=0.05)
        task = await start_frontend(frontend, "Discord")
        await stop_frontend(task)
    finally:
        await db.close()
    assert {c["name"] for c in fake_discord.registered_commands()} >= {"logrun", "race"}


# --- the commands ---------------------------------------------------------------------------


async def test_logrun_then_race_names_the_runner_and_the_hamster(bot: Bot) -> None:
    logged = await bot.answer(await bot.run("runner", "logrun", {"distance": "5 km"}))
    assert logged.kind == "callback" and not logged.ephemeral
    assert "Logged 5" in (logged.content or "") and "Runner" in (logged.content or "")

    race_id = await bot.run("owner", "race", {"period": "week"})
    standings = await bot.answer(race_id)
    first = bot.all_for(race_id)[0]
    assert (first.kind, first.callback_type) == ("callback", 5)  # deferred: race may be slow
    assert standings.kind == "followup" and not standings.ephemeral
    text = standings.content or ""
    assert "Runner" in text and "Ursula" in text


async def test_logrun_with_duration_and_date(bot: Bot) -> None:
    options = {"distance": "10k", "duration": "50:00", "date": "yesterday"}
    reply = await bot.answer(await bot.run("runner", "logrun", options))
    text = reply.content or ""
    assert "Logged 10" in text and "50:00" in text


async def test_bad_input_gets_a_friendly_ephemeral_reply_and_stores_nothing(bot: Bot) -> None:
    reply = await bot.answer(await bot.run("runner", "logrun", {"distance": "banana"}))
    assert reply.ephemeral
    assert "Traceback" not in (reply.content or "")
    assert "/logrun" in (reply.content or "")  # shows an example
    runs = await bot.answer(await bot.run("runner", "runs"))
    assert runs.ephemeral and "haven't logged any runs" in (runs.content or "")


async def test_runs_and_undo_are_private_to_the_runner(bot: Bot) -> None:
    await bot.answer(await bot.run("runner", "logrun", {"distance": "3 km"}))
    await bot.answer(await bot.run("runner", "logrun", {"distance": "4 km"}))
    listing = await bot.answer(await bot.run("runner", "runs"))
    assert listing.ephemeral
    assert "#1" in (listing.content or "") and "#2" in (listing.content or "")

    other = await bot.answer(await bot.run("owner", "undo", {"run_id": 999}))
    assert other.ephemeral and "can't find run #999" in (other.content or "")
    undone = await bot.answer(await bot.run("runner", "undo", {"run_id": 1}))
    assert undone.ephemeral and "Removed run #1" in (undone.content or "")
    last = await bot.answer(await bot.run("runner", "undo"))
    assert "Removed run #2" in (last.content or "")


async def test_hamster_and_help(bot: Bot) -> None:
    hamster_id = await bot.run("runner", "hamster")
    hamster = await bot.answer(hamster_id)
    assert bot.all_for(hamster_id)[0].callback_type == 5
    assert "Ursula" in (hamster.content or "") and "All time" in (hamster.content or "")
    help_reply = await bot.answer(await bot.run("runner", "help"))
    assert "/logrun" in (help_reply.content or "") and "/race" in (help_reply.content or "")


async def test_settings_refused_for_a_member_allowed_for_a_manager(bot: Bot) -> None:
    refused = await bot.answer(await bot.run("runner", "settings", {"units": "mi"}))
    assert refused.ephemeral and "admins" in (refused.content or "")
    # A member may still look.
    shown = await bot.answer(await bot.run("runner", "settings"))
    assert "units: km" in (shown.content or "")

    options = {"units": "mi", "timezone": "Europe/London", "summary": "07:30"}
    changed = await bot.answer(await bot.run("owner", "settings", options))
    text = changed.content or ""
    assert "Europe/London" in text and "mi" in text and "07:30" in text
    chat = await chat_store.get_chat(bot.db, "discord", str(bot.fake.channel.id))
    assert chat is not None
    assert (chat.timezone, chat.units, chat.summary_time) == ("Europe/London", "mi", "07:30")


async def test_manage_server_is_enough_and_administrator_too(bot: Bot) -> None:
    reply = await bot.answer(
        await bot.run("runner", "settings", {"units": "mi"}, member_permissions=MANAGE_GUILD)
    )
    assert "Distances are now in mi" in (reply.content or "")
    reply = await bot.answer(
        await bot.run("runner", "settings", {"units": "km"}, member_permissions=ADMINISTRATOR)
    )
    assert "Distances are now in km" in (reply.content or "")


async def test_bad_timezone_is_friendly_and_autocomplete_suggests_zones(bot: Bot) -> None:
    reply = await bot.answer(await bot.run("owner", "settings", {"timezone": "Mars/Olympus"}))
    assert reply.ephemeral and "Traceback" not in (reply.content or "")
    owner = bot.fake.user_named("owner")
    asked = await bot.fake.send_autocomplete(
        bot.fake.guild.id,
        bot.fake.channel.id,
        owner.id,
        "settings",
        {"timezone": "lond"},
        "timezone",
    )
    answer = await bot.fake.wait_for(lambda r: r.interaction_id == asked)
    assert answer.callback_type == 8
    assert answer.data["choices"][0] == {"name": "Europe/London", "value": "Europe/London"}


async def test_chats_are_isolated(bot: Bot) -> None:
    other = bot.fake.add_text_channel(bot.fake.guild.id, "other")
    await bot.answer(await bot.run("runner", "logrun", {"distance": "5 km"}))
    elsewhere = await bot.answer(
        await bot.run("runner", "race", {"period": "all"}, channel=other.id)
    )
    assert "Runner" not in (elsewhere.content or "") and "Ursula" in (elsewhere.content or "")
    undo = await bot.answer(await bot.run("runner", "undo", {"run_id": 1}, channel=other.id))
    assert undo.ephemeral and "can't find run #1" in (undo.content or "")


async def test_rate_limited_callback_is_retried(bot: Bot) -> None:
    bot.fake.fail_next("/callback", status=429, retry_after=0.01)
    reply = await bot.answer(await bot.run("runner", "help"))
    assert "/logrun" in (reply.content or "")
    assert sum(1 for m, p in bot.fake.requests if p.endswith("/callback")) == 2


# --- images, long replies, slow and failing commands (extra core commands) ---------------------


async def _picture(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    await asyncio.sleep(0.7)  # slower than defer_after: the frontend must defer
    return Reply(f"picture for {args or 'nothing'}", image_png=PNG, image_name="night.png")


async def _essay(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    return Reply("\n".join(f"line {i:04d} " + "x" * 40 for i in range(70)))


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


async def test_generic_command_defers_when_slow_and_sends_the_photo_intact(
    extra_commands: None, bot: Bot
) -> None:
    registered = {c["name"]: c for c in bot.fake.registered_commands(bot.fake.guild.id)}
    assert [o["name"] for o in registered["picture"]["options"]] == ["text"]
    interaction_id = await bot.run("runner", "picture", {"text": "last night"})
    reply = await bot.answer(interaction_id)
    assert bot.all_for(interaction_id)[0].callback_type == 5
    assert reply.content == "picture for last night"
    assert [(f.filename, f.data) for f in reply.files] == [("night.png", PNG)]


async def test_long_reply_is_split_at_line_breaks(extra_commands: None, bot: Bot) -> None:
    interaction_id = await bot.run("runner", "essay")
    await bot.answer(interaction_id)
    await bot.fake.wait_for(lambda r: r.interaction_id == interaction_id and r.kind == "followup")
    parts = [r.content or "" for r in bot.all_for(interaction_id)]
    assert len(parts) == 2 and all(len(p) <= 2000 for p in parts)
    assert "\n".join(parts) == (await _essay(bot.core, None, "")).text  # type: ignore[arg-type]


async def test_a_crash_gets_a_short_ephemeral_apology(extra_commands: None, bot: Bot) -> None:
    reply = await bot.answer(await bot.run("runner", "broken"))
    assert reply.ephemeral
    assert reply.content == frontend_module.SORRY


async def test_chart_is_a_deferred_public_png(bot: Bot) -> None:
    await bot.answer(await bot.run("runner", "logrun", {"distance": "5 km"}))
    interaction_id = await bot.run("runner", "chart", {"period": "week"})
    chart = await bot.answer(interaction_id)
    assert bot.all_for(interaction_id)[0].callback_type == 5
    assert not chart.ephemeral
    [picture] = chart.files
    assert picture.data.startswith(b"\x89PNG\r\n\x1a\n") and picture.filename.endswith(".png")


async def test_export_sends_the_csv_files(bot: Bot) -> None:
    await bot.answer(await bot.run("runner", "logrun", {"distance": "5 km"}))
    export = await bot.answer(await bot.run("runner", "export"))
    files = {f.filename: f.data for f in export.files}
    assert set(files) == {"runs.csv", "nights.csv"}
    assert b"5000" in files["runs.csv"] or b"5.0" in files["runs.csv"]


async def test_hamster_stats_option(bot: Bot) -> None:
    stats = await bot.answer(await bot.run("runner", "hamster", {"stats": True}))
    plain = await bot.answer(await bot.run("runner", "hamster"))
    assert stats.content and plain.content and stats.content != plain.content


async def test_private_answer_to_a_deferred_command_replaces_the_public_placeholder(
    extra_commands: None, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(core: BotCore, ctx: CommandContext, args: str) -> Reply:
        raise core_commands.UserError("Not like that. Try /help")

    monkeypatch.setitem(
        core_commands.COMMANDS, "essay", Command("essay", "/essay", "test essay", refuse)
    )
    monkeypatch.setattr(frontend_module, "SLOW_COMMANDS", frozenset({"essay"}))
    interaction_id = await bot.run("runner", "essay")
    answer = await bot.answer(interaction_id)
    assert answer.kind == "followup" and answer.ephemeral
    assert answer.content == "Not like that. Try /help"
    deleted = [p for m, p in bot.fake.requests if m == "DELETE"]
    assert len(deleted) == 1 and deleted[0].endswith("/messages/@original")


# --- sending outside a command (the morning report) -------------------------------------------


async def test_send_posts_text_and_photo_and_a_failed_send_raises(bot: Bot) -> None:
    chat = await chat_store.ensure_chat(bot.db, "discord", str(bot.fake.channel.id), 0.0)
    bot.fake.fail_next("/messages", status=403, method="POST")
    with pytest.raises(discord.Forbidden):
        await bot.frontend.send(chat, Reply("good morning", image_png=PNG, image_name="night.png"))
    bot.fake.fail_next("/messages", status=429, retry_after=0.01, method="POST")
    await bot.frontend.send(chat, Reply("good morning", image_png=PNG, image_name="night.png"))
    sent = [r for r in bot.fake.responses if r.kind == "channel_message"]
    assert [r.content for r in sent] == ["good morning"]
    assert [(f.filename, f.data) for f in sent[0].files] == [("night.png", PNG)]


async def test_send_without_a_connection_raises(tmp_path: Path, fake_discord: FakeDiscord) -> None:
    config = _config(tmp_path, fake_discord)
    frontend = DiscordFrontend(None, config.discord)  # type: ignore[arg-type]
    chat = chat_store.Chat(1, "discord", "123", None, None, None, None, None)
    with pytest.raises(ConnectionError):
        await frontend.send(chat, Reply("hello"))


# --- pure pieces ----------------------------------------------------------------------------


def test_split_text_keeps_lines_whole() -> None:
    text = "\n".join(["a" * 10] * 10)
    chunks = split_text(text, 25)
    assert chunks == ["a" * 10 + "\n" + "a" * 10] * 5
    assert split_text("short", 2000) == ["short"]
    assert split_text("x" * 30, 10) == ["x" * 10] * 3


def test_option_translation() -> None:
    assert frontend_module.logrun_args("5 km", None, " yesterday ") == "5 km yesterday"
    assert frontend_module.settings_changes(None, "km", "off") == ["units km", "summary off"]
    assert frontend_module.settings_changes(" ", None, None) == []
    assert frontend_module.timezone_suggestions("new york")[0] == "America/New_York"
    assert len(frontend_module.timezone_suggestions("")) == 25


async def test_a_rejected_token_turns_discord_off_instead_of_retrying(
    tmp_path: Path, fake_discord: FakeDiscord, restore_discord_urls: None
) -> None:
    from dataclasses import replace

    from bot.frontends import FrontendOff

    config = _config(tmp_path, fake_discord)
    wrong = replace(config.discord, token="not-the-token")
    async with await Database.open(config.bot.database) as db:
        core = await BotCore.create(db, config)
        with pytest.raises(FrontendOff, match="rejected the bot token"):
            await DiscordFrontend(core, wrong, guild_ready_timeout=0.05).run()


# --- periods as free text, and people's text shown literally (issue 16) ------------------------


async def test_race_and_chart_take_any_period_with_suggestions(bot: Bot) -> None:
    owner = bot.fake.user_named("owner")

    async def suggest(command: str, typed: str) -> list[str]:
        asked = await bot.fake.send_autocomplete(
            bot.fake.guild.id, bot.fake.channel.id, owner.id, command, {"period": typed}, "period"
        )
        answer = await bot.fake.wait_for(lambda r: r.interaction_id == asked)
        assert answer.callback_type == 8
        return [c["value"] for c in answer.data["choices"]]

    assert "tonight" in await suggest("race", "") and "last 7 days" in await suggest("race", "")
    assert await suggest("race", "last") == [
        "last",
        "last week",
        "last 7 days",
        "last 30 days",
        "last month",
    ]
    assert (await suggest("chart", "since 3 nov"))[0] == "since 3 nov"
    await bot.answer(await bot.run("runner", "logrun", {"distance": "5 km", "date": "yesterday"}))
    for period in ("since 1 nov", "last 7 days", "tonight", "2026-11-01..2026-11-15"):
        reply = await bot.answer(await bot.run("owner", "race", {"period": period}))
        assert "Race" in (reply.content or ""), (period, reply.content)
    wrong = await bot.answer(await bot.run("owner", "race", {"period": "fortnight"}))
    assert wrong.ephemeral and "Periods I know" in (wrong.content or "")


async def test_names_are_shown_literally_never_as_markdown_or_mentions(bot: Bot) -> None:
    bot.fake.add_member(
        bot.fake.guild.id, "mallory"
    ).user.global_name = "[Nitro](https://e.vi)@everyone"
    bot.fake.add_member(bot.fake.guild.id, "boss").user.global_name = "**boss** ||x||"
    logged = await bot.answer(await bot.run("mallory", "logrun", {"distance": "5 km"}))
    await bot.answer(await bot.run("boss", "logrun", {"distance": "3 km"}))
    race = await bot.answer(await bot.run("owner", "race", {"period": "week"}))
    for reply in (logged, race):
        text = reply.content or ""
        assert "\\[Nitro](https://e.vi)" in text  # not a masked link any more
        assert "@\u200beveryone" in text  # and no mention, even if mentions were allowed
    assert "\\*\\*boss\\*\\* \\|\\|x\\|\\|" in (race.content or "")
    # The morning report goes through the same escaping.
    chat = await chat_store.get_chat(bot.db, "discord", str(bot.fake.channel.id))
    assert chat is not None
    await bot.frontend.send(chat, Reply("🏃 [Nitro](https://e.vi) ran 5 km"))
    sent = await bot.fake.wait_for(lambda r: "ran 5 km" in (r.content or ""))
    assert "\\[Nitro](https://e.vi)" in (sent.content or "")


async def test_any_member_sets_their_own_units_and_can_forget(bot: Bot) -> None:
    registered = {c["name"]: c for c in bot.fake.registered_commands(bot.fake.guild.id)}
    assert registered["myunits"].get("default_member_permissions") is None  # not /settings'
    reply = await bot.answer(await bot.run("runner", "myunits", {"text": "mi"}))
    assert reply.ephemeral and "distances in mi" in (reply.content or "")
    await bot.answer(await bot.run("runner", "logrun", {"distance": "5 km"}))
    asked = await bot.answer(await bot.run("runner", "forget", {}))
    assert asked.ephemeral and "/forget yes" in (asked.content or "")
    done = await bot.answer(await bot.run("runner", "forget", {"text": "yes"}))
    assert "I deleted your 1 run" in (done.content or "")
    race = await bot.answer(await bot.run("owner", "race", {"period": "week"}))
    assert "Runner" not in (race.content or "")


# --- activity files ----------------------------------------------------------------------------------

DATA = Path(__file__).parent.parent / "data" / "activities"


def recent_run_fit(hours_ago: float = 2.0, **kwargs) -> bytes:
    from datetime import UTC, datetime, timedelta

    from tests.fit_writer import activity_fit

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=hours_ago)
    return activity_fit(
        start=start,
        distance_m=kwargs.pop("distance_m", 5000.0),
        timer_s=kwargs.pop("timer_s", 1650.0),
        **kwargs,
    )


async def test_logrun_with_an_attached_file(bot: Bot) -> None:
    reply = await bot.answer(
        await bot.run("runner", "logrun", {"file": Upload("Lunch_Run.fit", recent_run_fit())})
    )
    text = reply.content or ""
    assert not reply.ephemeral
    # Discord shows the file's name literally: its underscore is escaped from markdown.
    assert text.startswith("✅ Logged 5.00 km (3.11 mi) for Runner from Lunch\\_Run.fit: a run"), (
        text
    )
    assert "27:30 moving (5:30 /km)" in text and "🐹 Ursula has run" in text
    assert len(bot.fake.downloads) == 1 and bot.fake.downloads[0].endswith("/Lunch_Run.fit")
    rows = await bot.db.fetchall("SELECT distance_m, duration_s, source FROM runs")
    assert rows == [(5000.0, 1650.0, "Lunch_Run.fit")]
    listing = await bot.answer(await bot.run("runner", "runs"))
    assert "from Lunch\\_Run.fit" in (listing.content or "")
    twice = await bot.answer(
        await bot.run("runner", "logrun", {"file": Upload("Lunch_Run.fit", recent_run_fit())})
    )
    assert twice.ephemeral and "logged that one already" in (twice.content or "")


async def test_bad_attachments_are_refused_privately_and_store_nothing(bot: Bot) -> None:
    ride = await bot.answer(
        await bot.run(
            "runner",
            "logrun",
            {"file": Upload("ride.fit", (DATA / "garmin-fenix-5-bike.fit").read_bytes())},
        )
    )
    assert ride.ephemeral and "cycling" in (ride.content or "")
    walk = (DATA / "garmin-fenix-5-walk.fit").read_bytes()  # real, from 2017: over a year ago
    old = await bot.answer(await bot.run("runner", "logrun", {"file": Upload("walk.fit", walk)}))
    assert old.ephemeral and "more than a year ago" in (old.content or "")
    png = await bot.answer(
        await bot.run("runner", "logrun", {"file": Upload("cat.png", PNG, "image/png")})
    )
    assert png.ephemeral and "isn't a GPX, FIT or TCX" in (png.content or "")
    assert await bot.db.scalar("SELECT COUNT(*) FROM runs") == 0


async def test_an_attachment_over_25_mb_is_not_downloaded(bot: Bot) -> None:
    huge = Upload("huge.gpx", b" " * (25 * 2**20 + 1))
    reply = await bot.answer(await bot.run("runner", "logrun", {"file": huge}))
    assert reply.ephemeral and "over 25 MB" in (reply.content or "")
    assert bot.fake.downloads == []


async def test_logrun_without_distance_or_file_asks_how_far(bot: Bot) -> None:
    reply = await bot.answer(await bot.run("runner", "logrun"))
    assert reply.ephemeral and "How far did you run?" in (reply.content or "")


async def test_an_attachment_link_that_no_longer_works(bot: Bot) -> None:
    gone = Upload("run.fit", recent_run_fit(), expired=True)
    reply = await bot.answer(await bot.run("runner", "logrun", {"file": gone}))
    assert reply.ephemeral and "couldn't download run.fit" in (reply.content or "")
    assert await bot.db.scalar("SELECT COUNT(*) FROM runs") == 0
