"""``/settings``: a chat's timezone, units and morning report, and a person's own units."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from bot.core import parsing
from bot.core.parsing import UserError
from bot.core.registry import CommandContext, Reply, command, require_admin
from storage import chats as chat_store

if TYPE_CHECKING:
    from bot.core.commands import BotCore

_OFF = ("off", "none", "disable", "disabled", "no")


@command(
    "settings",
    "/settings [timezone ZONE | units km|mi | summary HH:MM|off]",
    "show or change this chat's settings",
    admin_only=True,
)
async def settings_(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    _, settings = await core.chat_settings(ctx)
    if not args:
        summary = settings.summary_time.strftime("%H:%M") if settings.summary_enabled else "off"
        return Reply(
            "⚙️ Settings for this chat\n"
            f"timezone: {settings.timezone}\n"
            f"units: {settings.units}\n"
            f"morning report: {summary}\n"
            "Change one with /settings timezone Europe/London, /settings units km or /settings summary 07:30\n"
            "Your own units, for anyone: /myunits km or /myunits mi"
        )
    key, _, value = args.partition(" ")
    key, value = key.lower(), value.strip()
    if key == "myunits":  # kept for those who learnt it here; /myunits is open to everyone
        return await myunits(core, ctx, value)
    if key not in ("timezone", "tz", "units", "summary"):
        raise UserError("I can change timezone, units or summary. Try: /settings units km")
    require_admin(ctx)
    if not value:
        raise UserError(f"Tell me the new {key}. Try: /settings units km")
    if key in ("timezone", "tz"):
        zone = parsing.parse_timezone(value)
        chat = await core.ensure_chat(ctx)
        await chat_store.update_chat(core.db, chat.id, timezone=zone)
        return Reply(f"👍 Timezone is now {zone}.")
    if key == "units":
        units = parsing.parse_units(value)
        chat = await core.ensure_chat(ctx)
        await chat_store.update_chat(core.db, chat.id, units=units)
        return Reply(f"👍 Distances are now in {units}.")
    if value.lower() in _OFF:
        chat = await core.ensure_chat(ctx)
        await chat_store.update_chat(core.db, chat.id, summary_enabled=0)
        return Reply("👍 No more morning reports here. /settings summary 08:00 turns them back on.")
    clock = parsing.parse_clock(value)
    chat = await core.ensure_chat(ctx)
    await chat_store.update_chat(
        core.db, chat.id, summary_time=clock.strftime("%H:%M"), summary_enabled=1
    )
    return Reply(f"👍 The morning report comes at {clock:%H:%M} ({settings.timezone}).")


@command("myunits", "/myunits km|mi|off", "your own units, whatever the chat's (off: the chat's)")
async def myunits(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    _, settings, _, person = await core.chat_and_person(ctx)
    if not args:
        own = person.units if person and person.units else None
        said = f"yours are {own}" if own else f"you see the chat's ({settings.units})"
        return Reply(f"Distances: {said}. /myunits km, /myunits mi or /myunits off.", private=True)
    if args.lower() in _OFF:
        if person is not None and person.units:
            await chat_store.set_person_units(core.db, person.id, None)
        return Reply(f"👍 You see this chat's units ({settings.units}) again.", private=True)
    chosen = parsing.parse_units(args)
    person = await core.ensure_person(ctx)
    await chat_store.set_person_units(core.db, person.id, chosen)
    return Reply(f"👍 I'll show your distances in {chosen}.", private=True)


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
    chat = await core.ensure_chat(ctx)
    token = secrets.token_urlsafe(24)  # 192 random bits
    await chat_store.set_web_link(core.db, chat.id, token, ctx.now.timestamp())
    return Reply(
        f"🌐 This chat's race, live: {core.web_url.rstrip('/')}/r/{token}\n"
        "Anyone with the link can see it (the names and distances of this chat's runs). "
        "/web off stops it; /web again makes a new link and the old one stops working."
    )
