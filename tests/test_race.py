"""/race and /chart: pure standings, and the real command core over a replayed week on a real SQLite file."""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import shutil
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from bot import config as config_module
from bot.core import race
from bot.core.commands import BotCore, CommandContext
from bot.core.parsing import METRES_PER_MILE, format_distance, format_speed, parse_period
from bot.wheels import WheelPipeline
from sensors import simulated
from sensors.counter import CounterState, Credit
from storage.db import Database
from storage.wheel import WheelStore

LONDON = ZoneInfo("Europe/London")
SEED = 7
REPLAY_START = datetime(2026, 11, 15, 12, tzinfo=LONDON).timestamp()  # Sunday noon
REPLAY_END = datetime(2026, 11, 23, 12, tzinfo=LONDON).timestamp()  # the Monday after
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=LONDON)  # Monday morning, after the week
HAMMY_MINUTE = int(datetime(2026, 11, 18, 22, 0, tzinfo=LONDON).timestamp())


def week_config(path: Path) -> config_module.Config:
    return config_module.parse(
        {
            "bot": {"database": str(path), "timezone": "Europe/London", "units": "km"},
            "hamsters": [
                {"name": "Ursula", "wheel_diameter_cm": 20, "sensor": "simulated"},
                {"name": "Hammy", "wheel_diameter_cm": 25},
            ],
        }
    )


def ctx(user: str, *, chat: str = "group-1", now: datetime = NOW) -> CommandContext:
    return CommandContext(
        platform="console",
        chat_id=chat,
        user_id=user.casefold(),
        display_name=user,
        is_admin=True,
        now=now,
    )


def noon(day: str) -> float:
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=LONDON).timestamp()


@dataclass(frozen=True)
class LoggedRun:
    user: str
    chat: str
    args: str
    metres: float
    ran_at: float


RUNS = (
    LoggedRun("Alice", "group-1", "5 km 2026-11-16", 5000.0, noon("2026-11-16")),
    LoggedRun("Alice", "group-1", "3.1 mi 2026-11-19", 3.1 * METRES_PER_MILE, noon("2026-11-19")),
    LoggedRun("Alice", "group-1", "10k 2026-11-22", 10000.0, noon("2026-11-22")),
    LoggedRun("Bob", "group-1", "half marathon 2026-11-18", 21097.5, noon("2026-11-18")),
    LoggedRun("Bob", "group-1", "2 km", 2000.0, NOW.timestamp()),
    LoggedRun("Carol", "group-1", "5000 m 2026-11-17", 5000.0, noon("2026-11-17")),
    LoggedRun("Carol", "group-1", "1 mi 2026-11-17", METRES_PER_MILE, noon("2026-11-17")),
    LoggedRun("Dave", "group-2", "50 km 2026-11-18", 50000.0, noon("2026-11-18")),
)


async def _build_week(path: Path) -> None:
    config = week_config(path)
    async with await Database.open(path) as db:
        ursula = config.hamsters[0]
        pipeline = await WheelPipeline.open(db, ursula)
        next_flush = -math.inf
        for at, payload in simulated.notifications(
            SEED, REPLAY_START, REPLAY_END, LONDON, ursula.circumference_m
        ):
            pipeline.feed(payload, at)
            if at >= next_flush:
                await pipeline.flush()
                next_flush = at + config.bot.flush_seconds
        await pipeline.flush()
        truth = simulated.revolutions_between(
            SEED, REPLAY_START, REPLAY_END, LONDON, ursula.circumference_m
        )
        assert pipeline.credited == truth
        hammy = await WheelStore.open(db, "Hammy")
        hammy.record(
            Credit(2500, HAMMY_MINUTE, HAMMY_MINUTE + 30, False), [], CounterState(0, 0, 0)
        )
        await hammy.flush()
        core = await BotCore.create(db, config)
        await core.dispatch(ctx("Carol"), "settings", "myunits mi")
        for run in RUNS:
            reply = await core.dispatch(ctx(run.user, chat=run.chat), "logrun", run.args)
            assert reply.text.startswith("✅"), reply.text
        # A run taken back never counts.
        await core.dispatch(ctx("Carol"), "logrun", "4 km 2026-11-20")
        assert "Removed" in (await core.dispatch(ctx("Carol"), "undo", "")).text


