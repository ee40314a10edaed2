"""The morning-report scheduler: due times across DST, catch-up, retries, exactly-once, crash recovery.

Pure due-time logic is simulated minute by minute; the scheduler itself runs on a real SQLite file with the real
command core and a virtual clock (``sleep`` waits until the test advances time).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import config as config_module
from bot.core import scheduler as scheduler_module
from bot.core.commands import BotCore, ChatSettings, Reply
from bot.core.scheduler import (
    DeliveryError,
    Due,
    RetryPolicy,
    SummaryScheduler,
    due_reports,
    retry_delays,
    scheduled_at,
)
from storage import chats as chat_store
from storage.chats import Chat
from storage.db import Database

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
NOON = time(12)


def _settings(tz: str, clock: time, enabled: bool = True) -> ChatSettings:
    return ChatSettings(timezone=tz, units="mi", summary_time=clock, summary_enabled=enabled)


def _at(tz: ZoneInfo, *args: int) -> float:
    return datetime(*args, tzinfo=tz).timestamp()


def _simulate(
    settings: ChatSettings,
    start: float,
    end: float,
    *,
    step: float = 60.0,
    down: tuple[float, float] | None = None,
) -> list[tuple[str, float, bool]]:
    """Tick every ``step`` seconds like the scheduler, recording sends; no ticks while ``down``."""
    sent: dict[str, tuple[float, bool]] = {}
    now = start
    while now < end:
        if down is None or not down[0] <= now < down[1]:
            for due in due_reports(now, settings, NOON):
                if due.night not in sent:
                    sent[due.night] = (now, due.late)
        now += step
    return [(night, at, late) for night, (at, late) in sorted(sent.items())]


# --- pure: when is a report due -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "clock", "transition_day", "expected_local"),
    [
        # spring forward: 02:00 -> 03:00; 02:30 does not exist, the report comes when the clock skips to 03:30
        ("America/New_York", time(2, 30), date(2027, 3, 14), time(3, 30)),
        # fall back: 01:00-02:00 happens twice; only the first 01:30 posts
        ("America/New_York", time(1, 30), date(2027, 11, 7), time(1, 30)),
        ("Europe/London", time(1, 30), date(2027, 3, 28), time(2, 30)),
        ("Europe/London", time(1, 30), date(2027, 10, 31), time(1, 30)),
        # Lord Howe shifts by 30 minutes: 02:00 -> 02:30 in October, 02:00 -> 01:30 in April
        ("Australia/Lord_Howe", time(2, 15), date(2026, 10, 4), time(2, 45)),
        ("Australia/Lord_Howe", time(1, 45), date(2027, 4, 4), time(1, 45)),
        ("Australia/Lord_Howe", time(8, 0), date(2027, 4, 4), time(8, 0)),
    ],
)
def test_exactly_one_report_per_day_across_dst(
    zone: str, clock: time, transition_day: date, expected_local: time
) -> None:
    tz = ZoneInfo(zone)
    settings = _settings(zone, clock)
    first = transition_day - timedelta(days=1)
    start = datetime.combine(first, time(0), tzinfo=tz).timestamp()
    sends = _simulate(settings, start, start + 4 * 86400)
    nights = [night for night, _, _ in sends]
    assert nights == [(first + timedelta(days=n)).isoformat() for n in range(4)]
    for night, at, late in sends:
        assert not late
        scheduled = scheduled_at(date.fromisoformat(night), clock, tz).timestamp()
        assert scheduled <= at < scheduled + 60
    on_the_day = next(at for night, at, _ in sends if night == transition_day.isoformat())
    local = datetime.fromtimestamp(on_the_day, tz)
    assert (local.date(), local.time().replace(second=0)) == (transition_day, expected_local)
    if expected_local == clock:
        # on a fall-back day this wall time happens twice: the report goes at the first (fold=0)
        assert on_the_day == datetime.combine(transition_day, clock, tzinfo=tz).timestamp()


def test_fall_back_second_pass_does_not_post_again() -> None:
    settings = _settings("America/New_York", time(1, 30))
    first = _at(NEW_YORK, 2027, 11, 7, 1, 30)  # EDT
    second = first + 3600  # the same wall time again, EST
    assert datetime.fromtimestamp(second, NEW_YORK).strftime("%H:%M") == "01:30"
    assert [d.night for d in due_reports(first, settings, NOON)] == ["2027-11-07"]
    # the scheduler drops nights already sent; the second 01:30 has the same key
    assert [d.night for d in due_reports(second, settings, NOON)] == ["2027-11-07"]


def test_catch_up_is_late_and_stops_at_the_cut_off() -> None:
    settings = _settings("Europe/London", time(8))
    assert due_reports(_at(LONDON, 2026, 11, 29, 7, 59), settings, NOON) == []
    on_time = due_reports(_at(LONDON, 2026, 11, 29, 8, 5), settings, NOON)
    assert [(d.night, d.late) for d in on_time] == [("2026-11-29", False)]
    late = due_reports(_at(LONDON, 2026, 11, 29, 10, 0), settings, NOON)
    assert [(d.night, d.late) for d in late] == [("2026-11-29", True)]
    assert due_reports(_at(LONDON, 2026, 11, 29, 11, 59), settings, NOON)[0].late
    assert due_reports(_at(LONDON, 2026, 11, 29, 12, 0), settings, NOON) == []
    assert due_reports(_at(LONDON, 2026, 11, 29, 10, 0), settings, time(9)) == []
    # a summary time after the cut-off keeps its on-time window, nothing more
    afternoon = _settings("Europe/London", time(13))
    assert [d.late for d in due_reports(_at(LONDON, 2026, 11, 29, 13, 10), afternoon, NOON)] == [
        False
    ]
    assert due_reports(_at(LONDON, 2026, 11, 29, 13, 20), afternoon, NOON) == []


def test_downtime_over_the_summary_time_posts_late_once() -> None:
    settings = _settings("America/New_York", time(7))
    start = _at(NEW_YORK, 2026, 11, 28, 0, 0)
    down = (_at(NEW_YORK, 2026, 11, 29, 6, 0), _at(NEW_YORK, 2026, 11, 29, 9, 42))
    sends = _simulate(settings, start, start + 3 * 86400, down=down)
    assert [(n, late) for n, _, late in sends] == [
        ("2026-11-28", False),
        ("2026-11-29", True),
        ("2026-11-30", False),
    ]
    assert sends[1][1] == down[1]
    # down past the cut-off: that morning is missed, the next comes as usual
    down = (_at(NEW_YORK, 2026, 11, 29, 6, 0), _at(NEW_YORK, 2026, 11, 29, 12, 0))
    sends = _simulate(settings, start, start + 3 * 86400, down=down)
    assert [n for n, _, _ in sends] == ["2026-11-28", "2026-11-30"]


def test_a_late_evening_report_survives_midnight() -> None:
    settings = _settings("Europe/London", time(23, 55))
    just_after_midnight = _at(LONDON, 2026, 11, 30, 0, 5)
    due = due_reports(just_after_midnight, settings, NOON)
    assert [(d.night, d.late) for d in due] == [("2026-11-29", False)]


def test_disabled_chat_is_never_due() -> None:
    settings = _settings("Europe/London", time(8), enabled=False)
    start = _at(LONDON, 2026, 11, 28, 0, 0)
    assert _simulate(settings, start, start + 2 * 86400, step=600) == []


def test_retry_delays_double_up_to_the_cap() -> None:
    delays = list(itertools.islice(retry_delays(RetryPolicy(jitter=0)), 8))
    assert delays == [30, 60, 120, 240, 480, 600, 600, 600]


def test_retry_delays_are_jittered_into_the_top_of_each_step() -> None:
    import random

    steps = [30, 60, 120, 240, 480, 600, 600, 600]
    delays = list(itertools.islice(retry_delays(RetryPolicy(), random.Random(3)), 8))
    assert all(0.8 * step <= delay <= step for delay, step in zip(delays, steps, strict=True))
    assert len({delay / step for delay, step in zip(delays, steps, strict=True)}) > 1


# --- the scheduler on a real database -------------------------------------------------------------


Tasks = list[asyncio.Task] | Callable[[], list[asyncio.Task]]


class VirtualClock:
    """Time stands still until the test advances it; ``sleep`` wakes when virtual time reaches it."""

    def __init__(self, now: float) -> None:
        self.now = now
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def __call__(self) -> float:
        return self.now

    @property
    def sleeping(self) -> int:
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), next(self._seq), future))
        await future

    async def settle(self, tasks: Tasks) -> None:
        """Wait (really) until every task is finished or asleep on this clock."""
        for _ in range(20000):
            pending = [t for t in (tasks() if callable(tasks) else tasks) if not t.done()]
            if len(pending) <= self.sleeping:
                return
            await asyncio.sleep(0.001)
        raise AssertionError("tasks neither finished nor slept")

    async def advance_to(self, target: float, tasks: Tasks) -> None:
        await self.settle(tasks)
        while self._sleepers and self._sleepers[0][0] <= target:
            wake, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, wake)
            if not future.done():
                future.set_result(None)
            await self.settle(tasks)
        self.now = max(self.now, target)
        await self.settle(tasks)


class Platform:
    """A chat platform's send: records deliveries, or fails as told."""

    def __init__(self, clock: VirtualClock, failures: list[Exception] | None = None) -> None:
        self.clock = clock
        self.failures = list(failures or [])
        self.always_fail: Exception | None = None
        self.attempts: list[float] = []
        self.sent: list[tuple[str, str, float]] = []

    async def __call__(self, chat: Chat, reply: Reply) -> None:
        self.attempts.append(self.clock.now)
        if self.always_fail is not None:
            raise self.always_fail
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((chat.label, reply.text, self.clock.now))


