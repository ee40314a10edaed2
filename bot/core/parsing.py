"""Chat input -> values, and values -> chat text.

Everything here is pure: callers pass `today`/`now` (aware, in the chat's timezone) and get values back, or a
`UserError` whose text is a short, friendly reply with an example of what works. Nothing else escapes, whatever
the input: chat text is untrusted, so every parser bounds its input's length and character set before reading it.

Periods are half-open `[start, end)` aware datetimes in the chat's timezone, normalised so their wall times exist.
Compare or subtract them via `.timestamp()` (or after `.astimezone(UTC)`): Python compares two datetimes that
share a tzinfo by wall time alone, which is wrong across a DST change.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

logger = logging.getLogger(__name__)

Units = Literal["mi", "km"]
METRES_PER_MILE = 1609.344
MARATHON_M = 42195.0
HALF_MARATHON_M = 21097.5
MAX_DISTANCE_M = 1_000_000.0
MIN_DISTANCE_M = 1.0  # below a metre it is a typo, not a run
MAX_DURATION_S = 48 * 3600.0
# Longer than any sensible command; refusing early keeps the regexes and error messages cheap.
MAX_INPUT_CHARS = 200
_ECHO_CHARS = 30

LOGRUN_EXAMPLE = "Try: /logrun 5 km 25:30 yesterday"


class UserError(ValueError):
    """A mistake in what the user typed; `str(err)` is the reply to send to the chat."""


# --- input hygiene ------------------------------------------------------------------------------

# Phones insert no-break and thin spaces; treat them like a space rather than rejecting the message.
_SPACES = re.compile(r"[ \t\r\n\u00a0\u2007\u2009\u202f]+")
_PLAIN = re.compile(
    r"[ -~]*"
)  # printable ASCII only: no control chars, no look-alike unicode digits


def _quote(text: str) -> str:
    """The user's text, safe to echo: printable, at most ~30 characters, in quotes."""
    shown = "".join(ch if ch.isprintable() else " " for ch in text[: _ECHO_CHARS + 1])
    shown = " ".join(shown.split())
    if len(shown) > _ECHO_CHARS or len(text) > _ECHO_CHARS + 1:
        shown = shown[:_ECHO_CHARS].rstrip() + "…"
    return f"“{shown}”"


def _clean(text: str, example: str) -> str:
    """Lower-case, single-spaced, printable-ASCII text, or UserError."""
    if not isinstance(text, str):
        raise UserError(f"I need some text. {example}")
    if len(text) > MAX_INPUT_CHARS:
        raise UserError(f"That's too long for me. {example}")
    text = _SPACES.sub(" ", text).strip()
    # Checked before lower-casing: str.lower() maps some non-ASCII letters (the Kelvin sign) to ASCII.
    if not _PLAIN.fullmatch(text):
        raise UserError(f"I can only read plain letters and digits in {_quote(text)}. {example}")
    return text.lower()


# --- numbers ------------------------------------------------------------------------------------

_NUMBER = r"(?:[0-9]+(?:[.,][0-9]+)?|[.,][0-9]+)"
_AMBIGUOUS_COMMA = re.compile(r"^[0-9]{1,3},[0-9]{3}$")


def _number(text: str, example: str) -> float:
    """An ASCII decimal with `.` or `,` as the decimal mark; `10,000` is refused as ambiguous."""
    if _AMBIGUOUS_COMMA.match(text):
        raise UserError(
            f"Is {_quote(text)} a thousand-separated number or a decimal? "
            f"Write it as {text.replace(',', '')} or {text.replace(',', '.')}. {example}"
        )
    # Bounded length: float() of a 400-digit string is fine, but nothing sensible needs more than 12 digits.
    if len(text) > 20:
        raise UserError(f"{_quote(text)} is not a number I can use. {example}")
    value = float(text.replace(",", "."))
    if not math.isfinite(value):
        raise UserError(f"{_quote(text)} is not a number I can use. {example}")
    return value


