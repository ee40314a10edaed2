"""storage/runs: where a run came from, and the same run refused twice."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from storage import chats as chat_store
from storage import runs as run_store
from storage.db import MIGRATIONS, Database
from storage.runs import DuplicateRun
from tests.conftest import database_before

START = 1_795_000_000.0  # a file's start time


async def _who(db: Database, user: str = "ann", chat: str = "g") -> tuple[int, int]:
    c = await chat_store.ensure_chat(db, "console", chat, 0.0)
    p = await chat_store.ensure_person(db, "console", user, user.title(), 0.0)
    return c.id, p.id


async def _add(db: Database, chat: int, person: int, metres: float, at: float, **kw) -> int:
    return await run_store.add_run(
        db,
        chat_id=chat,
        person_id=person,
        distance_m=metres,
        duration_s=1800.0,
        day=date(2026, 11, 18),
        ran_at=at,
        logged_at=at + 3600,
        **kw,
    )


async def test_runs_remember_their_source(db: Database) -> None:
    chat, person = await _who(db)
    typed = await _add(db, chat, person, 5000.0, START)
    from_file = await _add(db, chat, person, 8000.0, START + 86400, source="Morning Run.fit")
    runs = {r.id: r for r in await run_store.recent_runs(db, chat, person)}
    assert runs[typed].source is None
    assert runs[from_file].source == "Morning Run.fit"


@pytest.mark.parametrize(
    ("metres", "offset", "duplicate"),
    [
        (10_000.0, 0.0, True),
        (10_099.0, 59.0, True),  # within 1 % and a minute
        (9_901.0, -60.0, True),
        (10_101.0, 0.0, False),  # 1.01 % longer
        (10_000.0, 61.0, False),  # a minute and a second later
    ],
)
async def test_duplicates_are_refused_and_store_nothing(
    db: Database, metres: float, offset: float, duplicate: bool
) -> None:
    chat, person = await _who(db)
    first = await _add(db, chat, person, 10_000.0, START, source="a.fit", refuse_duplicate=True)
    before = await db.scalar("SELECT COUNT(*) FROM runs")
    if duplicate:
        with pytest.raises(DuplicateRun) as caught:
            await _add(db, chat, person, metres, START + offset, refuse_duplicate=True)
        assert caught.value.existing.id == first
        assert await db.scalar("SELECT COUNT(*) FROM runs") == before
    else:
        await _add(db, chat, person, metres, START + offset, refuse_duplicate=True)
        assert await db.scalar("SELECT COUNT(*) FROM runs") == before + 1


async def test_only_the_same_persons_live_runs_in_the_same_chat_count(db: Database) -> None:
    chat, ann = await _who(db)
    _, bob = await _who(db, "bob")
    other_chat, _ = await _who(db, "ann", chat="h")
    first = await _add(db, chat, ann, 5000.0, START, refuse_duplicate=True)
    await _add(db, chat, bob, 5000.0, START, refuse_duplicate=True)  # Bob ran with her
    await _add(db, other_chat, ann, 5000.0, START, refuse_duplicate=True)  # her other group
    await _add(db, chat, ann, 5000.0, START, refuse_duplicate=False)  # typed: never refused
    assert await run_store.delete_run(db, chat, first, START + 7200)
    await run_store.delete_run(db, chat, first + 3, START + 7200)
    await _add(db, chat, ann, 5000.0, START, refuse_duplicate=True)  # undone runs don't block
    assert await db.scalar("SELECT COUNT(*) FROM runs WHERE deleted_at IS NULL") == 3


async def test_migration_keeps_earlier_runs_as_typed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    connection = database_before(path, "runs ADD COLUMN source")
    connection.execute(
        "INSERT INTO chats (platform, chat_key, created_at) VALUES ('console', 'g', 0)"
    )
    connection.execute(
        "INSERT INTO people (platform, user_key, display_name, updated_at) VALUES ('console', 'a', 'A', 0)"
    )
    connection.execute(
        "INSERT INTO runs (chat_id, person_id, distance_m, duration_s, day, ran_at, logged_at) "
        "VALUES (1, 1, 5000, NULL, '2026-11-18', 1, 1)"
    )
    connection.close()
    async with await Database.open(path) as db:
        assert await db.scalar("PRAGMA user_version") == len(MIGRATIONS)
        [run] = await run_store.recent_runs(db, 1, 1)
        assert run.distance_m == 5000 and run.source is None
