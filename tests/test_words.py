"""The words a newcomer reads (issue 16): no data said plainly, streaks in the chat's units, ties,
/myunits for everyone, and /forget."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.commands import COMMANDS, BotCore
from bot.core.model import Standings, StandingsEntry
from bot.core.race import chart_caption
from storage import chats as chat_store
from storage import export
from tests.conftest import make_ctx

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


async def say(core: BotCore, text: str, **who) -> str:
    reply = await core.handle_text(make_ctx(NOW, **who), text)
    assert reply is not None
    return reply.text


async def test_hamster_without_data_says_so_and_the_streak_is_in_the_chats_units(
    core: BotCore,
) -> None:
    now = await say(core, "/hamster")
    assert "Last night: no data" in now and "Last night: 0" not in now
    stats = await say(core, "/hamster stats")  # the chat's units are km (conftest)
    assert "Last night: no data" in stats
    assert "No streak of nights over 1.6 km right now." in stats and "mile" not in stats
    await say(core, "/settings units mi", admin=True)
    assert "No streak of nights over 1 mile" in await say(core, "/hamster stats")


def test_a_tie_shares_the_lead() -> None:
    def entry(name: str, metres: float) -> StandingsEntry:
        return StandingsEntry(1, name, "person", metres, None)

    board = Standings("this week", NOW, NOW, (entry("alice", 5000), entry("bob", 5000.2)))
    assert (
        chart_caption(board, "km")
        == "📈 Race, this week (km): alice and bob share the lead with 5.00 km."
    )
    board = Standings("this week", NOW, NOW, (entry("alice", 6000), entry("bob", 5000)))
    assert "alice leads with 6.00 km, 1.00 km ahead of bob." in chart_caption(board, "km")


async def test_myunits_is_for_everyone_and_in_help(core: BotCore) -> None:
    assert "/myunits" in await say(core, "/help")
    assert not COMMANDS["myunits"].admin_only
    assert "I'll show your distances in mi" in await say(core, "/myunits mi", admin=False)
    assert "mi" in (await say(core, "/logrun 5 km")).split("(")[0]  # shown in her units first
    assert "chat's units (km) again" in await say(core, "/myunits off")
    assert "5.00 km" in await say(core, "/logrun 5 km")
    assert "Try" in await say(core, "/myunits furlongs")


async def _rows(core: BotCore) -> list[tuple[str, str]]:
    return [(r.chat, r.person) for r in await export.run_rows(core.db, None)]


async def test_forget_asks_first_then_deletes_this_chats_runs(core: BotCore) -> None:
    await say(core, "/logrun 5 km", user="alice")
    await say(core, "/logrun 3 km", user="alice", chat="group-2")
    await say(core, "/logrun 2 km", user="bob")
    asked = await say(core, "/forget", user="alice")
    assert "1 run in this chat" in asked and "/forget yes" in asked
    assert len(await _rows(core)) == 3  # nothing yet
    done = await say(core, "/forget yes", user="alice")
    assert "I deleted your 1 run in this chat" in done
    assert sorted(await _rows(core)) == [("console:group-1", "Bob"), ("console:group-2", "Alice")]
    race = await say(core, "/race", user="bob")
    assert "Alice" not in race
    assert "no runs of yours" in await say(core, "/forget", user="alice")


async def test_forget_everywhere_only_in_private_and_takes_the_name(core: BotCore) -> None:
    await say(core, "/logrun 5 km", user="alice")
    await say(core, "/logrun 3 km", user="alice", chat="group-2")
    refused = await say(core, "/forget everywhere", user="alice")
    assert "private chat" in refused
    asked = await say(core, "/forget everywhere", user="alice", chat="alice-dm", private=True)
    assert "2 runs in every chat" in asked
    await say(core, "/forget everywhere yes", user="alice", chat="alice-dm", private=True)
    assert await _rows(core) == []
    assert await chat_store.get_person(core.db, "console", "alice") is None


async def test_an_admin_removes_someone_who_left(core: BotCore) -> None:
    await say(core, "/logrun 5 km", user="carol", name="Carol")
    await say(core, "/logrun 2 km", user="bob")
    refused = await say(core, "/forget Carol", user="bob")
    assert "Only the chat's admins" in refused
    asked = await say(core, "/forget carol", user="owner", admin=True)
    assert "Carol's 1 run" in asked and "/forget carol yes" in asked
    await say(core, "/forget carol yes", user="owner", admin=True)
    assert await _rows(core) == [("console:group-1", "Bob")]
    assert "Nobody called" in await say(core, "/forget carol yes", user="owner", admin=True)