# --- distance -----------------------------------------------------------------------------------

_DISTANCE_UNITS: dict[str, float] = {
    **dict.fromkeys(("mi", "mile", "miles"), METRES_PER_MILE),
    **dict.fromkeys(
        ("km", "k", "kms", "kilometre", "kilometres", "kilometer", "kilometers"), 1000.0
    ),
    **dict.fromkeys(("m", "metre", "metres", "meter", "meters"), 1.0),
}
_NAMED_DISTANCES = re.compile(r"^(?:(?P<half>half[ -]?)?marathon)(?= |$)")
_LEADING_QUANTITY = re.compile(
    rf"^(?P<sign>[-+]?)(?P<num>{_NUMBER})(?P<gap> ?)(?P<word>[a-z]+)?(?= |$)"
)


def _unit_metres(units: Units) -> float:
    return METRES_PER_MILE if units == "mi" else 1000.0


def _check_distance(metres: float, shown: str, example: str) -> float:
    if not math.isfinite(metres) or metres <= 0:
        raise UserError(f"The distance must be more than zero, not {_quote(shown)}. {example}")
    if metres < MIN_DISTANCE_M:
        raise UserError(f"{_quote(shown)} is shorter than a hamster's sprint. {example}")
    if metres > MAX_DISTANCE_M:
        raise UserError(f"{_quote(shown)} is more than 1000 km in one go. {example}")
    return metres


def _take_distance(text: str, default_units: Units, example: str) -> tuple[float, str]:
    """Read the distance at the start of `text`; return metres and the rest of the text."""
    if not text:
        raise UserError(f"How far did you run? {example}")
    named = _NAMED_DISTANCES.match(text)
    if named:
        metres = HALF_MARATHON_M if named["half"] else MARATHON_M
        return metres, text[named.end() :].strip()
    quantity = _LEADING_QUANTITY.match(text)
    if not quantity:
        first = text.split(" ", 1)[0]
        raise UserError(f"I couldn't read a distance in {_quote(first)}. {example}")
    shown = quantity[0]
    value = _number(quantity["num"], example)
    if quantity["sign"] == "-":
        raise UserError(f"The distance must be more than zero, not {_quote(shown)}. {example}")
    word = quantity["word"]
    rest = text[quantity.end() :].strip()
    if word is None:
        per_unit = _unit_metres(default_units)
    elif word in _DISTANCE_UNITS:
        per_unit = _DISTANCE_UNITS[word]
    elif quantity["gap"] and _looks_like_day(word):
        # "5 yesterday": a bare number in the user's units, then the date.
        per_unit = _unit_metres(default_units)
        rest = text[quantity.start("word") :]
        shown = quantity["num"]
    else:
        raise UserError(f"I don't know the unit {_quote(word)}. Use km, mi or m. {example}")
    return _check_distance(value * per_unit, shown, example), rest


def parse_distance(text: str, default_units: Units) -> float:
    """`5`, `5 km`, `3.1 miles`, `5k`, `10000m`, `5,5 km`, `marathon`, `half marathon` -> metres."""
    example = "Try: 5 km, 3.1 mi, 800 m or half marathon"
    cleaned = _clean(text, example)
    metres, rest = _take_distance(cleaned, default_units, example)
    if rest:
        raise UserError(f"I didn't understand {_quote(rest)} after the distance. {example}")
    return metres


# --- duration -----------------------------------------------------------------------------------

_CLOCK_DURATION = re.compile(
    r"^(?:(?P<h>[0-9]{1,2}):(?=[0-9]{2}:))?(?P<m>[0-9]{1,4}):(?P<s>[0-9]{2}(?:\.[0-9]{1,3})?)$"
)
_UNIT_DURATION = re.compile(
    rf"^(?:(?P<h>{_NUMBER}) ?(?:h|hr|hrs|hour|hours)(?: |$))?"
    rf"(?:(?P<m>{_NUMBER}) ?(?:m|min|mins|minute|minutes)(?: |$))?"
    rf"(?:(?P<s>{_NUMBER}) ?(?:s|sec|secs|second|seconds)(?: |$))?$"
)
# "1h05": hours then bare minutes, as people write it.
_HOURS_MINUTES = re.compile(r"^(?P<h>[0-9]{1,2}) ?h ?(?P<m>[0-9]{2})$")
_DURATION_EXAMPLE = "Try: 25:30, 1:05:00, 25 min or 1h 5m"


