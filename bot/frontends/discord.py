"""Discord frontend: slash commands over the platform-neutral command core (discord.py 2.7).

Each slash command builds the core's argument text from its options, runs ``BotCore.dispatch`` and
turns the ``Reply`` into an interaction response: private replies (errors, confirmations) are
ephemeral, standings are public, images go as ``discord.File``. Commands that may be slow are
deferred at once, the others are deferred only when the core has not answered within two seconds,
so Discord's three-second limit is always met.

No annotations import from the future here: discord.py reads the callbacks' signatures at runtime
to build the slash command options.
"""

import asyncio
import io
import logging
import time
import zoneinfo
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands

from bot.config import DiscordConfig
from bot.core.commands import COMMANDS, BotCore, CommandContext, Reply, split_text
from bot.core.parsing import UserError
from bot.core.registry import Upload
from bot.frontends import FrontendOff
from storage.chats import Chat

log = logging.getLogger(__name__)

PLATFORM = "discord"
MAX_MESSAGE = 2000
MAX_CHOICES = 25
# Discord closes the window for the first response after 3 s; defer well before that.
DEFER_AFTER_SECONDS = 2.0
SORRY = "Sorry, something went wrong on my side. Please try again in a minute."

# Commands whose answer may take a while (charts, a lot of queries): deferred straight away.
SLOW_COMMANDS = frozenset({"race", "hamster", "chart", "export"})
# Commands with options of their own; every other visible core command gets one free-text option.
BESPOKE_COMMANDS = frozenset(
    {"logrun", "race", "chart", "league", "runs", "undo", "hamster", "help", "settings"}
)
# /start is Telegram's greeting convention; /help covers it on Discord.
NOT_ON_DISCORD = frozenset({"start"})

# Offered as the period is typed (autocomplete); anything else typed is sent as it is, so every
# period the chat commands read works here too ("since 1 nov", "2026-11-01..2026-11-15").
PERIODS = (
    "week",
    "today",
    "tonight",
    "yesterday",
    "last week",
    "last 7 days",
    "last 30 days",
    "month",
    "last month",
    "year",
    "all",
)
UNIT_CHOICES = [
    app_commands.Choice(name="kilometres", value="km"),
    app_commands.Choice(name="miles", value="mi"),
]

Clock = Callable[[], float]


def point_discord_at(config: DiscordConfig) -> None:
    """Aim discord.py at ``api_base_url`` / ``gateway_url`` (class attributes, so process-wide)."""
    if config.api_base_url:
        # Every REST call, interaction callbacks and webhook followups included, starts here.
        discord.http.Route.BASE = config.api_base_url.rstrip("/")
    if config.gateway_url:
        # A plain Client connects here, then resumes at READY's resume_gateway_url.
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(config.gateway_url)


# --- pure translation: options -> core argument text ------------------------------------------


def logrun_args(distance: str | None, duration: str | None = None, date: str | None = None) -> str:
    return " ".join(part.strip() for part in (distance, duration, date) if part and part.strip())


def settings_changes(timezone: str | None, units: str | None, summary: str | None) -> list[str]:
    """One core ``/settings`` argument per option given, in a fixed order."""
    changes = []
    if timezone and timezone.strip():
        changes.append(f"timezone {timezone.strip()}")
    if units:
        changes.append(f"units {units}")
    if summary and summary.strip():
        changes.append(f"summary {summary.strip()}")
    return changes


def merge_replies(replies: list[Reply]) -> Reply:
    """Several settings changes answered as one message; private if any part was."""
    images = [r for r in replies if r.image_png]
    first_image = images[0] if images else None
    texts = list(dict.fromkeys(r.text for r in replies))  # one refusal, not three
    return Reply(
        "\n".join(texts),
        image_png=first_image.image_png if first_image else None,
        private=any(r.private for r in replies),
        image_name=first_image.image_name if first_image else "chart.png",
    )


@cache
def _zones() -> tuple[str, ...]:
    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC"))


def period_suggestions(typed: str, limit: int = MAX_CHOICES) -> list[str]:
    """What was typed first (it is sent as it is), then the known periods that match it."""
    text = " ".join(typed.split())[:100]
    needle = text.casefold()
    known = [p for p in PERIODS if p.startswith(needle)]
    known += [p for p in PERIODS if needle in p and p not in known]
    if not needle:
        return list(PERIODS[:limit])
    if needle.startswith("since") and not known:
        known = ["since 1 nov", "since 2026-11-01"]
    typed_first = [text] if text and text.casefold() not in PERIODS else []
    return (typed_first + known)[:limit]


