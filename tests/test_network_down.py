"""A chat platform that cannot be reached at start: one log line per failure, no traceback flood."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from bot import app
from bot import config as config_module
from bot.core.commands import BotCore
from bot.frontends.discord import DiscordFrontend
from bot.frontends.telegram import TelegramFrontend
from storage.db import Database


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when we return: nobody listens there


async def supervise_until(name: str, run, records: list[logging.LogRecord], failures: int) -> None:
    task = asyncio.create_task(app.supervise(name, run, initial=0.01, cap=0.02))
    try:
        for _ in range(3000):
            if (
                sum(r.name == "bot.app" and r.levelno >= logging.WARNING for r in records)
                >= failures
            ):
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("platform", ["telegram", "discord"])
async def test_network_down_at_start_logs_one_line_per_failure(
    db: Database, config: config_module.Config, platform: str
) -> None:
    core = await BotCore.create(db, config)
    port = closed_port()
    if platform == "telegram":
        frontend = TelegramFrontend(
            core,
            config_module.TelegramConfig(token="123:abc", base_url=f"http://127.0.0.1:{port}/bot"),
        )
        name = "Telegram"
    else:
        frontend = DiscordFrontend(
            core,
            config_module.DiscordConfig(
                token="abc", guild_ids=(1,), api_base_url=f"http://127.0.0.1:{port}/api/v10"
            ),
        )
        name = "Discord"
    collect = Collect()
    root = logging.getLogger()
    root.addHandler(collect)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        await supervise_until(name, frontend.run, collect.records, failures=3)
    finally:
        root.removeHandler(collect)
        root.setLevel(old_level)
    loud = [r for r in collect.records if r.levelno >= logging.WARNING]
    crashes = [r for r in loud if r.name == "bot.app"]
    assert len(crashes) >= 3
    for record in loud:
        assert not record.exc_info, record.getMessage()
        assert "\n" not in record.getMessage(), record.getMessage()
    for record in crashes:
        assert record.getMessage().startswith(f"{name} failed: "), record.getMessage()
        assert "restarting in" in record.getMessage()
    traced = [r for r in collect.records if r.exc_info and r.levelno == logging.DEBUG]
    assert len(traced) == 1  # the traceback once, for whoever debugs it