def _duration_seconds(text: str, example: str) -> float:
    clock = _CLOCK_DURATION.match(text)
    if clock:
        hours = int(clock["h"] or 0)
        minutes = int(clock["m"])
        seconds = float(clock["s"])
        if seconds >= 60 or (clock["h"] is not None and minutes >= 60):
            raise UserError(f"{_quote(text)} isn't a time I can read. {example}")
        return hours * 3600 + minutes * 60 + seconds
    hours_minutes = _HOURS_MINUTES.match(text)
    if hours_minutes:
        minutes = int(hours_minutes["m"])
        if minutes >= 60:
            raise UserError(f"{_quote(text)} isn't a time I can read. {example}")
        return int(hours_minutes["h"]) * 3600 + minutes * 60
    # Normalise "1h05m" to "1h 05m" so the unit pattern can require a break after each part.
    spaced = re.sub(r"(?<=[a-z])(?=[0-9])", " ", text)
    units = _UNIT_DURATION.match(spaced) if text else None
    if units and any(units.group(g) for g in ("h", "m", "s")):
        total = 0.0
        for group, scale in (("h", 3600), ("m", 60), ("s", 1)):
            if units[group]:
                total += _number(units[group], example) * scale
        return total
    if re.fullmatch(_NUMBER, text):
        raise UserError(
            f"Is {_quote(text)} minutes? Add a unit, like {text} min or {text}:00. {example}"
        )
    if not re.search(r"[0-9]", text):
        raise UserError(f"I didn't understand {_quote(text)}. {example}")
    raise UserError(f"{_quote(text)} isn't a time I can read. {example}")


def _check_duration(seconds: float, shown: str, example: str) -> float:
    if not math.isfinite(seconds) or seconds <= 0:
        raise UserError(f"The time must be more than zero, not {_quote(shown)}. {example}")
    if seconds > MAX_DURATION_S:
        raise UserError(f"{_quote(shown)} is over 48 hours; log it as separate runs. {example}")
    return seconds


def parse_duration(text: str) -> float:
    """`25:30`, `1:05:00`, `25m`, `25 min`, `1h05m`, `1h 5m`, `1 h`, `90s` -> seconds (0 < s <= 48 h)."""
    cleaned = _clean(text, _DURATION_EXAMPLE)
    if not cleaned:
        raise UserError(f"How long did it take? {_DURATION_EXAMPLE}")
    return _check_duration(
        _duration_seconds(cleaned, _DURATION_EXAMPLE), cleaned, _DURATION_EXAMPLE
    )


# Men's world records (metres, seconds). Pace between them is interpolated in log-log space, where
# record time against distance is close to a straight line (Riegel's observation).
_WORLD_RECORDS: tuple[tuple[float, float], ...] = (
    (100.0, 9.58),
    (200.0, 19.19),
    (400.0, 43.03),
    (800.0, 100.91),
    (1000.0, 131.96),
    (1500.0, 206.00),
    (METRES_PER_MILE, 223.13),
    (2000.0, 284.79),
    (3000.0, 440.67),
    (5000.0, 755.36),
    (10000.0, 1571.00),
    (HALF_MARATHON_M, 3402.0),
    (MARATHON_M, 7235.0),
)
_WR_LOG_D = [math.log(d) for d, _ in _WORLD_RECORDS]
_WR_LOG_T = [math.log(t) for _, t in _WORLD_RECORDS]