def discord_text(text: str) -> str:
    """Reply text as Discord shows it literally: names and echoed words are people's text, so
    their markdown (a masked link ``[Free Nitro](https://e.vil)``, bold, spoilers) and mentions
    (``@everyone``) are escaped. Plain links stay clickable. Replies carry no markdown of ours."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def timezone_suggestions(typed: str, limit: int = MAX_CHOICES) -> list[str]:
    """Zones containing what was typed (spaces count as underscores), best matches first."""
    needle = typed.strip().casefold().replace(" ", "_")
    if not needle:
        return list(_zones()[:limit])
    starts, contains = [], []
    for zone in _zones():
        folded = zone.casefold()
        if folded.startswith(needle) or folded.split("/")[-1].startswith(needle):
            starts.append(zone)
        elif needle in folded:
            contains.append(zone)
    return (starts + contains)[:limit]


def is_manager(permissions: discord.Permissions) -> bool:
    return permissions.manage_guild or permissions.administrator


# --- the client -------------------------------------------------------------------------------


class HamsterClient(discord.Client):
    """A plain Client (no message content, no privileged intents) with the slash command tree."""

    def __init__(self, frontend: "DiscordFrontend", **options: Any) -> None:
        options.setdefault("intents", discord.Intents(guilds=True))
        # People's names end up in replies; never let them ping anyone.
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        # No voice here: spare the operator discord.py's warnings about missing voice libraries.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(**options)
        self.frontend = frontend
        self.tree = app_commands.CommandTree(self)
        self.tree.on_error = frontend.on_command_error  # type: ignore[method-assign]
        for slash in build_commands(frontend):
            self.tree.add_command(slash)

    async def setup_hook(self) -> None:
        await self.frontend.sync_commands(self)

    async def on_ready(self) -> None:
        guilds = ", ".join(g.name for g in self.guilds) or "no servers yet"
        log.info("Discord: logged in as %s, in %s", self.user, guilds)


def report_parts(reply: Reply) -> list[Reply]:
    """``reply`` as the messages ``send`` posts, one ``Reply`` each (the files ride on the first):
    the scheduler records each part as sent, so a retry posts only those that did not go out."""
    chunks = split_text(reply.text, MAX_MESSAGE) or [""]
    return [replace(reply, text=chunks[0])] + [Reply(chunk) for chunk in chunks[1:]]


class DiscordFrontend:
    """Runs the Discord client inside the shared loop; ``send`` posts to a channel for the scheduler."""

    def __init__(
        self,
        core: BotCore,
        config: DiscordConfig,
        *,
        sync_global: bool = False,
        clock: Clock = time.time,
        defer_after: float = DEFER_AFTER_SECONDS,
        **client_options: Any,
    ) -> None:
        if not config.token:
            raise ValueError("Discord needs a bot token")
        self.core = core
        self.config = config
        self.sync_global = sync_global
        self.clock = clock
        self.defer_after = defer_after
        self.client_options = client_options
        self.client: HamsterClient | None = None
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """Log in and stay connected until cancelled (discord.py reconnects by itself)."""
        point_discord_at(self.config)
        client = HamsterClient(self, **self.client_options)
        self.client = client
        client_ready = client.wait_until_ready

        async def mark_ready() -> None:
            await client_ready()
            self.ready.set()

        watcher = asyncio.create_task(mark_ready(), name="discord:ready")
        try:
            await client.start(self.config.token or "")
        except discord.LoginFailure:
            raise FrontendOff(
                "Discord rejected the bot token; check [discord] token or HAMSTERBOT_DISCORD_TOKEN"
            ) from None
        except discord.PrivilegedIntentsRequired:
            raise FrontendOff("Discord asks for privileged intents this bot never needs") from None
        finally:
            watcher.cancel()
            self.ready.clear()
            if self.client is client:
                self.client = None
            await client.close()

    async def sync_commands(self, client: HamsterClient) -> None:
        """Guild syncs are instant and cheap; a global sync is rate-limited, so only on request."""
        for guild_id in self.config.guild_ids:
            guild = discord.Object(guild_id)
            client.tree.copy_global_to(guild=guild)
            try:
                synced = await client.tree.sync(guild=guild)
            except discord.HTTPException as err:
                log.warning(
                    "Discord: could not register the slash commands in server %s (%s %s); "
                    "was the bot invited with the applications.commands scope?",
                    guild_id,
                    err.status,
                    err.text,
                )
            else:
                log.info(
                    "Discord: %d slash commands registered in server %s", len(synced), guild_id
                )
        if self.sync_global:
            synced = await client.tree.sync()
            log.info("Discord: %d slash commands registered globally", len(synced))

    # --- the scheduler's sender ----------------------------------------------------------------

    async def send(self, chat: Chat, reply: Reply) -> None:
        """Post ``reply`` to the channel ``chat.chat_key``. Failures raise: the caller retries."""
        client = self.client
        if client is None or not client.is_ready():
            raise ConnectionError("Discord is not connected")
        channel = client.get_partial_messageable(int(chat.chat_key))
        for index, chunk in enumerate(split_text(discord_text(reply.text), MAX_MESSAGE)):
            extra: dict[str, Any] = {}
            if index == 0 and (files := _files(reply)):
                extra["files"] = files
            await channel.send(chunk or None, **extra)

    # --- interactions --------------------------------------------------------------------------

    def context(self, interaction: discord.Interaction) -> CommandContext:
        channel = interaction.channel
        guild = interaction.guild
        is_private = interaction.guild_id is None
        title = getattr(channel, "name", None)
        if guild is not None and title:
            title = f"{guild.name} #{title}"
        return CommandContext(
            platform=PLATFORM,
            chat_id=str(interaction.channel_id or interaction.user.id),
            user_id=str(interaction.user.id),
            display_name=interaction.user.display_name,
            is_admin=is_private or is_manager(interaction.permissions),
            now=datetime.fromtimestamp(self.clock(), UTC),
            is_private=is_private,
            chat_title=title,
        )

    async def answer(self, interaction: discord.Interaction, name: str, args: str) -> None:
        await self.answer_with(interaction, name, lambda ctx: self.core.dispatch(ctx, name, args))

    async def answer_with(
        self,
        interaction: discord.Interaction,
        name: str,
        work: Callable[[CommandContext], Awaitable[Reply]],
    ) -> None:
        """Run the core; defer first when it is (or turns out to be) slow, then deliver."""
        ctx = self.context(interaction)
        task = asyncio.ensure_future(work(ctx))
        try:
            if name not in SLOW_COMMANDS:
                await asyncio.wait({task}, timeout=self.defer_after)
            if not task.done():
                await interaction.response.defer(thinking=True)
            reply = await task
        finally:
            task.cancel()
        await deliver(interaction, reply)

    async def on_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Log the real problem; the user gets a short apology, never internals."""
        command = interaction.command.name if interaction.command else "?"
        log.error("Discord: /%s failed", command, exc_info=error)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(SORRY, ephemeral=True)
            else:
                await interaction.response.send_message(SORRY, ephemeral=True)
        except discord.HTTPException:
            log.warning("Discord: could not send the apology for /%s", command)


