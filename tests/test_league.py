"""Hamsters belong to chats (``[[hamsters]] chats``), and ``/league`` ranks every hamster in every home."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import config as config_module
from bot.config import ConfigError
from bot.core import reads
from bot.core.commands import BotCore
from bot.core.league import render_league
from bot.core.model import League, LeagueEntry
from bot.core.periods import parse_period
from bot.wheels import WheelPipeline
from sensors.csc import encode_csc_measurement
from storage.db import Database
from tests.conftest import make_ctx

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
RAN_AT = datetime(2026, 11, 25, 2, 0, tzinfo=UTC).timestamp()


def _config(tmp_path: Path) -> config_module.Config:
    return config_module.parse(
        {
            "bot": {"database": str(tmp_path / "t.db"), "timezone": "UTC", "units": "km"},
            "mqtt": {"url": "mqtt://127.0.0.1"},
            "hamsters": [
                {"name": "Ursula", "wheel_diameter_cm": 20, "sensor": "simulated"},
                {
                    "name": "Pip",
                    "wheel_diameter_cm": 20,
                    "sensor": "mqtt:hollyhock/Pip",
                    "chats": ["console:group-a", "telegram:-100"],
                },
                {
                    "name": "Bramble",
                    "wheel_diameter_cm": 20,
                    "sensor": "mqtt:fernlea/Bramble",
                    "chats": ["discord:5678"],
                },
            ],
        }
    )


async def _run(db: Database, config: config_module.Config, name: str, revolutions: int) -> None:
    """``revolutions`` turns of ``name``'s wheel, two a second, through the real pipeline."""
    pipeline = await WheelPipeline.open(db, config.hamster(name))  # type: ignore[arg-type]
    count = 1000
    pipeline.feed(encode_csc_measurement(count), RAN_AT)
    for second in range(1, revolutions // 2 + 1):
        count += 2
        pipeline.feed(encode_csc_measurement(count), RAN_AT + second)
    await pipeline.flush()
    assert pipeline.credited == revolutions


@pytest.fixture
async def league_core(tmp_path: Path, db: Database) -> BotCore:
    config = _config(tmp_path)
    await _run(db, config, "Ursula", 1000)
    await _run(db, config, "Pip", 3000)
    await _run(db, config, "Bramble", 2000)
    return await BotCore.create(db, config)


async def test_each_chat_sees_its_own_hamsters_even_before_it_has_a_row(
    league_core: BotCore,
) -> None:
    core = league_core
    group_a = await core.dispatch(make_ctx(NOW, chat="group-a"), "race", "")
    assert "Pip" in group_a.text and "Ursula" in group_a.text and "Bramble" not in group_a.text
    elsewhere = await core.dispatch(make_ctx(NOW, chat="group-b"), "race", "")
    assert "Ursula" in elsewhere.text and "Pip" not in elsewhere.text
    assert "Bramble" not in elsewhere.text
    discord = await core.dispatch(make_ctx(NOW, chat="5678", platform="discord"), "hamster", "")
    assert "Bramble" in discord.text and "Pip" not in discord.text
    # A chat with a row (it logged a run) is scoped the same way.
    await core.dispatch(make_ctx(NOW, chat="group-a"), "logrun", "2 km")
    again = await core.dispatch(make_ctx(NOW, chat="group-a"), "race", "")
    assert "Pip" in again.text and "Bramble" not in again.text and "Alice" in again.text
    # The public view (the web page, the CLI) sees every hamster.
    assert core.scope_for(None).hamsters == {"Ursula", "Pip", "Bramble"}


async def test_the_league_ranks_every_hamster_with_its_home(league_core: BotCore) -> None:
    core = league_core
    reply = await core.dispatch(make_ctx(NOW, chat="group-b"), "league", "")
    lines = reply.text.splitlines()
    assert lines[0] == "🏆 League, this week"
    assert lines[1].startswith("🥇 Pip 🐹 (hollyhock): 1.88 km")
    assert lines[2].startswith("🥈 Bramble 🐹 (fernlea): 1.26 km")
    assert lines[3].startswith("🥉 Ursula 🐹 (here): 628 m")
    yesterday = await core.dispatch(make_ctx(NOW, chat="group-b"), "league", "yesterday")
    assert "Nobody has run yet" in yesterday.text
    bad = await core.dispatch(make_ctx(NOW, chat="group-b"), "league", "fortnightish")
    assert bad.private and "League" not in bad.text

    settings = reads.chat_settings(core.config, None)
    period = parse_period("week", now=NOW, summary_time=settings.summary_time)
    league = await reads.league(core, period, NOW, settings)
    assert [(e.rank, e.name, e.home) for e in league.entries] == [
        (1, "Pip", "hollyhock"),
        (2, "Bramble", "fernlea"),
        (3, "Ursula", None),
    ]
    now = await reads.hamsters_now(core, core.scope_for(None), NOW, settings)
    assert {h.name: h.home for h in now} == {
        "Ursula": None,
        "Pip": "hollyhock",
        "Bramble": "fernlea",
    }


def test_render_league_ties_offline_and_empty() -> None:
    epoch = datetime(2026, 11, 23, tzinfo=UTC)
    league = League(
        "this week",
        epoch,
        epoch,
        (
            LeagueEntry(1, "Pip", "hollyhock", 1500.0, online=False),
            LeagueEntry(1, "Bramble", None, 1500.0),
            LeagueEntry(3, "Ursula", "fern*lea", 0.0),
            LeagueEntry(4, "Hazel", "a", 0.0),
        ),
    )
    text = render_league(league, "km")
    assert text.splitlines()[1:] == [
        "🥇 Pip 🐹 (hollyhock): 1.50 km · offline",
        "🥇 Bramble 🐹 (here): 1.50 km",
        "🥉 Ursula 🐹 (fern*lea): 0 m",
        "4. Hazel 🐹 (a): 0 m",
    ]
    assert (
        render_league(League("today", epoch, epoch, ()), "mi")
        == "🏆 League, today: no hamsters yet."
    )


@pytest.mark.parametrize(
    ("chats", "message"),
    [
        ("telegram:-100", 'chats: expected a list like ["telegram:-1001234"]'),
        (["telegram"], 'chats[0]: expected PLATFORM:ID like "telegram:-1001234"'),
        (["irc:#hamsters"], "chats[0]: expected PLATFORM:ID"),
        (["discord:"], "chats[0]: expected PLATFORM:ID"),
        ([5678], "chats[0]: expected a string"),
    ],
)
def test_chats_errors_name_the_key(chats: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_module.parse({"hamsters": [{"name": "U", "wheel_diameter_cm": 20, "chats": chats}]})
    assert f'[[hamsters]] "U" {message}' in str(caught.value) or (
        f"[[hamsters]] #1 {message}" in str(caught.value)
    )


async def test_api_league_serves_the_same_ranking(league_core: BotCore) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.frontends import web
    from bot.frontends.web_reads import CoreReads

    reads_ = CoreReads(league_core, clock=lambda: NOW.timestamp())
    app = web.build_app(reads_, units="km", public_url="https://hamster.example")
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/league")
        assert response.status == 200
        body = await response.json()
        assert body["period"] == "week" and body["label"] == "this week"
        assert [(e["rank"], e["name"], e["home"]) for e in body["league"]] == [
            (1, "Pip", "hollyhock"),
            (2, "Bramble", "fernlea"),
            (3, "Ursula", None),
        ]
        assert body["league"][0]["distance_m"] == pytest.approx(3000 * 0.2 * 3.14159265, abs=0.01)
        assert set(body["league"][0]) == {"rank", "name", "home", "distance_m", "online"}
        bad = await client.get("/api/league?period=fortnightish")
        assert bad.status == 400 and "error" in await bad.json()


async def test_the_morning_report_shows_only_the_chats_own_hamsters(league_core: BotCore) -> None:
    from datetime import date

    from bot.core.summary import compose_report
    from storage import chats as chat_store

    core = league_core
    discord = await chat_store.ensure_chat(core.db, "discord", "5678", NOW.timestamp())
    other = await chat_store.ensure_chat(core.db, "console", "group-b", NOW.timestamp())
    morning = date(2026, 11, 25)  # the night the wheels ran in
    mine = await compose_report(core, discord, morning, chart=False)
    assert "Bramble" in mine.text and "Pip" not in mine.text and "Ursula" in mine.text
    theirs = await compose_report(core, other, morning, chart=False)
    assert "Bramble" not in theirs.text and "Pip" not in theirs.text and "Ursula" in theirs.text
