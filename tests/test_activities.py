"""Activity files -> Activity values: real exports, files written here, and hostile or broken ones."""

from __future__ import annotations

import gzip
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core import activities
from bot.core.activities import (
    MAX_FILE_BYTES,
    Activity,
    TrackPoint,
    haversine_m,
    read_activity,
    sport_verdict,
    summarise_track,
)
from bot.core.parsing import UserError
from tests.fit_writer import activity_fit

DATA = Path(__file__).parent / "data" / "activities"
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
START = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)
# Metres per 0.001 degree of latitude (on the mean sphere), for tracks written below.
LAT_STEP_M = haversine_m(51.5, 0.0, 51.501, 0.0)


def read(name: str, data: bytes, **kwargs) -> Activity:
    return read_activity(name, data, now=kwargs.pop("now", NOW), **kwargs)


def refused(name: str, data: bytes, **kwargs) -> str:
    with pytest.raises(UserError) as caught:
        read(name, data, **kwargs)
    return str(caught.value)


def run_points(count: int = 61, step_s: int = 10, lat_step: float = 0.0003) -> list[tuple]:
    """(seconds, lat, lon): northwards at about 3.3 m/s from (51.5, -0.1)."""
    return [(i * step_s, 51.5 + i * lat_step, -0.1) for i in range(count)]


def gpx(
    points: list[tuple] | None = None,
    *,
    start: datetime = START,
    sport: str | None = None,
    segments: list[list[tuple]] | None = None,
    times: bool = True,
    doctype: str = "",
) -> bytes:
    segments = (
        segments if segments is not None else [points if points is not None else run_points()]
    )
    body = []
    for segment in segments:
        body.append("<trkseg>")
        for seconds, lat, lon in segment:
            moment = (start + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
            when = f"<time>{moment}</time>" if times else ""
            body.append(f'<trkpt lat="{lat:.7f}" lon="{lon:.7f}"><ele>12.0</ele>{when}</trkpt>')
        body.append("</trkseg>")
    kind = f"<type>{sport}</type>" if sport else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{doctype}\n'
        '<gpx version="1.1" creator="tests" xmlns="http://www.topografix.com/GPX/1/1">\n'
        f"<trk><name>Morning Run</name>{kind}{''.join(body)}</trk></gpx>\n"
    ).encode()


