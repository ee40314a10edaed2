"""Chat input -> values, and values -> chat text.

Everything here is pure: callers pass `today`/`now` (aware, in the chat's timezone) and get values back, or a
`UserError` whose text is a short, friendly reply with an example of what works. Nothing else escapes, whatever
the input: chat text is untrusted, so every parser bounds its input's length and character set before reading it
(``words``). Periods and nights live in ``periods`` and are re-exported here.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
import re
import zoneinfo
from dataclasses import dataclass
from datetime import date, time
from typing import Literal

from bot.core.periods import (  # noqa: F401  (re-exported: one import for every chat parser)
    DEFAULT_SUMMARY_TIME,
    PERIOD_HELP,
    Period,
    last_night,
    latest_morning,
    local_instant,
    night_bounds,
    parse_period,
)
from bot.core.words import (  # noqa: F401
    MAX_INPUT_CHARS,
    UserError,
    check_day,
    clean,
    looks_like_day,
    parse_day,
    quote,
    read_day,
)

logger = logging.getLogger(__name__)

Units = Literal["mi", "km"]
METRES_PER_MILE = 1609.344
MARATHON_M = 42195.0
HALF_MARATHON_M = 21097.5
MAX_DISTANCE_M = 1_000_000.0
MIN_DISTANCE_M = 1.0  # below a metre it is a typo, not a run
MAX_DURATION_S = 48 * 3600.0
LOGRUN_EXAMPLE = "Try: /logrun 5 km 25:30 yesterday"


# --- numbers ------------------------------------------------------------------------------------

_NUMBER = r"(?:[0-9]+(?:[.,][0-9]+)?|[.,][0-9]+)"
_AMBIGUOUS_COMMA = re.compile(r"^[0-9]{1,3},[0-9]{3}$")


def _number(text: str, example: str) -> float:
    """An ASCII decimal with `.` or `,` as the decimal mark; `10,000` is refused as ambiguous."""
    if _AMBIGUOUS_COMMA.match(text):
        raise UserError(
            f"Is {quote(text)} a thousand-separated number or a decimal? "
            f"Write it as {text.replace(',', '')} or {text.replace(',', '.')}. {example}"
        )
    # Bounded length: float() of a 400-digit string is fine, but nothing sensible needs more than 12 digits.
    if len(text) > 20:
        raise UserError(f"{quote(text)} is not a number I can use. {example}")
    value = float(text.replace(",", "."))
    if not math.isfinite(value):
        raise UserError(f"{quote(text)} is not a number I can use. {example}")
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
        raise UserError(f"The distance must be more than zero, not {quote(shown)}. {example}")
    if metres < MIN_DISTANCE_M:
        raise UserError(f"{quote(shown)} is shorter than a hamster's sprint. {example}")
    if metres > MAX_DISTANCE_M:
        raise UserError(f"{quote(shown)} is more than 1000 km in one go. {example}")
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
        raise UserError(f"I couldn't read a distance in {quote(first)}. {example}")
    shown = quantity[0]
    value = _number(quantity["num"], example)
    if quantity["sign"] == "-":
        raise UserError(f"The distance must be more than zero, not {quote(shown)}. {example}")
    word = quantity["word"]
    rest = text[quantity.end() :].strip()
    if word is None:
        per_unit = _unit_metres(default_units)
    elif word in _DISTANCE_UNITS:
        per_unit = _DISTANCE_UNITS[word]
    elif quantity["gap"] and looks_like_day(word):
        # "5 yesterday": a bare number in the user's units, then the date.
        per_unit = _unit_metres(default_units)
        rest = text[quantity.start("word") :]
        shown = quantity["num"]
    else:
        raise UserError(f"I don't know the unit {quote(word)}. Use km, mi or m. {example}")
    return _check_distance(value * per_unit, shown, example), rest


def parse_distance(text: str, default_units: Units) -> float:
    """`5`, `5 km`, `3.1 miles`, `5k`, `10000m`, `5,5 km`, `marathon`, `half marathon` -> metres."""
    example = "Try: 5 km, 3.1 mi, 800 m or half marathon"
    cleaned = clean(text, example)
    metres, rest = _take_distance(cleaned, default_units, example)
    if rest:
        raise UserError(f"I didn't understand {quote(rest)} after the distance. {example}")
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
            raise UserError(f"{quote(text)} isn't a time I can read. {example}")
        return hours * 3600 + minutes * 60 + seconds
    hours_minutes = _HOURS_MINUTES.match(text)
    if hours_minutes:
        minutes = int(hours_minutes["m"])
        if minutes >= 60:
            raise UserError(f"{quote(text)} isn't a time I can read. {example}")
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
            f"Is {quote(text)} minutes? Add a unit, like {text} min or {text}:00. {example}"
        )
    if not re.search(r"[0-9]", text):
        raise UserError(f"I didn't understand {quote(text)}. {example}")
    raise UserError(f"{quote(text)} isn't a time I can read. {example}")


def _check_duration(seconds: float, shown: str, example: str) -> float:
    if not math.isfinite(seconds) or seconds <= 0:
        raise UserError(f"The time must be more than zero, not {quote(shown)}. {example}")
    if seconds > MAX_DURATION_S:
        raise UserError(f"{quote(shown)} is over 48 hours; log it as separate runs. {example}")
    return seconds


def parse_duration(text: str) -> float:
    """`25:30`, `1:05:00`, `25m`, `25 min`, `1h05m`, `1h 5m`, `1 h`, `90s` -> seconds (0 < s <= 48 h)."""
    cleaned = clean(text, _DURATION_EXAMPLE)
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


# --- /logrun ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunEntry:
    distance_m: float
    duration_s: float | None
    day: date


def parse_logrun(args: str, *, default_units: Units, today: date) -> RunEntry:
    """`DISTANCE [DURATION] [DATE]`, duration and date in either order; the first quantity is the distance."""
    example = LOGRUN_EXAMPLE
    text = clean(args, example)
    distance_m, rest = _take_distance(text, default_units, example)
    tokens = rest.split(" ") if rest else []
    day = today
    # The date comes last or first, and may be several words ("last tuesday", "30 nov 2026").
    spans = [(tokens[-n:], tokens[:-n]) for n in (3, 2, 1)]
    spans += [(tokens[:n], tokens[n:]) for n in (3, 2, 1)]
    for words, others in spans:
        shown = " ".join(words)
        if len(words) <= len(tokens) and looks_like_day(shown):
            day = check_day(read_day(shown, today, example), today, shown, example)
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
    cleaned = clean(text, example)
    if cleaned not in _UNIT_WORDS:
        raise UserError(f"I don't know the units {quote(cleaned)}. {example}")
    return _UNIT_WORDS[cleaned]


@functools.cache
def _zone_names() -> dict[str, str]:
    """Lower-cased IANA name -> canonical spelling."""
    return {name.lower(): name for name in zoneinfo.available_timezones()}


_ZONE_TEXT = re.compile(r"[a-z0-9_+\-/ ]+")


def parse_timezone(text: str) -> str:
    """An IANA zone name, any case (`europe/london`, `America/New York`), or a unique city (`kathmandu`)."""
    example = "Try: Europe/London or America/New_York"
    cleaned = clean(text, example)
    if not cleaned or not _ZONE_TEXT.fullmatch(cleaned):
        raise UserError(f"I don't know the timezone {quote(cleaned)}. {example}")
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
        raise UserError(f"I don't know the timezone {quote(cleaned)}. {example}")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        logger.warning("timezone %s is listed but cannot be loaded", name)
        raise UserError(f"I can't load the timezone {quote(name)}. {example}") from None
    return name


_CLOCK = re.compile(r"^(?P<h>[0-9]{1,2})(?::(?P<m>[0-9]{2}))?$")


def parse_clock(text: str) -> time:
    """24-hour `HH:MM` (`07:30`, `7:30`, `7`) -> time."""
    example = "Try: 08:00 or 7:30 (24-hour clock)"
    cleaned = clean(text, example)
    match = _CLOCK.match(cleaned)
    if not match:
        raise UserError(f"I couldn't read the time {quote(cleaned)}. {example}")
    hour, minute = int(match["h"]), int(match["m"] or 0)
    if hour > 23 or minute > 59:
        raise UserError(f"{quote(cleaned)} isn't a time of day. {example}")
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
