"""Activity files from watches and apps (GPX, FIT, TCX, optionally gzipped) -> one ``Activity``.

Pure: bytes in, a value or ``UserError`` out, no I/O. The caller runs ``read_activity`` in a thread (a
25 MB file takes a while on a Pi) and decides what to do with the value. Every way a file can be bad
(not an activity file, truncated, a wrong checksum, an XML bomb or external entity, too big, no distance,
a single point, a date in the future, a bike ride) ends as a ``UserError`` whose text names the problem;
library exceptions never escape.

Rules:
- The format is read from the bytes (gzip magic, FIT's ``.FIT`` signature, the XML root element), not
  trusted from the file name.
- Distance comes from the file's own summary where it has one (FIT session ``total_distance``, the sum of
  TCX laps' ``DistanceMeters``), else from the track: haversine between consecutive points of a segment,
  skipping any step faster than a runner can go (a GPS jump), so a teleport adds nothing.
- Moving time: FIT ``total_timer_time``, TCX laps' ``TotalTimeSeconds``; for GPX the steps between points
  at walking speed or faster, no longer than ``MAX_STEP_S``. Elapsed time: first to last timestamp.
- XML is parsed with defusedxml and no DTD at all: GPX and TCX never need one, and a DTD is how entity
  bombs and external entities get in. gpxpy then reads text that has passed that check.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from bot.core.parsing import (
    MAX_DISTANCE_M,
    UserError,
    fastest_plausible_seconds,
    format_distance,
)

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 25 * 1024 * 1024
# Faster than Usain Bolt's top speed (12.4 m/s): a step this fast between two fixes is the GPS jumping.
RUNNER_MAX_SPEED_MPS = 12.5
# Slower than this between two fixes is standing still (for GPX moving time).
MOVING_MIN_SPEED_MPS = 0.5
# A longer gap between two fixes is a pause (the watch was stopped), not moving time.
MAX_STEP_S = 120.0
# Watches' clocks drift and phones upload late; more than this ahead of our clock is a wrong date.
FUTURE_TOLERANCE = timedelta(minutes=10)
# Before this a watch's clock was never set (FIT counts from 1989, a missing GPX time parses as 1901).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_NAME_CHARS = 64
EARTH_RADIUS_M = 6_371_008.8

Format = Literal["GPX", "FIT", "TCX"]
FILE_HINT = (
    "Send a .gpx, .fit or .tcx file exported from your watch or app (a .gz of one works too)."
)


@dataclass(frozen=True, slots=True)
class Activity:
    """One run or walk read from a file. Times are aware UTC; durations in seconds."""

    source: str  # the file's name as sent, cleaned for display
    file_format: Format
    sport: str | None  # the file's own sport word, lower-case; None when it names none
    distance_m: float
    distance_from: Literal["summary", "track"]
    start: datetime
    moving_s: float | None
    elapsed_s: float | None

    @property
    def duration_s(self) -> float | None:
        """The time a runner would quote: moving time where known, else elapsed."""
        return self.moving_s or self.elapsed_s or None


@dataclass(frozen=True, slots=True)
class TrackPoint:
    lat: float
    lon: float
    at: datetime | None


@dataclass(frozen=True, slots=True)
class TrackSummary:
    distance_m: float
    moving_s: float
    points: int
    jumps: int  # steps skipped as faster than a runner


# --- the entry point ----------------------------------------------------------------------------


def read_activity(
    file_name: str, data: bytes, *, now: datetime, oldest: datetime | None = None
) -> Activity:
    """The run in ``data``, checked: a run or walk (or no sport named), with a distance, not in the future
    (nor before ``oldest`` when given). Raises ``UserError`` naming the problem."""
    name = clean_file_name(file_name)
    try:
        activity = _read(name, data)
    except UserError:
        raise
    except Exception:  # a file nobody foresaw: the sender gets a sentence, the log the details
        log.warning("%s: unexpected trouble reading it", name, exc_info=True)
        raise UserError(f"I couldn't make sense of {name}. {FILE_HINT}") from None
    return check_activity(activity, now=now, oldest=oldest)


def _read(name: str, data: bytes) -> Activity:
    if len(data) > MAX_FILE_BYTES:
        raise UserError(
            f"{name} is over {MAX_FILE_BYTES // 2**20} MB; that's more than any run needs."
        )
    if not data:
        raise UserError(f"{name} is empty. {FILE_HINT}")
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, name)
    # The readers import this module's values, so they are imported here, at first use.
    from bot.core import activity_formats

    kind = sniff(data)
    if kind == "FIT":
        return activity_formats.read_fit(name, data)
    if kind == "XML":
        return activity_formats.read_xml(name, data)
    raise UserError(f"{name} isn't a GPX, FIT or TCX file. {FILE_HINT}")


def check_activity(
    activity: Activity, *, now: datetime, oldest: datetime | None = None
) -> Activity:
    name = activity.source
    verdict = sport_verdict(activity.sport)
    if verdict == "other":
        raise UserError(
            f"{name} is a {activity.sport} activity; I only log runs and walks. "
            "Keep racing the hamster on foot!"
        )
    if not math.isfinite(activity.distance_m) or activity.distance_m < 1.0:
        raise UserError(f"{name} has no distance in it, so there is nothing to log.")
    if activity.distance_m > MAX_DISTANCE_M:
        # Said as a typed /logrun says it, not as the file's 300-digit number.
        raise UserError(f"{name} says more than 1000 km in one go; that's no run.")
    if activity.start > now + FUTURE_TOLERANCE:
        raise UserError(
            f"{name} starts on {activity.start:%Y-%m-%d %H:%M} UTC, in the future. "
            "Is the watch's clock right?"
        )
    if activity.start < EARLIEST:
        raise UserError(f"{name} has no believable date (the watch's clock wasn't set).")
    if oldest is not None and activity.start < oldest:
        raise UserError(
            f"{name} is from {activity.start:%Y-%m-%d}, more than a year ago; "
            "the command line's `hamsterbot import` takes older runs."
        )
    duration = activity.duration_s
    if duration and duration < fastest_plausible_seconds(activity.distance_m):
        raise UserError(
            f"{name}: {format_distance(activity.distance_m, 'km')} in {duration / 60:.0f} min would "
            "beat the world record. Was that a ride or a drive?"
        )
    return activity


def clean_file_name(file_name: str) -> str:
    """The last path part, printable, at most ``MAX_NAME_CHARS``: safe to show and to store."""
    base = re.split(r"[\\/]", file_name or "")[-1]
    shown = "".join(ch for ch in base if ch.isprintable()).strip()
    if len(shown) > MAX_NAME_CHARS:
        shown = shown[: MAX_NAME_CHARS - 1] + "…"
    return shown or "the file"


def sniff(data: bytes) -> Literal["FIT", "XML", "unknown"]:
    if len(data) >= 12 and data[0] in (12, 14) and data[8:12] == b".FIT":
        return "FIT"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "XML"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 XML (rare, but valid)
        return "XML"
    return "unknown"


_RUN_WORDS = ("run", "walk", "jog", "hik", "trek", "stroll", "treadmill", "trail", "orienteering")
_NO_SPORT = frozenset({"", "generic", "other", "unknown", "all", "none", "activity", "workout"})


def sport_verdict(sport: str | None) -> Literal["run", "unknown", "other"]:
    """Runs and walks count; no sport named (or a bare number, as some apps write) is given the benefit
    of the doubt; any other named sport (cycling, swimming...) does not count."""
    if sport is None:
        return "unknown"
    word = sport.strip().casefold()
    if word in _NO_SPORT or word.isdigit():
        return "unknown"
    if any(part in word for part in _RUN_WORDS):
        return "run"
    return "other"


def sport_word(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip().replace("_", " ")
    text = "".join(ch for ch in text if ch.isprintable())[:40]
    return text.casefold() or None


# --- gzip -----------------------------------------------------------------------------------------


def _gunzip(data: bytes, name: str) -> bytes:
    """Unzip at most ``MAX_FILE_BYTES`` (a zip bomb stops there)."""
    unzip = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        inner = unzip.decompress(data, MAX_FILE_BYTES + 1)
    except zlib.error:
        raise UserError(f"{name} is a damaged .gz file. {FILE_HINT}") from None
    if len(inner) > MAX_FILE_BYTES:
        raise UserError(
            f"{name} unzips to over {MAX_FILE_BYTES // 2**20} MB; that's more than any run needs."
        )
    if not unzip.eof:
        raise UserError(
            f"{name} is cut short (the .gz file is incomplete). Try exporting it again."
        )
    if not inner:
        raise UserError(f"{name} is empty. {FILE_HINT}")
    return inner


# --- tracks ---------------------------------------------------------------------------------------


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def summarise_track(segments: list[list[TrackPoint]]) -> TrackSummary:
    """Distance and moving time over each segment's consecutive points (nothing between segments: the watch
    was paused). A step faster than a runner is a GPS jump: it adds nothing and the next step starts from
    where the GPS now says we are, so one stray fix costs two short steps, never a detour."""
    distance = moving = 0.0
    points = jumps = 0
    for segment in segments:
        points += len(segment)
        for a, b in itertools.pairwise(segment):
            step = haversine_m(a.lat, a.lon, b.lat, b.lon)
            seconds = (b.at - a.at).total_seconds() if a.at and b.at else None
            if seconds is not None:
                if step > RUNNER_MAX_SPEED_MPS * max(seconds, 1.0):
                    jumps += 1
                    continue
                if 0 < seconds <= MAX_STEP_S and step >= MOVING_MIN_SPEED_MPS * seconds:
                    moving += seconds
            distance += step
    return TrackSummary(distance, moving, points, jumps)


def elapsed_s(first: datetime | None, last: datetime | None) -> float | None:
    if first is None or last is None:
        return None
    seconds = (last - first).total_seconds()
    return seconds if seconds > 0 else None


def from_track(
    name: str, segments: list[list[TrackPoint]], what: str
) -> tuple[float, float | None]:
    """(distance, moving seconds) from the points, or UserError when they cannot make a run."""
    track = summarise_track(segments)
    if track.points == 0:
        raise UserError(f"{name} has no {what} and no track, so there is nothing to log.")
    if track.points == 1:
        raise UserError(f"{name} has a single track point: that's not a run yet.")
    if track.distance_m < 1.0:
        raise UserError(f"{name}'s track never moves (zero length), so there is nothing to log.")
    if track.jumps:
        log.info("%s: skipped %d GPS jumps faster than a runner", name, track.jumps)
    return track.distance_m, track.moving_s or None
