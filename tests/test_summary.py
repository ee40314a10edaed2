"""The morning report: exact numbers from a replayed night, data quality, no-data nights, the CLI."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import cli
from bot import config as config_module
from bot.core.commands import BotCore, CommandContext, Reply
from bot.core.scheduler import RetryPolicy, SummaryScheduler
from bot.core.summary import (
    compose_report,
    format_minutes,
    fun_comparison,
    latest_morning,
    report_night,
    sensor_health,
)
from bot.wheels import WheelPipeline
from sensors.capture import HEADER, format_line
from sensors.csc import encode_csc_measurement
from storage import chats as chat_store
from storage.chats import Chat
from storage.db import Database
from storage.wheel import SensorEvent

LONDON = ZoneInfo("Europe/London")
MORNING = date(2026, 11, 29)
WHEEL_M = math.pi * 0.20


def _london(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2026, 11, day, hour, minute, tzinfo=LONDON).timestamp()


# --- pure pieces ------------------------------------------------------------------------------------


def test_the_night_is_the_24_hours_ending_at_the_summary_time() -> None:
    night = report_night(MORNING, time(8), LONDON)
    assert night.end.timestamp() == _london(29, 8)
    assert night.start.timestamp() == _london(28, 8)
    assert night.key == "2026-11-29"
    # a summary time skipped by the clocks going forward is when the clock lands
    ny = ZoneInfo("America/New_York")
    spring = report_night(date(2027, 3, 14), time(2, 30), ny)
    assert spring.end.strftime("%H:%M %Z") == "03:30 EDT"
    assert spring.end.timestamp() - spring.start.timestamp() == 86400


def test_latest_morning_is_today_only_once_the_time_has_come() -> None:
    assert latest_morning(datetime(2026, 11, 29, 7, 59, tzinfo=LONDON), time(8)) == date(
        2026, 11, 28
    )
    assert latest_morning(datetime(2026, 11, 29, 8, 0, tzinfo=LONDON), time(8)) == MORNING


@pytest.mark.parametrize(
    ("metres", "expected"),
    [
        (2073.45, "that's 76% of the way across the Golden Gate Bridge"),
        (1900.0, "that's 69% of the way across the Golden Gate Bridge"),
        (3400.0, "that's 1.2 crossings of the Golden Gate Bridge"),
        (4000.0, "that's 80% of a 5K"),
        (13000.0, "that's 1.3 laps of Central Park's loop"),
        (500.0, "that's 1.2 laps of a running track"),
        (30.0, "that's 8% of a lap of a running track"),
        (80000.0, "that's 1.9 marathons"),
        (0.0, None),
        (float("nan"), None),
    ],
)
def test_fun_comparison(metres: float, expected: str | None) -> None:
    assert fun_comparison(metres) == expected


def test_format_minutes() -> None:
    assert format_minutes(20) == "under a minute"
    assert format_minutes(14 * 60) == "14 min"
    assert format_minutes(72 * 60) == "1 h 12 min"
    assert format_minutes(120 * 60) == "2 h"


def test_sensor_health_finds_offline_stretches() -> None:
    start, end = 1000.0, 90000.0

    def ev(at: float, kind: str) -> SensorEvent:
        return SensorEvent(at, kind)

    health = sensor_health(
        "connected",
        [ev(5000, "disconnected"), ev(5600, "disconnected"), ev(9000, "connected")],
        15,
        start,
        end,
    )
    assert health.offline == ((5000, 9000),)
    assert (health.still_offline, health.online, health.battery) == (False, True, 15)

    down = sensor_health(
        "disconnected", [ev(80000, "connected"), ev(85000, "disconnected")], None, start, end
    )
    assert down.offline == ((start, 80000), (85000, end))
    assert down.still_offline and down.online

    all_night = sensor_health("disconnected", [], None, start, end)
    assert all_night.offline == ((start, end),)
    assert all_night.online is False

    assert sensor_health(None, [], None, start, end).online is None
    assert sensor_health(None, [ev(2000, "connected")], None, start, end).offline == ()


# --- a replayed night, exact numbers ------------------------------------------------------------------


def _capture(path: Path) -> int:
    """Two nights of a wheel: returns the revolutions credited in the night to 29 Nov 08:00.

    Readings come every second while the wheel turns, with one stationary reading just before each run, so
    every credit lands in the minute it was run in. Runs (London time, = UTC in November):
      27 Nov 23:00-23:20 at 1 rev/s (the night before: 1200 revolutions)
      28 Nov 22:00-22:10 at 1 rev/s (600), 23:30-23:45 at 2 rev/s (1800), 29 Nov 02:00-02:05 at 1 rev/s (300)
      and 600 revolutions between the readings at 03:00 and 04:00 while the sensor was offline (estimated).
    """
    counter = 1000
    lines = [HEADER + "\n"]

    def reading(at: float) -> None:
        lines.append(format_line(at, encode_csc_measurement(counter, int(at * 1024) & 0xFFFF)))

    def run(start: float, minutes: int, per_second: int) -> None:
        nonlocal counter
        reading(start)
        for second in range(1, minutes * 60 + 1):
            counter += per_second
            reading(start + second)

    run(_london(27, 23), 20, 1)
    before = counter
    run(_london(28, 22), 10, 1)
    run(_london(28, 23, 30), 15, 2)
    run(_london(29, 2), 5, 1)
    reading(_london(29, 3))
    counter += 600
    reading(_london(29, 4))
    path.write_text("".join(lines), encoding="utf-8")
    return counter - before


CONFIG = """
[bot]
database = "{db}"
timezone = "Europe/London"
units = "km"

