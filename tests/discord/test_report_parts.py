"""Issue 10, case 1 (Discord): a 45-runner morning report goes out in 3 messages; the 2nd POST answers
503 once. The retry must not post the first part again: each part is recorded as it goes out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.core.commands import BotCore
from bot.core.registry import Reply
from bot.core.scheduler import Due, RetryPolicy, SummaryScheduler
from bot.frontends.discord import DiscordFrontend, report_parts
from storage import chats as chat_store
from storage.db import Database
from tests.discord.test_frontend_discord import PNG, _config, restore_discord_urls  # noqa: F401
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.frontends import start_frontend, stop_frontend

MORNING = date(2026, 11, 30)
DUE = Due(MORNING.isoformat(), MORNING, datetime(2026, 11, 30, 8, tzinfo=UTC), late=False)
REPORT = Reply(
    "Good morning! Last night's race:\n"
    + "\n".join(
        f"{n:>2}. Runner number {n} with a long name ran {n}.00 km" * 2 for n in range(1, 46)
    ),
    image_png=PNG,
    image_name="night.png",
)


@pytest.fixture
async def frontend(
    tmp_path: Path,
    fake_discord: FakeDiscord,
    restore_discord_urls: None,  # noqa: F811 -- the fixture, imported above
) -> AsyncIterator[tuple[DiscordFrontend, BotCore]]:
    config = _config(tmp_path, fake_discord)
    db = await Database.open(config.bot.database)
    core = await BotCore.create(db, config)
    discord = DiscordFrontend(core, config.discord, guild_ready_timeout=0.05, defer_after=0.5)
    task = await start_frontend(discord, "Discord")
    try:
        yield discord, core
    finally:
        await stop_frontend(task)
        await db.close()


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


async def test_a_503_on_the_second_message_does_not_repeat_the_first(
    fake_discord: FakeDiscord, frontend: tuple[DiscordFrontend, BotCore]
) -> None:
    discord, core = frontend
    assert len(report_parts(REPORT)) == 3
    chat = await chat_store.ensure_chat(core.db, "discord", str(fake_discord.channel.id), 0.0)
    fake_discord.fail_next("/messages", status=503, method="POST", after=1)

    async def compose(*_: object) -> Reply:
        return REPORT

    scheduler = SummaryScheduler(
        core,
        {"discord": discord.send},
        parts={"discord": report_parts},
        compose=compose,
        sleep=no_wait,
        policy=RetryPolicy(jitter=0),
    )
    assert await scheduler._deliver(chat, None, DUE)  # type: ignore[arg-type]
    sent = [r for r in fake_discord.responses if r.kind == "channel_message"]
    assert [r.content for r in sent] == [p.text for p in report_parts(REPORT)]
    assert [len(r.files) for r in sent] == [1, 0, 0]  # the chart rides on the first part, once
    assert await chat_store.summary_sent(core.db, chat.id, DUE.night)