def fastest_plausible_seconds(metres: float) -> float:
    """The men's world-record time for `metres`, interpolated; record pace outside 100 m .. marathon."""
    if metres <= _WORLD_RECORDS[0][0]:
        return metres * _WORLD_RECORDS[0][1] / _WORLD_RECORDS[0][0]
    if metres >= _WORLD_RECORDS[-1][0]:
        return metres * _WORLD_RECORDS[-1][1] / _WORLD_RECORDS[-1][0]
    x = math.log(metres)
    i = bisect.bisect_right(_WR_LOG_D, x)
    x0, x1 = _WR_LOG_D[i - 1], _WR_LOG_D[i]
    y0, y1 = _WR_LOG_T[i - 1], _WR_LOG_T[i]
    return math.exp(y0 + (y1 - y0) * (x - x0) / (x1 - x0))


# --- days ---------------------------------------------------------------------------------------

_WEEKDAYS: dict[str, int] = {}
for _index, _names in enumerate(
    (
        ("monday", "mon"),
        ("tuesday", "tue", "tues"),
        ("wednesday", "wed"),
        ("thursday", "thu", "thur", "thurs"),
        ("friday", "fri"),
        ("saturday", "sat"),
        ("sunday", "sun"),
    )
):
    _WEEKDAYS.update(dict.fromkeys(_names, _index))
_MONTHS: dict[str, int] = {}
for _index, _names in enumerate(
    (
        ("january", "jan"),
        ("february", "feb"),
        ("march", "mar"),
        ("april", "apr"),
        ("may",),
        ("june", "jun"),
        ("july", "jul"),
        ("august", "aug"),
        ("september", "sep", "sept"),
        ("october", "oct"),
        ("november", "nov"),
        ("december", "dec"),
    ),
    start=1,
):
    _MONTHS.update(dict.fromkeys(_names, _index))
_ISO_DAY = re.compile(r"^(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})$")
# "30 nov", "30th november 2026", "nov 30", "nov 30, 2026"
_DAY_MONTH = re.compile(
    r"^(?:(?P<d1>[0-9]{1,2})(?:st|nd|rd|th)? (?P<m1>[a-z]+)"
    r"|(?P<m2>[a-z]+) (?P<d2>[0-9]{1,2})(?:st|nd|rd|th)?),?(?: (?P<y>[0-9]{4}))?$"
)
# "11/30", "30.11.", "1/2/2026": whether the day or the month comes first differs by country.
_NUMERIC_DAY = re.compile(
    r"^(?P<a>[0-9]{1,2})[/.](?P<b>[0-9]{1,2})(?:[/.](?P<y>[0-9]{4}|[0-9]{2}))?\.?$"
)
_LAST_WEEKDAY = re.compile(r"^last (?P<weekday>[a-z]+)$")
_DAY_EXAMPLE = "Try: today, yesterday, monday, last tuesday, 28 nov or 2026-11-28"


def _looks_like_day(text: str) -> bool:
    """Whether ``text`` is meant as a day (an unclear one too, so the reply is about the date)."""
    if text in ("today", "yesterday", "tomorrow") or text in _WEEKDAYS:
        return True
    if _ISO_DAY.match(text) or _NUMERIC_DAY.match(text):
        return True
    last = _LAST_WEEKDAY.match(text)
    if last:
        return last["weekday"] in _WEEKDAYS
    named = _DAY_MONTH.match(text)
    return bool(named and (named["m1"] or named["m2"]) in _MONTHS)


def _month_name(month: int) -> str:
    return date(2000, month, 1).strftime("%b")


def _ambiguous(text: str, a: int, b: int, year: str | None, example: str) -> UserError:
    readings = [f"{d} {_month_name(m)}" for d, m in ((a, b), (b, a)) if 1 <= m <= 12 and d <= 31]
    readings = list(dict.fromkeys(readings))  # 5/5 reads the same both ways
    suffix = f" {year}" if year else ""
    if len(readings) == 1:
        hint = f"Write it with the month's name, like {readings[0]}{suffix}, or as YYYY-MM-DD."
    elif readings:
        hint = f"Is it {readings[0]}{suffix} or {readings[1]}{suffix}? Write the month's name."
    else:
        return UserError(f"{_quote(text)} isn't a real date. {example}")
    return UserError(
        f"I can't tell whether {_quote(text)} is day/month or month/day. {hint} {example}"
    )