async def _compose(chat: Chat, settings: ChatSettings, due: Due) -> Reply:
    return Reply(f"report {due.night} late={due.late}")


def _config(tmp_path: Path, **summary: object) -> config_module.Config:
    return config_module.parse(
        {
            "bot": {"database": str(tmp_path / "test.db"), "timezone": "Europe/London"},
            "summary": {"time": "08:00", **summary},
            "hamsters": [{"name": "Ursula", "wheel_diameter_cm": 20}],
        }
    )


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[BotCore]:
    db = await Database.open(tmp_path / "test.db")
    try:
        yield await BotCore.create(db, _config(tmp_path))
    finally:
        await db.close()


def _scheduler(
    core: BotCore, clock: VirtualClock, senders: dict, **kwargs: object
) -> SummaryScheduler:
    return SummaryScheduler(
        core,
        senders,
        compose=_compose,
        clock=clock,
        sleep=clock.sleep,
        policy=RetryPolicy(jitter=0),
        **kwargs,  # type: ignore[arg-type]
    )


async def _tick(scheduler: SummaryScheduler, clock: VirtualClock) -> list[asyncio.Task]:
    started = await scheduler.tick()
    await clock.settle(started)
    return started


async def _nights(db: Database) -> list[tuple[int, str, int]]:
    return [
        tuple(r)
        for r in await db.fetchall("SELECT chat_id, night, late FROM summary_log WHERE part = -1")
    ]  # type: ignore[misc]