@pytest.fixture(scope="module")
def week_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("week") / "week.db"
    asyncio.run(_build_week(path))
    return path


@pytest.fixture
async def week(week_template: Path, tmp_path: Path) -> AsyncIterator[BotCore]:
    path = tmp_path / "week.db"
    shutil.copyfile(week_template, path)
    config = week_config(path)
    async with await Database.open(path) as db:
        yield await BotCore.create(db, config)


async def minute_sum(db: Database, wheel: str, start: float, end: float) -> int:
    value = await db.scalar(
        "SELECT COALESCE(SUM(m.revolutions), 0) FROM wheel_minutes m JOIN wheels w ON w.id = m.wheel_id "
        "WHERE w.name = ? AND m.minute >= ? AND m.minute < ?",
        (wheel, start, end),
    )
    return int(value)


# --- pure standings -------------------------------------------------------------------------------


def test_ties_share_a_rank_and_are_ordered_deterministically() -> None:
    runners = [
        race.Runner("bob", 5000.0, key=2),
        race.Runner("Alice", 5000.0, key=3),
        race.Runner("Ursula", 5000.0, is_hamster=True, key=1),
        race.Runner("Zed", 9000.0, key=4),
        race.Runner("alice", 5000.0, key=1),
    ]
    for order in (runners, runners[::-1], runners[2:] + runners[:2]):
        rows = race.standings(order)
        assert [(r.rank, r.runner.name, r.runner.key) for r in rows] == [
            (1, "Zed", 4),
            (2, "Ursula", 1),
            (2, "alice", 1),
            (2, "Alice", 3),
            (2, "bob", 2),
        ]
    text = race.render_race(
        race.standings(runners), period_label="today", units="km", hamster_night_m=None
    )
    assert text.splitlines()[1].startswith("🥇 Zed: 9.00 km, 4.00 km ahead of Ursula")
    assert [line[:1] for line in text.splitlines()[2:]] == ["🥈"] * 4
    assert "level with Ursula" in text.splitlines()[3]


def test_render_race_units_gaps_and_hamster_nights() -> None:
    rows = race.standings(
        [
            race.Runner("Ursula", 3000.0, is_hamster=True, key=1),
            race.Runner("Hammy", 1000.0, is_hamster=True, key=2),
            race.Runner("Ann", 1000.0, units="mi", key=7),
            race.Runner("Ben", 4500.0, key=8),
        ]
    )
    lines = race.render_race(
        rows, period_label="this week", units="km", hamster_night_m=1500.0
    ).splitlines()
    assert lines[0] == "🏁 Race, this week"
    assert lines[1] == "🥇 Ben: 4.50 km, 1.50 km ahead of Ursula, 3.0 hamster nights"
    assert lines[2] == "🥈 Ursula 🐹: 3.00 km"
    assert lines[3] == "🥉 Hammy 🐹: 1.00 km"
    assert lines[4] == "🥉 Ann: 1.00 km (0.62 mi), 2.00 km to catch Ursula, 0.7 hamster nights"


def test_chart_edges_are_whole_hours_inside_the_period() -> None:
    start, end = 1_000_000_123.0, 1_000_000_123.0 + 7 * 86400
    edges = race.chart_edges(start, end)
    assert edges[0] == start and edges[-1] == end
    assert np.all(edges[1:-1] % 3600 == 0) and np.all(np.diff(edges) > 0)
    assert 160 < edges.size < 175
    year = race.chart_edges(start, start + 366 * 86400)
    assert year.size <= race.MAX_CHART_POINTS + 2 and np.all(year[1:-1] % 3600 == 0)


# --- the replayed week through the command core ------------------------------------------------------