def tcx(
    laps: list[dict],
    *,
    sport: str = "Running",
    activities_count: int = 1,
) -> bytes:
    """Each lap: start (datetime), seconds, distance (or None), points [(seconds, lat, lon)] or None."""
    parts = []
    for lap in laps:
        lap_start = lap["start"].strftime("%Y-%m-%dT%H:%M:%SZ")
        distance = lap.get("distance")
        xml = [
            f'<Lap StartTime="{lap_start}"><TotalTimeSeconds>{lap["seconds"]}</TotalTimeSeconds>'
        ]
        if distance is not None:
            xml.append(f"<DistanceMeters>{distance}</DistanceMeters>")
        xml.append("<Track>")
        for seconds, lat, lon in lap.get("points") or []:
            moment = (lap["start"] + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
            position = (
                ""
                if lat is None
                else f"<Position><LatitudeDegrees>{lat}</LatitudeDegrees>"
                f"<LongitudeDegrees>{lon}</LongitudeDegrees></Position>"
            )
            xml.append(f"<Trackpoint><Time>{moment}</Time>{position}</Trackpoint>")
        xml.append("</Track></Lap>")
        parts.append("".join(xml))
    activity = (
        f'<Activity Sport="{sport}"><Id>{laps[0]["start"]:%Y-%m-%dT%H:%M:%SZ}</Id>'
        + "".join(parts)
        + "</Activity>"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2">'
        f"<Activities>{activity * activities_count}</Activities></TrainingCenterDatabase>"
    ).encode()


# --- real exported files ------------------------------------------------------------------------


def test_real_fit_run_uses_the_session_summary() -> None:
    run = read("Fenix 2.fit", (DATA / "activity-small-fenix2-run.fit").read_bytes())
    assert run.file_format == "FIT" and run.sport == "running"
    assert run.distance_m == pytest.approx(9008.22) and run.distance_from == "summary"
    assert run.start == datetime(2015, 8, 15, 14, 45, 8, tzinfo=UTC)
    assert run.moving_s == pytest.approx(2832.0) and run.duration_s == pytest.approx(2832.0)


def test_real_fit_walk_counts_and_the_ride_is_refused() -> None:
    walk = read("walk.fit", (DATA / "garmin-fenix-5-walk.fit").read_bytes())
    assert walk.sport == "walking" and walk.distance_m == pytest.approx(67.85)
    message = refused("ride.fit", (DATA / "garmin-fenix-5-bike.fit").read_bytes())
    assert "cycling" in message and "runs and walks" in message


@pytest.mark.parametrize(
    ("file", "problem"),
    [("activity-filecrc.fit", "checksum"), ("activity-unexpected-eof.fit", "cut short")],
)
def test_real_damaged_fit_files_are_refused(file: str, problem: str) -> None:
    message = refused(file, (DATA / file).read_bytes())
    assert problem in message and file in message


def test_real_gpx_distance_is_the_track_and_agrees_with_gpxpy() -> None:
    import gpxpy

    data = (DATA / "korita-zbevnica.gpx").read_bytes()
    hike = read("korita-zbevnica.gpx", data)
    assert hike.file_format == "GPX" and hike.distance_from == "track" and hike.sport is None
    # gpxpy's own 2-D length (its own formula, no jump filter) within 0.5 %
    assert hike.distance_m == pytest.approx(gpxpy.parse(data.decode()).length_2d(), rel=0.005)
    assert hike.start == datetime(2010, 10, 3, 9, 36, 30, tzinfo=UTC)
    assert hike.elapsed_s == pytest.approx(13381)
    assert 0 < hike.moving_s < hike.elapsed_s  # type: ignore[operator]


def test_real_gpx_driven_partly_by_car_is_refused() -> None:
    data = (DATA / "around-visnjan-with-car.gpx").read_bytes()
    assert "world record" in refused("visnjan.gpx", data)


def test_real_tcx_run_uses_the_lap_summary() -> None:
    run = read("test.tcx", (DATA / "test.tcx").read_bytes())
    assert run.file_format == "TCX" and run.sport == "running"
    assert run.distance_from == "summary"
    assert run.distance_m == pytest.approx(4689.24267578)
    assert run.moving_s == pytest.approx(1992.78)
    assert run.start == datetime(2012, 12, 26, 21, 29, 53, tzinfo=UTC)


# --- GPX written here -----------------------------------------------------------------------------


def test_gpx_track_distance_moving_and_elapsed_time() -> None:
    run = read("run.gpx", gpx(run_points(61)))
    expected = haversine_m(51.5, -0.1, 51.5 + 60 * 0.0003, -0.1)
    assert run.distance_m == pytest.approx(expected, rel=1e-6)
    assert run.start == START and run.elapsed_s == 600 and run.moving_s == 600
    assert run.sport is None and run.distance_from == "track"


def test_gpx_pauses_count_as_elapsed_not_moving() -> None:
    points = run_points(31) + [(600 + i * 10, 51.5 + (30 + i) * 0.0003, -0.1) for i in range(31)]
    run = read("run.gpx", gpx(points))
    assert run.elapsed_s == 900 and run.moving_s == 600


@pytest.mark.parametrize("sport", ["running", "Run", "trail_running", "walking", "hiking", "9"])
def test_gpx_runs_walks_and_unknown_sports_count(sport: str) -> None:
    assert read("run.gpx", gpx(sport=sport)).distance_m > 1000


@pytest.mark.parametrize("sport", ["cycling", "biking", "Ride", "swimming"])
def test_gpx_other_sports_are_refused(sport: str) -> None:
    assert "only log runs and walks" in refused("ride.gpx", gpx(sport=sport))


def test_a_gps_jump_adds_nothing() -> None:
    clean = read("run.gpx", gpx(run_points(61))).distance_m
    points = run_points(61)
    seconds, lat, lon = points[30]
    points[30] = (seconds, lat + 0.05, lon)  # 5.5 km north for one fix
    jumpy = read("run.gpx", gpx(points)).distance_m
    # The stray fix costs the two short steps around it (about 66 m), never 11 km.
    assert clean - 2 * 0.0003 * LAT_STEP_M / 0.001 - 1 <= jumpy <= clean


def test_segments_are_not_joined() -> None:
    first = run_points(31)
    second = [(s + 1200, lat + 0.1, lon) for s, lat, lon in run_points(31)]
    run = read("run.gpx", gpx(segments=[first, second]))
    one = haversine_m(51.5, -0.1, 51.5 + 30 * 0.0003, -0.1)
    assert run.distance_m == pytest.approx(2 * one, rel=1e-6)


@pytest.mark.parametrize(
    ("points", "problem"),
    [
        ([], "no track points"),
        ([(0, 51.5, -0.1)], "single track point"),
        ([(i * 10, 51.5, -0.1) for i in range(20)], "zero length"),
    ],
)
def test_gpx_without_a_real_track_is_refused(points: list, problem: str) -> None:
    assert problem in refused("run.gpx", gpx(points))


def test_gpx_without_times_is_refused() -> None:
    assert "can't tell when" in refused("run.gpx", gpx(times=False))


def test_future_and_unset_dates_are_refused() -> None:
    assert "in the future" in refused("run.gpx", gpx(start=NOW + timedelta(hours=1)))
    assert read("run.gpx", gpx(start=NOW - timedelta(minutes=5))).start  # just finished
    assert "no believable date" in refused("run.gpx", gpx(start=datetime(1999, 6, 1, tzinfo=UTC)))
    old = gpx(start=NOW - timedelta(days=400))
    assert "more than a year ago" in refused("run.gpx", old, oldest=NOW - timedelta(days=365))
    assert read("run.gpx", old).start == NOW - timedelta(days=400)


def test_faster_than_the_world_record_is_refused() -> None:
    # 0.003 degrees (330 m) every 10 s: 33 m/s would be a GPS jump; 0.0011 (122 m) is a car.
    car = gpx(run_points(61, lat_step=0.0011))
    assert "world record" in refused("drive.gpx", car)


def test_gpx_in_latin1_and_with_a_bom() -> None:
    latin = gpx().replace(b"UTF-8", b"ISO-8859-1").replace(b"Morning Run", "Café".encode("latin-1"))
    assert read("latin.gpx", latin).distance_m > 1000
    assert read("bom.gpx", b"\xef\xbb\xbf" + gpx()).distance_m > 1000


# --- hostile XML --------------------------------------------------------------------------------

BOMB = (
    '<!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
)


@pytest.mark.parametrize(
    "doctype",
    [
        BOMB,
        '<!DOCTYPE gpx [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE gpx SYSTEM "http://127.0.0.1:9/gpx.dtd">',
    ],
)
def test_xml_bombs_and_external_entities_are_refused(doctype: str) -> None:
    data = gpx(doctype=doctype).replace(b"Morning Run", b"&d;" if "ENTITY a" in doctype else b"&x;")
    assert "XML bombs" in refused("bomb.gpx", data)
    data = tcx([{"start": START, "seconds": 600, "distance": 2000}])
    data = data.replace(b"?>", b"?>" + doctype.replace("gpx", "TrainingCenterDatabase").encode(), 1)
    assert "XML bombs" in refused("bomb.tcx", data)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "is empty"),
        (b"hello, hamster", "isn't a GPX, FIT or TCX"),
        (b"<html><body>nope</body></html>", "not GPX or TCX"),
        (b"<gpx><trk>", "cut short"),
        (b"<gpx><trk></gpx>", "well-formed"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "isn't a GPX, FIT or TCX"),
    ],
)
def test_files_that_are_not_activities(data: bytes, problem: str) -> None:
    assert problem in refused("upload.gpx", data)


