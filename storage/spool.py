"""The gateway's spool: every reading is written here before it is published, and deleted only
after the broker's PUBACK, so a broker outage of hours or a SIGKILL loses nothing.

A small SQLite file of its own (not the bot's database: a gateway has no chats or totals). ``seq``
is an AUTOINCREMENT key, so it grows for the life of the file even after rows are deleted: it is
the order the readings are published in and the ``seq`` a subscriber sees.

The standard library's sqlite3 is used synchronously, on purpose: ``add`` runs inside the wheel
source's callback, so a reading is on disk before anything else happens to it, and a WAL commit
with ``synchronous = NORMAL`` costs tens of microseconds (``python -m benchmarks``: spool write
cost per reading), nothing at one reading a second. NORMAL survives a killed process, which is the
failure the spool is for; a power cut may lose the last few readings, and the wheel's cumulative
counter makes even that cost nothing but minute resolution (the next reading credits them).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from storage.db import StorageError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    wheel TEXT NOT NULL,
    received_at REAL NOT NULL,
    payload BLOB NOT NULL,
    sensor TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_wheel_seq ON readings(wheel, seq);
CREATE TABLE IF NOT EXISTS last_published (
    wheel TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    received_at REAL NOT NULL,
    payload BLOB NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class SpooledReading:
    seq: int
    wheel: str
    received_at: float
    payload: bytes
    sensor: str


class Spool:
    """One gateway's queue of readings not yet acknowledged by the broker."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection = connection
        self.path = path

    @classmethod
    def open(cls, path: Path | str) -> Spool:
        path = Path(path)
        if str(path) != ":memory:" and not path.parent.exists():
            raise StorageError(f"{path}: the folder {path.parent} does not exist")
        try:
            # Autocommit: each statement is its own transaction, committed before it returns.
            connection = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as err:
            raise StorageError(f"{path}: cannot open the gateway spool ({err})") from err
        try:
            connection.execute("PRAGMA busy_timeout = 5000")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.executescript(_SCHEMA)
        except sqlite3.Error as err:
            connection.close()
            raise StorageError(f"{path}: not a usable gateway spool ({err})") from err
        return cls(connection, path)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, wheel: str, received_at: float, payload: bytes, sensor: str) -> int:
        """Write one reading (committed when this returns); its ``seq``."""
        cursor = self._connection.execute(
            "INSERT INTO readings (wheel, received_at, payload, sensor) VALUES (?, ?, ?, ?)",
            (wheel, received_at, payload, sensor),
        )
        return int(cursor.lastrowid or 0)

    def add_many(self, wheel: str, readings: list[tuple[float, bytes]], sensor: str) -> int:
        """Write a batch in one transaction (``gateway --replay``); how many were written."""
        with self._connection:
            self._connection.execute("BEGIN IMMEDIATE")
            self._connection.executemany(
                "INSERT INTO readings (wheel, received_at, payload, sensor) VALUES (?, ?, ?, ?)",
                [(wheel, at, payload, sensor) for at, payload in readings],
            )
        return len(readings)

    def pending(self, wheel: str, *, after: int = 0, limit: int = 100) -> list[SpooledReading]:
        """The oldest unacknowledged readings of ``wheel`` with ``seq > after``, in order."""
        rows = self._connection.execute(
            "SELECT seq, wheel, received_at, payload, sensor FROM readings "
            "WHERE wheel = ? AND seq > ? ORDER BY seq LIMIT ?",
            (wheel, after, limit),
        ).fetchall()
        return [SpooledReading(int(r[0]), r[1], float(r[2]), bytes(r[3]), r[4]) for r in rows]

    def count(self, wheel: str | None = None) -> int:
        if wheel is None:
            row = self._connection.execute("SELECT COUNT(*) FROM readings").fetchone()
        else:
            row = self._connection.execute(
                "SELECT COUNT(*) FROM readings WHERE wheel = ?", (wheel,)
            ).fetchone()
        return int(row[0])

    def acknowledged(self, readings: list[SpooledReading]) -> None:
        """The broker has them: delete them and remember the newest, in one transaction."""
        if not readings:
            return
        newest = max(readings, key=lambda r: r.seq)
        with self._connection:
            self._connection.execute("BEGIN IMMEDIATE")
            self._connection.executemany(
                "DELETE FROM readings WHERE seq = ?", [(r.seq,) for r in readings]
            )
            self._connection.execute(
                "INSERT INTO last_published (wheel, seq, received_at, payload) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (wheel) DO UPDATE SET seq = excluded.seq, "
                "received_at = excluded.received_at, payload = excluded.payload "
                "WHERE excluded.seq > last_published.seq",
                (newest.wheel, newest.seq, newest.received_at, newest.payload),
            )

    def last_reading(self, wheel: str) -> tuple[float, bytes] | None:
        """The newest reading of ``wheel`` ever spooled (published or not): where a restarted
        simulated wheel carries on, as a real sensor keeps its count."""
        row = self._connection.execute(
            "SELECT received_at, payload FROM readings WHERE wheel = ? ORDER BY seq DESC LIMIT 1",
            (wheel,),
        ).fetchone()
        if row is None:
            row = self._connection.execute(
                "SELECT received_at, payload FROM last_published WHERE wheel = ?", (wheel,)
            ).fetchone()
        return (float(row[0]), bytes(row[1])) if row else None
