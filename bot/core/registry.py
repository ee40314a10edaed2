"""What a chat command is: the context it runs in, the reply it gives, and the table of commands.

Topic modules (``runs``, ``race``, ``hamster``, ``settings``) register their handlers with ``@command``;
``bot.core.commands.BotCore`` dispatches to them. No chat-library imports here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from bot.core.words import UserError

if TYPE_CHECKING:
    from bot.core.commands import BotCore

MAX_REPLY = 4096  # Telegram's message limit; Discord's frontend splits further (split_text)


@dataclass(frozen=True, slots=True)
class Upload:
    """A file sent with a command (an activity file with /logrun). The frontend knows how to fetch its
    bytes; the core decides whether to (not for a file that is too big, say). ``fetch`` raises
    ``UserError`` for what the platform refuses (Telegram's 20 MB download limit)."""

    name: str
    size: int | None
    fetch: Callable[[], Awaitable[bytes]] = field(repr=False, compare=False)


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
    upload: Upload | None = None  # a file sent with the command


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    image_png: bytes | None = field(default=None, repr=False)
    private: bool = False  # only the asking user needs it (Discord: ephemeral)
    image_name: str = "chart.png"
    # Files other than images, as (file name, bytes): /export's CSVs.
    attachments: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)


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


def command(
    name: str, usage: str, help: str, *, admin_only: bool = False, hidden: bool = False
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, usage, help, handler, admin_only, hidden)
        return handler

    return register


def require_admin(ctx: CommandContext) -> None:
    if not (ctx.is_admin or ctx.is_private):
        raise UserError("Only the chat's admins can change settings here.")


def fit_text(text: str, limit: int = MAX_REPLY) -> str:
    """``text`` cut at a line break to fit one message, with an ellipsis line when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 2].rsplit("\n", 1)[0] + "\n…"


def fit(reply: Reply) -> Reply:
    return reply if len(reply.text) <= MAX_REPLY else replace(reply, text=fit_text(reply.text))


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


def short(text: str) -> str:
    """A user's word, printable and at most 30 characters, for echoing back."""
    shown = "".join(ch for ch in text if ch.isprintable())
    return shown if len(shown) <= 30 else shown[:29] + "…"
