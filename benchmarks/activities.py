"""``python -m benchmarks.activities [--points N ...]``: reading activity files, CPU time and memory.

For each format (GPX, TCX, FIT) and size, a file of a 1 Hz track is written to a temporary folder and read by
``bot.core.activities.read_activity`` in a fresh child process, which reports its CPU time and how far the
parse raised its peak RSS above what it was after the imports. A child per measurement keeps one file's
garbage from hiding another's peak. A figure for planning (a Pi Zero 2 has 512 MB), not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)

_CHILD = """
import json, resource, sys, time
from datetime import datetime
from bot.core import activities
import gpxpy, fitdecode, defusedxml.ElementTree
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cpu = time.process_time()
try:
    activities.read_activity(sys.argv[1], data, now=datetime.fromisoformat(sys.argv[2]))
    refused = None
except activities.UserError as err:
    refused = str(err)
cpu = time.process_time() - cpu
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"cpu_s": cpu, "peak_extra_mb": (after - before) / 1024, "refused": refused}))
"""


@dataclass(frozen=True, slots=True)
class ReadFigure:
    file_format: str
    points: int
    file_mb: float
    cpu_s: float
    peak_extra_mb: float
    refused: str | None  # over 25 MB, say


def track(points: int) -> list[tuple[datetime, float, float]]:
    """A 1 Hz lap-after-lap track at about 3.3 m/s."""
    return [
        (START + timedelta(seconds=i), 51.5 + (i % 2000) * 0.00003, -0.1 + (i // 2000) * 0.00003)
        for i in range(points)
    ]


def gpx_bytes(points: int) -> bytes:
    body = "".join(
        f'<trkpt lat="{lat:.7f}" lon="{lon:.7f}"><ele>12.0</ele>'
        f"<time>{at:%Y-%m-%dT%H:%M:%SZ}</time></trkpt>\n"
        for at, lat, lon in track(points)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="benchmarks" '
        'xmlns="http://www.topografix.com/GPX/1/1"><trk><type>running</type><trkseg>\n'
        f"{body}</trkseg></trk></gpx>\n"
    ).encode()


def tcx_bytes(points: int) -> bytes:
    body = "".join(
        f"<Trackpoint><Time>{at:%Y-%m-%dT%H:%M:%SZ}</Time><Position>"
        f"<LatitudeDegrees>{lat:.7f}</LatitudeDegrees><LongitudeDegrees>{lon:.7f}</LongitudeDegrees>"
        f"</Position><DistanceMeters>{i * 3.3:.1f}</DistanceMeters></Trackpoint>\n"
        for i, (at, lat, lon) in enumerate(track(points))
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<TrainingCenterDatabase '
        'xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"><Activities>'
        f'<Activity Sport="Running"><Id>{START:%Y-%m-%dT%H:%M:%SZ}</Id>'
        f'<Lap StartTime="{START:%Y-%m-%dT%H:%M:%SZ}"><TotalTimeSeconds>{points}</TotalTimeSeconds>'
        f"<DistanceMeters>{points * 3.3:.1f}</DistanceMeters><Track>\n{body}</Track></Lap>"
        "</Activity></Activities></TrainingCenterDatabase>\n"
    ).encode()


def fit_bytes(points: int) -> bytes:
    from tests.fit_writer import activity_fit

    return activity_fit(
        start=START,
        points=[(float(i), lat, lon) for i, (_, lat, lon) in enumerate(track(points))],
        distance_m=points * 3.3,
        timer_s=float(points),
    )


WRITERS = {"GPX": gpx_bytes, "TCX": tcx_bytes, "FIT": fit_bytes}


def measure(file_format: str, points: int, folder: Path) -> ReadFigure:
    path = folder / f"track-{points}.{file_format.lower()}"
    path.write_bytes(WRITERS[file_format](points))
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), NOW.isoformat()],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    result = json.loads(child.stdout)
    return ReadFigure(
        file_format,
        points,
        path.stat().st_size / 2**20,
        result["cpu_s"],
        result["peak_extra_mb"],
        result["refused"],
    )


def run(points: list[int]) -> list[ReadFigure]:
    with tempfile.TemporaryDirectory(prefix="hamsterbot-activities-") as folder:
        return [measure(kind, n, Path(folder)) for n in points for kind in WRITERS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.activities")
    parser.add_argument(
        "--points",
        type=int,
        nargs="+",
        default=[3_600, 14_400, 100_000],
        help="track points per file (1 Hz: 3,600 is an hour; default 3600 14400 100000)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON list on stdout")
    args = parser.parse_args(argv)
    figures = run(args.points)
    if args.json:
        print(json.dumps([_as_dict(f) for f in figures]))
        return 0
    print(f"{'format':6} {'points':>8} {'file MB':>8} {'CPU s':>7} {'peak +MB':>9}")
    for f in figures:
        print(
            f"{f.file_format:6} {f.points:>8,} {f.file_mb:>8.1f} {f.cpu_s:>7.2f} {f.peak_extra_mb:>9.0f}"
            + (f"  refused: {f.refused}" if f.refused else "")
        )
    return 0


def _as_dict(figure: ReadFigure) -> dict[str, object]:
    return {name: getattr(figure, name) for name in ReadFigure.__slots__}


if __name__ == "__main__":
    sys.exit(main())
