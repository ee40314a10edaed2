"""The one SQLite connection: WAL, pragmas, forward-only migrations, one write lock, one writer per wheel.

Every write goes through ``Database.transaction()``: ``BEGIN IMMEDIATE`` behind an asyncio lock, so the wheel
flusher and a chat command never interleave half-transactions on the shared connection. No aiosqlite object
leaves this package: a transaction hands out a ``Transaction`` (execute, executemany), reads are ``fetchall``,
``fetchone`` and ``scalar``, and ``settled()`` holds writes off while a live read adds what a writer buffers.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import aiosqlite

log = logging.getLogger(__name__)

T = TypeVar("T")

# The monthly tables hold rows from 1970 up to here, 3000-01-01T00:00:00Z: rows that older versions
# stored from implausible clocks have no month (storage.queries reads them from days or runs).
MONTHS_UNTIL = 32_503_680_000

# The bodies of the monthly rollups' triggers (the migration that adds them, below): a row that
# arrives adds to its month (_IN), a row that leaves takes itself out of it (_OUT). An UPDATE is both:
# the old row leaves and the new one arrives, so each body serves two triggers.
_DAY_IN = f"""
    WHEN NEW.day >= 0 AND NEW.day < {MONTHS_UNTIL} BEGIN
        INSERT INTO wheel_months (wheel_id, month, revolutions, estimated) VALUES (
            NEW.wheel_id, CAST(strftime('%s', NEW.day, 'unixepoch', 'start of month') AS INTEGER),
            NEW.revolutions, NEW.estimated)
        ON CONFLICT (wheel_id, month) DO UPDATE SET
            revolutions = revolutions + excluded.revolutions,
            estimated = estimated + excluded.estimated;
    END;"""
_DAY_OUT = f"""
    WHEN OLD.day >= 0 AND OLD.day < {MONTHS_UNTIL} BEGIN
        UPDATE wheel_months SET
            revolutions = revolutions - OLD.revolutions, estimated = estimated - OLD.estimated
        WHERE wheel_id = OLD.wheel_id
            AND month = CAST(strftime('%s', OLD.day, 'unixepoch', 'start of month') AS INTEGER);
    END;"""
_RUN_IN = f"""
    WHEN NEW.deleted_at IS NULL AND NEW.ran_at >= 0 AND NEW.ran_at < {MONTHS_UNTIL} BEGIN
        INSERT INTO run_months (chat_id, month, person_id, distance_m, runs) VALUES (
            NEW.chat_id, CAST(strftime('%s', NEW.ran_at, 'unixepoch', 'start of month') AS INTEGER),
            NEW.person_id, NEW.distance_m, 1)
        ON CONFLICT (chat_id, month, person_id) DO UPDATE SET
            distance_m = distance_m + excluded.distance_m, runs = runs + 1;
    END;"""
_RUN_OUT = f"""
    WHEN OLD.deleted_at IS NULL AND OLD.ran_at >= 0 AND OLD.ran_at < {MONTHS_UNTIL} BEGIN
        UPDATE run_months SET distance_m = distance_m - OLD.distance_m, runs = runs - 1
        WHERE chat_id = OLD.chat_id AND person_id = OLD.person_id
            AND month = CAST(strftime('%s', OLD.ran_at, 'unixepoch', 'start of month') AS INTEGER);
        DELETE FROM run_months
        WHERE chat_id = OLD.chat_id AND person_id = OLD.person_id AND runs <= 0
            AND month = CAST(strftime('%s', OLD.ran_at, 'unixepoch', 'start of month') AS INTEGER);
    END;"""

# Each entry is one migration, applied in its own transaction; never edit a released one, append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE wheels (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL
    );
    CREATE TABLE wheel_state (
        wheel_id INTEGER PRIMARY KEY REFERENCES wheels(id),
        last_raw INTEGER,
        high_water INTEGER,
        last_at REAL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE wheel_minutes (
        wheel_id INTEGER NOT NULL REFERENCES wheels(id),
        minute INTEGER NOT NULL,
        revolutions INTEGER NOT NULL,
        estimated INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (wheel_id, minute)
    ) WITHOUT ROWID;
    CREATE TABLE wheel_hours (
        wheel_id INTEGER NOT NULL REFERENCES wheels(id),
        hour INTEGER NOT NULL,
        revolutions INTEGER NOT NULL,
        estimated INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (wheel_id, hour)
    ) WITHOUT ROWID;
    CREATE TABLE sensor_events (
        id INTEGER PRIMARY KEY,
        wheel_id INTEGER NOT NULL REFERENCES wheels(id),
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        value REAL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX sensor_events_wheel_at ON sensor_events(wheel_id, at);
    CREATE TABLE chats (
        id INTEGER PRIMARY KEY,
        platform TEXT NOT NULL,
        chat_key TEXT NOT NULL,
        title TEXT,
        timezone TEXT,
        units TEXT,
        summary_time TEXT,
        summary_enabled INTEGER,
        created_at REAL NOT NULL,
        UNIQUE (platform, chat_key)
    );
    CREATE TABLE people (
        id INTEGER PRIMARY KEY,
        platform TEXT NOT NULL,
        user_key TEXT NOT NULL,
        display_name TEXT NOT NULL,
        units TEXT,
        updated_at REAL NOT NULL,
        UNIQUE (platform, user_key)
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL REFERENCES chats(id),
        person_id INTEGER NOT NULL REFERENCES people(id),
        distance_m REAL NOT NULL CHECK (distance_m > 0),
        duration_s REAL CHECK (duration_s IS NULL OR duration_s > 0),
        day TEXT NOT NULL,
        ran_at REAL NOT NULL,
        logged_at REAL NOT NULL,
        deleted_at REAL
    );
    CREATE INDEX runs_chat_ran_at ON runs(chat_id, ran_at);
    CREATE TABLE summary_log (
        chat_id INTEGER NOT NULL REFERENCES chats(id),
        night TEXT NOT NULL,
        sent_at REAL NOT NULL,
        late INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (chat_id, night)
    );
    """,
    # 2: a daily rollup, so a total over years reads days rather than every hour, and an index that
    # covers each person's distance in a chat, so standings read no table rows (benchmarks/query.py:
    # /race all on five years of nights). SQLite's planner passed over a partial index here.
    """
    CREATE TABLE wheel_days (
        wheel_id INTEGER NOT NULL REFERENCES wheels(id),
        day INTEGER NOT NULL,
        revolutions INTEGER NOT NULL,
        estimated INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (wheel_id, day)
    ) WITHOUT ROWID;
    INSERT INTO wheel_days (wheel_id, day, revolutions, estimated)
        SELECT wheel_id, hour - hour % 86400, SUM(revolutions), SUM(estimated)
        FROM wheel_hours GROUP BY wheel_id, hour - hour % 86400;
    CREATE INDEX runs_by_chat_cover ON runs(chat_id, ran_at, person_id, distance_m, deleted_at);
    """,
    # The identity of the counter the state belongs to (sensor, counter_format, field): a reading
    # from another counter is a new baseline. NULL: saved before this was recorded, never continued.
    """
    ALTER TABLE wheel_state ADD COLUMN counter_sensor TEXT;
    ALTER TABLE wheel_state ADD COLUMN counter_format TEXT;
    ALTER TABLE wheel_state ADD COLUMN counter_field TEXT;
    """,
    # Where a run came from: NULL for a typed /logrun, else the activity file's name. Runs from
    # files start at the file's own start time, which the duplicate check looks up per person.
    """
    ALTER TABLE runs ADD COLUMN source TEXT;
    CREATE INDEX runs_person_ran_at ON runs(person_id, ran_at);
    """,
    # A chat's race shared on the public page (/web). Only a hash of the link's token is kept: a
    # copy of the database does not open anyone's race. One link per chat; /web off deletes it.
    """
    CREATE TABLE web_links (
        chat_id INTEGER PRIMARY KEY REFERENCES chats(id),
        token_hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL
    );
    """,
    # The morning report per part (the chart, each text message): a retry after one part failed
    # sends only the parts that did not go out. Part -1 is the whole report delivered; the rows
    # of earlier versions were whole reports.
    """
    CREATE TABLE summary_log_by_part (
        chat_id INTEGER NOT NULL REFERENCES chats(id),
        night TEXT NOT NULL,
        part INTEGER NOT NULL,
        sent_at REAL NOT NULL,
        late INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (chat_id, night, part)
    );
    INSERT INTO summary_log_by_part (chat_id, night, part, sent_at, late)
        SELECT chat_id, night, -1, sent_at, late FROM summary_log;
    DROP TABLE summary_log;
    ALTER TABLE summary_log_by_part RENAME TO summary_log;
    """,
    # Monthly totals, kept by triggers, so "all time" and "this year" read about 60 rows, not
    # thousands of days or runs (benchmarks/query.py: /race all on five years was 1.1 ms of SQL).
    # Triggers, not the writers, keep them: every write of a daily rollup or a run, by this
    # process or any other (replay, an older tool), moves its month in the same transaction.
    # UTC months, keyed by their first second; rows outside 1970..3000 (stored from implausible
    # clocks by older versions) have no month and are never read by a period.
    # A month whose runs are all gone is deleted: no float residue is left, and /forget can
    # still delete the person.
    f"""
    CREATE TABLE wheel_months (
        wheel_id INTEGER NOT NULL REFERENCES wheels(id),
        month INTEGER NOT NULL,
        revolutions INTEGER NOT NULL,
        estimated INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (wheel_id, month)
    ) WITHOUT ROWID;
    CREATE TRIGGER wheel_days_add AFTER INSERT ON wheel_days{_DAY_IN}
    CREATE TRIGGER wheel_days_remove AFTER DELETE ON wheel_days{_DAY_OUT}
    CREATE TRIGGER wheel_days_change_old AFTER UPDATE ON wheel_days{_DAY_OUT}
    CREATE TRIGGER wheel_days_change_new AFTER UPDATE ON wheel_days{_DAY_IN}
    INSERT INTO wheel_months (wheel_id, month, revolutions, estimated)
        SELECT wheel_id, CAST(strftime('%s', day, 'unixepoch', 'start of month') AS INTEGER),
            SUM(revolutions), SUM(estimated)
        FROM wheel_days WHERE day >= 0 AND day < {MONTHS_UNTIL}
        GROUP BY 1, 2;
    CREATE TABLE run_months (
        chat_id INTEGER NOT NULL REFERENCES chats(id),
        month INTEGER NOT NULL,
        person_id INTEGER NOT NULL REFERENCES people(id),
        distance_m REAL NOT NULL,
        runs INTEGER NOT NULL,
        PRIMARY KEY (chat_id, month, person_id)
    ) WITHOUT ROWID;
    CREATE TRIGGER runs_add AFTER INSERT ON runs{_RUN_IN}
    CREATE TRIGGER runs_remove AFTER DELETE ON runs{_RUN_OUT}
    CREATE TRIGGER runs_change_old AFTER UPDATE ON runs{_RUN_OUT}
    CREATE TRIGGER runs_change_new AFTER UPDATE ON runs{_RUN_IN}
    INSERT INTO run_months (chat_id, month, person_id, distance_m, runs)
        SELECT chat_id, CAST(strftime('%s', ran_at, 'unixepoch', 'start of month') AS INTEGER),
            person_id, SUM(distance_m), COUNT(*)
        FROM runs WHERE deleted_at IS NULL AND ran_at >= 0 AND ran_at < {MONTHS_UNTIL}
        GROUP BY 1, 2, 3;
    """,
)


