"""Forgetting a person: their runs (undone ones too) and, once none are left anywhere, their name."""

from __future__ import annotations

from datetime import date

from storage import chats as chat_store
from storage import export
from storage import runs as run_store
from storage.db import Database

NOW = 1_795_896_000.0


async def _run(db: Database, chat: int, person: int, metres: float) -> int:
    return await run_store.add_run(
        db,
        chat_id=chat,
        person_id=person,
        distance_m=metres,
        duration_s=None,
        day=date(2026, 11, 28),
        ran_at=NOW,
        logged_at=NOW,
    )


async def test_forget_in_one_chat_keeps_the_name_for_the_other(db: Database) -> None:
    one = await chat_store.ensure_chat(db, "telegram", "-1", NOW)
    two = await chat_store.ensure_chat(db, "telegram", "-2", NOW)
    alice = await chat_store.ensure_person(db, "telegram", "1", "Alice", NOW)
    bob = await chat_store.ensure_person(db, "telegram", "2", "Bob", NOW)
    undone = await _run(db, one.id, alice.id, 1000)
    await run_store.delete_run(db, one.id, undone, NOW)
    await _run(db, one.id, alice.id, 5000)
    await _run(db, two.id, alice.id, 3000)
    await _run(db, one.id, bob.id, 2000)
    assert await run_store.count_person_runs(db, alice.id, one.id) == 1
    assert await run_store.count_person_runs(db, alice.id) == 2

    gone = await run_store.forget_person(db, alice.id, one.id)
    assert gone == run_store.Forgotten(runs=2, name_removed=False)  # the undone run too
    rows = await export.run_rows(db, None)
    assert [(r.chat, r.person) for r in rows] == [("telegram:-2", "Alice"), ("telegram:-1", "Bob")]

    gone = await run_store.forget_person(db, alice.id)
    assert gone == run_store.Forgotten(runs=1, name_removed=True)
    assert await chat_store.get_person(db, "telegram", "1") is None
    assert [r.person for r in await export.run_rows(db, None)] == ["Bob"]