def test_over_25_mb_is_refused_before_reading() -> None:
    assert "over 25 MB" in refused("huge.gpx", b" " * (MAX_FILE_BYTES + 1))


def test_gpx_cut_short_is_refused() -> None:
    data = gpx()
    assert "cut short" in refused("run.gpx", data[: len(data) // 2])


# --- TCX written here -----------------------------------------------------------------------------


def test_tcx_prefers_the_laps_distance_over_the_track() -> None:
    laps = [
        {"start": START, "seconds": 300, "distance": 1000.0, "points": run_points(31)},
        {
            "start": START + timedelta(seconds=300),
            "seconds": 310.5,
            "distance": 1000.0,
            "points": [
                (s, 51.5 + 0.009 + i * 0.0003, -0.1) for i, (s, _, _) in enumerate(run_points(31))
            ],
        },
    ]
    run = read("laps.tcx", tcx(laps))
    assert run.distance_m == 2000.0 and run.distance_from == "summary"
    assert run.moving_s == pytest.approx(610.5) and run.elapsed_s == pytest.approx(610.5)
    assert run.start == START and run.sport == "running"


def test_tcx_without_lap_distance_uses_the_track() -> None:
    run = read("track.tcx", tcx([{"start": START, "seconds": 600, "points": run_points(61)}]))
    assert run.distance_from == "track"
    assert run.distance_m == pytest.approx(haversine_m(51.5, -0.1, 51.518, -0.1), rel=1e-6)


def test_tcx_treadmill_run_has_no_positions_but_counts() -> None:
    points = [(i * 10, None, None) for i in range(10)]
    run = read(
        "treadmill.tcx",
        tcx([{"start": START, "seconds": 1800, "distance": 5000, "points": points}]),
    )
    assert run.distance_m == 5000 and run.moving_s == 1800


def test_tcx_refusals() -> None:
    lap = {"start": START, "seconds": 1800, "distance": 5000.0}
    assert "biking" in refused("ride.tcx", tcx([lap], sport="Biking"))
    assert "one file each" in refused("two.tcx", tcx([lap], activities_count=2))
    assert "no track" in refused("empty.tcx", tcx([{"start": START, "seconds": 600}]))
    assert "no activity" in refused(
        "course.tcx", b'<TrainingCenterDatabase xmlns="x"><Courses/></TrainingCenterDatabase>'
    )
    assert read("other.tcx", tcx([lap], sport="Other")).distance_m == 5000
    # An absurd summary is said as a typed /logrun says it, not echoed as a 309-digit number.
    huge = refused("huge.tcx", tcx([{**lap, "distance": "1e308"}]))
    assert "more than 1000 km" in huge and len(huge) < 120


# --- FIT written here -----------------------------------------------------------------------------


def test_fit_session_summary_wins_over_the_track() -> None:
    data = activity_fit(
        start=START, points=run_points(61), distance_m=2050.5, timer_s=580.25, elapsed_s=640
    )
    run = read("run.fit", data)
    assert run.distance_m == pytest.approx(2050.5) and run.distance_from == "summary"
    assert run.moving_s == pytest.approx(580.25) and run.elapsed_s == pytest.approx(640)
    assert run.start == START and run.sport == "running"


def test_fit_without_a_session_uses_the_records() -> None:
    run = read("run.fit", activity_fit(start=START, points=run_points(61), sport=None))
    assert run.distance_from == "track" and run.sport is None
    assert run.distance_m == pytest.approx(haversine_m(51.5, -0.1, 51.518, -0.1), rel=1e-4)
    assert run.elapsed_s == 600


def test_fit_refusals() -> None:
    good = activity_fit(start=START, points=run_points(61), distance_m=2000, timer_s=600)
    assert "cut short" in refused("run.fit", good[:-40])
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    assert "checksum" in refused("run.fit", bytes(flipped))
    assert "cycling" in refused(
        "ride.fit", activity_fit(start=START, sport="cycling", distance_m=20000)
    )
    assert "course" in refused("course.fit", activity_fit(start=START, file_type="course"))
    assert "no distance and no track" in refused(
        "nothing.fit", activity_fit(start=START, timer_s=60)
    )
    assert "single track point" in refused(
        "one.fit", activity_fit(start=START, points=run_points(1), sport=None)
    )
    future = activity_fit(start=NOW + timedelta(days=2), distance_m=5000, timer_s=1500)
    assert "in the future" in refused("future.fit", future)


# --- gzip -------------------------------------------------------------------------------------------


def test_gzipped_files_are_read() -> None:
    assert read("run.gpx.gz", gzip.compress(gpx())).distance_m > 1000
    fit = activity_fit(start=START, distance_m=5000, timer_s=1500)
    assert read("run.fit.gz", gzip.compress(fit)).distance_m == 5000


def test_bad_gzip_files_are_refused() -> None:
    packed = gzip.compress(gpx())
    assert "cut short" in refused("run.gpx.gz", packed[: len(packed) // 2])
    assert "damaged" in refused("run.gpx.gz", packed[:10] + b"\xff" * 40)
    bomb = gzip.compress(b" " * (MAX_FILE_BYTES + 10), compresslevel=9)
    assert len(bomb) < 100_000 and "unzips to over 25 MB" in refused("bomb.gpx.gz", bomb)
    assert "is empty" in refused("empty.gz", gzip.compress(b""))


# --- small pure parts -------------------------------------------------------------------------------


def test_sport_verdicts() -> None:
    assert sport_verdict(None) == sport_verdict("generic") == sport_verdict("1") == "unknown"
    assert sport_verdict("running") == sport_verdict("walking") == sport_verdict("hiking") == "run"
    assert sport_verdict("cycling") == sport_verdict("e biking") == "other"


def test_file_names_are_cleaned_for_display() -> None:
    assert activities.clean_file_name("C:\\Users\\me\\run.gpx") == "run.gpx"
    assert activities.clean_file_name("../../etc/passwd") == "passwd"
    assert activities.clean_file_name("a\x00b\nc.fit") == "abc.fit"
    assert len(activities.clean_file_name("x" * 500 + ".gpx")) == activities.MAX_NAME_CHARS
    assert activities.clean_file_name("") == "the file"


def test_summarise_track_counts_jumps() -> None:
    t0 = START
    points = [
        TrackPoint(51.5, 0.0, t0),
        TrackPoint(51.501, 0.0, t0 + timedelta(seconds=30)),
        TrackPoint(52.0, 0.0, t0 + timedelta(seconds=31)),  # 55 km in a second
        TrackPoint(51.502, 0.0, t0 + timedelta(seconds=60)),  # and back
        TrackPoint(51.503, 0.0, t0 + timedelta(seconds=90)),
    ]
    summary = summarise_track([points])
    assert summary.jumps == 2 and summary.points == 5
    assert summary.distance_m == pytest.approx(2 * LAT_STEP_M, rel=1e-6)
    assert math.isclose(summary.moving_s, 60)


# --- nothing escapes --------------------------------------------------------------------------------

_SEEDS = [
    activity_fit(start=START, points=run_points(20), distance_m=2000, timer_s=600),
    gpx(run_points(20)),
    tcx([{"start": START, "seconds": 600, "distance": 2000, "points": run_points(20)}]),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(_SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 10_000),
)
def test_damaged_files_give_an_activity_or_a_user_error(seed: bytes, edits, cut: int) -> None:
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    data = data[: max(1, len(data) - cut % 50)] if cut % 3 == 0 else data
    try:
        read("fuzz.bin", bytes(data))
    except UserError as err:
        assert "couldn't make sense" not in str(err)  # every failure foreseen, none by the fallback


def test_the_reading_benchmark_runs_at_a_trivial_size() -> None:
    """No timing asserted: `python -m benchmarks.activities` reports those."""
    from benchmarks import activities as bench

    figures = bench.run([30])
    assert [f.file_format for f in figures] == ["GPX", "TCX", "FIT"]
    assert all(f.refused is None and f.points == 30 and f.cpu_s >= 0 for f in figures)
    assert read("t.gpx", bench.gpx_bytes(30), now=bench.NOW).distance_m == pytest.approx(
        read("t.fit", bench.fit_bytes(30), now=bench.NOW).distance_m, rel=0.05
    )
