"""The platform-neutral command core: CommandContext -> handler -> Reply.

Frontends (Telegram, Discord, the terminal) translate their updates into a ``CommandContext`` and call
``BotCore.dispatch`` (a command name plus its argument text) or ``BotCore.handle_text`` (a whole message). No
chat-library imports here.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.config import Config, HamsterConfig
from bot.core import charts as chart_drawing
from bot.core import parsing
from bot.core import race as race_core
from bot.core import stats as wheel_stats
from bot.core.parsing import Period, Units, UserError, format_both, format_distance
from bot.core.race import Runner, clean_name, render_race, standings
from storage import chats as chat_store
from storage import export as export_store
from storage import queries
from storage import runs as run_store
from storage.db import Database

log = logging.getLogger(__name__)

MAX_REPLY = 4096


@dataclass(frozen=True, slots=True)
class CommandContext:
    platform: str  # "telegram", "discord", "console"
    chat_id: str
    user_id: str
    display_name: str
    is_admin: bool
    now: datetime  # aware
    is_private: bool = False
    chat_title: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    image_png: bytes | None = field(default=None, repr=False)
    private: bool = False  # only the asking user needs it (Discord: ephemeral)
    image_name: str = "chart.png"
    # Files other than images, as (file name, bytes): /export's CSVs.
    attachments: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """What the wheel link knows right now (not stored): shown by /hamster."""

    connected: bool | None = None  # None: no live sensor (replay only, or never started)
    since: float | None = None  # when ``connected`` last changed
    last_reading_at: float | None = None
    speed_mps: float | None = None
    battery: int | None = None
    source: str = ""  # "simulated", a BLE address...


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """A chat's effective settings: its own, else the configured defaults."""

    timezone: str
    units: Units
    summary_time: time
    summary_enabled: bool

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


Handler = Callable[["BotCore", CommandContext, str], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    usage: str
    help: str
    handler: Handler
    admin_only: bool = False  # in groups; everyone may use it in a private chat
    hidden: bool = False


COMMANDS: dict[str, Command] = {}


def command(name: str, usage: str, help: str, *, admin_only: bool = False, hidden: bool = False):
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, usage, help, handler, admin_only, hidden)
        return handler

    return register


@dataclass(frozen=True, slots=True)
class Hamster:
    config: HamsterConfig
    wheel_id: int

    @property
    def name(self) -> str:
        return self.config.name

    def metres(self, revolutions: int) -> float:
        return revolutions * self.config.circumference_m


_COMMAND_TEXT = re.compile(
    r"^/(?P<name>[A-Za-z0-9_]{1,32})(?:@(?P<bot>[A-Za-z0-9_]{1,64}))?(?:\s+|$)"
)


