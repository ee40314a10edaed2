"""Chats (per-chat settings), the people in them, and the morning-report log."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from storage.db import Database, Query

_CHAT_COLUMNS = "id, platform, chat_key, title, timezone, units, summary_time, summary_enabled"
_SETTINGS = ("timezone", "units", "summary_time", "summary_enabled", "title")


@dataclass(frozen=True, slots=True)
class Chat:
    id: int
    platform: str
    chat_key: str
    title: str | None
    timezone: str | None  # None: the configured default
    units: str | None
    summary_time: str | None  # "HH:MM"
    summary_enabled: bool | None

    @property
    def label(self) -> str:
        return f"{self.platform}:{self.chat_key}"


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    platform: str
    user_key: str
    display_name: str
    units: str | None


def _chat(row: tuple) -> Chat:
    chat_id, platform, chat_key, title, timezone, units, summary_time, enabled = row
    return Chat(
        chat_id,
        platform,
        chat_key,
        title,
        timezone,
        units,
        summary_time,
        None if enabled is None else bool(enabled),
    )


async def get_chat(db: Database, platform: str, chat_key: str) -> Chat | None:
    (chat,) = await db.read(chat_query(platform, chat_key))
    return chat


def chat_query(platform: str, chat_key: str) -> Query[Chat | None]:
    """The chat's row (None: never written to), to be read with other queries in one trip."""
    statement = (
        f"SELECT {_CHAT_COLUMNS} FROM chats WHERE platform = ? AND chat_key = ?",
        (platform, chat_key),
    )
    return Query((statement,), lambda rowsets: _chat(rowsets[0][0]) if rowsets[0] else None)


async def ensure_chat(
    db: Database, platform: str, chat_key: str, now: float, title: str | None = None
) -> Chat:
    """The chat's row, created on first contact. Reads only, unless something is new."""
    chat = await get_chat(db, platform, chat_key)
    if chat is not None and (title is None or title == chat.title):
        return chat
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO chats (platform, chat_key, title, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (platform, chat_key) DO UPDATE SET title = excluded.title",
            (platform, chat_key, title, now),
        )
    chat = await get_chat(db, platform, chat_key)
    assert chat is not None
    return chat


async def list_chats(db: Database) -> list[Chat]:
    rows = await db.fetchall(f"SELECT {_CHAT_COLUMNS} FROM chats ORDER BY id")
    return [_chat(row) for row in rows]


async def update_chat(db: Database, chat_id: int, **settings: object) -> None:
    """Change chat settings; keys are limited to the known setting columns."""
    unknown = set(settings) - set(_SETTINGS)
    if unknown:
        raise ValueError(f"unknown chat settings: {sorted(unknown)}")
    if not settings:
        return
    # Column names come from the fixed whitelist above, never from user input.
    assignments = ", ".join(f"{column} = ?" for column in settings)
    async with db.transaction() as conn:
        await conn.execute(
            f"UPDATE chats SET {assignments} WHERE id = ?", (*settings.values(), chat_id)
        )


async def ensure_person(
    db: Database, platform: str, user_key: str, display_name: str, now: float
) -> Person:
    """The person keyed by their stable user id; their display name follows the latest one seen."""
    row = await db.fetchone(
        "SELECT id, platform, user_key, display_name, units FROM people "
        "WHERE platform = ? AND user_key = ?",
        (platform, user_key),
    )
    if row is not None and row[3] == display_name:
        return Person(*row)
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO people (platform, user_key, display_name, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (platform, user_key) DO UPDATE SET "
            "display_name = excluded.display_name, updated_at = excluded.updated_at",
            (platform, user_key, display_name, now),
        )
    row = await db.fetchone(
        "SELECT id, platform, user_key, display_name, units FROM people "
        "WHERE platform = ? AND user_key = ?",
        (platform, user_key),
    )
    assert row is not None
    return Person(*row)