[summary]
time = "08:00"

[[hamsters]]
name = "Ursula"
wheel_diameter_cm = 20
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "hamsterbot.toml"
    path.write_text(CONFIG.format(db=tmp_path / "bot.db"), encoding="utf-8")
    return path


def _ctx(now: float, user: str, chat: str = "-100") -> CommandContext:
    return CommandContext(
        platform="telegram",
        chat_id=chat,
        user_id=user.lower(),
        display_name=user,
        is_admin=True,
        now=datetime.fromtimestamp(now, UTC),
    )


def _replayed_night(tmp_path: Path, config_path: Path) -> int:
    """Replay the capture through ``hamsterbot replay``, then add link events and people's runs."""
    capture = tmp_path / "night.csv"
    credited = _capture(capture)
    assert (
        cli.main(["replay", "--config", str(config_path), "--wheel", "Ursula", str(capture)]) == 0
    )
    asyncio.run(_link_events_and_runs(config_module.load(config_path)))
    return credited


async def _link_events_and_runs(config: config_module.Config) -> None:
    async with await Database.open(config.bot.database) as db:
        # the link's view of the night: offline 03:00-04:00, and a weak battery
        pipeline = await WheelPipeline.open(db, config.hamsters[0])
        pipeline.link_event("connected", _london(27, 21))
        pipeline.link_event("disconnected", _london(29, 2, 58))
        pipeline.link_event("connected", _london(29, 4))
        pipeline.link_event("battery", _london(29, 4), 15)
        await pipeline.flush()
        core = await BotCore.create(db, config)
        await core.dispatch(_ctx(_london(28, 19), "Alice"), "logrun", "5 km")
        await core.dispatch(_ctx(_london(28, 7), "Bob"), "logrun", "3 km")  # before the night
        await core.dispatch(_ctx(_london(22, 18), "Bob"), "logrun", "1 km")  # last week
        await core.dispatch(_ctx(_london(28, 19), "Carol", chat="other"), "logrun", "9 km")


