"""``hamsterbot`` subcommands.

Exit codes: 0 success, 1 internal error, 2 wrong usage or bad configuration. A user's mistake prints one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from bot import __version__
from bot.config import Config, ConfigError, WebSettings, defaults, load
from storage.db import StorageError

log = logging.getLogger("hamsterbot")

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2
# The demo's history is fed through the counting pipeline at start: a year of nights at most.
MAX_DEMO_HISTORY_NIGHTS = 366
MAX_DEMO_LEAD_HOURS = 24 * 7


class UsageError(Exception):
    """Wrong usage: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the usage is one `--help` away.
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _config(args: argparse.Namespace) -> Config:
    db = Path(args.db) if getattr(args, "db", None) else None
    return load(Path(args.config) if getattr(args, "config", None) else None, database=db)


def _setup_logging(level: str, *, quiet: bool = False) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request URL, and Telegram puts the bot token in the URL.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


# --- subcommands --------------------------------------------------------------------------------


async def cmd_run(args: argparse.Namespace) -> int:
    from bot import app

    config = _config(args)
    _setup_logging(config.bot.log_level)
    await app.run(
        config,
        record=Path(args.record) if args.record else None,
        sync_commands=args.sync_commands,
    )
    return EXIT_OK


async def cmd_demo(args: argparse.Namespace) -> int:
    from bot import app
    from bot.demo import DEMO_DATABASE, fill_history, plan_demo
    from bot.frontends.console import run_console
    from bot.wheels import process_name

    if not args.speedup > 0 or not math.isfinite(args.speedup):
        raise UsageError(f"--speedup: expected a positive number, got {args.speedup:g}")
    if not 0 <= args.history_nights <= MAX_DEMO_HISTORY_NIGHTS:
        raise UsageError(
            f"--history-nights: expected 0 to {MAX_DEMO_HISTORY_NIGHTS}, got {args.history_nights}"
        )
    lead = args.lead_hours
    if lead is not None and not (math.isfinite(lead) and 0 <= lead <= MAX_DEMO_LEAD_HOURS):
        # datetime cannot place NaN or a clock 100,000 years back: refused here, not a traceback.
        raise UsageError(f"--lead-hours: expected 0 to {MAX_DEMO_LEAD_HOURS}, got {lead:g}")
    config = defaults(Path(args.db) if args.db else Path(DEMO_DATABASE))
    _setup_logging(config.bot.log_level, quiet=not args.verbose)
    if not args.no_web:
        # Imported now (aiohttp takes a few hundred ms), not once the demo clock runs at 600x.
        from bot.frontends import web, web_reads  # noqa: F401
    tz = ZoneInfo(config.bot.timezone)
    runtime = await app.open_runtime(config, writable=True)
    try:
        # Her previous nights go in at once, through the same counting pipeline a sensor feeds;
        # then tonight runs live at the demo speed, and the chat's clock is the demo clock.
        start = fast_until = None
        for index, hamster in enumerate(config.hamsters):
            pipeline = runtime.pipelines[hamster.name]
            await pipeline.claim(process_name())  # the demo counts: one writer per wheel
            plan = plan_demo(
                time.time(),
                tz,
                seed=config.simulation.seed + index,
                circumference_m=hamster.circumference_m,
                last_reading_at=pipeline.counter.state.last_at,
                history_nights=args.history_nights,
                lead_hours=args.lead_hours,
            )
            await fill_history(pipeline, config.simulation.seed + index, plan, tz)
            start, fast_until = plan.live_from, plan.fast_until
        clock = app.DemoClock(speedup=args.speedup, start=start, fast_until=fast_until)
        app.start_wheel_sources(runtime, clock)
        if not args.no_web:
            url = await app.start_web(runtime, config.web or WebSettings(), clock, next_free=True)
            print(f"The hamster's page: {url}", flush=True)
        if sys.stdin.isatty():
            opened = datetime.fromtimestamp(clock(), tz).strftime("%a %d %b %H:%M")
            print(
                f"Demo: Ursula's last {args.history_nights} nights are in {config.bot.database}; "
                f"tonight runs live from {opened} at {args.speedup:g}x speed. "
                "Try /hamster, /race, /hamster stats."
            )
        await run_console(runtime.core, user=args.user, clock=clock, image_dir=Path(args.image_dir))
    finally:
        await runtime.close()
    return EXIT_OK


