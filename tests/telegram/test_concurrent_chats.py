"""Issue 10, case 6: one busy Telegram group must not silence every chat.

The group's replies are held back by a rate limiter (as Telegram's per-group flood limit does, here
until the test lets them go); a private /help meanwhile must be answered, and the group's own
replies must still come in the order its messages were sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import BaseRateLimiter

from bot import config as config_module
from bot.core.commands import BotCore
from bot.frontends.telegram import TelegramFrontend
from storage.db import Database
from tests.fakes.frontends import start_frontend, stop_frontend
from tests.fakes.telegram_api import FakeTelegram

GROUP = -1001234567
ALICE, BOB = 1001, 1002


class GroupFloodLimit(BaseRateLimiter[None]):
    """Holds every message to GROUP until ``open`` is set; other chats go straight through."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.held = 0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        self.open.set()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> Any:
        if data.get("chat_id") == GROUP:
            self.held += 1
            await self.open.wait()
        return await callback(*args, **kwargs)


@pytest.fixture
async def frontend(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> AsyncIterator[tuple[TelegramFrontend, GroupFloodLimit]]:
    config = config_module.parse(
        {
            "bot": {"database": str(tmp_path / "bot.db"), "timezone": "UTC", "units": "km"},
            "hamsters": [{"name": "Ursula", "wheel_diameter_cm": 20}],
            "telegram": {"token": fake_telegram.token, "base_url": fake_telegram.base_url},
        }
    )
    db = await Database.open(config.bot.database)
    core = await BotCore.create(db, config)
    limiter = GroupFloodLimit()
    telegram = TelegramFrontend(core, config.telegram, rate_limiter=limiter, poll_timeout=1)
    task = await start_frontend(telegram, "Telegram")
    try:
        yield telegram, limiter
    finally:
        limiter.open.set()
        await stop_frontend(task)
        await db.close()


async def test_a_private_help_is_answered_while_a_group_waits_for_its_flood_limit(
    fake_telegram: FakeTelegram, frontend: tuple[TelegramFrontend, GroupFloodLimit]
) -> None:
    _, limiter = frontend
    group_messages = []
    for index in range(5):
        fake_telegram.push_message(
            GROUP, f"/logrun {index + 1} km", user_id=ALICE, first_name="Alice",
            chat_type="supergroup",
        )  # fmt: skip
        group_messages.append(len(fake_telegram.messages_in(GROUP)))
    fake_telegram.push_message(BOB, "/help", user_id=BOB, first_name="Bob", chat_type="private")
    # Before the fix the private chat waited behind every held group reply: forever, here.
    [answer] = await fake_telegram.wait_for_sent(lambda s: s.chat_id == BOB, timeout=30)
    assert "/logrun" in (answer.text or "")
    assert limiter.held >= 1 and not [s for s in fake_telegram.sent if s.chat_id == GROUP]

    limiter.open.set()
    replies = await fake_telegram.wait_for_sent(lambda s: s.chat_id == GROUP, count=5, timeout=30)
    # One chat's commands run in the order they were sent: each reply quotes its message, in order,
    # and the runs were logged in that order (1 km first).
    assert [s.reply_to_message_id for s in replies] == group_messages
    assert [f"Logged {n}" in (s.text or "") for n, s in enumerate(replies, start=1)] == [True] * 5