def _read_day(text: str, today: date, example: str, *, after: date | None = None) -> date:
    """A day word or date, without range checks. A day and month without a year is the latest
    one up to ``today``, or with ``after`` the first one from then on (a range's end)."""
    if text == "today":
        return today
    if text == "yesterday":
        return today - timedelta(days=1)
    if text == "tomorrow":  # read only so the reply can say "in the future"
        return today + timedelta(days=1)
    if text in _WEEKDAYS:
        return today - timedelta(days=(today.weekday() - _WEEKDAYS[text]) % 7)
    last = _LAST_WEEKDAY.match(text)
    if last and last["weekday"] in _WEEKDAYS:  # the one before today, never today itself
        return today - timedelta(days=(today.weekday() - _WEEKDAYS[last["weekday"]] - 1) % 7 + 1)
    iso = _ISO_DAY.match(text)
    if iso:
        try:
            return date(int(iso["y"]), int(iso["m"]), int(iso["d"]))
        except ValueError:
            raise UserError(f"{_quote(text)} isn't a real date. {example}") from None
    numeric = _NUMERIC_DAY.match(text)
    if numeric:
        raise _ambiguous(text, int(numeric["a"]), int(numeric["b"]), numeric["y"], example)
    named = _DAY_MONTH.match(text)
    if named and (named["m1"] or named["m2"]) in _MONTHS:
        month = _MONTHS[named["m1"] or named["m2"]]
        day = int(named["d1"] or named["d2"])
        return _day_of_month(text, day, month, named["y"], today, after, example)
    raise UserError(f"I couldn't read the date {_quote(text)}. {example}")


def _day_of_month(
    text: str,
    day: int,
    month: int,
    year: str | None,
    today: date,
    after: date | None,
    example: str,
) -> date:
    try:
        if year:
            return date(int(year), month, day)
        date(2000, month, day)  # a real day in a leap year: 29 feb is fine
    except ValueError:
        raise UserError(f"{_quote(text)} isn't a real date. {example}") from None
    anchor = after or today
    for offset in (0, 1, 2, 3, 4) if after else (0, -1, -2, -3, -4):
        try:
            found = date(anchor.year + offset, month, day)
        except ValueError:  # 29 feb in a year without it
            continue
        if (after and found >= after) or (not after and found <= today):
            return found
    raise UserError(f"{_quote(text)} isn't a real date. {example}")  # pragma: no cover


def _one_year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _check_day(day: date, today: date, shown: str, example: str) -> date:
    if day > today:
        raise UserError(f"{_quote(shown)} is in the future. {example}")
    if day < _one_year_before(today):
        raise UserError(f"{_quote(shown)} is more than a year ago. {example}")
    return day


def parse_day(text: str, today: date) -> date:
    """`today`, `yesterday`, `monday`/`mon` (most recent, today included), `2026-11-28`; not future, within a year."""
    cleaned = _clean(text, _DAY_EXAMPLE)
    if not cleaned:
        return today
    return _check_day(_read_day(cleaned, today, _DAY_EXAMPLE), today, cleaned, _DAY_EXAMPLE)


# --- /logrun ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunEntry:
    distance_m: float
    duration_s: float | None
    day: date


