"""The public page's HTML and JSON: pure functions from the model's values to text.

Every figure is an element with ``data-hamster``, ``data-metric`` and ``data-metres`` (absent when there is no
data), its text the formatted distance, so scripts, tests and scrapers read the same numbers people see. No inline
script or style anywhere: the Content-Security-Policy forbids them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from bot.core.model import HamsterNow, League, NightDistance, Standings

if TYPE_CHECKING:
    from bot.core.charts import RaceLine
from bot.core.parsing import Units, format_distance

METRICS = (
    ("tonight", "Tonight so far"),
    ("last_night", "Last night"),
    ("average_7", "7-night average"),
    ("all_time", "All time"),
)
# The form's periods: (value, label). "week" is the same period as /race's default.
ASK_PERIODS = (
    ("tonight", "tonight"),
    ("last_night", "last night"),
    ("week", "this week"),
    ("all_time", "all time"),
)
RACE_PERIODS = (
    ("today", "today"),
    ("week", "this week"),
    ("last week", "last week"),
    ("month", "this month"),
    ("last month", "last month"),
    ("year", "this year"),
    ("all", "all time"),
)
NO_DATA = "no data"


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to "have you run as much as NAME?"; ``error`` when the distance could not be read."""

    text: str
    error: bool = False


@dataclass(frozen=True, slots=True)
class Preview:
    """Link preview tags: absolute URLs (crawlers fetch them from elsewhere)."""

    title: str
    description: str
    url: str
    image: str


# --- JSON -----------------------------------------------------------------------------------------


def _round(metres: float | None) -> float | None:
    return None if metres is None else round(metres, 3)


def hamster_json(hamster: HamsterNow) -> dict[str, Any]:
    return {
        "name": hamster.name,
        "tonight_m": _round(hamster.tonight_m),
        "last_night_m": _round(hamster.last_night_m),
        "average_7_m": _round(hamster.average_7_m),
        "all_time_m": _round(hamster.all_time_m),
        "revolutions": hamster.revolutions,
        "online": hamster.online,
    }


def hamsters_json(hamsters: Sequence[HamsterNow]) -> dict[str, Any]:
    return {"hamsters": [hamster_json(h) for h in hamsters]}


def nights_json(nights: Sequence[NightDistance]) -> dict[str, Any]:
    # A night without a single revolution is "no data" (the sensor was off), as last_night_m is.
    return {
        "nights": [
            {
                "date": n.morning.isoformat(),
                "distance_m": _round(n.distance_m) if n.distance_m > 0 else None,
            }
            for n in nights
        ]
    }


def standings_json(period: str, standings: Standings) -> dict[str, Any]:
    return {
        "period": period,
        "label": standings.period_label,
        "standings": [
            {"name": e.name, "kind": e.kind, "distance_m": _round(e.distance_m)}
            for e in standings.entries
        ],
    }


def league_json(period: str, league: League) -> dict[str, Any]:
    return {
        "period": period,
        "label": league.period_label,
        "league": [
            {
                "rank": e.rank,
                "name": e.name,
                "home": e.home,
                "distance_m": _round(e.distance_m),
                "online": e.online,
            }
            for e in league.entries
        ],
    }


def race_chart_json(lines: Sequence[RaceLine]) -> dict[str, Any]:
    """Cumulative distance lines: ``points`` are ``[epoch seconds, metres]``; people's lines are
    steps (a run counts when it is logged), the hamsters' lines run through their points."""
    return {
        "lines": [
            {
                "name": line.name,
                "kind": "hamster" if line.is_hamster else "person",
                "points": [
                    [int(t), round(float(m), 1)]
                    for t, m in zip(line.times, line.cumulative_m, strict=True)
                ],
            }
            for line in lines
        ]
    }


