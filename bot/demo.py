"""``hamsterbot demo``: a week of the simulated hamster's history, then tonight live at demo speed.

The demo works whatever the wall-clock time. Its "tonight" is the most recent night that is over on the wall
clock (so nothing is written in the future), started at ``LIVE_FROM`` local; the nights before it are already in
the demo's own database when the chat opens, fed through the same counting pipeline as a real sensor's
notifications. A demo database used again continues where it stopped: its tonight is then the night after the
last stored reading, and the demo clock may run ahead of the wall clock (it is the chat's clock too, so every
answer stays consistent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.wheels import WheelPipeline
from sensors.simulated import (
    NIGHT_CLOSES,
    NIGHT_OPENS,
    night_window,
    notifications,
    plan_night,
)

DEMO_DATABASE = "hamsterbot-demo.db"
#: The live clock starts this long after the night's first run began: that run is over (a run lasts
#: at most 10 minutes), so "tonight so far" already has a value, and the rest of the night is to come.
LIVE_AFTER_FIRST_RUN_S = 600.0
HISTORY_NIGHTS = 8  # one more than the 7-night average needs


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """When the demo's history ends and its live night starts (epoch s), and how fast it runs."""

    night: date  # the evening's local date of the live night
    history_from: float  # feed the simulated sensor's notifications from here ...
    live_from: float  # ... to here at once; from here on in simulated real time
    # The demo clock runs at the demo speed until here, then at wall pace; None: until it meets
    # the wall clock (the live night is over by then, and nothing is ever written in the future).
    fast_until: float | None


def plan_demo(
    wall_now: float,
    tz: ZoneInfo,
    *,
    seed: int,
    circumference_m: float,
    last_reading_at: float | None,
    history_nights: int = HISTORY_NIGHTS,
    lead_hours: float | None = None,
) -> DemoPlan:
    """The demo's timeline (pure).

    Without a stored reading: the latest night whose window closed before ``wall_now``, live from just
    after its first run (``LIVE_AFTER_FIRST_RUN_S``), with ``history_nights`` nights before it. With one: history resumes after it, and the live
    night is never earlier than the night after it. ``lead_hours`` starts the live clock that many hours
    before ``wall_now`` instead (the old behaviour, for anyone who wants to watch a particular hour).
    """
    if lead_hours is not None:
        live_from = wall_now - lead_hours * 3600
        night = _evening_of(live_from, tz)
    else:
        local_now = datetime.fromtimestamp(wall_now, tz)
        night = local_now.date() - timedelta(days=1)
        if night_window(night, tz)[1] > wall_now:
            night -= timedelta(days=1)  # last night is not over yet: the one before it
        live_from = _live_from(night, seed, tz, circumference_m)
    if last_reading_at is not None and last_reading_at >= live_from:
        # This demo database has been here already: tonight is the next night after it.
        night = _evening_of(last_reading_at, tz) + timedelta(days=1)
        live_from = _live_from(night, seed, tz, circumference_m)
    earliest = datetime.combine(night - timedelta(days=history_nights), NIGHT_OPENS, tz)
    history_from = earliest.timestamp()
    if last_reading_at is not None:
        history_from = max(history_from, last_reading_at)
    morning = datetime.combine(night + timedelta(days=1), NIGHT_CLOSES, tz).timestamp()
    return DemoPlan(night, history_from, live_from, morning if morning > wall_now else None)


def _live_from(night: date, seed: int, tz: ZoneInfo, circumference_m: float) -> float:
    first_run = plan_night(seed, night, tz, circumference_m)[0]
    return first_run.start + LIVE_AFTER_FIRST_RUN_S


def _evening_of(at: float, tz: ZoneInfo) -> date:
    """The evening's date of the night ``at`` belongs to (before noon: the previous evening)."""
    local = datetime.fromtimestamp(at, tz)
    return local.date() - timedelta(days=1) if local.time() < time(12, 0) else local.date()


def history_windows(plan: DemoPlan, tz: ZoneInfo) -> list[tuple[float, float]]:
    """The stretches of history to feed: each night's active window, cut to the plan.

    A real sensor falls asleep when the wheel stands still for long, so the days between nights carry
    no notifications; the counter is unchanged across them and credits nothing.
    """
    windows: list[tuple[float, float]] = []
    night = _evening_of(plan.history_from, tz) - timedelta(days=1)
    while True:
        opens, closes = night_window(night, tz)
        start, end = max(opens, plan.history_from), min(closes, plan.live_from)
        if opens >= plan.live_from:
            return windows
        if start < end:
            windows.append((start, end))
        night += timedelta(days=1)


async def fill_history(pipeline: WheelPipeline, seed: int, plan: DemoPlan, tz: ZoneInfo) -> int:
    """Feed the simulated sensor's notifications of the plan's history through ``pipeline``.

    Returns how many notifications were fed. Flushed night by night, as the live process would.
    """
    fed = 0
    after = pipeline.counter.state.last_at
    circumference = pipeline.hamster.circumference_m
    for start, end in history_windows(plan, tz):
        raw = pipeline.counter.state.last_raw
        for at, payload in notifications(seed, start, end, tz, circumference, raw):
            if after is not None and at <= after:
                continue  # stored already (the window that holds the last reading)
            pipeline.feed(payload, at)
            fed += 1
        await pipeline.flush()
    return fed