async def cmd_console(args: argparse.Namespace) -> int:
    from bot import app
    from bot.frontends.console import run_console

    config = _config(args)
    _setup_logging(config.bot.log_level, quiet=not args.verbose)
    runtime = await app.open_runtime(config)
    try:
        if args.with_wheels:
            app.start_wheel_sources(runtime)
        await run_console(
            runtime.core, user=args.user, chat_id=args.chat, image_dir=Path(args.image_dir)
        )
    finally:
        await runtime.close()
    return EXIT_OK


async def cmd_say(args: argparse.Namespace) -> int:
    from bot import app
    from bot.frontends.console import answer, context, render

    config = _config(args)
    _setup_logging(config.bot.log_level, quiet=True)
    runtime = await app.open_runtime(config)
    try:
        now = time.time()
        ctx = context(chat_id=args.chat, user=args.user, now=now)
        reply = await answer(runtime.core, ctx, args.text)
        if reply is not None:
            print(render(reply, Path(args.image_dir), now))
    finally:
        await runtime.close()
    return EXIT_OK


async def cmd_replay(args: argparse.Namespace) -> int:
    from bot.progress import Progress
    from bot.wheels import WheelPipeline
    from sensors.capture import CaptureProblem, open_capture, read_capture
    from sensors.plausible import plausible_reading_time
    from storage.db import Database

    config = _config(args)
    _setup_logging(config.bot.log_level, quiet=True)
    hamster = config.hamster(args.wheel)
    if hamster is None:
        known = ", ".join(h.name for h in config.hamsters)
        raise UsageError(f'no hamster called "{args.wheel}" in the configuration (known: {known})')
    path = Path(args.file)
    db = await Database.open(config.bot.database)
    try:
        # replay is a one-shot CLI run: nothing else shares this loop, so blocking reads are fine.
        handle = open_capture(path)
    except OSError as err:
        await db.close()
        raise UsageError(f"{path}: cannot read it ({err.strerror})") from None
    fed = problems = stale = 0
    try:
        pipeline = await WheelPipeline.open(db, hamster)
        # Notifications from before the wheel's last stored reading were counted already (the same
        # capture replayed twice, or a capture overlapping the live run): skipping them keeps
        # replay idempotent instead of letting old counter values look like a sensor reset.
        counted_until = pipeline.counter.state.last_at
        if counted_until is not None and not plausible_reading_time(counted_until, time.time()):
            # Stored by a version that trusted capture times (say, milliseconds read as seconds):
            # skipping everything before the year 57,900 would skip every capture for good.
            counted_until = None
        next_flush = -math.inf
        read = 0  # characters read so far, for the progress bar (about bytes: captures are ASCII)

        def counted(lines: Iterable[str]) -> Iterator[str]:
            nonlocal read
            for line in lines:
                read += len(line)
                yield line

        with handle, Progress(_size(path), "notifications") as progress:
            for item in read_capture(counted(handle)):
                if isinstance(item, CaptureProblem):
                    problems += 1
                    progress.erase()
                    print(f"{path}:{item.line_no}: skipped: {item.reason}", file=sys.stderr)
                    continue
                if not fed & 0xFFF:
                    progress.update(read, fed)
                if counted_until is not None and item.received_at <= counted_until:
                    stale += 1
                    continue
                pipeline.feed(item.payload, item.received_at)
                fed += 1
                # Flush on the capture's own clock, as the live process would.
                if item.received_at >= next_flush:
                    await pipeline.flush()
                    next_flush = item.received_at + config.bot.flush_seconds
        await pipeline.flush()
    finally:
        await db.close()
    metres = pipeline.credited * hamster.circumference_m
    print(
        f"Replayed {fed} notifications into {hamster.name}: credited {pipeline.credited} "
        f"revolutions ({metres / 1000:.3f} km); {problems} lines skipped, "
        f"{pipeline.malformed} malformed payloads ignored."
    )
    if stale:
        print(f"{stale} notifications from before the wheel's last reading were already counted.")
    return EXIT_OK


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