def test_a_replayed_night_gives_exact_numbers(
    tmp_path: Path, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credited = _replayed_night(tmp_path, config_path)
    assert credited == 600 + 1800 + 300 + 600
    capsys.readouterr()
    images = tmp_path / "images"
    code = cli.main(
        [
            "summary",
            "--config",
            str(config_path),
            "--chat",
            "telegram:-100",
            "--date",
            "2026-11-29",
            "--image-dir",
            str(images),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    text, _, image_line = out.rstrip("\n").rpartition("\n")
    distance = credited * WHEEL_M  # 2073.45 m
    assert f"{distance:.2f}" == "2073.45"
    before = 1200 * WHEEL_M  # 753.98 m
    assert text == "\n".join(
        [
            "🌅 Good morning! Last night on the wheel (Sat 08:00 – Sun 29 Nov 08:00)",
            "",
            "🐹 Ursula ran 2.07 km",
            "⏱️ 30 min on the wheel in 3 runs, the longest 15 min",
            # 120 revolutions in the best minute: 120 x 0.6283 m / 60 s = 1.2566 m/s
            "⚡ Top speed 4.5 km/h (best full minute), busiest hour 23:00–00:00",
            f"📈 1.32 km more than the night before; "
            f"{round((distance / before - 1) * 100)}% above the 7-night average (754 m)",
            "🎉 That's 76% of the way across the Golden Gate Bridge!",
            "📡 Sensor offline 02:58–04:00; that distance is estimated.",
            "🔋 Sensor battery low (15%): time for a new one.",
            "",
            "🏃 Runs logged: Alice 5.00 km",
            "🏁 Race, this week so far",
            # the week to Sunday 08:00 holds both nights: (1200 + 3300) x 0.6283 m
            "🥇 Alice: 5.00 km, 2.17 km ahead of Ursula",
            "🥈 Bob: 3.00 km, 173 m ahead of Ursula",
            "🥉 Ursula 🐹: 2.83 km",
        ]
    )
    assert "175% above" in text
    assert image_line.startswith("image: ")
    png = Path(image_line.removeprefix("image: ")).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_the_report_without_a_chat_uses_the_config_and_leaves_people_out(
    tmp_path: Path, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _replayed_night(tmp_path, config_path)
    capsys.readouterr()
    assert cli.main(["summary", "--config", str(config_path), "--date", "2026-11-29"]) == 0
    out = capsys.readouterr().out
    assert "🐹 Ursula ran 2.07 km" in out
    assert "Runs logged" not in out and "Race" not in out
    assert "image:" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--chat", "telegram"], "--chat: expected PLATFORM:ID"),
        (["--chat", "telegram:404"], 'no chat "telegram:404" in the database (known: none)'),
        (["--date", "29/11/2026"], '--date: expected YYYY-MM-DD, got "29/11/2026"'),
    ],
)
def test_summary_cli_mistakes_are_one_line(
    config_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    config = config_module.load(config_path)
    assert cli.main(["totals", "--config", str(config_path)]) != 0  # no database yet

    async def create() -> None:  # an empty database
        async with await Database.open(config.bot.database):
            pass

    asyncio.run(create())
    capsys.readouterr()
    assert cli.main(["summary", "--config", str(config_path), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


# --- nights without data -------------------------------------------------------------------------------


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[BotCore]:
    config = config_module.parse(
        {
            "bot": {"database": str(tmp_path / "t.db"), "timezone": "Europe/London", "units": "mi"},
            "hamsters": [{"name": "Ursula", "wheel_diameter_cm": 20}],
        }
    )
    db = await Database.open(config.bot.database)
    try:
        yield await BotCore.create(db, config)
    finally:
        await db.close()


async def _chat(core: BotCore) -> Chat:
    return await chat_store.ensure_chat(core.db, "telegram", "-1", _london(20, 12))


async def _events(core: BotCore, *events: tuple[str, float]) -> None:
    pipeline = await WheelPipeline.open(core.db, core.config.hamsters[0])
    for kind, at in events:
        pipeline.link_event(kind, at)
    await pipeline.flush()


async def test_a_hamster_with_no_sensor_data_says_so_plainly(core: BotCore) -> None:
    reply = await compose_report(core, await _chat(core), MORNING)
    assert "🐹 Ursula: no data from the wheel sensor last night." in reply.text
    assert "0.00 mi" not in reply.text and "0 mi" not in reply.text
    assert "Nobody logged a run. Race the hamster tonight: /logrun 5 km" in reply.text
    assert "Race, this week" not in reply.text
    assert reply.image_png is None


async def test_a_sensor_offline_all_night_is_no_data(core: BotCore) -> None:
    await _events(core, ("connected", _london(26, 20)), ("disconnected", _london(27, 23)))
    text = (await compose_report(core, await _chat(core), MORNING)).text
    assert "🐹 Ursula: no data, the wheel sensor was offline all night." in text
    assert "📡" not in text
    assert " 0 mi" not in text and "0.00" not in text


async def test_a_listening_sensor_and_a_still_wheel_is_a_rest_night(core: BotCore) -> None:
    await _events(core, ("connected", _london(26, 20)))
    text = (await compose_report(core, await _chat(core), MORNING)).text
    assert "🐹 Ursula rested: not a single turn of the wheel last night 😴" in text
    await _events(core, ("disconnected", _london(29, 1)), ("connected", _london(29, 2, 30)))
    text = (await compose_report(core, await _chat(core), MORNING)).text
    assert "🐹 Ursula: no turns of the wheel while the sensor was online." in text
    assert "📡 Sensor offline 01:00–02:30." in text


async def test_monday_shows_last_weeks_final_standings(core: BotCore) -> None:
    chat = await _chat(core)
    await core.dispatch(_ctx(_london(27, 19), "Alice", chat="-1"), "logrun", "5 km")
    text = (await compose_report(core, chat, date(2026, 11, 30))).text
    assert "🏁 Race, last week, final" in text
    assert "🥇 Alice: 3.11 mi" in text
    assert "🏃 Nobody logged a run" in text  # nothing in the night itself


async def test_the_scheduler_posts_the_real_report_marked_late(core: BotCore) -> None:
    chat = await _chat(core)
    sent: list[tuple[Chat, Reply]] = []

    async def send(chat: Chat, reply: Reply) -> None:
        sent.append((chat, reply))

    now = _london(29, 10)
    scheduler = SummaryScheduler(
        core, {"telegram": send}, clock=lambda: now, policy=RetryPolicy(jitter=0)
    )
    for task in await scheduler.tick():
        assert await task
    assert [c.id for c, _ in sent] == [chat.id]
    text = sent[0][1].text
    assert text.startswith("⏰ Running late today: this was due at 08:00.\n🌅 Good morning!")
    assert await chat_store.summary_sent(core.db, chat.id, "2026-11-29")
    assert await scheduler.tick() == []


async def test_a_simulated_night_through_the_pipeline_is_reported_exactly(core: BotCore) -> None:
    from bot.core.parsing import format_distance
    from bot.core.summary import gather_report
    from sensors.simulated import notifications, revolutions_between

    hamster = core.config.hamsters[0]
    night = report_night(MORNING, time(8), LONDON)
    start, end = night.start.timestamp(), night.end.timestamp()
    pipeline = await WheelPipeline.open(core.db, hamster)
    pipeline.link_event("connected", start - 60)
    for at, payload in notifications(11, start - 30, end - 1, LONDON, hamster.circumference_m):
        pipeline.feed(payload, at)
    await pipeline.flush()
    truth = revolutions_between(11, start - 30, end - 1, LONDON, hamster.circumference_m)
    assert truth > 1000
    report, _ = await gather_report(core, await _chat(core), MORNING)
    stats = report.hamsters[0].stats
    assert stats.revolutions == truth
    assert stats.estimated_revolutions == 0
    assert sum(b.distance_m for b in stats.hourly_m) == pytest.approx(truth * WHEEL_M)
    assert 1 <= stats.sessions and 0 < stats.active_minutes < 24 * 60
    assert stats.top_speed_mps <= 6 / 3.6 + 1e-9  # the simulated hamster runs at most 6 km/h
    text = (await compose_report(core, await _chat(core), MORNING, chart=False)).text
    assert f"🐹 Ursula ran {format_distance(truth * WHEEL_M, 'mi')}\n" in text
    assert report.hamsters[0].health.offline == ()


async def test_two_hamsters_each_get_their_block_and_the_chart_shows_the_runner(
    tmp_path: Path,
) -> None:
    config = config_module.parse(
        {
            "bot": {
                "database": str(tmp_path / "two.db"),
                "timezone": "Europe/London",
                "units": "km",
            },
            "hamsters": [
                {"name": "Ursula", "wheel_diameter_cm": 20},
                {"name": "Hazel", "wheel_diameter_cm": 25},
            ],
        }
    )
    async with await Database.open(config.bot.database) as db:
        core = await BotCore.create(db, config)
        hazel = await WheelPipeline.open(db, config.hamsters[1])
        start = _london(28, 23)
        hazel.feed(encode_csc_measurement(10, 0), start)
        for second in range(1, 121):
            hazel.feed(encode_csc_measurement(10 + second, second * 1024), start + second)
        await hazel.flush()
        chat = await chat_store.ensure_chat(db, "discord", "7", start)
        reply = await compose_report(core, chat, MORNING)
    assert "🐹 Ursula: no data from the wheel sensor last night." in reply.text
    hazel_m = 120 * math.pi * 0.25
    assert f"🐹 Hazel ran {hazel_m:.0f} m\n⏱️ 2 min on the wheel in 1 run\n" in reply.text
    assert reply.image_png is not None and reply.image_png.startswith(b"\x89PNG")
    assert reply.image_name == "night-2026-11-29.png"
