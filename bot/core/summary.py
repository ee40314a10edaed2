"""The morning report: last night's hamster run, how the people compare, and how far to trust the numbers.

``gather_report`` reads the store (I/O), ``render_report`` turns the values into the chat message (pure), and
``compose_report`` does both and adds the hourly chart when charts render. "Last night" is the 24 hours ending
at the chat's summary time on the morning's local date, the same window ``/hamster`` calls last night.

Data quality is said plainly: a night without a single reading and no sign that the sensor was connected is
"no data", never "0 miles"; offline stretches come from the link's ``disconnected``/``connected`` events; a
distance credited across a gap in readings is estimated; a sensor battery under 20 % is flagged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.core import parsing, reads
from bot.core.model import (
    ChatSettings,
    HamsterNight,
    Night,
    NightReport,
    Scope,
    SensorHealth,
    Standings,
    night_average,
)
from bot.core.parsing import Units, format_distance, format_speed
from bot.core.periods import latest_morning  # noqa: F401  (re-exported)
from bot.core.race import clean_name, render_standings
from bot.core.registry import Reply, fit_text
from bot.core.stats import night_stats
from storage import queries
from storage.chats import Chat
from storage.db import Query, Rows
from storage.queries import PersonTotal
from storage.wheel import SensorEvent

if TYPE_CHECKING:
    from bot.core.commands import BotCore
    from bot.core.reads import Hamster

log = logging.getLogger(__name__)

LOW_BATTERY = 20  # per cent
AVERAGE_NIGHTS = reads.AVERAGE_NIGHTS
# How far back to look for the link's state at the start of the night and the last battery reading.
LOOKBACK = timedelta(days=30)
LINK_KINDS = ("connected", "disconnected")
MAX_OFFLINE_SHOWN = 3


Report = NightReport  # the morning report's values (bot.core.model)


def report_night(day: date, summary_time: time, tz: ZoneInfo) -> Night:
    """The 24 hours ending at ``summary_time`` on local ``day`` (DST: a skipped time is when the clock lands)."""
    start, end = parsing.night_bounds(day, summary_time, tz)
    return Night(day, start, end)


# --- pure pieces -----------------------------------------------------------------------------------


def sensor_health(
    link_before: str | None,
    events: Sequence[SensorEvent],
    battery: float | None,
    start: float,
    end: float,
) -> SensorHealth:
    """Offline stretches in ``[start, end)`` from the link state before it and the link events inside it."""
    state = link_before
    online = state == "connected"
    offline: list[tuple[float, float]] = []
    down_since = start if state == "disconnected" else None
    for event in events:
        if not start <= event.at < end or event.kind not in LINK_KINDS:
            continue
        if event.kind == "disconnected" and down_since is None:
            down_since = event.at
        elif event.kind == "connected":
            online = True
            if down_since is not None:
                if event.at > down_since:
                    offline.append((down_since, event.at))
                down_since = None
        state = event.kind
    still = down_since is not None
    if still and end > down_since:  # type: ignore[operator]
        offline.append((down_since, end))  # type: ignore[arg-type]
    # No link event at all (a replayed capture, a wheel without a live sensor): we cannot tell.
    known = None if link_before is None and state is None else online
    return SensorHealth(
        tuple(offline),
        still,
        known,
        None if battery is None else round(battery),
    )


@dataclass(frozen=True, slots=True)
class _Reference:
    metres: float
    whole: str  # "{n} laps of ..." for a ratio of 1 or more
    part: str  # "{pct}% of ..." below 1


_REFERENCES = (
    _Reference(400.0, "{n} laps of a running track", "{pct}% of a lap of a running track"),
    _Reference(
        2737.0,
        "{n} crossings of the Golden Gate Bridge",
        "{pct}% of the way across the Golden Gate Bridge",
    ),
    _Reference(5000.0, "{n} × a 5K", "{pct}% of a 5K"),
    _Reference(9817.0, "{n} laps of Central Park's loop", "{pct}% of a lap of Central Park's loop"),
    _Reference(21097.5, "{n} half marathons", "{pct}% of a half marathon"),
    _Reference(42195.0, "{n} marathons", "{pct}% of a marathon"),
)


def fun_comparison(metres: float) -> str | None:
    """``that's 76% of the way across the Golden Gate Bridge``: the landmark nearest the distance."""
    if not math.isfinite(metres) or metres < 1:
        return None
    best = min(_REFERENCES, key=lambda r: (abs(math.log(metres / r.metres)), r.metres))
    ratio = metres / best.metres
    if ratio >= 0.995:
        return "that's " + best.whole.format(n=f"{ratio:.1f}")
    return "that's " + best.part.format(pct=max(1, round(ratio * 100)))


