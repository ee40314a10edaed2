"""Credited revolutions -> minute buckets, hourly and daily rollups and counter state, in one transaction.

The counter state is written in the same transaction as the buckets it produced. After a crash either both are
on disk or neither is; in the second case the next reading's difference from the persisted counter credits the
lost revolutions again, exactly once. Nothing is written while the wheel is idle.

Readers never flush: a live figure is the stored rows plus ``buffered``/``buffered_minutes`` (what is in memory,
including a flush on its way to the disk), both read inside ``Database.settled()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass

from sensors.counter import CounterIdentity, CounterState, Credit
from storage.db import Database, run_to_completion

log = logging.getLogger(__name__)

MINUTE = 60
HOUR = 3600
DAY = 86400  # UTC days: the daily rollup is for long totals, which cut only at their ends


def _upsert(table: str, key: str) -> str:
    return (
        f"INSERT INTO {table} (wheel_id, {key}, revolutions, estimated) VALUES (?, ?, ?, ?) "
        f"ON CONFLICT (wheel_id, {key}) DO UPDATE SET "
        "revolutions = revolutions + excluded.revolutions, "
        "estimated = estimated + excluded.estimated"
    )


# Minute buckets and their hourly and daily rollups: the same upsert, our own table names.
_UPSERTS = (
    _upsert("wheel_minutes", "minute"),
    _upsert("wheel_hours", "hour"),
    _upsert("wheel_days", "day"),
)


@dataclass(frozen=True, slots=True)
class SensorEvent:
    at: float
    kind: str  # connected, disconnected, battery, baseline, reset, glitch, rebaseline, ...
    value: float | None = None
    detail: str = ""


# Revolutions credited after a gap longer than this are spread over its last 31 days only: the
# sensor was away a month, when exactly the hamster ran then is unknowable anyway, and the split
# costs O(minutes) in time and rows (a clock gone years astray once looped 4.3e9 times here).
MAX_SPREAD_MINUTES = 31 * 24 * 60


def spread_credit(credit: Credit) -> list[tuple[int, int]]:
    """Split a credit over the minutes of ``(start, end]`` in proportion to time, exactly.

    At most ``MAX_SPREAD_MINUTES`` buckets: a longer interval is cut to its last ones.

    Returns ``(minute_start_epoch, revolutions)`` pairs with non-zero revolutions whose sum is exactly
    ``credit.revolutions``. Integer milliseconds keep the split free of float rounding.
    """
    revolutions = credit.revolutions
    end_ms = round(credit.end * 1000)
    # A hard bound on the work and the rows: a longer gap is spread over its last MAX_SPREAD_MINUTES.
    minute_ms = MINUTE * 1000
    earliest_ms = ((end_ms - 1) // minute_ms - MAX_SPREAD_MINUTES + 1) * minute_ms
    start_ms = max(round(credit.start * 1000), earliest_ms)
    if end_ms <= start_ms:
        return [((round(credit.end * 1000) // 1000) // MINUTE * MINUTE, revolutions)]
    span = end_ms - start_ms
    # The reading at ``end`` belongs to its minute; ``start`` itself was already counted before.
    first_minute = (start_ms // 1000) // MINUTE
    last_minute = ((end_ms - 1) // 1000) // MINUTE
    if first_minute == last_minute and revolutions > 0:
        # Within one minute (readings a second apart, nearly all of them): the loop below would
        # give that minute every revolution.
        return [(first_minute * MINUTE, revolutions)]
    if last_minute - first_minute + 1 > revolutions:
        return _spread_sparse(revolutions, start_ms, span, first_minute, last_minute)
    buckets = []
    given = 0
    for minute in range(first_minute, last_minute + 1):
        boundary = min((minute + 1) * minute_ms, end_ms)
        cumulative = revolutions * (boundary - start_ms) // span
        if cumulative > given:
            buckets.append((minute * MINUTE, cumulative - given))
            given = cumulative
    return buckets


def _spread_sparse(
    revolutions: int, start_ms: int, span: int, first_minute: int, last_minute: int
) -> list[tuple[int, int]]:
    """Fewer revolutions than minutes: place each revolution where the cumulative share crosses it."""
    minute_ms = MINUTE * 1000
    counts: dict[int, int] = defaultdict(int)
    for k in range(1, revolutions + 1):
        # Smallest instant at which revolutions * (t - start) // span >= k.
        instant = start_ms + -(-k * span // revolutions)
        minute = min(max((instant - 1) // minute_ms, first_minute), last_minute)
        counts[minute] += 1
    return [(minute * MINUTE, n) for minute, n in sorted(counts.items())]


async def _load_state(db: Database, wheel_id: int) -> CounterState:
    row = await db.fetchone(
        "SELECT last_raw, high_water, last_at, counter_sensor, counter_format, counter_field "
        "FROM wheel_state WHERE wheel_id = ?",
        (wheel_id,),
    )
    if row is None:
        return CounterState(None, None, None)
    last_raw, high_water, last_at, sensor, counter_format, field = row
    identity = (
        None
        if counter_format is None or field is None
        else CounterIdentity(sensor, counter_format, field)
    )
    return CounterState(last_raw, high_water, last_at, identity)


class WheelStore:
    """Buffers one wheel's credits and events and writes them in one transaction per flush."""

    def __init__(self, db: Database, wheel_id: int, name: str, state: CounterState) -> None:
        self._db = db
        self.wheel_id = wheel_id
        self.name = name
        self.state = state  # the counter state that matches what is on disk plus the buffer
        self._minutes: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        self._events: list[SensorEvent] = []
        self._dirty = False
        self._flushing = asyncio.Lock()
        # A flush's minutes from the moment they leave the buffer until their transaction is over,
        # and the value of ``Database.commits`` once that transaction has committed.
        self._in_flight: dict[int, list[int]] = {}
        self._landed_at_commit: int | None = None

    @classmethod
    async def open(cls, db: Database, name: str) -> WheelStore:
        """Load (or create) the wheel called ``name`` and its persisted counter state."""
        wheel_id = await db.scalar("SELECT id FROM wheels WHERE name = ?", (name,))
        if wheel_id is None:  # reads only when it exists: a read-only database still opens
            async with db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO wheels (name, created_at) VALUES (?, ?) "
                    "ON CONFLICT (name) DO NOTHING",
                    (name, time.time()),
                )
            wheel_id = await db.scalar("SELECT id FROM wheels WHERE name = ?", (name,))
        return cls(db, wheel_id, name, await _load_state(db, wheel_id))

    async def reload(self) -> None:
        """Read the persisted counter state again (another writer may have moved it meanwhile)."""
        if self._dirty:
            raise RuntimeError(f"{self.name}: reloading the counter state would drop the buffer")
        self.state = await _load_state(self._db, self.wheel_id)

    @property
    def db(self) -> Database:
        return self._db

    @property
    def pending(self) -> bool:
        return self._dirty

    def record(self, credit: Credit | None, events: list[SensorEvent], state: CounterState) -> None:
        """Buffer one counter update. Only credits and events make the wheel dirty."""
        if credit is not None:
            column = 1 if credit.estimated else 0
            for minute, revolutions in spread_credit(credit):
                bucket = self._minutes[minute]
                bucket[0] += revolutions
                bucket[1] += revolutions * column
            self._dirty = True
        if events:
            self._events.extend(events)
            self._dirty = True
        self.state = state

    def _unwritten(self) -> tuple[dict[int, list[int]], ...]:
        """The minute buckets not on disk yet: the buffer, and a flush's until it committed."""
        landed = self._landed_at_commit
        if self._in_flight and (landed is None or self._db.commits < landed):
            return (self._minutes, self._in_flight)
        return (self._minutes,)

    def buffered(self, start: float, end: float) -> int:
        """Revolutions not on disk yet in minutes ``start <= minute < end`` (live reads).

        Call it inside ``Database.settled()`` together with the stored rows it completes.
        """
        return sum(
            r
            for minutes in self._unwritten()
            for minute, (r, _) in minutes.items()
            if start <= minute < end
        )

    def buffered_minutes(self, start: float, end: float) -> list[tuple[int, int, int]]:
        """(minute, revolutions, estimated) in memory with ``start <= minute < end``, oldest first."""
        merged: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for minutes in self._unwritten():
            for minute, (r, e) in minutes.items():
                if start <= minute < end:
                    merged[minute][0] += r
                    merged[minute][1] += e
        return [(minute, r, e) for minute, (r, e) in sorted(merged.items())]

    def add_event(self, event: SensorEvent) -> None:
        self._events.append(event)
        self._dirty = True

    async def flush(self) -> bool:
        """Write the buffer; returns whether anything was committed. On failure the buffer is kept.

        Flushes of one wheel never overlap: if one failed while a later one succeeded, the later
        one would store counter state newer than buckets still waiting in memory, and a crash
        then would lose those revolutions for good.
        """
        async with self._flushing:
            if not self._dirty:
                return False
            minutes, events, state = self._minutes, self._events, self.state
            self._minutes, self._events, self._dirty = defaultdict(lambda: [0, 0]), [], False
            self._in_flight, self._landed_at_commit = minutes, None
            write = asyncio.ensure_future(self._write(minutes, events, state))
            try:
                await run_to_completion(write)
            except BaseException:
                # Cancelled after the commit (SIGTERM, a timed-out command): the buckets are on
                # disk and must not be written again. Otherwise they go back into the buffer.
                if write.cancelled() or write.exception() is not None:
                    self._restore(minutes, events)
                raise
            finally:
                self._in_flight, self._landed_at_commit = {}, None
            return True

    def _restore(self, minutes: dict[int, list[int]], events: list[SensorEvent]) -> None:
        for minute, (revolutions, estimated) in minutes.items():
            bucket = self._minutes[minute]
            bucket[0] += revolutions
            bucket[1] += estimated
        self._events[:0] = events
        self._dirty = True

    async def _write(
        self, minutes: dict[int, list[int]], events: list[SensorEvent], state: CounterState
    ) -> None:
        hours: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        days: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for minute, (revolutions, estimated) in minutes.items():
            for bucket in (hours[minute // HOUR * HOUR], days[minute // DAY * DAY]):
                bucket[0] += revolutions
                bucket[1] += estimated
        wheel = self.wheel_id
        # Not durable: a flush lost to a power cut is credited again by the next reading, and
        # an fsync per flush would be most of a replay's time.
        async with self._db.transaction(durable=False) as conn:
            # The write lock is ours: the next commit is this transaction's.
            self._landed_at_commit = self._db.commits + 1
            # Queued together: aiosqlite runs them in order on its thread, back to back, instead of
            # waking the event loop between statements (most of a flush's CPU). If one fails, the
            # rest still run before the ROLLBACK, which undoes them all the same.
            statements: list[Awaitable[object]] = [
                conn.executemany(sql, [(wheel, t, r, e) for t, (r, e) in buckets.items()])
                for sql, buckets in zip(_UPSERTS, (minutes, hours, days), strict=True)
            ]
            if events:  # most flushes have none, and each statement is a trip to the SQLite thread
                statements.append(
                    conn.executemany(
                        "INSERT INTO sensor_events (wheel_id, at, kind, value, detail) "
                        "VALUES (?, ?, ?, ?, ?)",
                        [(wheel, e.at, e.kind, e.value, e.detail) for e in events],
                    )
                )
            identity = state.identity
            statements.append(
                conn.execute(
                    "INSERT INTO wheel_state (wheel_id, last_raw, high_water, last_at, updated_at, "
                    "counter_sensor, counter_format, counter_field) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (wheel_id) DO UPDATE SET "
                    "last_raw = excluded.last_raw, high_water = excluded.high_water, "
                    "last_at = excluded.last_at, updated_at = excluded.updated_at, "
                    "counter_sensor = excluded.counter_sensor, "
                    "counter_format = excluded.counter_format, "
                    "counter_field = excluded.counter_field",
                    (
                        wheel,
                        state.last_raw,
                        state.high_water,
                        state.last_at,
                        time.time(),
                        identity.sensor if identity else None,
                        identity.counter_format if identity else None,
                        identity.field if identity else None,
                    ),
                )
            )
            await asyncio.gather(*statements)
