"""Periods and nights in a chat's timezone: ``/race week``, "tonight", "last night", the morning's night.

Periods are half-open `[start, end)` aware datetimes in the chat's timezone, normalised so their wall times exist.
Compare or subtract them via `.timestamp()` (or after `.astimezone(UTC)`): Python compares two datetimes that
share a tzinfo by wall time alone, which is wrong across a DST change.

``local_instant`` is the one "local clock time on a day -> instant" rule (DST gaps skip ahead, repeated times
take the first); nights run from one summary time to the next (``night_bounds``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from bot.core.words import UserError, clean, quote, read_day

# --- periods ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    key: str
    label: str
    start: datetime
    end: datetime


PERIOD_HELP = (
    "Periods I know: today, yesterday, week, last week, month, last month, year, all, "
    "last 7 days (or 7d), last 30 days, since 2026-11-01, 2026-11-01..2026-11-15, tonight."
)
DEFAULT_SUMMARY_TIME = time(8, 0)
_EPOCH_DAY = date(1970, 1, 1)
_ROLLING = re.compile(r"^(?:(?:last|past) )?(?P<n>[0-9]{1,4}) ?(?:d|day|days)$")
_SINCE = re.compile(r"^since (?P<day>.+)$")
_RANGE = re.compile(r"^(?P<a>[^.]+?) ?\.\. ?(?P<b>[^.]+)$")
_PERIOD_EXAMPLE = "Try: week, last month, since 1 nov or 2026-11-01..2026-11-15"
_ALIASES = {
    "today": "today",
    "yesterday": "yesterday",
    "week": "week",
    "this week": "week",
    "last week": "last-week",
    "month": "month",
    "this month": "month",
    "last month": "last-month",
    "year": "year",
    "this year": "year",
    "last year": "last-year",
    "all": "all",
    "all time": "all",
    "tonight": "tonight",
    "last night": "tonight",
}


def local_instant(day: date, clock: time, tz: tzinfo | None) -> datetime:
    """`clock` on local `day`, as a real instant.

    fold=0 makes a wall time inside a DST gap resolve to the moment the gap ends, and a repeated wall time
    resolve to its first occurrence; both are the right "start" of a day. The UTC round trip normalises the
    wall time so the result prints as a time that actually happened.
    """
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC).astimezone(tz)


def _day_month(day: date) -> str:
    return f"{day.day} {day:%b}"


def _range_label(first: date, last: date) -> str:
    if first == last:
        return f"{_day_month(first)} {first.year}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {last:%b} {last.year}"
    if first.year == last.year:
        return f"{_day_month(first)} – {_day_month(last)} {last.year}"
    return f"{_day_month(first)} {first.year} – {_day_month(last)} {last.year}"


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def night_bounds(morning: date, summary_time: time, tz: tzinfo | None) -> tuple[datetime, datetime]:
    """The night that ends at ``summary_time`` on local ``morning``: from the previous day's summary time.

    One summary time to the next, so consecutive nights tile without gap or overlap even across DST
    (23 h or 25 h): every revolution belongs to exactly one night.
    """
    return local_instant(morning - timedelta(days=1), summary_time, tz), local_instant(
        morning, summary_time, tz
    )


def _tonight(now: datetime, summary_time: time) -> Period:
    tz = now.tzinfo
    today = now.date()
    end = local_instant(today, summary_time, tz)
    if end.timestamp() < now.timestamp():
        end = local_instant(today + timedelta(days=1), summary_time, tz)
    start, _ = night_bounds(end.date(), summary_time, tz)
    label = f"night to {end:%a} {_day_month(end.date())} {summary_time:%H:%M}"
    return Period("tonight", label, start, end)


def _period_day(
    text: str, today: date, *, future_ok: bool = False, after: date | None = None
) -> date:
    day = read_day(text, today, _PERIOD_EXAMPLE, after=after)
    # A range may run past today (it just has nothing in it yet), but not absurdly far.
    if day > (today.replace(month=12, day=31) + timedelta(days=366) if future_ok else today):
        raise UserError(f"{quote(text)} is in the future. {_PERIOD_EXAMPLE}")
    if day < _EPOCH_DAY:
        raise UserError(f"{quote(text)} is before 1970. {_PERIOD_EXAMPLE}")
    return day


def parse_period(
    text: str,
    *,
    now: datetime,
    summary_time: time | None = None,
    default: str = "week",
) -> Period:
    """A period word -> `[start, end)` in the timezone of `now` (aware). Empty text means `default`."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("parse_period needs an aware `now` in the chat's timezone")
    text = clean(text, _PERIOD_EXAMPLE)
    if not text:
        text = clean(default, _PERIOD_EXAMPLE)
    tz = now.tzinfo
    today = now.date()
    key = _ALIASES.get(text)

    def days(first: date, after_last: date) -> tuple[datetime, datetime]:
        return local_instant(first, time(0), tz), local_instant(after_last, time(0), tz)

    if key == "today":
        return Period(key, "today", *days(today, today + timedelta(days=1)))
    if key == "yesterday":
        return Period(key, "yesterday", *days(today - timedelta(days=1), today))
    if key in ("week", "last-week"):
        monday = today - timedelta(days=today.weekday())
        if key == "last-week":
            return Period(key, "last week", *days(monday - timedelta(days=7), monday))
        return Period(key, "this week", *days(monday, monday + timedelta(days=7)))
    if key in ("month", "last-month"):
        first = _add_months(today, -1 if key == "last-month" else 0)
        return Period(key, f"{first:%B %Y}", *days(first, _add_months(first, 1)))
    if key in ("year", "last-year"):
        year = today.year - (1 if key == "last-year" else 0)
        return Period(key, str(year), *days(date(year, 1, 1), date(year + 1, 1, 1)))
    if key == "all":
        # Ends with today rather than at `now`, so a run logged for today is always inside it.
        return Period(key, "all time", *days(_EPOCH_DAY, today + timedelta(days=1)))
    if key == "tonight":
        return _tonight(now, summary_time or DEFAULT_SUMMARY_TIME)

    rolling = _ROLLING.match(text)
    if rolling:
        count = int(rolling["n"])
        if not 1 <= count <= 3660:
            raise UserError(f"Pick between 1 and 3660 days, not {quote(text)}. {_PERIOD_EXAMPLE}")
        # Rolling windows are elapsed time, so the UTC arithmetic is deliberate.
        start = (now.astimezone(UTC) - timedelta(days=count)).astimezone(tz)
        label = "last 24 hours" if count == 1 else f"last {count} days"
        return Period(f"{count}d", label, start, now)
    since = _SINCE.match(text)
    if since:
        first = _period_day(since["day"], today)
        label = f"since {_day_month(first)}" + (
            "" if first.year == today.year else f" {first.year}"
        )
        return Period(f"since:{first.isoformat()}", label, local_instant(first, time(0), tz), now)
    span = _RANGE.match(text)
    if span:
        first = _period_day(span["a"], today)
        last = _period_day(span["b"], today, future_ok=True, after=first)
        if last < first:
            raise UserError(f"The range {quote(text)} ends before it starts. {_PERIOD_EXAMPLE}")
        key = f"range:{first.isoformat()}..{last.isoformat()}"
        return Period(key, _range_label(first, last), *days(first, last + timedelta(days=1)))
    raise UserError(PERIOD_HELP)


def last_night(now: datetime, summary_time: time) -> Period:
    """The night of the most recent morning report: summary time to summary time."""
    tonight = parse_period("tonight", now=now, summary_time=summary_time)
    start, end = night_bounds(tonight.start.date(), summary_time, tonight.start.tzinfo)
    return Period("last night", "last night", start, end)


def latest_morning(now: datetime, summary_time: time) -> date:
    """The most recent morning whose report time has come (``now`` aware, in the chat's timezone)."""
    today = now.date()
    if local_instant(today, summary_time, now.tzinfo).timestamp() <= now.timestamp():
        return today
    return today - timedelta(days=1)