async def cmd_gateway(args: argparse.Namespace) -> int:
    from bot import app, gateway

    config = _config(args)
    _setup_logging(config.bot.log_level)
    gateway.check_gateway_config(config)
    if args.replay is None:
        if args.wheel is not None:
            raise UsageError("--wheel goes with --replay FILE")
        unredact = app._redact_tokens(config)
        try:
            await gateway.run_gateway(config)
        finally:
            unredact()
        return EXIT_OK
    from sensors.capture import CaptureProblem, read_capture

    if args.wheel is None:
        raise UsageError("--replay FILE needs --wheel NAME")
    hamster = config.hamster(args.wheel)
    if hamster is None:
        known = ", ".join(h.name for h in config.hamsters)
        raise UsageError(f'no hamster called "{args.wheel}" in the configuration (known: {known})')
    path = Path(args.replay)
    try:
        # A one-shot CLI run: nothing else shares this loop yet, so a blocking read is fine.
        text = path.read_text(encoding="utf-8", errors="replace")  # noqa: ASYNC240
    except OSError as err:
        raise UsageError(f"{path}: cannot read it ({err.strerror})") from None
    readings = []
    for item in read_capture(text.splitlines()):
        if isinstance(item, CaptureProblem):
            print(f"{path}:{item.line_no}: skipped: {item.reason}", file=sys.stderr)
        else:
            readings.append((item.received_at, item.payload))
    spooled, published = await gateway.replay_through_gateway(config, hamster, readings)
    print(
        f"Published {published} readings of {hamster.name} to {config.mqtt.host}:"
        f"{config.mqtt.port} ({spooled} spooled from {path}); every one acknowledged."
    )
    return EXIT_OK


def _parse_when(text: str | None, tz: ZoneInfo, flag: str) -> float | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f'{flag}: expected an ISO date or time like 2026-11-28T06:00, got "{text}"'
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)  # naive times are in the configured timezone
    return moment.timestamp()


async def cmd_totals(args: argparse.Namespace) -> int:
    from storage import queries
    from storage.db import Database

    config = _config(args)
    _setup_logging(config.bot.log_level, quiet=True)
    tz = ZoneInfo(config.bot.timezone)
    since = _parse_when(args.since, tz, "--since")
    since = 0.0 if since is None else since
    until = _parse_when(args.until, tz, "--until")
    until = time.time() + 86400 * 366 * 100 if until is None else until
    if until <= since:
        raise UsageError(f"--until {args.until} is not after --since {args.since}")
    if not config.bot.database.exists():
        raise UsageError(f"{config.bot.database}: no such database")
    db = await Database.open(config.bot.database)
    try:
        wheels: list[dict[str, object]] = []
        for wheel in await queries.wheels(db):
            total = await queries.wheel_total(db, wheel.id, since, until)
            hamster = config.hamster(wheel.name)
            circumference = hamster.circumference_m if hamster else None
            wheels.append(
                {
                    "name": wheel.name,
                    "revolutions": total.revolutions,
                    "distance_m": round(total.revolutions * circumference, 3)
                    if circumference
                    else None,
                    "estimated_revolutions": total.estimated,
                }
            )
        run_totals = await queries.run_totals_by_chat(db, since, until)
        runs = [
            {"chat": chat, "user": user, "distance_m": round(distance, 3)}
            for chat, user, distance in run_totals
        ]
    finally:
        await db.close()
    result = {"wheels": wheels, "runs": runs}
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for row in wheels:
            distance = row["distance_m"]
            shown = (
                f"{distance / 1000:.3f} km" if isinstance(distance, float) else "unknown wheel size"
            )
            print(f"{row['name']}: {row['revolutions']} revolutions, {shown}")
        for chat, user, distance in run_totals:
            print(f"{chat} {user}: {distance / 1000:.3f} km")
    return EXIT_OK