def _files(reply: Reply) -> list[discord.File]:
    """The image and any other attachments (/export's CSVs), all sent with the first message."""
    files = []
    if reply.image_png:
        files.append(discord.File(io.BytesIO(reply.image_png), filename=reply.image_name))
    for filename, data in reply.attachments:
        files.append(discord.File(io.BytesIO(data), filename=filename))
    return files


async def deliver(interaction: discord.Interaction, reply: Reply) -> None:
    """Reply text in messages of at most 2000 characters, the image with the first."""
    chunks = split_text(discord_text(reply.text), MAX_MESSAGE)
    deferred = interaction.response.is_done()
    if deferred and reply.private:
        # The deferral shows publicly; an error or a personal answer should not, so the
        # "thinking" message goes and the answer follows for the user alone.
        await interaction.delete_original_response()
    for index, chunk in enumerate(chunks):
        extra: dict[str, Any] = {"ephemeral": reply.private}
        if index == 0 and (files := _files(reply)):
            extra["files"] = files
        if index == 0 and not deferred:
            await interaction.response.send_message(chunk or None, **extra)
        else:
            await interaction.followup.send(chunk, **extra)


async def _download(attachment: discord.Attachment) -> bytes:
    """The attachment's bytes from Discord's CDN; a link that has expired or vanished is the user's to
    resend, anything else is ours to log."""
    try:
        return await attachment.read()
    except (discord.NotFound, discord.Forbidden):
        raise UserError(
            f"I couldn't download {attachment.filename} from Discord any more; please send it again."
        ) from None


# --- the slash commands -----------------------------------------------------------------------


def _describe(name: str, fallback: str) -> str:
    spec = COMMANDS.get(name)
    text = spec.help if spec else fallback
    text = text[:1].upper() + text[1:]
    return text if len(text) <= 100 else text[:99] + "…"