def parse_logrun(args: str, *, default_units: Units, today: date) -> RunEntry:
    """`DISTANCE [DURATION] [DATE]`, duration and date in either order; the first quantity is the distance."""
    example = LOGRUN_EXAMPLE
    text = _clean(args, example)
    distance_m, rest = _take_distance(text, default_units, example)
    tokens = rest.split(" ") if rest else []
    day = today
    # The date comes last or first, and may be several words ("last tuesday", "30 nov 2026").
    spans = [(tokens[-n:], tokens[:-n]) for n in (3, 2, 1)]
    spans += [(tokens[:n], tokens[n:]) for n in (3, 2, 1)]
    for words, others in spans:
        shown = " ".join(words)
        if len(words) <= len(tokens) and _looks_like_day(shown):
            day = _check_day(_read_day(shown, today, example), today, shown, example)
            tokens = others
            break
    duration_s = None
    if tokens:
        shown = " ".join(tokens)
        duration_s = _check_duration(_duration_seconds(shown, example), shown, example)
        if duration_s < fastest_plausible_seconds(distance_m):
            raise UserError(
                f"{format_distance(distance_m, default_units)} in {format_duration(duration_s)} "
                f"would beat the world record! Check the distance and time. {example}"
            )
    return RunEntry(distance_m=distance_m, duration_s=duration_s, day=day)


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


def _at(day: date, clock: time, tz: tzinfo | None) -> datetime:
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
    return _at(morning - timedelta(days=1), summary_time, tz), _at(morning, summary_time, tz)


def _tonight(now: datetime, summary_time: time) -> Period:
    tz = now.tzinfo
    today = now.date()
    end = _at(today, summary_time, tz)
    if end.timestamp() < now.timestamp():
        end = _at(today + timedelta(days=1), summary_time, tz)
    start, _ = night_bounds(end.date(), summary_time, tz)
    label = f"night to {end:%a} {_day_month(end.date())} {summary_time:%H:%M}"
    return Period("tonight", label, start, end)


def _period_day(
    text: str, today: date, *, future_ok: bool = False, after: date | None = None
) -> date:
    day = _read_day(text, today, _PERIOD_EXAMPLE, after=after)
    # A range may run past today (it just has nothing in it yet), but not absurdly far.
    if day > (today.replace(month=12, day=31) + timedelta(days=366) if future_ok else today):
        raise UserError(f"{_quote(text)} is in the future. {_PERIOD_EXAMPLE}")
    if day < _EPOCH_DAY:
        raise UserError(f"{_quote(text)} is before 1970. {_PERIOD_EXAMPLE}")
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
    text = _clean(text, _PERIOD_EXAMPLE)
    if not text:
        text = _clean(default, _PERIOD_EXAMPLE)
    tz = now.tzinfo
    today = now.date()
    key = _ALIASES.get(text)

    def days(first: date, after_last: date) -> tuple[datetime, datetime]:
        return _at(first, time(0), tz), _at(after_last, time(0), tz)

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
            raise UserError(f"Pick between 1 and 3660 days, not {_quote(text)}. {_PERIOD_EXAMPLE}")
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
        return Period(f"since:{first.isoformat()}", label, _at(first, time(0), tz), now)
    span = _RANGE.match(text)
    if span:
        first = _period_day(span["a"], today)
        last = _period_day(span["b"], today, future_ok=True, after=first)
        if last < first:
            raise UserError(f"The range {_quote(text)} ends before it starts. {_PERIOD_EXAMPLE}")
        key = f"range:{first.isoformat()}..{last.isoformat()}"
        return Period(key, _range_label(first, last), *days(first, last + timedelta(days=1)))
    raise UserError(PERIOD_HELP)


# --- settings -----------------------------------------------------------------------------------

_UNIT_WORDS: dict[str, Units] = {
    **dict.fromkeys(("mi", "mile", "miles", "imperial"), "mi"),
    **dict.fromkeys(
        ("km", "kms", "kilometre", "kilometres", "kilometer", "kilometers", "metric"), "km"
    ),
}


def parse_units(text: str) -> Units:
    """`km`/`metric` or `mi`/`miles`/`imperial`."""
    example = "Try: km or mi"
    cleaned = _clean(text, example)
    if cleaned not in _UNIT_WORDS:
        raise UserError(f"I don't know the units {_quote(cleaned)}. {example}")
    return _UNIT_WORDS[cleaned]