async def cmd_export(args: argparse.Namespace) -> int:
    from bot import app
    from bot.core.reads import chat_settings
    from bot.core.runs import export_nights
    from storage import chats as chat_store
    from storage import export

    config = _config(args)
    _setup_logging(config.bot.log_level, quiet=True)
    platform, _, key = (args.chat or "").partition(":")
    if args.chat and not (platform and key):
        raise UsageError(f'--chat: expected PLATFORM:ID like telegram:-1001234, got "{args.chat}"')
    if not config.bot.database.exists():
        raise UsageError(f"{config.bot.database}: no such database")
    runtime = await app.open_runtime(config)
    try:
        chat = None
        if args.chat:
            chat = await chat_store.get_chat(runtime.db, platform, key)
            if chat is None:
                raise UsageError(f'no chat "{args.chat}" in the database')
        settings = chat_settings(config, chat)
        runs = await export.run_rows(runtime.db, chat.id if chat else None)
        nights = await export_nights(
            runtime.core, settings, time.time(), runtime.core.scope_for(chat)
        )
    finally:
        await runtime.close()
    if args.format == "json":
        print(export.to_json(runs, nights))
    elif args.nights:
        print(export.nights_csv(nights), end="")
    else:
        print(export.runs_csv(runs), end="")
    return EXIT_OK


async def cmd_summary(args: argparse.Namespace) -> int:
    from datetime import date

    from bot import app
    from bot.core.periods import latest_morning
    from bot.core.reads import chat_settings
    from bot.core.summary import compose_report
    from bot.frontends.console import render
    from storage import chats as chat_store

    config = _config(args)
    _setup_logging(config.bot.log_level, quiet=True)
    day = None
    if args.date:
        try:
            day = date.fromisoformat(args.date.strip())
        except ValueError:
            raise UsageError(f'--date: expected YYYY-MM-DD, got "{args.date}"') from None
    platform, _, key = (args.chat or "").partition(":")
    if args.chat and not (platform and key):
        raise UsageError(f'--chat: expected PLATFORM:ID like telegram:-1001234, got "{args.chat}"')
    if not config.bot.database.exists():
        raise UsageError(f"{config.bot.database}: no such database")
    runtime = await app.open_runtime(config)
    try:
        chat = None
        if args.chat:
            chat = await chat_store.get_chat(runtime.db, platform, key)
            if chat is None:
                known = ", ".join(c.label for c in (await chat_store.list_chats(runtime.db))[:10])
                raise UsageError(
                    f'no chat "{args.chat}" in the database (known: {known or "none"})'
                )
        settings = chat_settings(config, chat)
        due = latest_morning(datetime.now(settings.tz), settings.summary_time)
        if day is None:
            day = due
        elif day > due:
            # Its night is not over: a report now would call a night in progress complete.
            raise UsageError(
                f"--date {day}: that morning's report is not due yet (its night ends "
                f"{day} {settings.summary_time:%H:%M}); the latest due is {due}"
            )
        reply = await compose_report(runtime.core, chat, day, chart=args.image_dir is not None)
        print(render(reply, Path(args.image_dir or "."), time.time()))
    finally:
        await runtime.close()
    return EXIT_OK