Rows = list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Query(Generic[T]):
    """SQL statements and how their rows become a value. Queries read together (``Database.read``)
    cost one trip to the SQLite thread, whatever their number."""

    statements: tuple[tuple[str, Sequence[Any]], ...]
    parse: Callable[[list[Rows]], T]


@dataclass(frozen=True, slots=True)
class Written:
    """What one statement of a transaction did."""

    rowcount: int
    lastrowid: int | None


class Transaction:
    """The open transaction's statements; the connection itself stays inside ``Database``."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> Written:
        cursor = await self._db._connection.execute(sql, params)
        return Written(cursor.rowcount, cursor.lastrowid)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._db._connection.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows read inside the transaction (a check before a write it decides)."""
        rows = await self._db._connection.execute_fetchall(sql, params)
        return [tuple(row) for row in rows]


class StorageError(Exception):
    """The database cannot be opened or is newer than this program."""


class WheelBusy(StorageError):
    """Another process is counting this wheel (one line, fit for the user)."""


class Database:
    """One aiosqlite connection shared by the whole process."""

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._connection = connection
        self.path = path
        self._write_lock = asyncio.Lock()
        self.commits = 0  # for benchmarks and the "no writes while idle" tests
        self.reads = 0  # reads by read/fetchall/fetchone, inline ones too (tests); trips: `trips`
        self.read_only = False
        self._wheel_locks: dict[int, int] = {}  # wheel id -> the fd holding its lock file
        # Every use of the connection is a function run on aiosqlite's thread by ``_execute``
        # (its cursors, commits and backups included); counting them in and out tells when that
        # thread is idle with nothing queued. Each count is written by one thread only.
        self._queued = 0
        self._finished = 0
        self._hand_off = connection._execute
        connection._execute = self._counted  # type: ignore[method-assign]

    @classmethod
    async def open(cls, path: Path | str) -> Database:
        """Open (or create) the database. A folder that cannot be written still lets an existing
        database be read: it is then opened read-only (``read_only``), and a write says why."""
        path = Path(path)
        if str(path) != ":memory:" and path.parent and not path.parent.exists():
            raise StorageError(f"{path}: the folder {path.parent} does not exist")
        if path.is_dir():
            raise StorageError(f"{path}: is a folder, not a database file")
        if not path.exists() and _cannot_write(path):
            raise StorageError(
                f"{path}: cannot create the database: the folder {path.parent} is not writable"
            )
        try:
            return await cls._open(path)
        except sqlite3.DatabaseError as err:
            problem = err
        if _cannot_write(path):
            # Another user that may write (the service) keeps -wal and -shm beside the file, and
            # mode=ro reads through them; without them nobody is writing, and immutable reads the
            # file as it stands (SQLite cannot make the -shm index in a folder it cannot write).
            for flags in ("mode=ro", "mode=ro&immutable=1"):
                try:
                    return await cls._open(path, read_only=flags)
                except sqlite3.DatabaseError as err:
                    problem = err
        raise StorageError(_describe(path, problem)) from None

    @classmethod
    async def _open(cls, path: Path, *, read_only: str = "") -> Database:
        """``read_only``: SQLite URI flags for a read-only connection, or "" to read and write."""
        target: Path | str = path
        if read_only:
            target = _uri(path, read_only)
        # check_same_thread=False: ``read(..., inline=True)`` may use the connection on the event
        # loop's thread, only while aiosqlite's thread is idle (see ``_counted``).
        pending = aiosqlite.connect(
            target, isolation_level=None, uri=bool(read_only), check_same_thread=False
        )
        try:
            connection = await pending
        except Exception as err:
            # aiosqlite stops its thread without waiting for it; if the loop closes first, the
            # thread prints an "Event loop is closed" traceback. Wait for it here.
            thread = getattr(pending, "_thread", None)
            if thread is not None and thread.is_alive():
                await asyncio.to_thread(thread.join, 5.0)
            if isinstance(err, sqlite3.DatabaseError):
                raise
            raise StorageError(f"{path}: cannot open the database ({err})") from err
        db = cls(connection, path)
        db.read_only = bool(read_only)
        try:
            if read_only:
                await db._check_schema()
            else:
                await db._configure()
                await db._migrate()
        except BaseException:
            await connection.close()
            raise
        return db

    async def _check_schema(self) -> None:
        version = await self.scalar("PRAGMA user_version")
        if version != len(MIGRATIONS):
            raise StorageError(
                f"{self.path}: read-only (its folder cannot be written) and at schema {version}, "
                f"not {len(MIGRATIONS)}: open it once where it can be written"
            )

    async def _configure(self) -> None:
        conn = self._connection
        await conn.execute("PRAGMA busy_timeout = 5000")
        mode = await self._journal_mode_wal()
        if mode.lower() != "wal" and str(self.path) != ":memory:":
            log.warning("SQLite refused WAL mode (got %s); continuing", mode or "nothing")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")

    async def _journal_mode_wal(self, attempts: int = 50) -> str:
        """``PRAGMA journal_mode = WAL``, tried again while another process creates the same file.

        Switching a new database to WAL needs an exclusive lock; when another connection is just
        creating it, SQLite answers "database is locked" at once instead of waiting out
        ``busy_timeout`` (a deadlock it avoids), so two first starts at once could fail.
        """
        for attempt in range(1, attempts + 1):
            try:
                cursor = await self._connection.execute("PRAGMA journal_mode = WAL")
                row = await cursor.fetchone()
                return str(row[0]) if row else ""
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or attempt == attempts:
                    raise
                await asyncio.sleep(0.02 * attempt)
        return ""

    async def _migrate(self) -> None:
        """Apply the missing migrations, each in its own ``BEGIN IMMEDIATE`` transaction.

        The version is read again inside each transaction: another process opening the same new
        database may have migrated between our look and our lock, and must not be migrated twice.
        An up-to-date database (every open but the first) takes no write lock at all.
        """
        if await self.scalar("PRAGMA user_version") == len(MIGRATIONS):
            return
        while True:
            async with self.transaction() as conn:
                [(version,)] = await conn.fetchall("PRAGMA user_version")
                if version > len(MIGRATIONS):
                    raise StorageError(
                        f"{self.path}: written by a newer hamsterbot (schema {version}); "
                        "upgrade hamsterbot"
                    )
                if version == len(MIGRATIONS):
                    return
                number = version + 1
                log.info("Migrating database %s to schema %d", self.path, number)
                for statement in _statements(MIGRATIONS[number - 1]):
                    await conn.execute(statement)
                # PRAGMA does not take parameters; ``number`` is our own integer.
                await conn.execute(f"PRAGMA user_version = {int(number)}")

    # --- maintenance -----------------------------------------------------------------------------

    async def quick_check(self, limit: int = 10) -> list[str]:
        """SQLite's ``quick_check``: the problems found (at most ``limit``), or [] when the file is sound."""
        rows = await self.fetchall(f"PRAGMA quick_check({int(limit)})")
        problems = [str(row[0]) for row in rows]
        if problems == ["ok"]:
            return []
        # One problem a line, without SQLite's "*** in database main ***" heading.
        lines = (" ".join(line.split()) for problem in problems for line in problem.splitlines())
        return [line for line in lines if line and not line.startswith("***")] or ["damaged"]

    async def backup(
        self, target: Path, progress: Callable[[int, int], None] | None = None
    ) -> Path:
        """A consistent copy of the database at ``target`` (a folder gets a timestamped file), checked.

        SQLite's online backup API copies every page inside one read transaction: in WAL mode the
        bot keeps writing meanwhile, and the copy is the database as of one commit. It is written
        beside ``target`` first and renamed into place, so ``target`` is never half a database.

        With ``progress`` (pages copied, pages in all) the copy goes in a hundred steps so it can be
        shown; SQLite restarts a stepped copy when another process commits meanwhile, so the copy is
        still the database as of one commit, it may only take longer.
        """
        target = backup_target(target, self.path)
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        try:
            partial.touch()  # a folder that cannot be written is said here, in one line
        except OSError as err:
            raise StorageError(
                f"{target}: cannot write the copy there ({err.strerror or err})"
            ) from None
        try:
            async with aiosqlite.connect(partial, isolation_level=None) as copy:
                if progress is None:
                    await self._connection.backup(copy)  # pages=0: all of it in one step
                else:
                    pages = int(await self.scalar("PRAGMA page_count") or 0)

                    def step(status: int, remaining: int, total: int) -> None:
                        progress(total - remaining, total)

                    await self._connection.backup(
                        copy, pages=max(pages // 100, 64), progress=step, sleep=0
                    )
                problems = [
                    str(row[0]) for row in await copy.execute_fetchall("PRAGMA quick_check(10)")
                ]
                if problems != ["ok"]:
                    raise StorageError(f"{target}: the copy fails quick_check: {problems[0]}")
                await copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return target

    # --- one writer per wheel -------------------------------------------------------------------
    # Two processes counting the same wheel would each credit every revolution (two replays of one
    # capture stored twice the truth). Whoever counts a wheel holds an exclusive flock() on a small
    # file beside the database, one per wheel: the kernel drops it when the process dies, even by
    # SIGKILL, so a crash never leaves a stale lease behind, and no heartbeat is needed.

    def wheel_lock_path(self, wheel_id: int) -> Path | None:
        """The lock file of a wheel (None for an in-memory database, which no one else can open)."""
        if str(self.path) == ":memory:":
            return None
        resolved = self.path.resolve()
        return resolved.with_name(f"{resolved.name}-wheel-{int(wheel_id)}.lock")

    def claim_wheel(self, wheel_id: int, name: str, holder: str) -> None:
        """Become the one writer of a wheel, or raise :class:`WheelBusy` at once.

        Claiming a wheel this database already holds does nothing; the claim ends at :meth:`close`.
        """
        path = self.wheel_lock_path(wheel_id)
        if path is None or wheel_id in self._wheel_locks:
            return
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise StorageError(
                f"{path}: cannot create the wheel's lock file ({err.strerror})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 200).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise WheelBusy(
                f'wheel "{name}" is being counted by another process ({other}); '
                "one wheel has one writer: stop that one first"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder}, pid {os.getpid()}\n".encode(), 0)
        self._wheel_locks[wheel_id] = fd

    async def wait_for_wheel(
        self, wheel_id: int, name: str, holder: str, poll_seconds: float = 2.0
    ) -> None:
        """:meth:`claim_wheel`, waiting (and saying so once) while another process holds it."""
        said = False
        while True:
            try:
                self.claim_wheel(wheel_id, name, holder)
                return
            except WheelBusy as busy:
                if not said:
                    log.warning("%s; waiting for it", busy)
                    said = True
            await asyncio.sleep(poll_seconds)

    def holds_wheel(self, wheel_id: int) -> bool:
        return wheel_id in self._wheel_locks or self.wheel_lock_path(wheel_id) is None

    def _release_wheels(self) -> None:
        for fd in self._wheel_locks.values():
            os.close(fd)  # closing the descriptor drops its flock
        self._wheel_locks.clear()

    async def close(self) -> None:
        try:
            await self._connection.close()
        finally:
            # After the connection: everything this writer counted is committed before another may.
            self._release_wheels()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[Transaction]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception (cancellation included).

        ``commits`` grows by one exactly when a transaction committed (live reads rely on it).

        ``durable`` (the default): the WAL is fsynced before ``COMMIT`` returns (``synchronous =
        FULL`` for this transaction), so a run or a setting the user is then told about survives a
        power cut. The connection otherwise stays at ``NORMAL`` (synced at checkpoints only): a wheel
        flush passes ``durable=False``, since a flush lost that way is credited again by the next
        reading. Cost: benchmarks/writes.py (``durable_commit_ms`` against ``normal_commit_ms``).
        """
        if self.read_only:
            raise StorageError(
                f"{self.path} is open read-only (its folder cannot be written): nothing can be changed"
            )
        async with self._write_lock:
            conn = self._connection
            if durable:
                await run_to_completion(conn.execute("PRAGMA synchronous = FULL"))
            try:
                await run_to_completion(conn.execute("BEGIN IMMEDIATE"))
                yield Transaction(self)
                await run_to_completion(conn.execute("COMMIT"))
            except BaseException:
                # Cancelled or failed: whatever was queued has finished, so this is the truth.
                if conn.in_transaction:
                    await run_to_completion(conn.execute("ROLLBACK"))
                raise
            finally:
                if durable:
                    await run_to_completion(conn.execute("PRAGMA synchronous = NORMAL"))
            self.commits += 1

    @asynccontextmanager
    async def settled(self) -> AsyncIterator[None]:
        """No write transaction is half done inside: a live read's queries and a writer's buffer
        (``WheelStore.buffered``) then describe the same moment. Reads only: a transaction started
        inside would wait for itself."""
        async with self._write_lock:
            yield

    async def _counted(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                self._finished += 1  # on aiosqlite's thread, before the result is handed back

        self._queued += 1
        return await self._hand_off(run)

    async def read(self, *queries: Query[Any], inline: bool = False) -> list[Any]:
        """The value of each query, all read in one trip to the SQLite thread.

        Each trip is a hand-off to aiosqlite's thread and back, which was most of a /race or a morning
        report on a busy machine (benchmarks/query.py). aiosqlite has no public call for several
        statements in one trip, so this queues one function on its thread (``_execute``), where it
        uses the sqlite3 connection exactly as aiosqlite's own methods do (pinned: aiosqlite <0.23).

        ``inline=True`` is for reads known to be small (index ranges of a few hundred rows: a
        /race, a morning report): when aiosqlite's thread is idle with nothing queued and no
        transaction is open, they run right here on the event loop's thread, without the trip. A
        hand-off costs more than such a read: 0.3-0.5 ms against 0.1 ms on a busy machine. The
        connection is then used by one thread at a time all the same: nothing else can queue work
        while this synchronous call holds the loop. Big reads (records over years, charts) never
        pass ``inline``: they would stall the loop.
        """
        statements = [statement for query in queries for statement in query.statements]
        connection = self._connection

        def run() -> list[Rows]:
            raw = connection._conn  # on aiosqlite's thread, or inline while it is idle
            return [raw.execute(sql, params).fetchall() for sql, params in statements]

        rowsets: list[Rows] = []
        if statements:
            self.reads += 1
            if inline and self._idle():
                rowsets = run()
            else:
                rowsets = await connection._execute(run)
        values = []
        for query in queries:
            count = len(query.statements)
            values.append(query.parse(rowsets[:count]))
            rowsets = rowsets[count:]
        return values

    @property
    def trips(self) -> int:
        """Functions run on aiosqlite's thread so far: hand-offs (tests, benchmarks)."""
        return self._queued

    def _idle(self) -> bool:
        """aiosqlite's thread has finished everything queued, and no transaction is open."""
        connection = self._connection
        return (
            self._finished == self._queued
            and connection._running
            and connection._connection is not None
            and not connection._conn.in_transaction
        )

    # One trip to the SQLite thread per query: execute, fetch and close as three awaits cost three
    # thread hand-offs, which were most of a /race on a busy machine (benchmarks/query.py).
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.reads += 1
        rows = await self._connection.execute_fetchall(sql, params)
        return [tuple(row) for row in rows]

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row. Meant for queries of one row (a key, an aggregate, LIMIT 1): it reads them all."""
        self.reads += 1
        rows = list(await self._connection.execute_fetchall(sql, params))
        return tuple(rows[0]) if rows else None

    async def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return row[0] if row else None


async def run_to_completion(awaitable: Awaitable[T]) -> T:
    """Await to the end even if the caller is cancelled meanwhile, then re-raise the cancellation.

    aiosqlite runs a statement it has queued whatever happens to the task awaiting it. Waiting for
    it keeps our idea of the transaction true: a cancelled ``BEGIN`` must not leave a transaction
    open behind our back, and a cancelled ``COMMIT`` may well have committed.
    """
    task = asyncio.ensure_future(awaitable)
    interrupted = False
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            interrupted = True
    if interrupted:
        raise asyncio.CancelledError
    return task.result()


def _uri(path: Path, flags: str) -> str:
    return f"{Path(os.path.abspath(path)).as_uri()}?{flags}"


def _cannot_write(path: Path) -> bool:
    """The folder or an existing file refuses writes (the WAL needs files beside the database)."""
    folder = path.parent if str(path.parent) else Path(".")
    return not os.access(folder, os.W_OK | os.X_OK) or (
        path.exists() and not os.access(path, os.W_OK)
    )


def _describe(path: Path, err: sqlite3.DatabaseError) -> str:
    text = str(err)
    if "file is not a database" in text:
        return f"{path}: not a hamsterbot database (not an SQLite file)"
    if "malformed" in text:
        return f"{path}: the database is damaged ({text}); restore a backup"
    return f"{path}: cannot open the database ({text})"


def backup_target(target: Path, database: Path) -> Path:
    """Where a backup to ``target`` goes: a folder gets ``NAME-YYYYmmdd-HHMMSS.db`` (UTC) inside it."""
    if target.is_dir():
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        target = target / f"{database.stem}-{stamp}.db"
    elif not target.parent.is_dir():
        raise StorageError(f"{target}: the folder {target.parent} does not exist")
    if target.resolve() == database.resolve():
        raise StorageError(f"{target}: that is the database itself")
    return target


def _statements(script: str) -> Iterable[str]:
    """The statements of a migration script, one at a time. A trigger's body holds semicolons of
    its own, so a statement ends where SQLite says it is complete, not at every semicolon."""
    statement = ""
    for part in script.split(";"):
        statement += part + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                yield statement.strip()
            statement = ""
    if statement.strip(" \n;"):
        raise ValueError(f"an incomplete statement in a migration: {statement.strip()[:60]}")
