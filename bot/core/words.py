"""Chat input hygiene and day words, shared by the parsers (``parsing``) and the periods (``periods``).

Pure: chat text is untrusted, so every reader bounds its input's length and character set before reading it,
and a mistake is a ``UserError`` whose text is the friendly reply.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

# Longer than any sensible command; refusing early keeps the regexes and error messages cheap.
MAX_INPUT_CHARS = 200
_ECHO_CHARS = 30


class UserError(ValueError):
    """A mistake in what the user typed; `str(err)` is the reply to send to the chat."""


# --- input hygiene ------------------------------------------------------------------------------

# Phones insert no-break and thin spaces; treat them like a space rather than rejecting the message.
_SPACES = re.compile(r"[ \t\r\n\u00a0\u2007\u2009\u202f]+")
_PLAIN = re.compile(
    r"[ -~]*"
)  # printable ASCII only: no control chars, no look-alike unicode digits


def quote(text: str) -> str:
    """The user's text, safe to echo: printable, at most ~30 characters, in quotes."""
    shown = "".join(ch if ch.isprintable() else " " for ch in text[: _ECHO_CHARS + 1])
    shown = " ".join(shown.split())
    if len(shown) > _ECHO_CHARS or len(text) > _ECHO_CHARS + 1:
        shown = shown[:_ECHO_CHARS].rstrip() + "…"
    return f"“{shown}”"


def clean(text: str, example: str) -> str:
    """Lower-case, single-spaced, printable-ASCII text, or UserError."""
    if not isinstance(text, str):
        raise UserError(f"I need some text. {example}")
    if len(text) > MAX_INPUT_CHARS:
        raise UserError(f"That's too long for me. {example}")
    text = _SPACES.sub(" ", text).strip()
    # Checked before lower-casing: str.lower() maps some non-ASCII letters (the Kelvin sign) to ASCII.
    if not _PLAIN.fullmatch(text):
        raise UserError(f"I can only read plain letters and digits in {quote(text)}. {example}")
    return text.lower()


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


def looks_like_day(text: str) -> bool:
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
        return UserError(f"{quote(text)} isn't a real date. {example}")
    return UserError(
        f"I can't tell whether {quote(text)} is day/month or month/day. {hint} {example}"
    )


def read_day(text: str, today: date, example: str, *, after: date | None = None) -> date:
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
            raise UserError(f"{quote(text)} isn't a real date. {example}") from None
    numeric = _NUMERIC_DAY.match(text)
    if numeric:
        raise _ambiguous(text, int(numeric["a"]), int(numeric["b"]), numeric["y"], example)
    named = _DAY_MONTH.match(text)
    if named and (named["m1"] or named["m2"]) in _MONTHS:
        month = _MONTHS[named["m1"] or named["m2"]]
        day = int(named["d1"] or named["d2"])
        return _day_of_month(text, day, month, named["y"], today, after, example)
    raise UserError(f"I couldn't read the date {quote(text)}. {example}")


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
        raise UserError(f"{quote(text)} isn't a real date. {example}") from None
    anchor = after or today
    for offset in (0, 1, 2, 3, 4) if after else (0, -1, -2, -3, -4):
        try:
            found = date(anchor.year + offset, month, day)
        except ValueError:  # 29 feb in a year without it
            continue
        if (after and found >= after) or (not after and found <= today):
            return found
    raise UserError(f"{quote(text)} isn't a real date. {example}")  # pragma: no cover


def _one_year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def check_day(day: date, today: date, shown: str, example: str) -> date:
    if day > today:
        raise UserError(f"{quote(shown)} is in the future. {example}")
    if day < _one_year_before(today):
        raise UserError(f"{quote(shown)} is more than a year ago. {example}")
    return day


def parse_day(text: str, today: date) -> date:
    """`today`, `yesterday`, `monday`/`mon` (most recent, today included), `2026-11-28`; not future, within a year."""
    cleaned = clean(text, _DAY_EXAMPLE)
    if not cleaned:
        return today
    return check_day(read_day(cleaned, today, _DAY_EXAMPLE), today, cleaned, _DAY_EXAMPLE)