async def cmd_import(args: argparse.Namespace) -> int:
    """Log activity files as one person's runs in one chat: a line per file, exit 2 if any was refused."""
    from bot.core import run_files
    from bot.core.parsing import (
        Units,
        UserError,
        format_both,
        format_distance,
        format_duration,
        format_pace,
    )
    from bot.progress import Progress
    from storage import chats as chat_store
    from storage.db import Database
    from storage.runs import DuplicateRun

    config = _config(args)
    _setup_logging(config.bot.log_level, quiet=True)
    platform, _, key = args.chat.partition(":")
    if not (platform and key):
        raise UsageError(f'--chat: expected PLATFORM:ID like telegram:-1001234, got "{args.chat}"')
    user = args.user.strip()
    if not user:
        raise UsageError("--user: give the runner's name or user id")
    paths = _activity_paths([Path(p) for p in args.files])
    db = await Database.open(config.bot.database)
    refused = logged = duplicates = 0
    try:
        now = time.time()
        chat = await chat_store.get_chat(db, platform, key)
        if chat is None and platform == "console":
            chat = await chat_store.ensure_chat(db, platform, key, now)
        if chat is None:
            known = ", ".join(c.label for c in (await chat_store.list_chats(db))[:10])
            raise UsageError(f'no chat "{args.chat}" in the database (known: {known or "none"})')
        people = await chat_store.people_called(db, platform, user)
        if not people and platform == "console":
            people = [await chat_store.ensure_person(db, platform, user.casefold(), user, now)]
        if not people:
            raise UsageError(
                f'nobody called "{user}" on {platform} yet (they appear once they use the bot)'
            )
        if len(people) > 1:
            ids = ", ".join(p.user_key for p in people)
            raise UsageError(f'several people called "{user}" on {platform}: give the id ({ids})')
        person = people[0]
        tz = ZoneInfo(chat.timezone or config.bot.timezone)
        units: Units = person.units or chat.units or config.bot.units  # type: ignore[assignment]
        progress = Progress(len(paths), "files")

        def say(line: str) -> None:
            progress.erase()  # the line goes where the bar was; the bar comes back below it
            print(line, flush=True)

        for done, path in enumerate(paths, start=1):
            progress.update(done - 1, done - 1)
            try:
                data = _read_activity_bytes(path)
                activity = await run_files.read_file(
                    path.name, data, now=datetime.fromtimestamp(time.time(), UTC)
                )
                stored = await run_files.store_file_run(
                    db,
                    chat_id=chat.id,
                    person_id=person.id,
                    activity=activity,
                    tz=tz,
                    logged_at=time.time(),
                )
            except UserError as err:
                refused += 1
                say(f"{path}: not logged: {err}")
                continue
            except DuplicateRun as dup:
                duplicates += 1
                say(
                    f"{path}: duplicate of run #{dup.existing.id} "
                    f"({format_distance(dup.existing.distance_m, units)}"
                    f" on {dup.existing.day:%a %-d %b %Y}), "
                    "not logged again"
                )
                continue
            logged += 1
            line = (
                f"{path}: logged run #{stored.run_id}, {format_both(activity.distance_m, units)} "
                f"on {stored.day:%a %-d %b %Y}"
            )
            if activity.duration_s:
                which = "moving" if activity.moving_s else "elapsed"
                line += (
                    f", {format_duration(activity.duration_s)} {which}"
                    f" ({format_pace(activity.distance_m, activity.duration_s, units)})"
                )
            say(line)
        progress.close()
    finally:
        await db.close()
    print(
        f"{logged} logged, {duplicates} already there, {refused} not logged "
        f"(for {person.display_name} in {args.chat})."
    )
    return EXIT_USAGE if refused else EXIT_OK


def _activity_paths(given: list[Path]) -> list[Path]:
    """Files as given; a folder stands for the activity files in it (a watch's export folder)."""
    from bot.core.run_files import looks_like_activity_file

    paths: list[Path] = []
    for path in given:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if looks_like_activity_file(p.name))
            if not found:
                raise UsageError(f"{path}: no .gpx, .fit or .tcx files in this folder")
            paths += found
        else:
            paths.append(path)
    return paths


def _read_activity_bytes(path: Path) -> bytes:
    """The file's bytes; one over the size limit is refused without reading it all."""
    from bot.core.activities import MAX_FILE_BYTES
    from bot.core.parsing import UserError

    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise UserError(f"cannot read it ({err.strerror})") from None
    return data


RESTORE_HINT = (
    "to restore: stop hamsterbot, move {db} and any {db}-wal/-shm aside, copy your latest "
    "`hamsterbot backup` to {db}, start it again (README: Maintenance)"
)


async def cmd_backup(args: argparse.Namespace) -> int:
    """A consistent copy of the database, safe while the bot runs (SQLite's online backup)."""
    from bot.progress import Progress
    from storage.db import Database, backup_target

    config = _config(args)
    _setup_logging(config.bot.log_level, quiet=True)
    if not config.bot.database.exists():
        raise UsageError(f"{config.bot.database}: no such database")
    target = backup_target(Path(args.path), config.bot.database)
    # On a terminal a bar of pages; piped or under cron the copy is one step, as ever.
    with Progress(1.0, "pages") as progress:

        def copied(done: int, total: int) -> None:
            progress.update(done / total if total else 1.0, done)

        async with await Database.open(config.bot.database) as db:
            written = await db.backup(target, copied if progress.enabled else None)
    print(f"Backed up {config.bot.database} to {written} (quick_check ok).")
    return EXIT_OK


