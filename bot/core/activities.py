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

import io
import itertools
import logging
import math
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bot.core.parsing import UserError, fastest_plausible_seconds, format_distance

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

_SEMICIRCLE_DEGREES = 180.0 / 2**31


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
    kind = sniff(data)
    if kind == "FIT":
        return _read_fit(name, data)
    if kind == "XML":
        return _read_xml(name, data)
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


def _sport_word(value: object) -> str | None:
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


def _elapsed(first: datetime | None, last: datetime | None) -> float | None:
    if first is None or last is None:
        return None
    seconds = (last - first).total_seconds()
    return seconds if seconds > 0 else None


def _from_track(
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


# --- FIT --------------------------------------------------------------------------------------------


def _read_fit(name: str, data: bytes) -> Activity:
    import fitdecode  # type: ignore[import-untyped]  # lazily: only files need it

    file_type: object = None
    created: datetime | None = None
    sessions: list[dict[str, Any]] = []
    points: list[TrackPoint] = []
    first_at = last_at = None
    try:
        with fitdecode.FitReader(
            io.BytesIO(data),
            check_crc=fitdecode.CrcCheck.RAISE,
            error_handling=fitdecode.ErrorHandling.IGNORE,
        ) as reader:
            for frame in reader:
                if frame.frame_type != fitdecode.FIT_FRAME_DATA:
                    continue
                if frame.name == "file_id" and file_type is None:
                    file_type = frame.get_value("type", fallback=None)
                    created = _aware(frame.get_value("time_created", fallback=None))
                elif frame.name == "session":
                    sessions.append(
                        {
                            field: frame.get_value(field, fallback=None)
                            for field in (
                                "sport",
                                "start_time",
                                "total_distance",
                                "total_timer_time",
                                "total_elapsed_time",
                            )
                        }
                    )
                elif frame.name == "record":
                    at = _aware(frame.get_value("timestamp", fallback=None))
                    if at is not None:
                        first_at = first_at or at
                        last_at = at
                    lat = frame.get_value("position_lat", fallback=None)
                    lon = frame.get_value("position_long", fallback=None)
                    if isinstance(lat, int) and isinstance(lon, int):
                        points.append(
                            TrackPoint(lat * _SEMICIRCLE_DEGREES, lon * _SEMICIRCLE_DEGREES, at)
                        )
    except fitdecode.FitCRCError:
        raise UserError(
            f"{name} is damaged: its checksum doesn't match. Try exporting it again."
        ) from None
    except fitdecode.FitEOFError:
        raise UserError(f"{name} is cut short (truncated). Try exporting it again.") from None
    except fitdecode.FitHeaderError:
        raise UserError(f"{name} isn't a FIT file I can read (bad header). {FILE_HINT}") from None
    except Exception as err:  # fitdecode raises plain struct/Key/Value errors on crafted bytes too
        log.info("%s: unreadable FIT file: %s: %s", name, type(err).__name__, err)
        raise UserError(f"{name} is a damaged FIT file. Try exporting it again.") from None

    if file_type not in (None, "activity"):
        raise UserError(f"{name} is a FIT {file_type} file, not a recorded activity. {FILE_HINT}")
    if sessions:
        return _fit_sessions(name, sessions, points, first_at, last_at)
    # No session message (the watch stopped before writing it): the track is all there is.
    start = first_at or created
    if start is None:
        raise UserError(f"{name} has no times in it, so I can't tell when you ran.")
    distance, moving = _from_track(name, [points], "summary")
    return Activity(
        name, "FIT", None, distance, "track", start, moving, _elapsed(first_at, last_at)
    )


def _fit_sessions(
    name: str,
    sessions: list[dict[str, Any]],
    points: list[TrackPoint],
    first_at: datetime | None,
    last_at: datetime | None,
) -> Activity:
    """One session, or the run/walk legs of a multisport file (a triathlon's run counts, its ride not)."""
    if len(sessions) > 1:
        legs = [s for s in sessions if sport_verdict(_sport_word(s["sport"])) == "run"]
        sessions = legs or sessions[:1]
    sport = _sport_word(sessions[0]["sport"])
    start = _aware(sessions[0]["start_time"]) or first_at
    if start is None:
        raise UserError(f"{name} has no times in it, so I can't tell when you ran.")
    moving = _total(sessions, "total_timer_time")
    elapsed = _total(sessions, "total_elapsed_time") or _elapsed(first_at, last_at)
    distance = _total(sessions, "total_distance")
    if distance is not None and distance >= 1.0:
        return Activity(name, "FIT", sport, distance, "summary", start, moving, elapsed)
    if (
        sport_verdict(sport) == "other"
    ):  # refuse a ride for what it is, not for its missing distance
        return Activity(name, "FIT", sport, 0.0, "summary", start, moving, elapsed)
    track_distance, track_moving = _from_track(name, [points], "distance")
    return Activity(
        name, "FIT", sport, track_distance, "track", start, moving or track_moving, elapsed
    )


def _total(sessions: list[dict[str, Any]], field: str) -> float | None:
    values = [s[field] for s in sessions if isinstance(s[field], int | float) and s[field] > 0]
    return float(sum(values)) if values else None


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- XML: GPX and TCX -------------------------------------------------------------------------------


def _read_xml(name: str, data: bytes) -> Activity:
    tag = _checked_root(name, data)
    if tag == "gpx":
        return _read_gpx(name, data)
    if tag == "TrainingCenterDatabase":
        import defusedxml.ElementTree as safe_xml  # type: ignore[import-untyped]

        return _read_tcx(name, safe_xml.fromstring(data, forbid_dtd=True))
    raise UserError(f"{name} is XML but not GPX or TCX. {FILE_HINT}")


def _checked_root(name: str, data: bytes) -> str:
    """The root element's name, after reading the whole document with defusedxml, no DTD allowed.

    Streamed, each element dropped once read: the check costs no memory, which matters because gpxpy
    then builds its own objects (about 300 MB for a 22 MB GPX of 240,000 points)."""
    from xml.etree.ElementTree import ParseError

    import defusedxml.ElementTree as safe_xml  # type: ignore[import-untyped]
    from defusedxml import DefusedXmlException  # type: ignore[import-untyped]

    root = ""
    try:
        for event, element in safe_xml.iterparse(
            io.BytesIO(data), events=("start", "end"), forbid_dtd=True
        ):
            if event == "start":
                root = root or _local(element.tag)
            else:
                element.clear()
    except DefusedXmlException:
        raise UserError(
            f"{name} declares XML entities or a DTD, which I don't read (that's how XML bombs work). "
            f"{FILE_HINT}"
        ) from None
    except (ParseError, LookupError, ValueError) as err:  # LookupError: an unknown encoding
        log.info("%s: unreadable XML: %s", name, err)
        if "no element found" in str(err) or "unclosed token" in str(err):
            raise UserError(f"{name} is cut short (truncated). Try exporting it again.") from None
        raise UserError(f"{name} isn't well-formed XML. {FILE_HINT}") from None
    return root


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _xml_text(data: bytes, name: str) -> str:
    """Text for gpxpy, which wants a str: UTF-8 (with or without BOM), else the declared encoding."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    declared = re.match(rb"""^<\?xml[^>]*encoding=["']([A-Za-z0-9._-]{1,40})["']""", data[:200])
    try:
        if declared:
            return data.decode(declared.group(1).decode("ascii"))
        return data.decode("utf-16")
    except (LookupError, UnicodeDecodeError):
        raise UserError(f"{name} isn't in a text encoding I can read. {FILE_HINT}") from None


def _read_gpx(name: str, data: bytes) -> Activity:
    import gpxpy  # lazily: only files need it
    import gpxpy.gpx

    try:
        gpx = gpxpy.parse(_xml_text(data, name))
    except gpxpy.gpx.GPXException as err:
        log.info("%s: unreadable GPX: %s", name, err)
        raise UserError(
            f"{name} isn't a GPX file I can read ({_short(err)}). {FILE_HINT}"
        ) from None
    tracks = gpx.tracks
    segments = [
        [TrackPoint(p.latitude, p.longitude, _aware(p.time)) for p in segment.points]
        for track in tracks
        for segment in track.segments
    ]
    times = [p.at for segment in segments for p in segment if p.at is not None]
    sport = next((_sport_word(t.type) for t in tracks if t.type), None)
    if not any(segments):
        raise UserError(f"{name} has no track points, so there is nothing to log.")
    start = min(times) if times else _aware(gpx.time)
    if start is None:
        raise UserError(
            f"{name} has no times in it, so I can't tell when you ran. "
            "Log it by typing, e.g. /logrun 5 km yesterday"
        )
    distance, moving = _from_track(name, segments, "distance")
    elapsed = _elapsed(start, max(times)) if times else None
    return Activity(name, "GPX", sport, distance, "track", start, moving, elapsed)


def _short(err: Exception) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 60 else text[:59] + "…"


def _read_tcx(name: str, root: Any) -> Activity:
    activities = [el for el in root.iter() if _local(el.tag) == "Activity"]
    if not activities:
        raise UserError(f"{name} has no activity in it (is it a course?). {FILE_HINT}")
    if len(activities) > 1:
        raise UserError(f"{name} holds {len(activities)} activities; send them one file each.")
    activity = activities[0]
    sport = _sport_word(activity.get("Sport"))
    laps = [el for el in activity if _local(el.tag) == "Lap"]
    lap_distances = [_child_float(lap, "DistanceMeters") for lap in laps]
    lap_times = [_child_float(lap, "TotalTimeSeconds") for lap in laps]
    lap_starts = [_parse_time(lap.get("StartTime")) for lap in laps]
    segments = []
    for lap in laps:
        for track in (el for el in lap if _local(el.tag) == "Track"):
            segment = []
            for point in (el for el in track if _local(el.tag) == "Trackpoint"):
                at = _parse_time(_child_text(point, "Time"))
                position = next((el for el in point if _local(el.tag) == "Position"), None)
                if position is None:
                    continue
                lat = _child_float(position, "LatitudeDegrees")
                lon = _child_float(position, "LongitudeDegrees")
                if lat is not None and lon is not None:
                    segment.append(TrackPoint(lat, lon, at))
            segments.append(segment)
    times = [t for t in lap_starts if t] + [
        p.at for segment in segments for p in segment if p.at is not None
    ]
    start = min(times) if times else _parse_time(_child_text(activity, "Id"))
    if start is None:
        raise UserError(f"{name} has no times in it, so I can't tell when you ran.")
    moving = sum(t for t in lap_times if t and t > 0) or None
    ends = [p.at for segment in segments for p in segment if p.at is not None]
    ends += [
        lap_start + timedelta(seconds=seconds)
        for lap_start, seconds in zip(lap_starts, lap_times, strict=True)
        if lap_start and seconds and seconds > 0
    ]
    elapsed = _elapsed(start, max(ends)) if ends else None
    summary = sum(d for d in lap_distances if d and d > 0)
    if summary >= 1.0:
        return Activity(name, "TCX", sport, summary, "summary", start, moving, elapsed)
    if sport_verdict(sport) == "other":
        return Activity(name, "TCX", sport, 0.0, "summary", start, moving, elapsed)
    distance, track_moving = _from_track(name, segments, "lap distance")
    return Activity(name, "TCX", sport, distance, "track", start, moving or track_moving, elapsed)


def _child(element: Any, tag: str) -> Any:
    return next((el for el in element if _local(el.tag) == tag), None)


def _child_text(element: Any, tag: str) -> str | None:
    child = _child(element, tag)
    return child.text.strip() if child is not None and child.text else None


def _child_float(element: Any, tag: str) -> float | None:
    text = _child_text(element, tag)
    if text is None or len(text) > 40:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _parse_time(text: str | None) -> datetime | None:
    """ISO 8601 as TCX writes it (``2012-12-26T21:29:53Z``, fractions and offsets too); naive is UTC."""
    if not text or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return _aware(moment)