LONDON_8AM = _at(LONDON, 2026, 11, 30, 8, 0)


async def test_every_chat_gets_one_report_and_platforms_without_sender_are_skipped(
    core: BotCore,
) -> None:
    clock = VirtualClock(LONDON_8AM - 600)
    tg, dc = Platform(clock), Platform(clock)
    db = core.db
    group = await chat_store.ensure_chat(
        db, "telegram", "-100", clock.now
    )  # never ran, no settings
    server = await chat_store.ensure_chat(db, "discord", "42", clock.now)
    await chat_store.ensure_chat(db, "console", "console", clock.now)
    scheduler = _scheduler(core, clock, {"telegram": tg, "discord": dc})

    assert await _tick(scheduler, clock) == []
    clock.now = LONDON_8AM
    assert len(await _tick(scheduler, clock)) == 2
    assert tg.sent == [("telegram:-100", "report 2026-11-30 late=False", LONDON_8AM)]
    assert dc.sent == [("discord:42", "report 2026-11-30 late=False", LONDON_8AM)]
    assert sorted(await _nights(db)) == [(group.id, "2026-11-30", 0), (server.id, "2026-11-30", 0)]

    for minutes in (1, 30, 60, 300):
        clock.now = LONDON_8AM + minutes * 60
        assert await _tick(scheduler, clock) == []
    # a restarted process finds the log and stays quiet too
    again = _scheduler(core, clock, {"telegram": tg, "discord": dc})
    assert await _tick(again, clock) == []
    assert len(tg.sent) == len(dc.sent) == 1

    clock.now = LONDON_8AM + 86400
    await _tick(scheduler, clock)
    assert [text for _, text, _ in tg.sent] == [
        "report 2026-11-30 late=False",
        "report 2026-12-01 late=False",
    ]