async def cmd_scan(args: argparse.Namespace) -> int:
    """Nearby wheel sensors and a ready [[hamsters]] entry; exit 1 when Bluetooth is unusable."""
    from sensors import ble

    _setup_logging("ERROR", quiet=True)
    try:
        seen = await ble.scan(args.timeout, all_devices=args.all)
    except Exception as err:
        print(f"hamsterbot: {ble.describe_error(err).message}", file=sys.stderr)
        return EXIT_INTERNAL
    what = "Bluetooth devices" if args.all else "sensors advertising Cycling Speed and Cadence"
    if not seen:
        print(f"No {what} heard in {args.timeout:g} s. Spin the wheel to wake the sensor, bring")
        print("it closer, or try --all (a DIY board may advertise its own service).")
        return EXIT_OK
    print(f"{len(seen)} {what} heard in {args.timeout:g} s (strongest first):")
    for item in seen:
        print("  " + ble.format_seen(item))
    best = next((s for s in seen if s.speaks_csc), seen[0])
    print("\nAdd this to hamsterbot.toml, then run `hamsterbot doctor`:\n")
    print(ble.hamster_snippet(best))
    return EXIT_OK


async def _check_broker(config: Config) -> tuple[bool, str]:
    """Log in to the ``[mqtt]`` broker once: (ok, one line). Never shows the password."""
    from aiomqtt import MqttError

    from bot.app import bot_client_id
    from sensors.mqtt import describe_error, make_client

    settings = config.mqtt
    client = make_client(settings, client_id=f"{bot_client_id(config)}-doctor", clean_session=True)
    try:
        async with asyncio.timeout(config.ble.connect_timeout), client:
            pass
    except (MqttError, TimeoutError) as err:
        if isinstance(err, TimeoutError):
            return False, f"the broker at {settings.host}:{settings.port} did not answer in time"
        return False, describe_error(err, settings)[1]
    who = f" as {settings.username}" if settings.username else ""
    mqtt_wheels = sum(1 for h in config.hamsters if h.mqtt_source)
    return True, f"logged in to {settings.host}:{settings.port}{who} ({mqtt_wheels} MQTT wheels)"


async def cmd_doctor(args: argparse.Namespace) -> int:
    """One line per check; exit 0 when all pass, 1 otherwise (a bad config is a failed check)."""
    from sensors import ble
    from storage.db import Database

    _setup_logging("CRITICAL", quiet=True)
    failed = False

    def line(ok: bool, check: str, text: str) -> None:
        nonlocal failed
        failed = failed or not ok
        print(f"{'ok  ' if ok else 'FAIL'}  {check}: {text}")

    try:
        config = _config(args)
    except ConfigError as err:
        line(False, "config", str(err))
        return EXIT_INTERNAL
    hamsters = ", ".join(h.name for h in config.hamsters) or "no [[hamsters]]: no wheel is counted"
    line(True, "config", f"{config.source or 'built-in defaults'} ({hamsters})")
    database = config.bot.database
    restore = RESTORE_HINT.format(db=database)
    try:
        async with await Database.open(database) as db:
            problems = await db.quick_check()
            if problems:
                line(False, "database", f"{database} is damaged ({problems[0]}); {restore}")
            else:
                async with db.transaction():
                    pass  # BEGIN IMMEDIATE takes the write lock: the file is writable
                line(True, "database", f"{database} passes quick_check and is writable")
    except StorageError as err:  # names the file itself
        damaged = "damaged" in str(err)
        line(False, "database", str(err) + (f"; {restore}" if damaged else ""))
    except Exception as err:  # whatever stops a write, the user needs to see it
        damaged = "malformed" in str(err) or "not a database" in str(err)
        line(False, "database", f"{database}: {err}" + (f"; {restore}" if damaged else ""))
    radio = [
        h for h in config.hamsters if h.sensor and h.sensor != "simulated" and not h.mqtt_source
    ]
    if radio:
        try:
            async with asyncio.timeout(config.ble.connect_timeout):
                adapter = await ble.adapter_path()
            version = await ble.bluez_version()
            bluez = f"BlueZ {version}" if version else "BlueZ version unknown"
            line(True, "bluetooth", f"adapter {adapter} is on, {bluez}")
            seconds = min(config.ble.scan_timeout, args.timeout)
            heard = {s.address: s for s in await ble.scan(seconds, all_devices=True)}
            linked = {
                d.address.upper() for d in await ble.connected_devices(ble.WELL_KNOWN_SERVICES)
            }
            for hamster in radio:
                sensor = hamster.sensor or ""
                if sensor == "auto":
                    found = next((s for s in heard.values() if s.speaks_csc), None)
                    ok, text = found is not None, f"auto: {found and found.address} seen"
                elif sensor in linked:
                    ok, text = True, f"{sensor} is connected (hamsterbot run is using it?)"
                else:
                    found = heard.get(sensor)
                    ok, text = found is not None, f"{sensor} seen ({found and found.rssi} dBm)"
                if not ok:
                    text = f"{sensor} not heard in {seconds:g} s (spin the wheel to wake it)"
                line(ok, f"sensor {hamster.name}", text)
        except Exception as err:
            line(False, "bluetooth", ble.describe_error(err).message)
    else:
        line(True, "bluetooth", "not needed (no Bluetooth sensor configured)")
    if config.mqtt.url:
        ok, text = await _check_broker(config)
        line(ok, "mqtt", text)
    chats = [n for n, c in (("telegram", config.telegram), ("discord", config.discord)) if c.token]
    if chats:
        line(True, "chat", f"token set for {' and '.join(chats)}")
    else:
        line(False, "chat", "no [telegram] or [discord] token (or HAMSTERBOT_*_TOKEN)")
    return EXIT_INTERNAL if failed else EXIT_OK