PERIODS = (
    "today",
    "yesterday",
    "week",
    "last week",
    "month",
    "last month",
    "year",
    "all",
    "last 7 days",
    "last 30 days",
    "since 2026-11-18",
    "2026-11-17..2026-11-19",
    "tonight",
)
LINE = re.compile(
    r"^(?P<place>🥇|🥈|🥉|\d+\.) (?P<name>.+?)(?P<hamster> 🐹)?: (?P<distance>[0-9.]+ (?:km|m))"
)


@pytest.mark.parametrize("words", PERIODS)
async def test_race_for_every_period_gives_exact_standings(week: BotCore, words: str) -> None:
    period = parse_period(words, now=NOW, summary_time=week.config.summary.time)
    start, end = period.start.timestamp(), min(period.end.timestamp(), NOW.timestamp() + 1)
    expected: list[tuple[str, float, bool]] = []
    for hamster in week.config.hamsters:
        revolutions = await minute_sum(week.db, hamster.name, start, end)
        expected.append((hamster.name, revolutions * hamster.circumference_m, True))
    people: dict[str, float] = {}
    for run in RUNS:
        if run.chat == "group-1" and start <= run.ran_at < end:
            people[run.user] = people.get(run.user, 0.0) + run.metres
    expected += [(name, metres, False) for name, metres in people.items()]
    expected.sort(key=lambda e: (-round(e[1], 3), not e[2], e[0].casefold()))

    reply = await week.dispatch(ctx("Alice"), "race", words)
    lines = reply.text.splitlines()
    assert lines[0] == f"🏁 Race, {period.label}"
    rows = [LINE.match(line) for line in lines[1:]]
    shown = [(m["name"], m["distance"], bool(m["hamster"])) for m in rows if m]
    assert shown == [(name, format_distance(metres, "km"), h) for name, metres, h in expected]
    assert "Dave" not in reply.text
    if not people:
        assert lines[-1].startswith("No runs logged yet")
    if "Carol" in people:
        carol = next(line for line in lines if "Carol" in line)
        assert f"({format_distance(people['Carol'], 'mi')})" in carol


async def test_last_week_has_everyone_and_ursula_matches_the_replay(week: BotCore) -> None:
    reply = await week.dispatch(ctx("Bob"), "race", "last week")
    truth = simulated.revolutions_between(
        SEED,
        datetime(2026, 11, 16, tzinfo=LONDON).timestamp(),
        datetime(2026, 11, 23, tzinfo=LONDON).timestamp(),
        LONDON,
        week.config.hamsters[0].circumference_m,
    )
    ursula_m = truth * week.config.hamsters[0].circumference_m
    assert f"Ursula 🐹: {format_distance(ursula_m, 'km')}" in reply.text
    assert "Hammy 🐹: " in reply.text
    names = [m["name"] for m in map(LINE.match, reply.text.splitlines()) if m]
    assert sorted(names) == ["Alice", "Bob", "Carol", "Hammy", "Ursula"]
    # Alice's distance in Ursula's average nights over the 7 nights before last night.
    night_end = datetime(2026, 11, 23, 8, tzinfo=LONDON).timestamp()
    average = await minute_sum(week.db, "Ursula", night_end - 7 * 86400, night_end) / 7
    alice_m = 5000 + 3.1 * METRES_PER_MILE + 10000
    nights = alice_m / (average * week.config.hamsters[0].circumference_m)
    alice = next(
        line
        for line in reply.text.splitlines()
        if line.startswith(("🥇", "🥈", "🥉", "4.", "5.")) and "Alice" in line
    )
    assert f"{nights:.1f} hamster nights" in alice


async def test_unknown_period_lists_what_works(week: BotCore) -> None:
    reply = await week.dispatch(ctx("Alice"), "race", "fortnight")
    assert reply.private and "last month" in reply.text and "since 2026-11-01" in reply.text


PNG = b"\x89PNG\r\n\x1a\n"