@functools.cache
def _zone_names() -> dict[str, str]:
    """Lower-cased IANA name -> canonical spelling."""
    return {name.lower(): name for name in zoneinfo.available_timezones()}


_ZONE_TEXT = re.compile(r"[a-z0-9_+\-/ ]+")


def parse_timezone(text: str) -> str:
    """An IANA zone name, any case (`europe/london`, `America/New York`), or a unique city (`kathmandu`)."""
    example = "Try: Europe/London or America/New_York"
    cleaned = _clean(text, example)
    if not cleaned or not _ZONE_TEXT.fullmatch(cleaned):
        raise UserError(f"I don't know the timezone {_quote(cleaned)}. {example}")
    wanted = cleaned.replace(" ", "_")
    names = _zone_names()
    name = names.get(wanted)
    if name is None and "/" not in wanted:
        matches = sorted(n for low, n in names.items() if low.endswith("/" + wanted))
        if len(matches) == 1:
            name = matches[0]
        elif matches:
            raise UserError(f"Which one: {', '.join(matches[:3])}? {example}")
    if name is None:
        raise UserError(f"I don't know the timezone {_quote(cleaned)}. {example}")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        logger.warning("timezone %s is listed but cannot be loaded", name)
        raise UserError(f"I can't load the timezone {_quote(name)}. {example}") from None
    return name


_CLOCK = re.compile(r"^(?P<h>[0-9]{1,2})(?::(?P<m>[0-9]{2}))?$")


def parse_clock(text: str) -> time:
    """24-hour `HH:MM` (`07:30`, `7:30`, `7`) -> time."""
    example = "Try: 08:00 or 7:30 (24-hour clock)"
    cleaned = _clean(text, example)
    match = _CLOCK.match(cleaned)
    if not match:
        raise UserError(f"I couldn't read the time {_quote(cleaned)}. {example}")
    hour, minute = int(match["h"]), int(match["m"] or 0)
    if hour > 23 or minute > 59:
        raise UserError(f"{_quote(cleaned)} isn't a time of day. {example}")
    return time(hour, minute)


# --- formatting ---------------------------------------------------------------------------------

_UNKNOWN = "–"


def format_distance(metres: float, units: Units, *, precision: int | None = None) -> str:
    """`3.11 mi`, `5.00 km`; in km, under a kilometre reads as whole metres (`850 m`) unless precision is given."""
    if not math.isfinite(metres):
        return _UNKNOWN
    if units == "km" and precision is None and round(abs(metres)) < 1000:
        return f"{round(metres):d} m"
    digits = 2 if precision is None else max(0, precision)
    return f"{metres / _unit_metres(units):.{digits}f} {units}"


def format_both(metres: float, units: Units) -> str:
    """`5.00 km (3.11 mi)`: the chat's units first."""
    other: Units = "mi" if units == "km" else "km"
    return f"{format_distance(metres, units)} ({format_distance(metres, other)})"


def format_duration(seconds: float) -> str:
    """`25:30`, `1:05:00`, `0:45`; whole seconds, rounded."""
    if not math.isfinite(seconds):
        return _UNKNOWN
    sign = "-" if seconds < 0 else ""
    total = round(abs(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{secs:02d}"
    return f"{sign}{minutes}:{secs:02d}"


def format_pace(metres: float, seconds: float, units: Units) -> str:
    """Time per mile or km: `8:12 /mi`."""
    if not (math.isfinite(metres) and math.isfinite(seconds)) or metres <= 0 or seconds <= 0:
        return f"{_UNKNOWN} /{units}"
    return f"{format_duration(seconds * _unit_metres(units) / metres)} /{units}"


def format_speed(metres_per_second: float, units: Units) -> str:
    """`3.2 mph` or `5.1 km/h`."""
    if not math.isfinite(metres_per_second):
        return _UNKNOWN
    per_hour = metres_per_second * 3600 / _unit_metres(units)
    return f"{per_hour:.1f} {'mph' if units == 'mi' else 'km/h'}"