# --- parser -------------------------------------------------------------------------------------

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hamsterbot", description="Have you run as much as my hamster?")
    parser.add_argument("--version", action="version", version=f"hamsterbot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(
        name: str, handler: Command, help: str, *, config: bool = True
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        if config:
            p.add_argument(
                "--config",
                metavar="PATH",
                help="configuration file (default: ./hamsterbot.toml or built-in defaults)",
            )
            p.add_argument(
                "--db", metavar="PATH", help="SQLite database (overrides [bot] database)"
            )
        return p

    p = add("run", cmd_run, "run the bot: wheels and chats, until SIGINT/SIGTERM")
    p.add_argument(
        "--record", metavar="FILE", help="also write every notification to FILE (capture format)"
    )
    p.add_argument(
        "--sync-commands",
        choices=["global"],
        help="also register the Discord slash commands globally (slow to appear; rate-limited)",
    )

    p = add(
        "demo",
        cmd_demo,
        "try it: a simulated hamster at high speed and a terminal chat",
        config=False,
    )
    p.add_argument(
        "--db",
        metavar="PATH",
        help="the demo's own SQLite database (default: ./hamsterbot-demo.db)",
    )
    p.add_argument(
        "--speedup", type=float, default=600.0, help="simulated seconds per second (default 600)"
    )
    p.add_argument(
        "--history-nights",
        type=int,
        default=8,
        metavar="N",
        help="nights of history already in the database at start (default 8)",
    )
    p.add_argument(
        "--lead-hours",
        type=float,
        default=None,
        metavar="H",
        help="start tonight's live clock H hours before now "
        "(default: just after the first run of the latest night that is over)",
    )
    p.add_argument(
        "--user", default=None, metavar="NAME", help="your name in the chat (default: your login)"
    )
    p.add_argument("--image-dir", default=".", metavar="DIR", help="where images are saved")
    p.add_argument(
        "--no-web",
        action="store_true",
        help="don't serve the page (default: 127.0.0.1:8080 or the next free port)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show log messages")

    p = add("console", cmd_console, "chat with the bot in the terminal")
    p.add_argument(
        "--user", default=None, metavar="NAME", help="your name in the chat (default: your login)"
    )
    p.add_argument("--chat", default="console", metavar="ID", help="chat id (default: console)")
    p.add_argument("--image-dir", default=".", metavar="DIR", help="where images are saved")
    p.add_argument(
        "--with-wheels", action="store_true", help="also run the configured wheel sensors"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show log messages")

    p = add("say", cmd_say, "send one chat message and print the reply")
    p.add_argument("--chat", default="console", metavar="ID", help="chat id (default: console)")
    p.add_argument(
        "--user", default=None, metavar="NAME", help="who says it (default: your login name)"
    )
    p.add_argument("--image-dir", default=".", metavar="DIR", help="where an image reply is saved")
    p.add_argument("text", help='the message, e.g. "/logrun 5 km"')

    p = add(
        "replay",
        cmd_replay,
        "feed a notification log (CSV received_at,payload_hex) through the counter",
    )
    p.add_argument("--wheel", required=True, metavar="NAME", help="the hamster whose wheel it is")
    p.add_argument("file", metavar="FILE")

    p = add(
        "gateway",
        cmd_gateway,
        "publish this cage's wheel readings to the MQTT broker ([mqtt], [gateway] home)",
    )
    p.add_argument("--replay", metavar="FILE", help="publish a notification log instead, then exit")
    p.add_argument("--wheel", metavar="NAME", help="the hamster the --replay log belongs to")

    p = add("totals", cmd_totals, "print the totals")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--since", metavar="ISO", help="from this date/time (naive: configured timezone)"
    )
    p.add_argument("--until", metavar="ISO", help="until this date/time, exclusive")

    p = add("summary", cmd_summary, "print the morning report a chat would get")
    p.add_argument(
        "--chat", metavar="PLATFORM:ID", help="e.g. telegram:-1001234 (default: config settings)"
    )
    p.add_argument("--date", metavar="YYYY-MM-DD", help="the morning (default: the latest one due)")
    p.add_argument("--image-dir", metavar="DIR", help="also draw the hourly chart and save it here")

    p = add("export", cmd_export, "print runs (CSV) or runs and nightly totals (JSON)")
    p.add_argument("--chat", metavar="PLATFORM:ID", help="only this chat's runs (default: all)")
    p.add_argument("--format", choices=["csv", "json"], default="csv", help="default csv")
    p.add_argument(
        "--nights", action="store_true", help="CSV: the hamsters' nightly totals instead of runs"
    )

    p = add("import", cmd_import, "log GPX, FIT or TCX activity files as someone's runs")
    p.add_argument(
        "--chat",
        required=True,
        metavar="PLATFORM:ID",
        help="e.g. telegram:-1001234 or console:console",
    )
    p.add_argument(
        "--user", required=True, metavar="NAME", help="the runner: their user id or display name"
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="activity files, or folders of them")

    p = add(
        "backup",
        cmd_backup,
        "write a consistent copy of the database, safe while the bot runs",
    )
    p.add_argument("path", metavar="PATH", help="the copy's file, or a folder for a dated file")

    p = add(
        "scan", cmd_scan, "list nearby wheel sensors and print a [[hamsters]] entry", config=False
    )
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds (default 10)")
    p.add_argument("--all", action="store_true", help="every Bluetooth device, not only CSC")

    p = add("doctor", cmd_doctor, "check config, database, Bluetooth, sensors and chat tokens")
    p.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="scan seconds (default 5)"
    )
    return parser


def _damaged(err: sqlite3.DatabaseError) -> bool:
    """A damaged or foreign file noticed after opening it (SQLite reads pages lazily)."""
    text = str(err)
    return "malformed" in text or "not a database" in text


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code = asyncio.run(args.handler(args))
        sys.stdout.flush()  # here, so a closed pipe is noticed inside this try
        return code
    except BrokenPipeError:
        # The reader stopped reading (`hamsterbot say ... | head -1`): its choice, not an error.
        # Point stdout at nothing so the interpreter's own flush at exit stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (ConfigError, UsageError, StorageError) as err:
        print(f"hamsterbot: {err}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.DatabaseError as err:
        if _damaged(err):
            print(f"hamsterbot: the database is damaged ({err}); restore a backup", file=sys.stderr)
            return EXIT_USAGE
        log.error("internal error", exc_info=True)
        print(f"hamsterbot: internal error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        return EXIT_OK
    except (
        Exception
    ) as err:  # the last line of defence: say what broke, keep the traceback in the log
        log.error("internal error", exc_info=True)
        print(f"hamsterbot: internal error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
