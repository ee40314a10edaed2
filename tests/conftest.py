"""Shared fixtures: a real SQLite file per test and the real command core on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import config as config_module
from bot.core.commands import BotCore, CommandContext
from storage.db import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "test.db")
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def config(tmp_path: Path) -> config_module.Config:
    return config_module.parse(
        {
            "bot": {
                "database": str(tmp_path / "test.db"),
                "timezone": "Europe/London",
                "units": "km",
            },
            "hamsters": [{"name": "Ursula", "wheel_diameter_cm": 20, "sensor": "simulated"}],
        }
    )


@pytest.fixture
async def core(db: Database, config: config_module.Config) -> BotCore:
    return await BotCore.create(db, config)


def make_ctx(
    now: datetime,
    *,
    user: str = "alice",
    name: str | None = None,
    chat: str = "group-1",
    admin: bool = False,
    private: bool = False,
    platform: str = "console",
) -> CommandContext:
    return CommandContext(
        platform=platform,
        chat_id=chat,
        user_id=user,
        display_name=name or user.title(),
        is_admin=admin,
        now=now if now.tzinfo else now.replace(tzinfo=UTC),
        is_private=private,
    )