def sse_event(payload: dict[str, Any], event: str | None = None) -> bytes:
    """One Server-Sent Event; JSON has no raw newlines, so one ``data:`` line suffices."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


# --- the form ---------------------------------------------------------------------------------------


def answer(
    visitor_m: float, hamster: str, hamster_m: float | None, period_label: str, units: Units
) -> Answer:
    """Compare the visitor's distance with the hamster's over one period."""
    yours = format_distance(visitor_m, units)
    if hamster_m is None or hamster_m <= 0:
        return Answer(f"Yes! {hamster} hasn't run {period_label}, and you ran {yours}.")
    hers = format_distance(hamster_m, units)
    if visitor_m >= hamster_m:
        ahead = format_distance(visitor_m - hamster_m, units)
        return Answer(f"Yes! You ran {yours}, {ahead} more than {hamster}'s {hers} {period_label}.")
    behind = format_distance(hamster_m - visitor_m, units)
    return Answer(f"Not yet: {hamster} ran {hers} {period_label}, {behind} more than your {yours}.")


# --- HTML -----------------------------------------------------------------------------------------


def _other(units: Units) -> Units:
    return "mi" if units == "km" else "km"


def _unit_word(units: Units) -> str:
    return "kilometres" if units == "km" else "miles"


def _figure(name: str, metric: str, metres: float | None, units: Units) -> str:
    if metres is None:
        return f'<dd data-hamster="{escape(name)}" data-metric="{metric}">{NO_DATA}</dd>'
    return (
        f'<dd data-hamster="{escape(name)}" data-metric="{metric}" data-metres="{metres:.3f}">'
        f"{escape(format_distance(metres, units))}</dd>"
    )


def _status(hamster: HamsterNow) -> tuple[str, str]:
    if hamster.online is None:
        return "unknown", "no live sensor"
    return ("online", "sensor online") if hamster.online else ("offline", "sensor offline")


def _hamster_card(hamster: HamsterNow, units: Units) -> str:
    name = escape(hamster.name)
    values = {
        "tonight": hamster.tonight_m,
        "last_night": hamster.last_night_m,
        "average_7": hamster.average_7_m,
        "all_time": hamster.all_time_m,
    }
    rows = "".join(
        f"<div><dt>{label}</dt>{_figure(hamster.name, metric, values[metric], units)}</div>"
        for metric, label in METRICS
    )
    state, status_text = _status(hamster)
    nights_url = f"/api/hamsters/{quote(hamster.name, safe='')}/nights?days=30"
    return (
        f'<section class="hamster" aria-labelledby="h-{name}">'
        f'<h2 id="h-{name}">{name} <span class="status {state}" data-hamster="{name}"'
        f' data-status="{state}">{status_text}</span></h2>'
        f'<dl class="figures">{rows}</dl>'
        f'<figure class="chart"><figcaption>The last 30 nights ({units})</figcaption>'
        f'<div class="chart-area" data-nights="{escape(nights_url)}" data-hamster="{name}"'
        f' role="img" aria-label="{name}\'s distance on each of the last 30 nights">'
        '<p class="hint">The chart needs JavaScript; the figures above don\'t.</p></div>'
        "</figure></section>"
    )


def _head(title: str, preview: Preview | None, scripts: Sequence[str]) -> str:
    tags = [
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        '<link rel="stylesheet" href="/static/style.css">',
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">',
    ]
    if preview is not None:
        tags += [
            f'<meta name="description" content="{escape(preview.description)}">',
            '<meta property="og:type" content="website">',
            f'<meta property="og:title" content="{escape(preview.title)}">',
            f'<meta property="og:description" content="{escape(preview.description)}">',
            f'<meta property="og:url" content="{escape(preview.url)}">',
            f'<meta property="og:image" content="{escape(preview.image)}">',
            '<meta property="og:image:width" content="1200">',
            '<meta property="og:image:height" content="630">',
            '<meta name="twitter:card" content="summary_large_image">',
            f'<meta name="twitter:title" content="{escape(preview.title)}">',
            f'<meta name="twitter:description" content="{escape(preview.description)}">',
            f'<meta name="twitter:image" content="{escape(preview.image)}">',
        ]
    tags += [f'<script src="{escape(src)}" defer></script>' for src in scripts]
    return "".join(tags)


def _document(
    title: str, body: str, units: Units, *, preview: Preview | None = None, page: str = ""
) -> str:
    scripts = ["/static/page.js"] if page else []
    return (
        '<!doctype html><html lang="en"><head>'
        f"{_head(title, preview, scripts)}</head>"
        f'<body data-units="{units}" data-page="{page}"><main>{body}</main>'
        "<footer><p>Counted revolution by revolution by hamsterbot.</p></footer>"
        "</body></html>"
    )


def _units_switch(units: Units, params: dict[str, str]) -> str:
    other = _other(units)
    query = urlencode({**params, "units": other})
    return (
        f'<p class="units">Distances in {_unit_word(units)}. '
        f'<a href="?{escape(query)}" data-units-switch="{other}">Show {_unit_word(other)}</a></p>'
    )


def _ask_form(
    hamsters: Sequence[HamsterNow],
    units: Units,
    *,
    distance: str,
    period: str,
    hamster: str,
    reply: Answer | None,
) -> str:
    first = hamsters[0].name if hamsters else "the hamster"
    options = "".join(
        f'<option value="{value}"{" selected" if value == period else ""}>{label}</option>'
        for value, label in ASK_PERIODS
    )
    which = ""
    if len(hamsters) > 1:
        names = "".join(
            f"<option{' selected' if h.name == hamster else ''}>{escape(h.name)}</option>"
            for h in hamsters
        )
        which = (
            '<label for="ask-hamster">Hamster</label>'
            f'<select id="ask-hamster" name="hamster">{names}</select>'
        )
    result = ""
    if reply is not None:
        kind = "error" if reply.error else "answer"
        result = f'<p id="answer" class="{kind}" role="status">{escape(reply.text)}</p>'
    return (
        '<section class="ask" aria-labelledby="ask-title">'
        f'<h2 id="ask-title">Have you run as much as {escape(first)}?</h2>'
        '<form method="get" action="/#answer">'
        f'<input type="hidden" name="units" value="{units}">'
        f'<label for="ask-distance">Your distance (e.g. 5 km or 3 mi)</label>'
        f'<input id="ask-distance" name="distance" type="text" inputmode="decimal"'
        f' maxlength="40" required value="{escape(distance)}">'
        f'<label for="ask-period">When</label><select id="ask-period" name="period">{options}'
        f"</select>{which}"
        '<button type="submit">Compare</button></form>'
        f"{result}</section>"
    )


def hamster_page(
    hamsters: Sequence[HamsterNow],
    units: Units,
    *,
    preview: Preview | None,
    distance: str = "",
    period: str = "tonight",
    hamster: str = "",
    reply: Answer | None = None,
) -> str:
    first = hamsters[0].name if hamsters else "my hamster"
    title = f"Have you run as much as {first}?"
    cards = "".join(_hamster_card(h, units) for h in hamsters) or (
        "<p>No hamster is counted here yet.</p>"
    )
    body = (
        f"<h1>{escape(title)}</h1>"
        f"{_units_switch(units, {})}"
        f"{cards}"
        f"{_ask_form(hamsters, units, distance=distance, period=period, hamster=hamster, reply=reply)}"
    )
    return _document(title, body, units, preview=preview, page="hamsters")


def race_page(token: str, period: str, standings: Standings, units: Units) -> str:
    title = f"The race, {standings.period_label}"
    picker = "".join(
        f'<option value="{escape(value)}"{" selected" if value == period else ""}>{label}</option>'
        for value, label in RACE_PERIODS
    )
    body = (
        f"<h1 data-race-title>{escape(title)}</h1>{_units_switch(units, {'period': period})}"
        '<form method="get" class="period">'
        f'<input type="hidden" name="units" value="{units}">'
        f'<label for="race-period">Period</label><select id="race-period" name="period">{picker}'
        '</select><button type="submit">Show</button></form>'
        f'<section class="race" data-race="{escape(token)}" data-period="{escape(period)}">'
        f"{standings_table(standings, units)}"
        f'<figure class="chart"><figcaption>The race, {escape(standings.period_label)}'
        f" ({units})</figcaption>"
        '<div class="chart-area" data-race-chart role="img"'
        ' aria-label="Each runner\'s distance adding up over the period">'
        '<p class="hint">The chart needs JavaScript; the standings above don\'t.</p>'
        "</div></figure></section>"
    )
    return _document(title, body, units, page="race")


def standings_table(standings: Standings, units: Units) -> str:
    if not standings.entries:
        return '<p class="empty" data-standings>Nobody has run yet.</p>'
    rows = "".join(
        f'<tr data-standing data-name="{escape(e.name)}" data-kind="{e.kind}"'
        f' data-metres="{e.distance_m:.3f}"><td>{e.rank}</td><td>{escape(e.name)}'
        f"{' (hamster)' if e.kind == 'hamster' else ''}</td>"
        f"<td>{escape(format_distance(e.distance_m, units))}</td></tr>"
        for e in standings.entries
    )
    return (
        '<table data-standings><caption>Standings</caption><thead><tr><th scope="col">#</th>'
        '<th scope="col">Name</th><th scope="col">Distance</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def not_found_page(units: Units) -> str:
    body = (
        "<h1>Nothing here</h1><p>This page doesn't exist, or the race link was turned off. "
        'The hamster is still running on <a href="/">the front page</a>.</p>'
    )
    return _document("Not found", body, units)


def error_page(units: Units, message: str) -> str:
    return _document("Sorry", f"<h1>Sorry</h1><p>{escape(message)}</p>", units)
