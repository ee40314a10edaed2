"""The readers of each activity file format: FIT (fitdecode), GPX (gpxpy) and TCX (plain XML).

Each takes a file name and bytes already checked by ``activities.read_activity`` (size, gzip, sniffed
format) and returns an unchecked ``Activity`` or raises ``UserError``. The rules are in ``activities``.
"""

from __future__ import annotations

import io
import logging
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.activities import (
    FILE_HINT,
    Activity,
    TrackPoint,
    elapsed_s,
    from_track,
    sport_verdict,
    sport_word,
)
from bot.core.parsing import UserError

log = logging.getLogger(__name__)

_SEMICIRCLE_DEGREES = 180.0 / 2**31


# --- FIT --------------------------------------------------------------------------------------------


def read_fit(name: str, data: bytes) -> Activity:
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
    distance, moving = from_track(name, [points], "summary")
    return Activity(
        name, "FIT", None, distance, "track", start, moving, elapsed_s(first_at, last_at)
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
        legs = [s for s in sessions if sport_verdict(sport_word(s["sport"])) == "run"]
        sessions = legs or sessions[:1]
    sport = sport_word(sessions[0]["sport"])
    start = _aware(sessions[0]["start_time"]) or first_at
    if start is None:
        raise UserError(f"{name} has no times in it, so I can't tell when you ran.")
    moving = _total(sessions, "total_timer_time")
    elapsed = _total(sessions, "total_elapsed_time") or elapsed_s(first_at, last_at)
    distance = _total(sessions, "total_distance")
    if distance is not None and distance >= 1.0:
        return Activity(name, "FIT", sport, distance, "summary", start, moving, elapsed)
    if (
        sport_verdict(sport) == "other"
    ):  # refuse a ride for what it is, not for its missing distance
        return Activity(name, "FIT", sport, 0.0, "summary", start, moving, elapsed)
    track_distance, track_moving = from_track(name, [points], "distance")
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


def read_xml(name: str, data: bytes) -> Activity:
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
    sport = next((sport_word(t.type) for t in tracks if t.type), None)
    if not any(segments):
        raise UserError(f"{name} has no track points, so there is nothing to log.")
    start = min(times) if times else _aware(gpx.time)
    if start is None:
        raise UserError(
            f"{name} has no times in it, so I can't tell when you ran. "
            "Log it by typing, e.g. /logrun 5 km yesterday"
        )
    distance, moving = from_track(name, segments, "distance")
    elapsed = elapsed_s(start, max(times)) if times else None
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
    sport = sport_word(activity.get("Sport"))
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
    elapsed = elapsed_s(start, max(ends)) if ends else None
    summary = sum(d for d in lap_distances if d and d > 0)
    if summary >= 1.0:
        return Activity(name, "TCX", sport, summary, "summary", start, moving, elapsed)
    if sport_verdict(sport) == "other":
        return Activity(name, "TCX", sport, 0.0, "summary", start, moving, elapsed)
    distance, track_moving = from_track(name, segments, "lap distance")
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