def format_minutes(seconds: float) -> str:
    """``1 h 12 min``, ``14 min``, ``under a minute``."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def _clock(epoch: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch, tz).strftime("%H:%M")


def _hour_span(hour: int) -> str:
    return f"{hour:02d}:00–{(hour + 1) % 24:02d}:00"


def _compare(
    metres: float, previous: float | None, average: float | None, units: Units
) -> str | None:
    parts = []
    if previous:
        delta = metres - previous
        if abs(delta) < 0.005 * previous:
            parts.append("the same as the night before")
        else:
            more = "more" if delta > 0 else "less"
            parts.append(f"{format_distance(abs(delta), units)} {more} than the night before")
    if average:
        percent = round((metres / average - 1) * 100)
        if percent == 0:
            parts.append(f"right on the {AVERAGE_NIGHTS}-night average")
        else:
            way = "above" if percent > 0 else "below"
            parts.append(
                f"{abs(percent)}% {way} the {AVERAGE_NIGHTS}-night average "
                f"({format_distance(average, units)})"
            )
    if not parts:
        return None
    arrow = "📈" if previous is None or metres >= previous else "📉"
    text = "; ".join(parts)
    return f"{arrow} {text[0].upper()}{text[1:]}"


def _health_lines(hamster: HamsterNight, tz: ZoneInfo) -> list[str]:
    health = hamster.health
    stats = hamster.stats
    lines = []
    if health.offline:
        shown = [f"{_clock(a, tz)}–{_clock(b, tz)}" for a, b in health.offline[:MAX_OFFLINE_SHOWN]]
        extra = len(health.offline) - MAX_OFFLINE_SHOWN
        text = (
            "📡 Sensor offline "
            + ", ".join(shown)
            + (f" and {extra} more times" if extra > 0 else "")
        )
        if health.still_offline:
            text += "; it's still offline, so anything run since then is not counted yet"
        elif stats.estimated_revolutions:
            text += "; that distance is estimated"
        lines.append(text + ".")
    elif stats.estimated_revolutions:
        lines.append("📡 Part of that was credited across a gap in readings, so it's estimated.")
    if health.battery is not None and health.battery < LOW_BATTERY:
        lines.append(f"🔋 Sensor battery low ({health.battery}%): time for a new one.")
    return lines


def _hamster_block(hamster: HamsterNight, units: Units, tz: ZoneInfo) -> str:
    name = clean_name(hamster.name)
    stats = hamster.stats
    health = hamster.health
    if stats.revolutions == 0:
        # Zero is only a number when the sensor was listening; otherwise it is "no data".
        if health.online and not health.offline:
            first = f"🐹 {name} rested: not a single turn of the wheel last night 😴"
        elif health.online:
            first = f"🐹 {name}: no turns of the wheel while the sensor was online."
        elif health.offline_all_night:
            first = f"🐹 {name}: no data, the wheel sensor was offline all night."
            return "\n".join([first, *_health_lines(hamster, tz)[1:]])
        else:
            first = f"🐹 {name}: no data from the wheel sensor last night."
        return "\n".join([first, *_health_lines(hamster, tz)])
    lines = [f"🐹 {name} ran {format_distance(stats.distance_m, units)}"]
    if stats.active_minutes:
        runs = "run" if stats.sessions == 1 else "runs"
        text = (
            f"⏱️ {format_minutes(stats.active_minutes * 60)} on the wheel in {stats.sessions} {runs}"
        )
        if stats.sessions > 1:
            text += f", the longest {format_minutes(stats.longest_session_s)}"
        lines.append(text)
        fast = f"⚡ Top speed {format_speed(stats.top_speed_mps, units)} (best full minute)"
        if stats.most_active_hour is not None:
            fast += f", busiest hour {_hour_span(stats.most_active_hour)}"
        lines.append(fast)
    comparison = _compare(stats.distance_m, hamster.previous_m, hamster.average_m, units)
    if comparison:
        lines.append(comparison)
    fun = fun_comparison(stats.distance_m)
    if fun:
        lines.append(f"🎉 {fun[0].upper()}{fun[1:]}!")
    return "\n".join(lines + _health_lines(hamster, tz))


def _runners_line(runners: Sequence[PersonTotal], units: Units) -> str:
    if not runners:
        return "🏃 Nobody logged a run. Race the hamster tonight: /logrun 5 km"
    ordered = sorted(runners, key=lambda r: (-r.distance_m, r.display_name.casefold()))
    people = ", ".join(
        f"{clean_name(r.display_name)} {format_distance(r.distance_m, units)}" for r in ordered
    )
    return f"🏃 Runs logged: {people}"


def render_report(report: Report, tz: ZoneInfo) -> str:
    """The morning message, in the chat's units, short enough for a phone."""
    night = report.night
    header = (
        f"🌅 Good morning! Last night on the wheel "
        f"({night.start:%a %H:%M} – {night.end:%a %-d %b %H:%M})"
    )
    blocks = []
    if report.late:
        blocks.append(f"⏰ Running late today: this was due at {night.end:%H:%M}.\n{header}")
    else:
        blocks.append(header)
    blocks.extend(_hamster_block(h, report.units, tz) for h in report.hamsters)
    if report.runners is not None:
        people = _runners_line(report.runners, report.units)
        if report.race:
            people += "\n" + render_standings(report.race, report.units, nights=False)
        blocks.append(people)
    return fit_text("\n\n".join(blocks))