async def test_settings_changes_take_effect_the_same_day(core: BotCore) -> None:
    db = core.db
    clock = VirtualClock(_at(LONDON, 2026, 11, 30, 6, 0))
    tg = Platform(clock)
    early = await chat_store.ensure_chat(db, "telegram", "early", clock.now)
    moved = await chat_store.ensure_chat(db, "telegram", "moved", clock.now)
    off = await chat_store.ensure_chat(db, "telegram", "off", clock.now)
    abroad = await chat_store.ensure_chat(db, "telegram", "abroad", clock.now)
    scheduler = _scheduler(core, clock, {"telegram": tg})

    # 06:00: one chat wants 07:00, one switches off, one moves to New York time
    await chat_store.update_chat(db, early.id, summary_time="07:00")
    await chat_store.update_chat(db, off.id, summary_enabled=0)
    await chat_store.update_chat(db, abroad.id, timezone="America/New_York")
    clock.now = _at(LONDON, 2026, 11, 30, 7, 0)
    await _tick(scheduler, clock)
    assert [label for label, _, _ in tg.sent] == ["telegram:early"]

    clock.now = LONDON_8AM
    await _tick(scheduler, clock)
    assert [label for label, _, _ in tg.sent] == ["telegram:early", "telegram:moved"]

    # after its report, moving the time later does not give a second one today
    await chat_store.update_chat(db, moved.id, summary_time="09:00")
    await chat_store.update_chat(db, early.id, summary_time="09:00")
    clock.now = _at(LONDON, 2026, 11, 30, 9, 0)
    await _tick(scheduler, clock)
    assert len(tg.sent) == 2

    clock.now = _at(NEW_YORK, 2026, 11, 30, 8, 0)
    await _tick(scheduler, clock)
    assert [label for label, _, _ in tg.sent][-1] == "telegram:abroad"
    assert len(tg.sent) == 3
    assert off.id not in {chat_id for chat_id, _, _ in await _nights(db)}

    # tomorrow the moved chats come at 09:00, not 08:00
    clock.now = _at(LONDON, 2026, 12, 1, 8, 30)
    await _tick(scheduler, clock)
    assert len(tg.sent) == 3
    clock.now = _at(LONDON, 2026, 12, 1, 9, 0)
    await _tick(scheduler, clock)
    assert sorted(label for label, _, _ in tg.sent[3:]) == ["telegram:early", "telegram:moved"]


async def test_catch_up_on_start_is_marked_late_until_the_cut_off(core: BotCore) -> None:
    db = core.db
    clock = VirtualClock(_at(LONDON, 2026, 11, 30, 10, 30))
    tg = Platform(clock)
    chat = await chat_store.ensure_chat(db, "telegram", "-1", clock.now)
    await _tick(_scheduler(core, clock, {"telegram": tg}), clock)
    assert [text for _, text, _ in tg.sent] == ["report 2026-11-30 late=True"]
    assert await _nights(db) == [(chat.id, "2026-11-30", 1)]

    # started after the cut-off: that morning is gone, the next one comes on time
    clock.now = _at(LONDON, 2026, 12, 1, 12, 0)
    await _tick(_scheduler(core, clock, {"telegram": tg}), clock)
    assert len(tg.sent) == 1
    clock.now = _at(LONDON, 2026, 12, 2, 8, 0)
    await _tick(_scheduler(core, clock, {"telegram": tg}), clock)
    assert [text for _, text, _ in tg.sent][-1] == "report 2026-12-02 late=False"