async def get_person(db: Database, platform: str, user_key: str) -> Person | None:
    row = await db.fetchone(
        "SELECT id, platform, user_key, display_name, units FROM people "
        "WHERE platform = ? AND user_key = ?",
        (platform, user_key),
    )
    return Person(*row) if row else None


async def people_called(db: Database, platform: str, name: str) -> list[Person]:
    """People of ``platform`` whose user id is ``name``, else whose display name is ``name`` (any case)."""
    rows = await db.fetchall(
        "SELECT id, platform, user_key, display_name, units FROM people "
        "WHERE platform = ? AND user_key = ?",
        (platform, name),
    )
    if not rows:
        rows = await db.fetchall(
            "SELECT id, platform, user_key, display_name, units FROM people "
            "WHERE platform = ? AND display_name = ? COLLATE NOCASE ORDER BY id",
            (platform, name),
        )
    return [Person(*row) for row in rows]


async def set_person_units(db: Database, person_id: int, units: str | None) -> None:
    async with db.transaction() as conn:
        await conn.execute("UPDATE people SET units = ? WHERE id = ?", (units, person_id))


WHOLE_REPORT = -1  # the summary_log part that marks the whole report delivered


async def summary_sent(db: Database, chat_id: int, night: str) -> bool:
    row = await db.fetchone(
        "SELECT 1 FROM summary_log WHERE chat_id = ? AND night = ? AND part = ?",
        (chat_id, night, WHOLE_REPORT),
    )
    return row is not None


async def summary_parts_sent(db: Database, chat_id: int, night: str) -> set[int]:
    """The parts (0, 1, ...) of the report for ``night`` that went out already."""
    rows = await db.fetchall(
        "SELECT part FROM summary_log WHERE chat_id = ? AND night = ? AND part >= 0",
        (chat_id, night),
    )
    return {int(part) for (part,) in rows}


async def record_summary_part(
    db: Database, chat_id: int, night: str, part: int, sent_at: float, late: bool = False
) -> None:
    """Record that part ``part`` of the report for ``night`` went out (the chat API confirmed it)."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO summary_log (chat_id, night, part, sent_at, late) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (chat_id, night, part) DO NOTHING",
            (chat_id, night, part, sent_at, int(late)),
        )


async def record_summary(
    db: Database, chat_id: int, night: str, sent_at: float, late: bool = False
) -> bool:
    """Record that the report for ``night`` went out; False if it was already recorded."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT INTO summary_log (chat_id, night, part, sent_at, late) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (chat_id, night, part) DO NOTHING",
            (chat_id, night, WHOLE_REPORT, sent_at, int(late)),
        )
        return cursor.rowcount == 1


# --- a chat's race on the public page -------------------------------------------------------------


def _token_hash(token: str) -> str:
    # The token is >= 128 random bits, so a plain SHA-256 suffices (nothing to brute-force).
    return hashlib.sha256(token.encode()).hexdigest()


async def set_web_link(db: Database, chat_id: int, token: str, now: float) -> None:
    """Give the chat a new race link; any older link of the chat stops working."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO web_links (chat_id, token_hash, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (chat_id) DO UPDATE SET token_hash = excluded.token_hash, "
            "created_at = excluded.created_at",
            (chat_id, _token_hash(token), now),
        )


async def revoke_web_link(db: Database, chat_id: int) -> bool:
    """Turn the chat's race link off; whether there was one."""
    if await db.scalar("SELECT 1 FROM web_links WHERE chat_id = ?", (chat_id,)) is None:
        return False
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM web_links WHERE chat_id = ?", (chat_id,))
    return True


async def chat_by_web_token(db: Database, token: str) -> Chat | None:
    """The chat whose race link ``token`` is, or None (never made, or revoked)."""
    columns = ", ".join(f"chats.{c.strip()}" for c in _CHAT_COLUMNS.split(","))
    row = await db.fetchone(
        f"SELECT {columns} FROM web_links JOIN chats ON chats.id = web_links.chat_id "
        "WHERE web_links.token_hash = ?",
        (_token_hash(token),),
    )
    return _chat(row) if row else None