async def test_chart_reply_is_a_png_race_chart(week: BotCore) -> None:
    reply = await week.dispatch(ctx("Alice"), "chart", "last week")
    assert reply.image_png is not None and reply.image_png.startswith(PNG)
    assert struct.unpack(">II", reply.image_png[16:24]) == (1200, 700)
    assert reply.image_name == "race-last-week.png"
    assert reply.text.startswith("📈 Race, last week (km): Bob leads")


async def test_chart_lines_follow_the_data(week: BotCore) -> None:
    drawn = {}

    async def capture(lines, *, title, units):
        drawn.update(lines={line.name: line for line in lines}, title=title, units=units)
        return PNG + b"fake"

    week.charts = {"race": capture}
    reply = await week.dispatch(ctx("Alice"), "chart", "")
    assert reply.image_png == PNG + b"fake"
    reply = await week.dispatch(ctx("Alice"), "chart", "2026-11-16..2026-11-22")
    lines = drawn["lines"]
    assert drawn["title"] == "Race, 16–22 Nov 2026 (km)" and drawn["units"] == "km"
    standings = await week.dispatch(ctx("Alice"), "race", "2026-11-16..2026-11-22")
    assert list(lines) == [m["name"] for m in map(LINE.match, standings.text.splitlines()) if m]
    assert set(lines) == {"Bob", "Ursula", "Alice", "Carol", "Hammy"}
    assert lines["Ursula"].is_hamster and not lines["Alice"].is_hamster
    start = datetime(2026, 11, 16, tzinfo=LONDON).timestamp()
    end = datetime(2026, 11, 23, tzinfo=LONDON).timestamp()
    ursula = week.config.hamsters[0]
    total = await minute_sum(week.db, "Ursula", start, end) * ursula.circumference_m
    assert lines["Ursula"].cumulative_m[-1] == pytest.approx(total)
    assert np.all(np.diff(lines["Ursula"].cumulative_m) >= 0)
    # Wall-clock offsets: London is on GMT in November.
    assert np.all(lines["Ursula"].local_offsets == 0)
    alice = lines["Alice"]
    assert alice.cumulative_m.tolist() == pytest.approx(
        [
            0,
            5000,
            5000 + 3.1 * METRES_PER_MILE,
            5000 + 3.1 * METRES_PER_MILE + 10000,
            5000 + 3.1 * METRES_PER_MILE + 10000,
        ]
    )
    assert alice.times[1] == noon("2026-11-16")


# --- /hamster stats over the same replayed week --------------------------------------------------


