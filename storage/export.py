"""Export: a chat's runs and the hamsters' nightly totals as CSV or JSON, and back again.

The files are meant for spreadsheets and for moving data between installs, so they carry plain metres, UTC
ISO 8601 times and the epoch seconds they came from; reading a file back gives exactly what was written.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

from storage import queries
from storage.db import Database

RUN_FIELDS = (
    "run_id",
    "chat",
    "person",
    "day",
    "ran_at",
    "ran_at_epoch",
    "distance_m",
    "duration_s",
    "logged_at_epoch",
)
NIGHT_FIELDS = (
    "hamster",
    "night",
    "start",
    "end",
    "start_epoch",
    "end_epoch",
    "revolutions",
    "estimated_revolutions",
    "distance_m",
)


@dataclass(frozen=True, slots=True)
class RunRow:
    run_id: int
    chat: str  # platform:chat
    person: str
    day: str  # the local day the runner gave, ISO
    ran_at: str  # UTC ISO 8601
    ran_at_epoch: float
    distance_m: float
    duration_s: float | None
    logged_at_epoch: float


@dataclass(frozen=True, slots=True)
class NightRow:
    hamster: str
    night: str  # local date of the evening the night starts, ISO
    start: str  # UTC ISO 8601
    end: str
    start_epoch: float
    end_epoch: float
    revolutions: int
    estimated_revolutions: int
    distance_m: float


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def run_rows(db: Database, chat_id: int | None = None) -> list[RunRow]:
    """Live runs of one chat (or every chat), oldest first."""
    where = "runs.deleted_at IS NULL"
    params: tuple = ()
    if chat_id is not None:
        where += " AND runs.chat_id = ?"
        params = (chat_id,)
    rows = await db.fetchall(
        "SELECT runs.id, chats.platform || ':' || chats.chat_key, people.display_name, runs.day, "
        "runs.ran_at, runs.distance_m, runs.duration_s, runs.logged_at "
        "FROM runs JOIN people ON people.id = runs.person_id JOIN chats ON chats.id = runs.chat_id "
        f"WHERE {where} ORDER BY runs.ran_at, runs.id",
        params,
    )
    return [
        RunRow(run_id, chat, person, day, _iso(ran_at), ran_at, distance, duration, logged_at)
        for run_id, chat, person, day, ran_at, distance, duration, logged_at in rows
    ]


def night_rows(
    hamster: str,
    circumference_m: float,
    totals: queries.BinTotals,
    night_dates: Sequence[str],
) -> list[NightRow]:
    """One row per night between consecutive ``totals.boundaries``; ``night_dates[i]`` names night ``i``."""
    edges = totals.boundaries
    return [
        NightRow(
            hamster,
            night_dates[i],
            _iso(edges[i]),
            _iso(edges[i + 1]),
            float(edges[i]),
            float(edges[i + 1]),
            int(totals.revolutions[i]),
            int(totals.estimated[i]),
            int(totals.revolutions[i]) * circumference_m,
        )
        for i in range(totals.revolutions.size)
    ]


def to_csv(rows: Iterable[RunRow | NightRow], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        values = asdict(row)
        # repr keeps every bit of a float, so a file read back is the same numbers.
        writer.writerow(
            ""
            if values[c] is None
            else repr(values[c])
            if isinstance(values[c], float)
            else values[c]
            for c in columns
        )
    return buffer.getvalue()


def runs_csv(rows: Iterable[RunRow]) -> str:
    return to_csv(rows, RUN_FIELDS)


def nights_csv(rows: Iterable[NightRow]) -> str:
    return to_csv(rows, NIGHT_FIELDS)


def to_json(runs: Sequence[RunRow], nights: Sequence[NightRow]) -> str:
    return json.dumps(
        {"runs": [asdict(r) for r in runs], "nights": [asdict(n) for n in nights]},
        ensure_ascii=False,
        indent=1,
    )


def _typed(cls: type, record: dict[str, str]) -> object:
    values: dict[str, object] = {}
    for spec in fields(cls):
        text = record[spec.name]
        kind = str(spec.type)
        if kind.startswith("int"):
            values[spec.name] = int(text)
        elif kind.startswith("float"):
            values[spec.name] = None if text == "" and "None" in kind else float(text)
        else:
            values[spec.name] = text
    return cls(**values)


def read_runs_csv(text: str) -> list[RunRow]:
    return [_typed(RunRow, record) for record in csv.DictReader(io.StringIO(text))]  # type: ignore[misc]


def read_nights_csv(text: str) -> list[NightRow]:
    return [_typed(NightRow, record) for record in csv.DictReader(io.StringIO(text))]  # type: ignore[misc]


def read_json(text: str) -> tuple[list[RunRow], list[NightRow]]:
    data = json.loads(text)
    return [RunRow(**r) for r in data["runs"]], [NightRow(**n) for n in data["nights"]]