async def test_a_failing_chat_retries_for_an_hour_without_delaying_the_others(
    core: BotCore,
) -> None:
    db = core.db
    clock = VirtualClock(LONDON_8AM)
    tg, dc = Platform(clock), Platform(clock)
    tg.always_fail = ConnectionError("network is unreachable")
    broken = await chat_store.ensure_chat(db, "telegram", "-1", clock.now)
    fine = await chat_store.ensure_chat(db, "discord", "2", clock.now)
    scheduler = _scheduler(core, clock, {"telegram": tg, "discord": dc})

    started = await _tick(scheduler, clock)
    assert dc.sent == [("discord:2", "report 2026-11-30 late=False", LONDON_8AM)]
    assert await _nights(db) == [(fine.id, "2026-11-30", 0)]
    assert tg.attempts == [LONDON_8AM]

    await clock.advance_to(LONDON_8AM + 2 * 3600, started)
    offsets = [round(at - LONDON_8AM) for at in tg.attempts]
    assert offsets == [0, 30, 90, 210, 450, 930, 1530, 2130, 2730, 3330]
    assert all(task.done() for task in started)
    assert broken.id not in {chat_id for chat_id, _, _ in await _nights(db)}
    # given up: this process does not start over on the next tick
    assert await _tick(scheduler, clock) == []

    # a restart before the cut-off tries again, late, and the network is back
    tg.always_fail = None
    await _tick(_scheduler(core, clock, {"telegram": tg}), clock)
    assert tg.sent == [("telegram:-1", "report 2026-11-30 late=True", LONDON_8AM + 7200)]


async def test_rate_limits_and_permanent_failures(core: BotCore) -> None:
    db = core.db
    clock = VirtualClock(LONDON_8AM)
    tg = Platform(clock, failures=[DeliveryError("429", retry_after=200), TimeoutError()])
    dc = Platform(clock)
    dc.always_fail = DeliveryError("403 the bot was removed", permanent=True)
    await chat_store.ensure_chat(db, "telegram", "-1", clock.now)
    await chat_store.ensure_chat(db, "discord", "2", clock.now)
    scheduler = _scheduler(core, clock, {"telegram": tg, "discord": dc})
    started = await _tick(scheduler, clock)
    await clock.advance_to(LONDON_8AM + 3600, started)
    # waits the server's 200 s, then the normal backoff (60 s after the second failure)
    assert [round(at - LONDON_8AM) for at in tg.attempts] == [0, 200, 260]
    assert [at for _, _, at in tg.sent] == [LONDON_8AM + 260]
    assert dc.attempts == [LONDON_8AM]
    assert len(await _nights(db)) == 1


async def test_a_failing_composer_is_retried_like_a_send(core: BotCore) -> None:
    clock = VirtualClock(LONDON_8AM)
    tg = Platform(clock)
    await chat_store.ensure_chat(core.db, "telegram", "-1", clock.now)
    calls = []

    async def flaky(chat: Chat, settings: ChatSettings, due: Due) -> Reply:
        calls.append(clock.now)
        if len(calls) == 1:
            raise RuntimeError("chart exploded")
        return Reply("ok")

    scheduler = SummaryScheduler(
        core,
        {"telegram": tg},
        compose=flaky,
        clock=clock,
        sleep=clock.sleep,
        policy=RetryPolicy(jitter=0),
    )
    started = await _tick(scheduler, clock)
    await clock.advance_to(LONDON_8AM + 600, started)
    assert [at for _, _, at in tg.sent] == [LONDON_8AM + 30]


class Crash(BaseException):
    """The process dying: not an Exception, so nothing inside catches it."""