async def test_hamster_stats_records_match_the_replayed_data(week: BotCore) -> None:
    ursula = week.config.hamsters[0]
    circumference = ursula.circumference_m
    rows = await week.db.fetchall(
        "SELECT m.minute, m.revolutions, m.estimated FROM wheel_minutes m JOIN wheels w "
        "ON w.id = m.wheel_id WHERE w.name = 'Ursula' ORDER BY m.minute"
    )
    # Nights run 08:00 to 08:00 London time (the default summary time).
    first_night = datetime(2026, 11, 15, 8, tzinfo=LONDON)
    nights = []
    for day in range(9):
        start = first_night.timestamp() + day * 86400
        nights.append((start, sum(r for m, r, _ in rows if start <= m < start + 86400)))
    best_start, best_revs = max(nights, key=lambda n: (n[1], -n[0]))
    fastest = max(rows, key=lambda row: (row[1] - row[2], -row[0]))
    measured = [m for m, r, e in rows if r > e]
    sessions, begin = [], measured[0]
    for previous, minute in itertools.pairwise(measured):
        if minute - previous >= 180:
            sessions.append((previous + 60 - begin, begin))
            begin = minute
    sessions.append((measured[-1] + 60 - begin, begin))
    longest_s, longest_start = max(sessions, key=lambda s: (s[0], -s[1]))
    last_night = nights[7][1] * circumference  # 22 Nov 08:00 to 23 Nov 08:00
    streak = 0
    for _, revolutions in reversed(nights[:8]):
        if revolutions * circumference < METRES_PER_MILE:
            break
        streak += 1

    text = (await week.dispatch(ctx("Alice"), "hamster", "stats")).text
    block = text.split("\n\n")[0].splitlines()
    assert block[0] == "🐹 Ursula's stats"
    assert block[1] == f"Tonight so far: {format_distance(0, 'km')}"
    assert block[2].startswith(f"Last night: {format_distance(last_night, 'km')}, ")
    assert re.fullmatch(r"[▁▂▃▄▅▆▇█]+ \d\d:00–\d\d:00", block[3])
    assert "█" in block[3]
    week_average = sum(r for _, r in nights[1:8]) * circumference / 7
    assert block[4] == f"7-night average: {format_distance(week_average, 'km')}"
    total = sum(r for _, r, _ in rows)
    assert (
        block[5]
        == f"All time: {format_distance(total * circumference, 'km')} ({total:,} turns of the wheel)"
    )

    def moment(epoch: float, fmt: str) -> str:
        return datetime.fromtimestamp(epoch, LONDON).strftime(fmt)

    assert block[6] == (
        f"🏆 Longest night: {format_distance(best_revs * circumference, 'km')}"
        f" (night of {moment(best_start, '%a %-d %b %Y')})"
    )
    speed = (fastest[1] - fastest[2]) * circumference / 60
    assert block[7] == (
        f"⚡ Fastest minute: {format_speed(speed, 'km')} ({moment(fastest[0], '%a %-d %b %Y %H:%M')})"
    )
    minutes = round(longest_s / 60)
    shown = f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
    assert block[8] == (
        f"⏱️ Longest session: {shown} ({moment(longest_start, '%a %-d %b %Y %H:%M')})"
    )
    assert block[9] == f"🔥 Streak: {streak} nights in a row over 1.6 km"  # a km chat (issue 16)
    assert streak >= 2  # the simulated hamster runs 1-3 miles a night
    assert "🐹 Hammy's stats" in text


async def test_hamster_with_unknown_words_gets_a_hint(week: BotCore) -> None:
    reply = await week.dispatch(ctx("Alice"), "hamster", "recordz")
    assert reply.private and "/hamster stats" in reply.text


async def test_hamster_stats_see_new_minutes_after_history_is_cached(week: BotCore) -> None:
    first = (await week.dispatch(ctx("Alice"), "hamster", "stats")).text
    assert week.minute_bests  # the settled history is folded once and kept
    store = await WheelStore.open(week.db, "Ursula")
    minute = int(NOW.timestamp()) // 60 * 60 - 20 * 60
    store.record(Credit(190, minute, minute + 30, False), [], CounterState(0, 0, 0))
    await store.flush()
    second = (await week.dispatch(ctx("Alice"), "hamster", "stats")).text
    assert first != second
    fast = next(line for line in second.splitlines() if line.startswith("⚡"))
    speed = 190 * week.config.hamsters[0].circumference_m / 60
    assert fast == f"⚡ Fastest minute: {format_speed(speed, 'km')} (Mon 23 Nov 2026 09:40)"


async def test_chart_of_an_empty_chat_is_still_a_picture(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    async with await Database.open(path) as db:
        core = await BotCore.create(db, week_config(path))
        for words in ("", "all", "today", "tonight"):
            reply = await core.dispatch(ctx("Newbie", chat="fresh"), "chart", words)
            assert reply.image_png is not None and reply.image_png.startswith(PNG)
            assert "nobody has run yet" in reply.text
        export = await core.dispatch(ctx("Newbie", chat="fresh"), "export", "")
        assert dict(export.attachments)["runs.csv"].decode().count("\n") == 1  # the header
        stats = await core.dispatch(ctx("Newbie", chat="fresh"), "hamster", "stats")
        assert "🔥 No streak of nights over 1.6 km right now." in stats.text
        assert "Longest night" not in stats.text
