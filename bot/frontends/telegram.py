"""Telegram frontend: python-telegram-bot 22 polling inside the shared asyncio loop.

One ``CommandHandler`` per core command turns a message into a ``CommandContext``, runs
``BotCore.dispatch`` and sends the ``Reply`` back (text split at line breaks, images with
``send_photo``). The Application's lifecycle is driven by hand so it shares the loop with the wheels
and Discord instead of owning it the way ``run_polling`` would.

python-telegram-bot puts the bot token in every request URL, so ``httpx`` stays at WARNING and
``TokenRedactor`` scrubs the token from any log record that might still carry it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeDefault,
    ChatMember,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    BaseRateLimiter,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.config import TelegramConfig
from bot.core.commands import COMMANDS, BotCore, Command, CommandContext, Reply, split_text
from bot.core.parsing import UserError
from bot.core.registry import Upload
from bot.core.run_files import looks_like_activity_file
from bot.frontends import FrontendOff
from bot.frontends.lanes import ChatLanes
from bot.frontends.redact import TokenRedactor, install_redactor  # noqa: F401 (re-exported)
from storage.chats import Chat

log = logging.getLogger(__name__)

PLATFORM = "telegram"
MAX_MESSAGE = 4096
MAX_CAPTION = 1024
ADMIN_CACHE_SECONDS = 60.0
SHUTDOWN_SECONDS = 5.0
SORRY = "Sorry, something went wrong on my side. Please try again in a minute."
ADMIN_STATUSES = frozenset({ChatMember.OWNER, ChatMember.ADMINISTRATOR})

Clock = Callable[[], float]


# --- pure pieces ------------------------------------------------------------------------------


def api_urls(base_url: str | None) -> tuple[str, str] | None:
    """``[telegram] base_url`` -> (base_url, base_file_url) for a self-hosted Bot API server.

    Accepts the server's root (``http://host:8081``) or the full ``.../bot`` prefix.
    """
    if not base_url:
        return None
    if "{token}" in base_url:
        return base_url, base_url.replace("/bot{token}", "/file/bot{token}")
    root = base_url.rstrip("/").removesuffix("/bot")
    return root + "/bot", root + "/file/bot"


_COMMAND = re.compile(r"^/(?P<name>[A-Za-z0-9_]{1,32})(?:@\S*)?")


def command_args(text: str) -> str:
    """The text after ``/cmd`` or ``/cmd@bot``, untouched (the core parses it)."""
    match = _COMMAND.match(text.strip())
    return text.strip()[match.end() :].strip() if match else ""


def wants_file_logged(caption: str | None, file_name: str | None, bot_username: str | None) -> bool:
    """A document is a run to log when its caption is /logrun (for this bot), or when it has no
    command and its name says it is an activity file. Anything else people share is left alone."""
    text = (caption or "").strip()
    match = _COMMAND.match(text)
    if match is None:
        return looks_like_activity_file(file_name or "")
    if match.group("name").lower() != "logrun":
        return False
    addressed = match.group(0).partition("@")[2]
    return not addressed or bot_username is None or addressed.casefold() == bot_username.casefold()


def display_name(first_name: str, last_name: str | None) -> str:
    return " ".join(part for part in (first_name, last_name) if part).strip()


def menu(commands: Iterable[Command], *, admins: bool) -> list[BotCommand]:
    """The command menu: everything visible, admin-only commands only for admins."""
    return [
        BotCommand(spec.name, _menu_text(spec.help))
        for spec in commands
        if not spec.hidden and spec.name != "start" and (admins or not spec.admin_only)
    ]


def _menu_text(help_text: str) -> str:
    text = help_text[:1].upper() + help_text[1:]
    return text if len(text) <= 256 else text[:255] + "…"


def reply_plan(reply: Reply) -> tuple[str | None, list[str]]:
    """(photo caption or None, text messages): a short text rides along as the caption."""
    if reply.image_png and len(reply.text) <= MAX_CAPTION:
        return reply.text, []
    return None, [chunk for chunk in split_text(reply.text, MAX_MESSAGE) if chunk.strip()]


def report_parts(reply: Reply) -> list[Reply]:
    """``reply`` as the messages ``deliver`` posts, one ``Reply`` each (the chart, each text, each
    file): the scheduler records each part as sent, so a retry posts only those that did not go out."""
    caption, texts = reply_plan(reply)
    parts = []
    if reply.image_png:
        parts.append(Reply(caption or "", image_png=reply.image_png, image_name=reply.image_name))
    parts += [Reply(text) for text in texts]
    parts += [Reply("", attachments=(attachment,)) for attachment in reply.attachments]
    return parts


@dataclass
class _AdminEntry:
    is_admin: bool
    expires: float


# --- the frontend -----------------------------------------------------------------------------


class TelegramFrontend:
    """Polls Telegram and answers commands; ``send`` posts to a chat for the scheduler."""

    def __init__(
        self,
        core: BotCore,
        config: TelegramConfig,
        *,
        clock: Clock = time.time,
        rate_limiter: BaseRateLimiter | None = None,
        poll_timeout: float = 30.0,
        admin_cache_seconds: float = ADMIN_CACHE_SECONDS,
    ) -> None:
        if not config.token:
            raise ValueError("Telegram needs a bot token")
        self.core = core
        self.config = config
        self.clock = clock
        self.rate_limiter = rate_limiter
        self.poll_timeout = poll_timeout
        self.admin_cache_seconds = admin_cache_seconds
        self.application: Application | None = None
        self.ready = asyncio.Event()
        self._admins: dict[tuple[int, int], _AdminEntry] = {}
        self._requests: tuple[HTTPXRequest, ...] = ()
        self._lanes = ChatLanes()

    def build(self) -> Application:
        builder = Application.builder().token(self.config.token or "")
        urls = api_urls(self.config.base_url)
        if urls:
            builder = builder.base_url(urls[0]).base_file_url(urls[1])
        limiter = self.rate_limiter or AIORateLimiter(max_retries=3)
        # Our own request objects, so they can be closed even when initialize() fails half way
        # (a rejected token, no network at boot): PTB's shutdown skips an uninitialized bot.
        self._requests = (
            HTTPXRequest(connection_pool_size=8),
            HTTPXRequest(connection_pool_size=1),
        )
        builder = builder.request(self._requests[0]).get_updates_request(self._requests[1])
        application = builder.rate_limiter(limiter).build()
        only_new = filters.UpdateType.MESSAGE  # an edited "/logrun" must not log the run twice
        for name in COMMANDS:
            application.add_handler(CommandHandler(name, self.on_command, filters=only_new))
        application.add_handler(MessageHandler(filters.COMMAND & only_new, self.on_other_command))
        application.add_handler(MessageHandler(filters.Document.ALL & only_new, self.on_document))
        application.add_error_handler(self.on_error)
        return application

    async def run(self) -> None:
        """Poll until cancelled; then stop polling and shut the Application down."""
        # Every request URL carries the token: httpx must never log them.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        application = self.build()
        self.application = application
        try:
            try:
                await application.initialize()
            except InvalidToken:
                raise FrontendOff(
                    "Telegram rejected the bot token; check [telegram] token or "
                    "HAMSTERBOT_TELEGRAM_TOKEN (from @BotFather)"
                ) from None
            await application.start()
            assert application.updater is not None
            await application.updater.start_polling(
                poll_interval=0.0,
                timeout=timedelta(seconds=self.poll_timeout),
                allowed_updates=[Update.MESSAGE],
            )
            log.info("Telegram: polling as @%s", application.bot.username)
            await self.register_commands(application)
            self.ready.set()
            await asyncio.Event().wait()  # until cancelled
        finally:
            self.ready.clear()
            await self._lanes.close()  # the commands still queued or running
            if self.application is application:
                self.application = None
            await _shut_down(application)
            for request in self._requests:
                await request.shutdown()  # a no-op when the Application already closed it

    async def register_commands(self, application: Application) -> None:
        """The ``/`` menu in groups and private chats; a failure here is not worth a restart."""
        bot = application.bot
        everyone = menu(COMMANDS.values(), admins=False)
        admins = menu(COMMANDS.values(), admins=True)
        scopes = [
            (everyone, BotCommandScopeDefault()),
            (everyone, BotCommandScopeAllGroupChats()),
            (admins, BotCommandScopeAllChatAdministrators()),
            (admins, BotCommandScopeAllPrivateChats()),
        ]
        try:
            for commands, scope in scopes:
                await bot.set_my_commands(commands, scope=scope)
        except TelegramError as err:
            log.warning("Telegram: could not set the command menu: %s", err)

    # --- the scheduler's sender ----------------------------------------------------------------

    async def send(self, chat: Chat, reply: Reply) -> None:
        """Post ``reply`` to ``chat.chat_key``. Failures raise: the caller retries."""
        application = self.application
        if application is None or not self.ready.is_set():
            raise ConnectionError("Telegram is not connected")
        await self.deliver(application, int(chat.chat_key), reply)

    async def deliver(
        self, application: Application, chat_id: int, reply: Reply, reply_to: int | None = None
    ) -> None:
        bot = application.bot
        quote = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        caption, texts = reply_plan(reply)
        if reply.image_png:
            await bot.send_photo(
                chat_id,
                reply.image_png,
                caption=caption or None,
                filename=reply.image_name,
                reply_parameters=quote,
            )
            quote = None
        for text in texts:
            await bot.send_message(chat_id, text, reply_parameters=quote)
            quote = None
        for filename, data in reply.attachments:
            await bot.send_document(chat_id, data, filename=filename)

    # --- updates -------------------------------------------------------------------------------

    # Each handler only queues its work in the chat's lane (bot/frontends/lanes.py): one group
    # waiting out its flood limit then delays that group alone, and a chat's commands keep their order.

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self._queue(update, context, self._answer_command)

    async def on_other_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self._queue(update, context, self._answer_other_command)

    def _queue(
        self,
        update: Update,
        context: ContextTypes.DEFAULT_TYPE,
        handler: Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]],
    ) -> None:
        chat = update.effective_chat
        self._lanes.submit(
            chat.id if chat else None, lambda: self._guarded(update, context, handler)
        )

    async def _guarded(
        self,
        update: Update,
        context: ContextTypes.DEFAULT_TYPE,
        handler: Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]],
    ) -> None:
        try:
            await handler(update, context)
        except Exception as err:  # what PTB's error handler did when handlers ran inline
            await self._apologise(update, context.bot, err)

    async def _answer_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or not message.text:
            return
        match = _COMMAND.match(message.text)
        if match is None:
            return
        ctx = await self.context(message)
        if ctx is None:
            return
        reply = await self.core.dispatch(ctx, match.group("name"), command_args(message.text))
        await self.deliver(context.application, message.chat_id, reply, message.message_id)

    async def _answer_other_command(
        self, update: Update, context: ContextTypes.DEFAULT_TYPE
    ) -> None:
        """Commands I don't have. In groups other bots may own them: answer only when addressed."""
        message = update.effective_message
        if message is None or not message.text:
            return
        addressed = f"@{context.bot.username}".casefold() in message.text.split()[0].casefold()
        if message.chat.type != ChatType.PRIVATE and not addressed:
            return
        ctx = await self.context(message)
        if ctx is None:
            return
        reply = await self.core.handle_text(ctx, message.text, bot_username=context.bot.username)
        if reply is not None:
            await self.deliver(context.application, message.chat_id, reply, message.message_id)

    async def on_document(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self._queue(update, context, self._answer_document)

    async def _answer_document(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A file sent to the bot: an activity file (or any file captioned /logrun) is logged as a run.
        The update carries only the file's id; the bytes come from getFile and the file URL, fetched
        only when the core wants them."""
        message = update.effective_message
        if message is None or message.document is None:
            return
        document = message.document
        if not wants_file_logged(message.caption, document.file_name, context.bot.username):
            return
        ctx = await self.context(message)
        if ctx is None:
            return
        name = document.file_name or "the file"
        bot = context.bot

        async def fetch() -> bytes:
            try:
                telegram_file = await bot.get_file(document.file_id)
            except BadRequest as err:
                if "too big" in str(err).lower():
                    raise UserError(
                        f"{name} is too big for a bot to download from Telegram (20 MB at most). "
                        "Send it zipped as .gz, or use `hamsterbot import`."
                    ) from None
                raise
            return bytes(await telegram_file.download_as_bytearray())

        upload = Upload(name, document.file_size, fetch)
        reply = await self.core.dispatch(replace(ctx, upload=upload), "logrun", "")
        await self.deliver(context.application, message.chat_id, reply, message.message_id)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._apologise(update, context.bot, context.error)

    async def _apologise(self, update: object, bot: Bot, error: BaseException | None) -> None:
        """Log the real problem; the chat gets a short apology, never internals."""
        log.error("Telegram: handling an update failed", exc_info=error)
        if not isinstance(update, Update) or update.effective_message is None:
            return
        message = update.effective_message
        try:
            await bot.send_message(
                message.chat_id,
                SORRY,
                reply_parameters=ReplyParameters(
                    message.message_id, allow_sending_without_reply=True
                ),
            )
        except TelegramError:
            log.warning("Telegram: could not send the apology either")

    async def context(self, message: Message) -> CommandContext | None:
        chat = message.chat
        is_private = chat.type == ChatType.PRIVATE
        sender_chat = message.sender_chat
        if sender_chat is not None:
            if sender_chat.id != chat.id:
                return None  # a post forwarded from a linked channel: nobody to answer
            # An anonymous admin speaks as the group itself.
            user_id, name, is_admin = sender_chat.id, sender_chat.title or "Admins", True
        elif message.from_user is not None:
            user = message.from_user
            user_id, name = user.id, display_name(user.first_name, user.last_name)
            is_admin = is_private or await self.is_admin(message.get_bot(), chat.id, user.id)
        else:
            return None
        title = chat.title or (chat.full_name if is_private else None)
        return CommandContext(
            platform=PLATFORM,
            chat_id=str(chat.id),
            user_id=str(user_id),
            display_name=name or str(user_id),
            is_admin=is_admin,
            now=datetime.fromtimestamp(self.clock(), UTC),
            is_private=is_private,
            chat_title=title,
        )

    async def is_admin(self, bot: Bot, chat_id: int, user_id: int) -> bool:
        """Owner or administrator, asked of Telegram and remembered for a minute."""
        key = (chat_id, user_id)
        now = time.monotonic()
        cached = self._admins.get(key)
        if cached is not None and cached.expires > now:
            return cached.is_admin
        try:
            member = await bot.get_chat_member(chat_id, user_id)
        except TelegramError as err:
            log.warning("Telegram: could not check admin status in chat %s: %s", chat_id, err)
            return False
        is_admin = member.status in ADMIN_STATUSES
        self._admins[key] = _AdminEntry(is_admin, now + self.admin_cache_seconds)
        return is_admin


async def _shut_down(application: Application) -> None:
    """Stop polling, stop, shut down: each step bounded so SIGTERM exits in seconds."""
    steps = []
    if application.updater is not None and application.updater.running:
        steps.append(application.updater.stop)
    if application.running:
        steps.append(application.stop)
    steps.append(application.shutdown)
    for step in steps:
        try:
            async with asyncio.timeout(SHUTDOWN_SECONDS):
                await step()
        except TimeoutError:
            log.warning("Telegram: %s took too long; going on", step.__name__)
        except Exception:
            log.exception("Telegram: %s failed", step.__name__)