class BotCore:
    """Everything a command needs: the store, the configuration and the wheels' live status."""

    def __init__(
        self,
        db: Database,
        config: Config,
        hamsters: list[Hamster],
        live: Callable[[str], LiveStatus | None] | None = None,
        charts: Mapping[str, Callable[..., Awaitable[bytes | None]]] | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.hamsters = hamsters
        self._live = live or (lambda name: None)
        # Called before every command, so answers include what the wheel counted seconds ago
        # (the runtime flushes buffered revolutions; a commit only when there is something new).
        self.before_command: Callable[[], Awaitable[object]] | None = None
        # Told after every command that succeeded (the public page refreshes the races it shows).
        self.after_command: Callable[[CommandContext], object] | None = None
        # Where the public page is (its public_url, else the address it listens on); None: not served.
        self.web_url: str | None = None
        self.charts = charts or {}
        # Per wheel: fastest minute and longest session over settled history (see minute_bests).
        self.minute_bests: dict[int, wheel_stats.MinuteBests] = {}

    @classmethod
    async def create(
        cls,
        db: Database,
        config: Config,
        live: Callable[[str], LiveStatus | None] | None = None,
    ) -> BotCore:
        from storage.wheel import WheelStore

        hamsters = []
        for hamster in config.hamsters:
            store = await WheelStore.open(db, hamster.name)
            hamsters.append(Hamster(hamster, store.wheel_id))
        return cls(db, config, hamsters, live)

    def live_status(self, name: str) -> LiveStatus | None:
        return self._live(name)

    # --- entry points ---------------------------------------------------------------------------

    async def handle_text(
        self, ctx: CommandContext, text: str, bot_username: str | None = None
    ) -> Reply | None:
        """A whole chat message. Non-commands and commands for another bot get None (stay quiet)."""
        text = text.strip()
        match = _COMMAND_TEXT.match(text)
        if not text.startswith("/"):
            return None
        if match is None:
            return Reply("I didn't catch that command. Try /help", private=True)
        addressed = match.group("bot")
        if addressed and bot_username and addressed.casefold() != bot_username.casefold():
            return None
        return await self.dispatch(ctx, match.group("name"), text[match.end() :])

    async def dispatch(self, ctx: CommandContext, name: str, args: str) -> Reply:
        """Run one command. A user's mistake becomes a friendly private reply; nothing is stored."""
        spec = COMMANDS.get(name.lower())
        if spec is not None and self.before_command is not None:
            await self.before_command()
        if spec is None:
            return Reply(
                f"I don't know /{_short(name)}. Try /help for what I can do.", private=True
            )
        try:
            reply = await spec.handler(self, ctx, args.strip())
        except UserError as err:
            return Reply(str(err), private=True)
        if self.after_command is not None:
            self.after_command(ctx)
        return _fit(reply)

    # --- shared helpers -------------------------------------------------------------------------

    async def chat_settings(self, ctx: CommandContext) -> tuple[chat_store.Chat, ChatSettings]:
        chat = await chat_store.ensure_chat(
            self.db, ctx.platform, ctx.chat_id, ctx.now.timestamp(), ctx.chat_title
        )
        return chat, self.settings_of(chat)

    def settings_of(self, chat: chat_store.Chat) -> ChatSettings:
        defaults = self.config
        summary_time = defaults.summary.time
        if chat.summary_time:
            summary_time = time.fromisoformat(chat.summary_time)
        return ChatSettings(
            timezone=chat.timezone or defaults.bot.timezone,
            units=chat.units or defaults.bot.units,  # type: ignore[arg-type]
            summary_time=summary_time,
            summary_enabled=defaults.summary.enabled
            if chat.summary_enabled is None
            else chat.summary_enabled,
        )

    async def settings_and_units(self, ctx: CommandContext) -> tuple[ChatSettings, Units]:
        """The chat's settings and the person's units, read without creating anything."""
        chat = await chat_store.get_chat(self.db, ctx.platform, ctx.chat_id)
        settings = self.settings_of(chat) if chat else self.settings_of(_NO_CHAT)
        person = await chat_store.get_person(self.db, ctx.platform, ctx.user_id)
        units = person.units if person and person.units else settings.units
        return settings, units  # type: ignore[return-value]

    async def person(self, ctx: CommandContext) -> chat_store.Person:
        return await chat_store.ensure_person(
            self.db, ctx.platform, ctx.user_id, clean_name(ctx.display_name), ctx.now.timestamp()
        )

    async def hamster_metres(self, hamster: Hamster, start: float, end: float) -> float:
        total = await queries.wheel_total(self.db, hamster.wheel_id, start, end)
        return hamster.metres(total.revolutions)

    async def nightly_metres(
        self, hamster: Hamster, settings: ChatSettings, last_morning: date, nights: int
    ) -> list[float]:
        """Distance of each of ``nights`` nights, oldest first, the last ending on ``last_morning``."""
        mornings = [last_morning - timedelta(days=n) for n in range(nights, -1, -1)]
        # Night n runs from summary time on morning n-1 to morning n: the boundaries are summary times.
        edges = [
            parsing.night_bounds(m, settings.summary_time, settings.tz)[1].timestamp()
            for m in mornings
        ]
        totals = await queries.binned_totals(self.db, hamster.wheel_id, edges)
        return [hamster.metres(int(r)) for r in totals.revolutions]

    async def night_average(
        self, hamster: Hamster, settings: ChatSettings, last_morning: date, nights: int = 7
    ) -> float | None:
        """The average of the nights with data among ``nights`` ending on ``last_morning``.

        Nights without any revolution are left out: a sensor that was off is no rest night.
        """
        with_data = [
            m for m in await self.nightly_metres(hamster, settings, last_morning, nights) if m > 0
        ]
        return sum(with_data) / len(with_data) if with_data else None

    async def hamster_night_average(
        self, hamster: Hamster, settings: ChatSettings, now: datetime
    ) -> float | None:
        """The hamster's 7-night average up to last night, for /hamster and "hamster nights"."""
        night = last_night(now.astimezone(settings.tz), settings.summary_time)
        return await self.night_average(hamster, settings, night.end.date())


# A chat never seen before: every setting is the configured default.
_NO_CHAT = chat_store.Chat(0, "", "", None, None, None, None, None)


def last_night(now: datetime, summary_time: time) -> Period:
    """The night of the most recent morning report: summary time to summary time."""
    tonight = parsing.parse_period("tonight", now=now, summary_time=summary_time)
    start, end = parsing.night_bounds(tonight.start.date(), summary_time, tonight.start.tzinfo)
    return Period("last night", "last night", start, end)


def _short(text: str) -> str:
    shown = "".join(ch for ch in text if ch.isprintable())
    return shown if len(shown) <= 30 else shown[:29] + "…"


def _fit(reply: Reply) -> Reply:
    if len(reply.text) <= MAX_REPLY:
        return reply
    cut = reply.text[: MAX_REPLY - 2].rsplit("\n", 1)[0]
    return replace(reply, text=cut + "\n…")


def split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into messages of at most ``limit`` characters, at line breaks where possible
    (Discord allows 2000 characters, Telegram 4096)."""
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit  # one unbroken word longer than a message
            chunks.append(rest[:cut])
            rest = rest[cut:]
        else:
            chunks.append(rest[:cut])
            rest = rest[cut + 1 :]  # the line break (or space) itself goes
    if rest or not chunks:
        chunks.append(rest)
    return [chunk for chunk in chunks if chunk] or [""]


def _local_today(ctx: CommandContext, settings: ChatSettings) -> datetime:
    return ctx.now.astimezone(settings.tz)


def _require_admin(ctx: CommandContext) -> None:
    if not (ctx.is_admin or ctx.is_private):
        raise UserError("Only the chat's admins can change settings here.")


# --- commands -----------------------------------------------------------------------------------


@command("start", "/start", "say hello and show what I can do")
async def start(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    names = ", ".join(h.name for h in core.hamsters) or "the hamster"
    return Reply(
        f"Hi {clean_name(ctx.display_name)}! I count {names}'s wheel and race it against your runs.\n"
        "Log a run with /logrun 5 km, then see who's ahead with /race.\n\n" + _help_text(ctx)
    )


@command("help", "/help", "list the commands")
async def help_(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    return Reply(_help_text(ctx))


def _help_text(ctx: CommandContext) -> str:
    lines = ["Here's what I can do:"]
    for spec in COMMANDS.values():
        if spec.hidden:
            continue
        suffix = " (admins)" if spec.admin_only and not ctx.is_private else ""
        lines.append(f"{spec.usage}: {spec.help}{suffix}")
    return "\n".join(lines)


@command("logrun", "/logrun DISTANCE [TIME] [DATE]", "log a run, e.g. /logrun 5 km 25:30 yesterday")
async def logrun(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    # Parse before writing anything: a rejected /logrun leaves no trace, not even a chat row.
    settings, units = await core.settings_and_units(ctx)
    local_now = _local_today(ctx, settings)
    if not args:
        raise UserError(f"How far did you run? {parsing.LOGRUN_EXAMPLE}")
    entry = parsing.parse_logrun(args, default_units=units, today=local_now.date())
    chat, settings = await core.chat_settings(ctx)
    person = await core.person(ctx)
    ran_at = _ran_at(entry.day, local_now)
    run_id = await run_store.add_run(
        core.db,
        chat_id=chat.id,
        person_id=person.id,
        distance_m=entry.distance_m,
        duration_s=entry.duration_s,
        day=entry.day,
        ran_at=ran_at,
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
    tonight = parsing.parse_period("tonight", now=local_now, summary_time=settings.summary_time)
    for hamster in core.hamsters:
        metres = await core.hamster_metres(
            hamster, tonight.start.timestamp(), ctx.now.timestamp() + 1
        )
        text += f"\n🐹 {clean_name(hamster.name)} has run {format_distance(metres, units)} tonight."
    return Reply(text)


def _ran_at(day: date, local_now: datetime) -> float:
    """Today's runs happen now; a past day's run is placed at its local noon."""
    if day == local_now.date():
        return local_now.timestamp()
    noon = datetime.combine(day, time(12), tzinfo=local_now.tzinfo)
    return noon.timestamp()


@command("runs", "/runs", "your last 10 runs in this chat")
async def runs(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    chat, settings = await core.chat_settings(ctx)
    person = await core.person(ctx)
    units: Units = person.units or settings.units  # type: ignore[assignment]
    recent = await run_store.recent_runs(core.db, chat.id, person.id, limit=10)
    if not recent:
        return Reply("You haven't logged any runs here yet. Try /logrun 5 km", private=True)
    lines = [f"Your last {len(recent)} runs:"]
    for run in recent:
        line = f"#{run.id} {run.day:%a %-d %b}: {format_distance(run.distance_m, units)}"
        if run.duration_s:
            line += f" in {parsing.format_duration(run.duration_s)}"
        lines.append(line)
    lines.append("/undo ID removes one.")
    return Reply("\n".join(lines), private=True)


@command("undo", "/undo [ID]", "remove your last run (or run ID)")
async def undo(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    chat, settings = await core.chat_settings(ctx)
    person = await core.person(ctx)
    units: Units = person.units or settings.units  # type: ignore[assignment]
    if not args:
        run = await run_store.last_logged_run(core.db, chat.id, person.id)
        if run is None:
            raise UserError("You have no runs here to undo.")
    else:
        text = args.removeprefix("#").strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 12):
            raise UserError("Give the run's number from /runs, e.g. /undo 12")
        run = await run_store.get_run(core.db, chat.id, int(text))
        if run is None:
            raise UserError(f"I can't find run #{text} in this chat. /runs lists yours.")
        if run.person_id != person.id and not ctx.is_admin:
            raise UserError(
                f"Run #{run.id} isn't yours; only admins can remove other people's runs."
            )
    await run_store.delete_run(core.db, chat.id, run.id, ctx.now.timestamp())
    who = "" if run.person_id == person.id else f" ({clean_name(run.display_name)}'s)"
    return Reply(
        f"🗑️ Removed run #{run.id}{who}: {format_distance(run.distance_m, units)} on {run.day:%a %-d %b}.",
        private=True,
    )


@command("race", "/race [PERIOD]", "standings: week (default), today, month, all…")
async def race(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    board = await _race_board(core, ctx, args)
    leader = race_core.leading_hamster(board.rows)
    night_average = None
    if leader is not None:
        hamster = next(h for h in core.hamsters if h.wheel_id == leader.key)
        night_average = await core.hamster_night_average(hamster, board.settings, ctx.now)
    text = render_race(
        board.rows,
        period_label=board.period.label,
        units=board.settings.units,
        hamster_night_m=night_average,
    )
    return Reply(text)


@dataclass(frozen=True, slots=True)
class _RaceBoard:
    chat: chat_store.Chat
    settings: ChatSettings
    period: Period
    start: float
    end: float  # the period's end, or now when it has not ended yet
    rows: list[race_core.Standing]


async def _race_board(core: BotCore, ctx: CommandContext, args: str) -> _RaceBoard:
    """Standings of the hamsters and this chat's runners over the period in ``args`` (default week)."""
    chat, settings = await core.chat_settings(ctx)
    local_now = _local_today(ctx, settings)
    period = parsing.parse_period(
        args, now=local_now, summary_time=settings.summary_time, default="week"
    )
    start, end = period.start.timestamp(), min(period.end.timestamp(), ctx.now.timestamp() + 1)
    runners: list[Runner] = []
    for hamster in core.hamsters:
        metres = await core.hamster_metres(hamster, start, end)
        runners.append(Runner(hamster.name, metres, is_hamster=True, key=hamster.wheel_id))
    for total in await queries.person_totals(core.db, chat.id, start, end):
        runners.append(
            Runner(total.display_name, total.distance_m, units=total.units, key=total.person_id)  # type: ignore[arg-type]
        )
    return _RaceBoard(chat, settings, period, start, end, standings(runners))


@command("chart", "/chart [PERIOD]", "the race as a picture: week (default), month, all…")
async def chart(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    board = await _race_board(core, ctx, args)
    units = board.settings.units
    start = board.start
    if board.period.key == "all":
        # "All time" starts in 1970; the picture starts with the first thing that happened.
        firsts = [await queries.first_activity(core.db, h.wheel_id) for h in core.hamsters]
        firsts.append(await queries.first_run_at(core.db, board.chat.id))
        known = [f for f in firsts if f is not None]
        start = max(start, min(known)) if known else board.end - 86400
    edges = race_core.chart_edges(start, board.end)
    tracks = []
    for hamster in core.hamsters:
        bins = await queries.binned_totals(core.db, hamster.wheel_id, edges)
        metres = bins.revolutions * hamster.config.circumference_m
        tracks.append(race_core.HamsterTrack(hamster.name, edges, metres))
    marks = [
        race_core.RunMark(run.display_name, run.person_id, run.ran_at, run.distance_m)
        for run in await run_store.runs_between(core.db, start, board.end, board.chat.id)
    ]
    lines = race_core.race_lines(
        tracks, marks, board.rows, start=start, end=board.end, tz=board.settings.tz
    )
    draw = core.charts.get("race") or chart_drawing.race_chart
    title = f"Race, {board.period.label} ({units})"
    image = await draw(lines, title=title, units=units)
    caption = race_core.chart_caption(board.rows, period_label=board.period.label, units=units)
    if image is None:
        text = render_race(
            board.rows, period_label=board.period.label, units=units, hamster_night_m=None
        )
        return Reply(text + "\n(I couldn't draw the chart this time.)")
    return Reply(caption, image_png=image, image_name=f"race-{board.period.key}.png")


@command("hamster", "/hamster [stats]", "how far the hamster ran; stats: records and streaks")
async def hamster(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    if args.casefold() in ("stats", "stat", "records"):
        return await _hamster_stats(core, ctx)
    if args:
        raise UserError("Try /hamster, or /hamster stats for records and streaks.")
    _, settings = await core.chat_settings(ctx)
    local_now = _local_today(ctx, settings)
    units = settings.units
    tonight = parsing.parse_period("tonight", now=local_now, summary_time=settings.summary_time)
    night = last_night(local_now, settings.summary_time)
    now = ctx.now.timestamp()
    blocks = []
    for hamster in core.hamsters:
        so_far = await core.hamster_metres(hamster, tonight.start.timestamp(), now + 1)
        last = await core.hamster_metres(hamster, night.start.timestamp(), night.end.timestamp())
        total = await queries.wheel_total(core.db, hamster.wheel_id, 0, now + 1)
        lines = [
            f"🐹 {clean_name(hamster.name)}",
            f"Tonight so far: {format_distance(so_far, units)}",
            f"Last night: {format_distance(last, units)}",
        ]
        average = await core.hamster_night_average(hamster, settings, ctx.now)
        if average is not None:
            lines.append(f"7-night average: {format_distance(average, units)}")
        lines.append(
            f"All time: {format_distance(hamster.metres(total.revolutions), units)}"
            f" ({total.revolutions:,} turns of the wheel)"
        )
        status = await _sensor_line(core, hamster, now, settings)
        if status:
            lines.append(status)
        blocks.append("\n".join(lines))
    return Reply("\n\n".join(blocks) + "\n\n/hamster stats for records and streaks")


async def _hamster_stats(core: BotCore, ctx: CommandContext) -> Reply:
    _, settings = await core.chat_settings(ctx)
    local_now = _local_today(ctx, settings)
    tz, now = settings.tz, ctx.now.timestamp()
    tonight = parsing.parse_period("tonight", now=local_now, summary_time=settings.summary_time)
    night = last_night(local_now, settings.summary_time)
    blocks = []
    for hamster in core.hamsters:
        circumference = hamster.config.circumference_m
        last = await queries.minute_series(
            core.db, hamster.wheel_id, night.start.timestamp(), night.end.timestamp()
        )
        total = await queries.wheel_total(core.db, hamster.wheel_id, 0, now + 1)
        first = await queries.first_activity(core.db, hamster.wheel_id)
        edges = wheel_stats.night_boundaries(
            now if first is None else first, now, settings.summary_time, tz
        )
        nights = await queries.binned_totals(core.db, hamster.wheel_id, edges)
        bests = await _minute_bests(core, hamster, night.start.timestamp(), now + 1)
        streak = wheel_stats.current_streak(
            nights.revolutions * circumference, wheel_stats.STREAK_M
        )
        report = wheel_stats.HamsterReport(
            name=hamster.name,
            tonight_m=await core.hamster_metres(hamster, tonight.start.timestamp(), now + 1),
            last_night=wheel_stats.night_stats(last, circumference, tz),
            week_average_m=await core.hamster_night_average(hamster, settings, ctx.now),
            all_time_m=hamster.metres(total.revolutions),
            all_time_revolutions=total.revolutions,
            records=wheel_stats.records_of(bests, edges[:-1], nights.revolutions, circumference),
            streak_nights=streak,
        )
        blocks.append(
            wheel_stats.render_hamster_stats(
                report, units=settings.units, tz=tz, name=clean_name(hamster.name)
            )
        )
    return Reply("\n\n".join(blocks))


async def _minute_bests(
    core: BotCore, hamster: Hamster, settled: float, end: float
) -> wheel_stats.MinuteBests:
    """Fastest minute and longest session up to ``end``.

    Minutes before ``settled`` (last night's start) no longer change, so they are folded once per process
    and kept; each call then reads only the minutes since, about a night's worth.
    """
    bests = core.minute_bests.get(hamster.wheel_id)
    if bests is None or bests.through > settled:
        bests = None
    start = 0.0 if bests is None else bests.through
    if start < settled:
        older = await queries.active_minutes(core.db, hamster.wheel_id, start, settled)
        bests = wheel_stats.fold_minutes(bests, older)
        core.minute_bests[hamster.wheel_id] = bests
    recent = await queries.active_minutes(core.db, hamster.wheel_id, settled, end)
    return wheel_stats.fold_minutes(bests, recent)


@command("export", "/export", "this chat's runs and the hamster's nightly totals as CSV files")
async def export(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    chat, settings = await core.chat_settings(ctx)
    runs = await export_store.run_rows(core.db, chat.id)
    nights = await export_nights(core, settings, ctx.now.timestamp())
    files = (
        ("runs.csv", export_store.runs_csv(runs).encode()),
        ("nights.csv", export_store.nights_csv(nights).encode()),
    )
    names = ", ".join(clean_name(h.name) for h in core.hamsters)
    runs_word = "run" if len(runs) == 1 else "runs"
    return Reply(
        f"📦 {len(runs)} {runs_word} from this chat (runs.csv) and {names}'s nightly totals"
        f" (nights.csv, nights ending {settings.summary_time:%H:%M} {settings.timezone}).",
        attachments=files,
    )


async def export_nights(
    core: BotCore, settings: ChatSettings, now: float
) -> list[export_store.NightRow]:
    """Every hamster's totals per complete night (summary time to summary time) since it first ran."""
    rows: list[export_store.NightRow] = []
    for hamster in core.hamsters:
        first = await queries.first_activity(core.db, hamster.wheel_id)
        if first is None:
            continue
        edges = wheel_stats.night_boundaries(first, now, settings.summary_time, settings.tz)
        edges = edges[edges <= now]  # the night in progress is not a total yet
        dates = [datetime.fromtimestamp(t, settings.tz).date().isoformat() for t in edges[:-1]]
        rows += await export_store.night_rows(
            core.db, hamster.wheel_id, hamster.name, hamster.config.circumference_m, edges, dates
        )
    return rows


async def _sensor_line(
    core: BotCore, hamster: Hamster, now: float, settings: ChatSettings
) -> str | None:
    live = core.live_status(hamster.name)
    battery_row = await queries.latest_event(core.db, hamster.wheel_id, ("battery",))
    parts = []
    if live is not None and live.connected is not None:
        if live.connected:
            parts.append("sensor connected")
        elif live.since:
            parts.append(f"sensor offline since {_clock(live.since, settings)}")
        else:
            parts.append("sensor not connected yet")
        if live.last_reading_at:
            parts.append(f"last reading {_ago(now - live.last_reading_at)}")
        if live.speed_mps is not None and live.last_reading_at and now - live.last_reading_at < 10:
            parts.append(f"{parsing.format_speed(live.speed_mps, settings.units)} now")
    battery = live.battery if live and live.battery is not None else None
    if battery is None and battery_row is not None and battery_row[2] is not None:
        battery = int(battery_row[2])
    if battery is not None:
        parts.append(f"battery {battery}%" + (" (low!)" if battery < 20 else ""))
    if not parts:
        return None
    return "📡 " + ", ".join(parts)


def _clock(epoch: float, settings: ChatSettings) -> str:
    return datetime.fromtimestamp(epoch, settings.tz).strftime("%a %H:%M")


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 5400:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


@command(
    "settings",
    "/settings [timezone ZONE | units km|mi | summary HH:MM|off]",
    "show or change this chat's settings",
    admin_only=True,
)
async def settings_(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    chat, settings = await core.chat_settings(ctx)
    if not args:
        summary = settings.summary_time.strftime("%H:%M") if settings.summary_enabled else "off"
        return Reply(
            "⚙️ Settings for this chat\n"
            f"timezone: {settings.timezone}\n"
            f"units: {settings.units}\n"
            f"morning report: {summary}\n"
            "Change one with /settings timezone Europe/London, /settings units km or /settings summary 07:30"
        )
    key, _, value = args.partition(" ")
    key, value = key.lower(), value.strip()
    if key == "myunits":
        person = await core.person(ctx)
        units = parsing.parse_units(value)
        await chat_store.set_person_units(core.db, person.id, units)
        return Reply(f"👍 I'll show your distances in {units}.", private=True)
    if key not in ("timezone", "tz", "units", "summary"):
        raise UserError("I can change timezone, units or summary. Try: /settings units km")
    _require_admin(ctx)
    if not value:
        raise UserError(f"Tell me the new {key}. Try: /settings units km")
    if key in ("timezone", "tz"):
        zone = parsing.parse_timezone(value)
        await chat_store.update_chat(core.db, chat.id, timezone=zone)
        return Reply(f"👍 Timezone is now {zone}.")
    if key == "units":
        units = parsing.parse_units(value)
        await chat_store.update_chat(core.db, chat.id, units=units)
        return Reply(f"👍 Distances are now in {units}.")
    if value.lower() in ("off", "none", "disable", "disabled", "no"):
        await chat_store.update_chat(core.db, chat.id, summary_enabled=0)
        return Reply("👍 No more morning reports here. /settings summary 08:00 turns them back on.")
    clock = parsing.parse_clock(value)
    await chat_store.update_chat(
        core.db, chat.id, summary_time=clock.strftime("%H:%M"), summary_enabled=1
    )
    return Reply(f"👍 The morning report comes at {clock:%H:%M} ({settings.timezone}).")


@command(
    "web",
    "/web [off]",
    "share this chat's race as a live web page; /web off stops it",
    admin_only=True,
)
async def web_link(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    if not (ctx.is_admin or ctx.is_private):
        raise UserError("Only the chat's admins can share the race page or turn it off.")
    word = args.casefold()
    if word not in ("", "off"):
        raise UserError("Try /web for a link to this chat's race, or /web off to stop sharing it.")
    if word == "off":
        chat = await chat_store.get_chat(core.db, ctx.platform, ctx.chat_id)
        if chat is None or not await chat_store.revoke_web_link(core.db, chat.id):
            return Reply(
                "This chat's race isn't shared, so there's nothing to turn off.", private=True
            )
        return Reply("🔒 The race page is off: its link no longer works. /web makes a new one.")
    if core.web_url is None:
        raise UserError(
            "The web page isn't running: add a [web] section with public_url to the bot's config."
        )
    chat, _ = await core.chat_settings(ctx)
    token = secrets.token_urlsafe(24)  # 192 random bits
    await chat_store.set_web_link(core.db, chat.id, token, ctx.now.timestamp())
    return Reply(
        f"🌐 This chat's race, live: {core.web_url.rstrip('/')}/r/{token}\n"
        "Anyone with the link can see it (the names and distances of this chat's runs). "
        "/web off stops it; /web again makes a new link and the old one stops working."
    )