# --- I/O: gathering from the store -----------------------------------------------------------------


def _hamster_night_query(
    hamster: Hamster, night: Night, settings: ChatSettings
) -> Query[HamsterNight]:
    """The night's minutes, the nights before it and the link's events, as one live query."""
    start, end = night.start.timestamp(), night.end.timestamp()
    lookback = start - LOOKBACK.total_seconds()
    parts: tuple[Query[Any], ...] = (
        reads.live_minutes_query(hamster, start, end),
        # The nights before this one, on the same summary-time boundaries (23 or 25 h across DST).
        reads.night_metres_query(hamster, settings, night.day - timedelta(days=1), AVERAGE_NIGHTS),
        queries.events_between_query(hamster.wheel_id, lookback, end + 1, (*LINK_KINDS, "battery")),
    )
    sizes = [len(part.statements) for part in parts]

    def parse(rowsets: list[Rows]) -> HamsterNight:
        values = []
        for part, size in zip(parts, sizes, strict=True):
            values.append(part.parse(rowsets[:size]))
            rowsets = rowsets[size:]
        series, nightly, recent = values
        stats = night_stats(series, hamster.config.circumference_m, settings.tz)
        previous = nightly[-1] if nightly and nightly[-1] > 0 else None
        earlier = [e for e in recent if e.at < start and e.kind in LINK_KINDS]
        events = [e for e in recent if start <= e.at < end and e.kind in LINK_KINDS]
        batteries = [e for e in recent if e.kind == "battery"]
        battery = next((e.value for e in reversed(batteries) if e.value is not None), None)
        health = sensor_health(earlier[-1].kind if earlier else None, events, battery, start, end)
        return HamsterNight(hamster.name, stats, previous, night_average(nightly), health)

    return Query(tuple(s for part in parts for s in part.statements), parse)


def _race_period(night: Night) -> parsing.Period:
    # On a Monday morning the week has barely begun: show last week's final standings instead.
    key = "last week" if night.end.weekday() == 0 else "week"
    return parsing.parse_period(key, now=night.end)


async def gather_report(
    core: BotCore, chat: Chat | None, day: date, *, late: bool = False, scope: Scope | None = None
) -> tuple[NightReport, ChatSettings]:
    """Everything the report says about ``day``'s morning for ``chat`` (None: config defaults, no people).

    One trip to the database: every query is read together. Reads only: the night's last minutes may
    still be in the pipeline's buffer, and count all the same.
    """
    settings = reads.chat_settings(core.config, chat)
    night = report_night(day, settings.summary_time, settings.tz)
    hamsters = core.in_scope(scope or core.scope_for(chat))
    start, end = night.start.timestamp(), night.end.timestamp()
    asked: list[Query[Any]] = [_hamster_night_query(h, night, settings) for h in hamsters]
    period = _race_period(night)
    if chat is not None:
        asked.append(queries.person_totals_query(chat.id, start, end))
        asked.append(
            reads.standings_query(
                hamsters, chat, period, night.end, settings, with_average=False, until=end
            )
        )
    async with core.db.settled():
        values = await core.db.read(*asked, inline=True)
    nights = tuple(values[: len(hamsters)])
    runners = race = None
    label = ""
    if chat is not None:
        runners = tuple(values[len(hamsters)])
        board: Standings = values[len(hamsters) + 1]
        label = "last week, final" if period.key == "last-week" else "this week so far"
        if any(e.kind == "person" for e in board.entries):
            race = replace(board, period_label=label)
    report = NightReport(night, settings.units, nights, runners, race, label, late)
    return report, settings


async def compose_report(
    core: BotCore,
    chat: Chat | None,
    day: date,
    *,
    late: bool = False,
    chart: bool = True,
) -> Reply:
    """The morning report for ``chat`` on local ``day``, with the hourly chart when it renders."""
    report, settings = await gather_report(core, chat, day, late=late)
    text = render_report(report, settings.tz)
    image = None
    if chart:
        image = await _chart(report)
    return Reply(text, image_png=image, image_name=f"night-{report.night.key}.png")


async def _chart(report: Report) -> bytes | None:
    charted = next((h for h in report.hamsters if h.stats.revolutions > 0), None)
    if charted is None:
        return None
    from bot.core.charts import hourly_chart  # matplotlib only when a chart is drawn

    hours = [(b.label, b.distance_m) for b in charted.stats.hourly_m]
    title = f"{clean_name(charted.name)}'s night to {report.night.end:%a %-d %b %H:%M}"
    try:
        return await hourly_chart(hours, title=title, units=report.units)
    except Exception:  # a picture is a bonus: the text goes out without it
        log.exception("morning report: the hourly chart failed")
        return None