async def test_crash_between_sending_and_recording_gives_at_most_one_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    clock = VirtualClock(LONDON_8AM)
    tg = Platform(clock)
    db = await Database.open(tmp_path / "test.db")
    try:
        core = await BotCore.create(db, config)
        await chat_store.ensure_chat(db, "telegram", "-1", clock.now)

        async def crash(*args: object, **kwargs: object) -> bool:
            raise Crash

        with monkeypatch.context() as patched:
            # The crash comes between the platform's answer and the commit of that part.
            patched.setattr(scheduler_module.chat_store, "record_summary_part", crash)
            started = await _tick(_scheduler(core, clock, {"telegram": tg}), clock)
            assert isinstance(started[0].exception(), Crash)
        assert len(tg.sent) == 1
        assert await _nights(db) == []
    finally:
        await db.close()

    # the restarted process, a few minutes later
    clock.now = LONDON_8AM + 300
    db = await Database.open(tmp_path / "test.db")
    try:
        core = await BotCore.create(db, config)
        scheduler = _scheduler(core, clock, {"telegram": tg})
        await _tick(scheduler, clock)
        assert len(tg.sent) == 2  # the one duplicate
        for minutes in (6, 20, 120):
            clock.now = LONDON_8AM + minutes * 60
            await _tick(_scheduler(core, clock, {"telegram": tg}), clock)
        assert len(tg.sent) == 2
        assert [night for _, night, _ in await _nights(db)] == ["2026-11-30"]
    finally:
        await db.close()


async def test_a_crash_after_recording_sends_nothing_more(core: BotCore) -> None:
    clock = VirtualClock(LONDON_8AM)
    tg = Platform(clock)
    await chat_store.ensure_chat(core.db, "telegram", "-1", clock.now)
    await _tick(_scheduler(core, clock, {"telegram": tg}), clock)
    clock.now += 60
    await _tick(_scheduler(core, clock, {"telegram": tg}), clock)
    assert len(tg.sent) == 1


async def test_the_run_loop_ticks_on_the_injected_clock(core: BotCore) -> None:
    clock = VirtualClock(LONDON_8AM - 95)
    tg = Platform(clock)
    await chat_store.ensure_chat(core.db, "telegram", "-1", clock.now)
    scheduler = _scheduler(core, clock, {"telegram": tg})
    loop_task = asyncio.create_task(scheduler.run())

    def tasks() -> list[asyncio.Task]:
        return [loop_task, *scheduler.in_flight]

    try:
        await clock.advance_to(LONDON_8AM - 1, tasks)
        assert tg.sent == []
        await clock.advance_to(LONDON_8AM + 3 * 3600, tasks)
        assert [round(at - LONDON_8AM) for _, _, at in tg.sent] == [25]
    finally:
        loop_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop_task


async def test_close_cancels_deliveries_in_flight_and_leaves_them_unrecorded(
    core: BotCore,
) -> None:
    clock = VirtualClock(LONDON_8AM)
    tg = Platform(clock)
    tg.always_fail = ConnectionError("down")
    await chat_store.ensure_chat(core.db, "telegram", "-1", clock.now)
    scheduler = _scheduler(core, clock, {"telegram": tg})
    started = await _tick(scheduler, clock)
    assert scheduler.in_flight == started
    await scheduler.close()
    assert started[0].cancelled()
    assert await _nights(core.db) == []


def test_scheduled_at_is_a_real_instant() -> None:
    gap = scheduled_at(date(2027, 3, 14), time(2, 30), NEW_YORK)
    assert gap.astimezone(UTC) == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)
    assert gap.strftime("%H:%M %Z") == "03:30 EDT"


class RetryAfter(Exception):
    """Shaped like telegram.error.RetryAfter, whose retry_after may be a timedelta."""

    def __init__(self, seconds: timedelta) -> None:
        super().__init__("Flood control exceeded")
        self.retry_after = seconds


class Forbidden(Exception):
    """Shaped like telegram.error.Forbidden / discord.Forbidden: the bot was removed."""


