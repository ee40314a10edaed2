"""The platform-neutral command core: CommandContext -> handler -> Reply.

Frontends (Telegram, Discord, the terminal) translate their updates into a ``CommandContext`` and call
``BotCore.dispatch`` (a command name plus its argument text) or ``BotCore.handle_text`` (a whole message). No
chat-library imports here.

Module map of ``bot.core``:

* ``model``: the values every face renders (HamsterNow, Standings, NightReport, Stats, ChatSettings...).
* ``reads``: store + scope + time -> values, never writing (the web page calls these directly).
* ``registry``: CommandContext, Reply, the command table and reply fitting.
* topics, each with its handlers and pure renderers: ``runs``, ``race``, ``hamster``, ``settings``,
  ``summary`` (the morning report), with ``stats`` (numbers from minute buckets), ``hours`` (local clock
  hours and UTC offsets of a night) and ``charts``.
* ``parsing``, ``periods``, ``words``: chat text -> values, or a friendly ``UserError``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from bot.config import Config
from bot.core import stats as wheel_stats
from bot.core.model import ChatSettings, Scope, SensorStatus, Units
from bot.core.parsing import UserError, last_night  # noqa: F401  (last_night: re-exported)
from bot.core.race import clean_name
from bot.core.reads import Hamster, chat_settings
from bot.core.registry import (
    COMMANDS,
    MAX_REPLY,
    Command,
    CommandContext,
    Reply,
    command,
    fit,
    short,
    split_text,
)
from storage import chats as chat_store
from storage.db import Database, Query
from storage.wheel import WheelStore

log = logging.getLogger(__name__)

__all__ = [
    "COMMANDS",
    "MAX_REPLY",
    "BotCore",
    "ChatSettings",
    "Command",
    "CommandContext",
    "Hamster",
    "Reply",
    "split_text",
]

_COMMAND_TEXT = re.compile(
    r"^/(?P<name>[A-Za-z0-9_]{1,32})(?:@(?P<bot>[A-Za-z0-9_]{1,64}))?(?:\s+|$)"
)


class BotCore:
    """Everything a command needs: the store, the configuration, the hamsters and their live status."""

    def __init__(
        self,
        db: Database,
        config: Config,
        hamsters: Sequence[Hamster],
        live: Callable[[str], SensorStatus | None] | None = None,
        charts: Mapping[str, Callable[..., Awaitable[bytes | None]]] | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.hamsters = list(hamsters)
        self._by_name = {h.name: h for h in self.hamsters}
        self._live = live or (lambda name: None)
        self.charts = charts or {}
        # Told after every command that succeeded (the public page refreshes the races it shows).
        self.after_command: Callable[[CommandContext], object] | None = None
        # Where the public page is (its public_url, else the address it listens on); None: not served.
        self.web_url: str | None = None
        # Per wheel: fastest minute and longest session over settled history (see reads._minute_bests).
        self.minute_bests: dict[int, wheel_stats.MinuteBests] = {}
        # Each chat's row as last read: a guess of its settings, checked by every read_in_chat.
        self._chat_rows: dict[tuple[str, str], chat_store.Chat | None] = {}

    @classmethod
    async def create(
        cls,
        db: Database,
        config: Config,
        live: Callable[[str], SensorStatus | None] | None = None,
    ) -> BotCore:
        """A core on its own (no wheel pipelines: figures are what is stored; see read_buffers)."""
        hamsters = []
        for hamster in config.hamsters:
            store = await WheelStore.open(db, hamster.name)
            hamsters.append(Hamster(hamster, store.wheel_id))
        return cls(db, config, hamsters, live)

    def read_buffers(self, stores: Mapping[str, WheelStore]) -> None:
        """Count what these wheel stores buffer in live figures (hamster name -> its pipeline's store)."""
        self.hamsters = [
            replace(h, live=stores[h.name]) if h.name in stores else h for h in self.hamsters
        ]
        self._by_name = {h.name: h for h in self.hamsters}

    # --- what a chat may see ------------------------------------------------------------------

    def status(self, name: str) -> SensorStatus | None:
        """What the wheel link knows right now, or None without a live pipeline."""
        return self._live(name)

    def hamster(self, name: str) -> Hamster | None:
        return self._by_name.get(name)

    def scope_for(self, chat: chat_store.Chat | CommandContext | None) -> Scope:
        """The hamsters ``chat`` may see: those whose ``[[hamsters]] chats`` name it, and every
        hamster without ``chats``. A chat that has no row yet is passed as its CommandContext.
        None is the public view (the web page, the CLI): every hamster."""
        if chat is None:
            return Scope(frozenset(self._by_name))
        key = chat.chat_key if isinstance(chat, chat_store.Chat) else chat.chat_id
        return Scope(
            frozenset(h.name for h in self.hamsters if h.config.seen_in(chat.platform, key))
        )

    def everyone(self) -> Scope:
        """Every hamster the bot knows, whichever chats see them (the league)."""
        return Scope(frozenset(self._by_name))

    def in_scope(self, scope: Scope) -> list[Hamster]:
        """The hamsters of ``scope``, in configuration order."""
        return [h for h in self.hamsters if h.name in scope]

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
        if spec is None:
            return Reply(f"I don't know /{short(name)}. Try /help for what I can do.", private=True)
        try:
            reply = await spec.handler(self, ctx, args.strip())
        except UserError as err:
            return Reply(str(err), private=True)
        if self.after_command is not None:
            self.after_command(ctx)
        return fit(reply)

    # --- the chat and the person: read without creating, created only to write ----------------

    async def chat_settings(
        self, ctx: CommandContext
    ) -> tuple[chat_store.Chat | None, ChatSettings]:
        """The chat (None if never written to) and its effective settings; writes nothing."""
        chat = await chat_store.get_chat(self.db, ctx.platform, ctx.chat_id)
        return chat, chat_settings(self.config, chat)

    async def read_in_chat(
        self,
        ctx: CommandContext,
        build: Callable[[chat_store.Chat | None, ChatSettings], Sequence[Query[Any]]],
    ) -> tuple[chat_store.Chat | None, ChatSettings, list[Any]]:
        """The chat, its settings and the values of ``build(chat, settings)``'s queries, read
        together in one trip to the database (inside ``db.settled()``); writes nothing.

        The queries depend on the chat's settings (its timezone, its summary time), so they are
        built from the chat's row as last read here and the row is read with them. When the row
        has changed since (a first read, /timezone, another process), they are built again from
        the row just read and read once more: the answer always matches the chat as it is.
        """
        key = (ctx.platform, ctx.chat_id)
        guess = self._chat_rows.get(key)
        while True:
            settings = chat_settings(self.config, guess)
            asked = build(guess, settings)
            async with self.db.settled():
                chat, *values = await self.db.read(chat_store.chat_query(*key), *asked, inline=True)
            if len(self._chat_rows) >= 10_000:  # a bound, not a policy: chats are few
                self._chat_rows.clear()
            self._chat_rows[key] = chat
            if chat == guess:
                return chat, settings, values
            guess = chat

    async def chat_and_person(
        self, ctx: CommandContext
    ) -> tuple[chat_store.Chat | None, ChatSettings, Units, chat_store.Person | None]:
        """The chat, its settings, the person's units and the person (None if unknown); writes nothing."""
        chat, person = await asyncio.gather(
            chat_store.get_chat(self.db, ctx.platform, ctx.chat_id),
            chat_store.get_person(self.db, ctx.platform, ctx.user_id),
        )
        settings = chat_settings(self.config, chat)
        units: Units = settings.units
        if person is not None and person.units in ("km", "mi"):
            units = person.units  # type: ignore[assignment]
        return chat, settings, units, person

    async def ensure_chat(self, ctx: CommandContext) -> chat_store.Chat:
        """The chat's row, created (or its title refreshed) before a write."""
        return await chat_store.ensure_chat(
            self.db, ctx.platform, ctx.chat_id, ctx.now.timestamp(), ctx.chat_title
        )

    async def ensure_person(self, ctx: CommandContext) -> chat_store.Person:
        return await chat_store.ensure_person(
            self.db, ctx.platform, ctx.user_id, clean_name(ctx.display_name), ctx.now.timestamp()
        )


# --- /start and /help -----------------------------------------------------------------------------


@command("start", "/start", "say hello and show what I can do")
async def start(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    chat, _ = await core.chat_settings(ctx)
    names = ", ".join(h.name for h in core.in_scope(core.scope_for(chat or ctx))) or "the hamster"
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


# The topics register their commands on import; /help and the chat menus list them in this order.
from bot.core import forget as _forget  # noqa: E402, F401
from bot.core import hamster as _hamster  # noqa: E402, F401
from bot.core import league as _league  # noqa: E402, F401
from bot.core import race as _race  # noqa: E402, F401
from bot.core import runs as _runs  # noqa: E402, F401
from bot.core import settings as _settings  # noqa: E402, F401

_ORDER = (
    "start",
    "help",
    "logrun",
    "runs",
    "undo",
    "race",
    "chart",
    "hamster",
    "export",
    "settings",
    "myunits",
    "forget",
)
for _name in sorted(COMMANDS, key=lambda n: _ORDER.index(n) if n in _ORDER else len(_ORDER)):
    COMMANDS[_name] = COMMANDS.pop(_name)
