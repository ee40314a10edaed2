"""People's runs: ``/logrun``, ``/runs``, ``/undo`` and ``/export``."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import TYPE_CHECKING

from bot.core import parsing, reads
from bot.core import stats as wheel_stats
from bot.core.model import ChatSettings, Units
from bot.core.parsing import UserError, format_both, format_distance
from bot.core.race import clean_name
from bot.core.registry import CommandContext, Reply, command, short
from storage import export as export_store
from storage import runs as run_store
from storage.chats import Chat

if TYPE_CHECKING:
    from bot.core.commands import BotCore


@command(
    "logrun",
    "/logrun DISTANCE [TIME] [DATE]",
    "log a run, e.g. /logrun 5 km 25:30 yesterday, or send a .gpx, .fit or .tcx file",
)
async def logrun(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    if ctx.upload is not None:
        from bot.core import run_files

        return await run_files.logrun_file(core, ctx)
    # Parse before writing anything: a rejected /logrun leaves no trace, not even a chat row.
    _, settings, units, _ = await core.chat_and_person(ctx)
    local_now = ctx.now.astimezone(settings.tz)
    if not args:
        raise UserError(f"How far did you run? {parsing.LOGRUN_EXAMPLE}")
    entry = parsing.parse_logrun(args, default_units=units, today=local_now.date())
    chat = await core.ensure_chat(ctx)
    person = await core.ensure_person(ctx)
    run_id = await run_store.add_run(
        core.db,
        chat_id=chat.id,
        person_id=person.id,
        distance_m=entry.distance_m,
        duration_s=entry.duration_s,
        day=entry.day,
        ran_at=_ran_at(entry.day, local_now),
        logged_at=ctx.now.timestamp(),
    )
    text = f"✅ Logged {format_both(entry.distance_m, units)} for {clean_name(person.display_name)}"
    if entry.day != local_now.date():
        text += f" on {entry.day:%a %-d %b}"
    if entry.duration_s:
        text += (
            f" in {parsing.format_duration(entry.duration_s)}"
            f" ({parsing.format_pace(entry.distance_m, entry.duration_s, units)})"
        )
    text += f". Run #{run_id}, /undo to take it back."
    return Reply(text + await hamsters_tonight(core, chat, ctx, settings, units))


async def hamsters_tonight(
    core: BotCore, chat: Chat, ctx: CommandContext, settings: ChatSettings, units: Units
) -> str:
    """The lines under a logged run: how far each hamster the chat sees has run tonight so far."""
    text = ""
    for hamster in await reads.hamsters_now(core, core.scope_for(chat), ctx.now, settings):
        text += (
            f"\n🐹 {clean_name(hamster.name)} has run"
            f" {format_distance(hamster.tonight_m, units)} tonight."
        )
    return text


def _ran_at(day: date, local_now: datetime) -> float:
    """Today's runs happen now; a past day's run is placed at its local noon."""
    if day == local_now.date():
        return local_now.timestamp()
    noon = datetime.combine(day, time(12), tzinfo=local_now.tzinfo)
    return noon.timestamp()


@command("runs", "/runs", "your last 10 runs in this chat")
async def runs(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    chat, _, units, person = await core.chat_and_person(ctx)
    recent = []
    if chat is not None and person is not None:
        recent = await run_store.recent_runs(core.db, chat.id, person.id, limit=10)
    if not recent:
        return Reply("You haven't logged any runs here yet. Try /logrun 5 km", private=True)
    lines = ["Your last run:" if len(recent) == 1 else f"Your last {len(recent)} runs:"]
    for run in recent:
        line = f"#{run.id} {run.day:%a %-d %b}: {format_distance(run.distance_m, units)}"
        if run.duration_s:
            line += f" in {parsing.format_duration(run.duration_s)}"
        line += f", from {short(run.source)}" if run.source else ", typed"
        lines.append(line)
    lines.append("/undo ID removes one.")
    return Reply("\n".join(lines), private=True)


@command("undo", "/undo [ID]", "remove your last run (or run ID)")
async def undo(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    chat, _, units, person = await core.chat_and_person(ctx)
    if not args:
        run = None
        if chat is not None and person is not None:
            run = await run_store.last_logged_run(core.db, chat.id, person.id)
        if run is None:
            raise UserError("You have no runs here to undo.")
    else:
        text = args.removeprefix("#").strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 12):
            raise UserError("Give the run's number from /runs, e.g. /undo 12")
        run = await run_store.get_run(core.db, chat.id, int(text)) if chat else None
        if run is None:
            raise UserError(f"I can't find run #{text} in this chat. /runs lists yours.")
        mine = person is not None and run.person_id == person.id
        if not mine and not ctx.is_admin:
            raise UserError(
                f"Run #{run.id} isn't yours; only admins can remove other people's runs."
            )
    assert chat is not None
    await run_store.delete_run(core.db, chat.id, run.id, ctx.now.timestamp())
    mine = person is not None and run.person_id == person.id
    who = "" if mine else f" ({clean_name(run.display_name)}'s)"
    return Reply(
        f"🗑️ Removed run #{run.id}{who}: {format_distance(run.distance_m, units)} on {run.day:%a %-d %b}.",
        private=True,
    )


@command("export", "/export", "this chat's runs and the hamster's nightly totals as CSV files")
async def export(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    chat, settings = await core.chat_settings(ctx)
    runs = await export_store.run_rows(core.db, chat.id) if chat else []
    nights = await export_nights(core, settings, ctx.now.timestamp(), core.scope_for(chat or ctx))
    files = (
        ("runs.csv", export_store.runs_csv(runs).encode()),
        ("nights.csv", export_store.nights_csv(nights).encode()),
    )
    names = ", ".join(clean_name(h.name) for h in core.in_scope(core.scope_for(chat or ctx)))
    runs_word = "run" if len(runs) == 1 else "runs"
    return Reply(
        f"📦 {len(runs)} {runs_word} from this chat (runs.csv) and {names}'s nightly totals"
        f" (nights.csv, nights ending {settings.summary_time:%H:%M} {settings.timezone}).",
        attachments=files,
    )


async def export_nights(
    core: BotCore, settings: ChatSettings, now: float, scope: reads.Scope | None = None
) -> list[export_store.NightRow]:
    """Every hamster's totals per complete night (summary time to summary time) since it first ran."""
    rows: list[export_store.NightRow] = []
    for hamster in core.in_scope(scope or core.scope_for(None)):
        firsts = await reads.first_activity(core, [hamster], None)
        if not firsts:
            continue
        first = min(firsts)
        edges = wheel_stats.night_boundaries(first, now, settings.summary_time, settings.tz)
        edges = edges[edges <= now]  # the night in progress is not a total yet
        dates = [datetime.fromtimestamp(t, settings.tz).date().isoformat() for t in edges[:-1]]
        async with core.db.settled():
            totals = await reads.live_bins(core.db, hamster, edges)
        rows += export_store.night_rows(hamster.name, hamster.config.circumference_m, totals, dates)
    return rows