class ChatGone(Forbidden):
    pass


async def test_chat_library_errors_are_understood_by_shape(core: BotCore) -> None:
    clock = VirtualClock(LONDON_8AM)
    tg = Platform(clock, failures=[RetryAfter(timedelta(minutes=5))])
    dc = Platform(clock)
    dc.always_fail = ChatGone("Forbidden: bot was kicked from the group chat")
    await chat_store.ensure_chat(core.db, "telegram", "-1", clock.now)
    await chat_store.ensure_chat(core.db, "discord", "2", clock.now)
    scheduler = _scheduler(core, clock, {"telegram": tg, "discord": dc})
    started = await _tick(scheduler, clock)
    await clock.advance_to(LONDON_8AM + 3600, started)
    assert [round(at - LONDON_8AM) for at in tg.attempts] == [0, 300]
    assert len(tg.sent) == 1
    assert dc.attempts == [LONDON_8AM]


async def test_run_posts_through_the_platform_senders(tmp_path: Path) -> None:
    from bot import app

    config = _config(tmp_path)
    now = datetime.now(UTC)
    async with await Database.open(config.bot.database) as db:
        chat = await chat_store.ensure_chat(db, "telegram", "-1", now.timestamp())
        await chat_store.ensure_chat(db, "console", "console", now.timestamp())
        # due a minute ago, whatever the time of day the test runs
        clock = (now - timedelta(minutes=1)).strftime("%H:%M")
        await chat_store.update_chat(db, chat.id, timezone="UTC", summary_time=clock)
    delivered = asyncio.Event()
    sent: list[tuple[str, Reply]] = []

    async def send(chat: Chat, reply: Reply) -> None:
        sent.append((chat.label, reply))
        delivered.set()

    stop = asyncio.Event()
    running = asyncio.create_task(app.run(config, stop=stop, senders={"telegram": send}))
    try:
        await asyncio.wait_for(delivered.wait(), 30)
    finally:
        stop.set()
        await running
    assert [label for label, _ in sent] == ["telegram:-1"]
    assert sent[0][1].text.startswith("🌅 Good morning!")
    async with await Database.open(config.bot.database) as db:
        assert len(await _nights(db)) == 1


async def test_a_chat_that_joins_after_the_report_time_starts_tomorrow(core: BotCore) -> None:
    db = core.db
    clock = VirtualClock(LONDON_8AM - 3600)
    tg = Platform(clock)
    await chat_store.ensure_chat(db, "telegram", "old", clock.now)
    scheduler = _scheduler(core, clock, {"telegram": tg})
    await _tick(scheduler, clock)
    clock.now = LONDON_8AM
    await _tick(scheduler, clock)
    clock.now = LONDON_8AM + 3600  # 09:00: a new group says hello
    await chat_store.ensure_chat(db, "telegram", "new", clock.now)
    assert await _tick(scheduler, clock) == []
    clock.now = LONDON_8AM + 86400
    await _tick(scheduler, clock)
    assert tg.sent[0][:2] == ("telegram:old", "report 2026-11-30 late=False")
    assert sorted((label, text) for label, text, _ in tg.sent[1:]) == [
        ("telegram:new", "report 2026-12-01 late=False"),
        ("telegram:old", "report 2026-12-01 late=False"),
    ]


async def test_a_chat_with_unusable_settings_does_not_stop_the_others(
    core: BotCore, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock(LONDON_8AM)
    tg = Platform(clock)
    broken = await chat_store.ensure_chat(core.db, "telegram", "broken", clock.now)
    await chat_store.ensure_chat(core.db, "telegram", "fine", clock.now)
    # a zone that a later tzdata no longer has
    await chat_store.update_chat(core.db, broken.id, timezone="Mars/Olympus_Mons")
    scheduler = _scheduler(core, clock, {"telegram": tg})
    await _tick(scheduler, clock)
    clock.now += 30
    await _tick(scheduler, clock)
    assert [label for label, _, _ in tg.sent] == ["telegram:fine"]
    assert caplog.text.count("telegram:broken: its settings are unusable") == 1
