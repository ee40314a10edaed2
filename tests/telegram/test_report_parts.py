"""Issue 10, case 1 (Telegram): a morning report in several messages is exactly once per part.

Chart plus a long text, and ``sendMessage`` failing once with 500: the retry must not post the chart
again. Each part is recorded in the summary log as it goes out; a retry, or a restart, sends only the
parts that did not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot import config as config_module
from bot.core.commands import BotCore
from bot.core.registry import Reply
from bot.core.scheduler import Due, RetryPolicy, SummaryScheduler
from bot.frontends.telegram import TelegramFrontend, report_parts
from storage import chats as chat_store
from storage.db import Database
from tests.fakes.frontends import start_frontend, stop_frontend
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram.test_frontend_telegram import PNG

GROUP = -1001234567
MORNING = date(2026, 11, 30)
DUE = Due(MORNING.isoformat(), MORNING, datetime(2026, 11, 30, 8, tzinfo=UTC), late=False)
REPORT = Reply(
    "\n".join(f"{n}. Runner {n} ran {n}.0 km last night" for n in range(1, 400)),
    image_png=PNG,
    image_name="night.png",
)


@pytest.fixture
async def frontend(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> AsyncIterator[tuple[TelegramFrontend, BotCore]]:
    config = config_module.parse(
        {
            "bot": {"database": str(tmp_path / "bot.db"), "timezone": "UTC", "units": "km"},
            "hamsters": [{"name": "Ursula", "wheel_diameter_cm": 20}],
            "telegram": {"token": fake_telegram.token, "base_url": fake_telegram.base_url},
        }
    )
    db = await Database.open(config.bot.database)
    core = await BotCore.create(db, config)
    telegram = TelegramFrontend(core, config.telegram, poll_timeout=1)
    task = await start_frontend(telegram, "Telegram")
    try:
        yield telegram, core
    finally:
        await stop_frontend(task)
        await db.close()


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


def scheduler(core: BotCore, telegram: TelegramFrontend) -> SummaryScheduler:
    async def compose(*_: object) -> Reply:
        return REPORT

    return SummaryScheduler(
        core,
        {"telegram": telegram.send},
        parts={"telegram": report_parts},
        compose=compose,
        sleep=no_wait,
        policy=RetryPolicy(jitter=0),
    )


def test_the_parts_are_the_messages_deliver_posts() -> None:
    parts = report_parts(REPORT)
    assert parts[0].image_png == PNG and parts[0].text == ""  # the text is too long for a caption
    assert "".join(p.text + "\n" for p in parts[1:]).rstrip("\n") == REPORT.text
    assert len(parts) >= 4 and all(len(p.text) <= 4096 for p in parts)
    short = report_parts(Reply("Good morning", image_png=PNG))
    assert [(p.text, p.image_png is not None) for p in short] == [("Good morning", True)]


async def test_a_failed_second_message_does_not_post_the_chart_again(
    fake_telegram: FakeTelegram, frontend: tuple[TelegramFrontend, BotCore]
) -> None:
    telegram, core = frontend
    fake_telegram.add_chat(GROUP, "supergroup")
    chat = await chat_store.ensure_chat(core.db, "telegram", str(GROUP), 0.0)
    fake_telegram.fail_next("sendMessage", status=500)
    assert await scheduler(core, telegram)._deliver(chat, None, DUE)  # type: ignore[arg-type]
    sent = [s for s in fake_telegram.sent if s.chat_id == GROUP]
    assert [s.method for s in sent].count("sendPhoto") == 1
    texts = [s.text for s in sent if s.method == "sendMessage"]
    assert "\n".join(texts) == REPORT.text  # every text part once, in order
    assert await chat_store.summary_sent(core.db, chat.id, DUE.night)


async def test_a_restart_sends_only_the_parts_that_did_not_go_out(
    fake_telegram: FakeTelegram, frontend: tuple[TelegramFrontend, BotCore]
) -> None:
    telegram, core = frontend
    fake_telegram.add_chat(GROUP, "supergroup")
    chat = await chat_store.ensure_chat(core.db, "telegram", str(GROUP), 0.0)
    # The previous process posted the chart and the first text, then died.
    for part in (0, 1):
        await chat_store.record_summary_part(core.db, chat.id, "2026-11-30", part, 1.0)
    assert await scheduler(core, telegram)._deliver(chat, None, DUE)  # type: ignore[arg-type]
    sent = [s for s in fake_telegram.sent if s.chat_id == GROUP]
    assert "sendPhoto" not in [s.method for s in sent]
    assert [s.text for s in sent] == [p.text for p in report_parts(REPORT)[2:]]