def build_commands(frontend: DiscordFrontend) -> list[app_commands.Command]:
    """The slash commands for every visible core command, bespoke where options help."""
    commands: list[app_commands.Command] = []

    @app_commands.command(name="logrun", description=_describe("logrun", "Log a run"))
    @app_commands.describe(
        distance="How far, e.g. 5 km, 3.1 mi, 5k, half marathon",
        duration="How long, e.g. 25:30 or 1h05m",
        date="When, e.g. yesterday, monday or 2026-11-28 (default today)",
        file="Or a .gpx, .fit or .tcx file from your watch or app: distance, time and date from it",
    )
    async def logrun(
        interaction: discord.Interaction,
        distance: app_commands.Range[str, 1, 100] | None = None,
        duration: app_commands.Range[str, 1, 100] | None = None,
        date: app_commands.Range[str, 1, 100] | None = None,
        file: discord.Attachment | None = None,
    ) -> None:
        if file is None:
            await frontend.answer(interaction, "logrun", logrun_args(distance, duration, date))
            return
        upload = Upload(file.filename, file.size, lambda: _download(file))
        await frontend.answer_with(
            interaction,
            "logrun",
            lambda ctx: frontend.core.dispatch(replace(ctx, upload=upload), "logrun", ""),
        )

    commands.append(logrun)

    for period_command in ("race", "chart", "league"):
        if period_command == "race" or period_command in COMMANDS:
            commands.append(_period_command(frontend, period_command))

    @app_commands.command(name="runs", description=_describe("runs", "Your last runs"))
    async def runs(interaction: discord.Interaction) -> None:
        await frontend.answer(interaction, "runs", "")

    commands.append(runs)

    @app_commands.command(name="undo", description=_describe("undo", "Remove a run"))
    @app_commands.describe(run_id="The run's number from /runs (default: your last run)")
    async def undo(interaction: discord.Interaction, run_id: int | None = None) -> None:
        await frontend.answer(interaction, "undo", "" if run_id is None else str(run_id))

    commands.append(undo)

    @app_commands.command(name="hamster", description=_describe("hamster", "The hamster's nights"))
    @app_commands.describe(stats="Records and streaks instead of tonight's numbers")
    async def hamster(interaction: discord.Interaction, stats: bool = False) -> None:
        await frontend.answer(interaction, "hamster", "stats" if stats else "")

    commands.append(hamster)

    @app_commands.command(name="help", description=_describe("help", "What I can do"))
    async def help_(interaction: discord.Interaction) -> None:
        await frontend.answer(interaction, "help", "")

    commands.append(help_)
    commands.append(_settings_command(frontend))

    for spec in COMMANDS.values():
        if spec.hidden or spec.name in BESPOKE_COMMANDS or spec.name in NOT_ON_DISCORD:
            continue
        if spec.usage.strip() == f"/{spec.name}":
            commands.append(_plain_command(frontend, spec.name))
        else:
            commands.append(_free_text_command(frontend, spec.name))
    return commands


def _plain_command(frontend: DiscordFrontend, name: str) -> app_commands.Command:
    async def callback(interaction: discord.Interaction) -> None:
        await frontend.answer(interaction, name, "")

    return app_commands.command(name=name, description=_describe(name, name))(callback)


def _period_command(frontend: DiscordFrontend, name: str) -> app_commands.Command:
    @app_commands.describe(
        period="Which days: week, tonight, last 7 days, since 1 nov, 2026-11-01..2026-11-15"
    )
    async def callback(
        interaction: discord.Interaction, period: app_commands.Range[str, 1, 100] | None = None
    ) -> None:
        await frontend.answer(interaction, name, period or "")

    command: app_commands.Command[Any, ..., None] = app_commands.command(
        name=name, description=_describe(name, name)
    )(callback)

    @command.autocomplete("period")
    async def period_choices(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=p, value=p) for p in period_suggestions(current)]

    return command


def _settings_command(frontend: DiscordFrontend) -> app_commands.Command:
    @app_commands.command(name="settings", description=_describe("settings", "Chat settings"))
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.describe(
        timezone="The server's timezone, e.g. Europe/London",
        units="Distances in kilometres or miles",
        summary="Morning report time HH:MM, or off",
    )
    @app_commands.choices(units=UNIT_CHOICES)
    async def settings(
        interaction: discord.Interaction,
        timezone: app_commands.Range[str, 1, 64] | None = None,
        units: app_commands.Choice[str] | None = None,
        summary: app_commands.Range[str, 1, 16] | None = None,
    ) -> None:
        changes = settings_changes(timezone, units.value if units else None, summary)

        async def apply(ctx: CommandContext) -> Reply:
            # default_permissions only hides the command; server owners can override that,
            # so the core's admin check (Manage Server here) still decides.
            if not changes:
                return await frontend.core.dispatch(ctx, "settings", "")
            return merge_replies(
                [await frontend.core.dispatch(ctx, "settings", c) for c in changes]
            )

        await frontend.answer_with(interaction, "settings", apply)

    @settings.autocomplete("timezone")
    async def timezone_choices(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=z, value=z) for z in timezone_suggestions(current)]

    return settings


def _free_text_command(frontend: DiscordFrontend, name: str) -> app_commands.Command:
    @app_commands.describe(text="Anything the command takes, as in /help")
    async def callback(
        interaction: discord.Interaction, text: app_commands.Range[str, 1, 200] | None = None
    ) -> None:
        await frontend.answer(interaction, name, text or "")

    return app_commands.command(name=name, description=_describe(name, name))(callback)
