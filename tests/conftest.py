"""Shared fixtures: a real SQLite file per test and the real command core on it."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import config as config_module
from bot.core.commands import BotCore, CommandContext
from storage.db import MIGRATIONS, Database


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


def database_before(path: Path, migration_marker: str) -> sqlite3.Connection:
    """A database at ``path`` as it was before the migration whose text holds ``migration_marker``
    (an older version's file), open for the test to fill; close it before ``Database.open``."""
    connection = sqlite3.connect(path, isolation_level=None)
    mine = next(i for i, m in enumerate(MIGRATIONS) if migration_marker in m)
    for number, script in enumerate(MIGRATIONS[:mine], start=1):
        connection.executescript(script)
        connection.execute(f"PRAGMA user_version = {number}")
    return connection


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
