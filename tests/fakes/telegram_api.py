"""A fake Telegram Bot API server for tests.

The real python-telegram-bot client talks to it over HTTP on 127.0.0.1, so tests exercise the
same request encoding, response parsing, error mapping, long polling and rate limiting as in
production. Only the behaviour hamsterbot relies on is modelled; where the real API is strict
(unknown chats, bad command names, unparsable markup, non-image uploads) the fake is strict too,
so adapter bugs show up here rather than in a group chat.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# Telegram's own service accounts, which appear as `from` on anonymous messages.
GROUP_ANONYMOUS_BOT = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
CHANNEL_BOT = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
# The cloud Bot API lets bots download files up to 20 MB; getFile refuses bigger ones.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024

# Form and multipart values arrive as strings: these stay strings even when they look like JSON.
_STRING_FIELDS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "language_code",
        "inline_message_id",
        "url",
        "description",
        "short_description",
        "name",
    }
)
_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w@])")
_BOT_COMMAND_NAME_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_MARKDOWN_V2_RESERVED = "_*[]()~`>#+-=|{}.!"
_HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
_HTML_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^<>]*)?)>")
_HTML_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
_MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "restricted", "left", "kicked"})


@dataclass
class ApiCall:
    """One HTTP request the client made, whatever its outcome."""

    method: str
    params: dict[str, Any]
    at: float  # event-loop time of arrival, for checking pacing without wall clocks
    status: int | None = None  # None while the request is still being answered (long polls)


@dataclass
class SentMessage:
    """Something the bot put into (or changed in) a chat, in the order the fake received it."""

    method: str
    chat_id: int | str | None
    message_id: int | None
    text: str | None = None
    caption: str | None = None
    parse_mode: str | None = None
    reply_to_message_id: int | None = None
    photo: bytes | None = None
    photo_filename: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    document: bytes | None = None
    document_filename: str | None = None


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: float | None
    migrate_to_chat_id: int | None
    remaining: int


@dataclass
class _Member:
    status: str
    is_anonymous: bool = False


class ApiError(Exception):
    """Raised by method handlers; becomes a Bot API error response."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def _utf16_len(text: str) -> int:
    # Telegram measures entity offsets and lengths in UTF-16 code units.
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """`bot_command` entities for every /command (optionally /command@bot) in `text`."""
    entities = []
    for match in _COMMAND_RE.finditer(text):
        entities.append(
            {
                "type": "bot_command",
                "offset": _utf16_len(text[: match.start()]),
                "length": _utf16_len(match.group()),
            }
        )
    return entities


def scope_key(scope: dict[str, Any] | None, language_code: str | None = None) -> str:
    """The `commands_by_scope` key: e.g. "default", "chat:-100123", "chat_member:-100123:42".

    A non-empty language code is appended after "#", e.g. "all_group_chats#de".
    """
    scope = scope or {"type": "default"}
    parts = [str(scope.get("type", "default"))]
    if "chat_id" in scope:
        parts.append(str(scope["chat_id"]))
    if "user_id" in scope:
        parts.append(str(scope["user_id"]))
    key = ":".join(parts)
    return f"{key}#{language_code}" if language_code else key


def _check_markup(text: str, parse_mode: str | None) -> None:
    if not parse_mode:
        return
    mode = parse_mode.lower()
    if mode == "markdownv2":
        escaped = False
        in_code = False
        for index, char in enumerate(text):
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "`":
                in_code = not in_code
            elif in_code:
                continue
            elif char in _MARKDOWN_V2_RESERVED and char not in "*_~`|[]()":
                # Formatting characters may legitimately appear unescaped; plain punctuation
                # may not, and forgetting to escape it is the classic MarkdownV2 bug.
                raise _bad_request(
                    f"can't parse entities: Character '{char}' is reserved and must be "
                    f"escaped with the preceding '\\' (byte offset {index})"
                )
    elif mode == "html":
        stack: list[str] = []
        position = 0
        for match in _HTML_TAG_RE.finditer(text):
            _check_html_text(text[position : match.start()])
            position = match.end()
            closing, tag = match.group(1), match.group(2).lower()
            if tag not in _HTML_TAGS:
                raise _bad_request(f'can\'t parse entities: Unsupported start tag "{tag}"')
            if closing:
                if not stack or stack[-1] != tag:
                    raise _bad_request(f'can\'t parse entities: Unmatched end tag "{tag}"')
                stack.pop()
            else:
                stack.append(tag)
        _check_html_text(text[position:])
        if stack:
            raise _bad_request(f"can't parse entities: Can't find end tag \"{stack[-1]}\"")
    elif mode != "markdown":
        raise _bad_request(f"unsupported parse_mode {parse_mode!r}")


def _check_html_text(chunk: str) -> None:
    if "<" in chunk or ">" in chunk:
        raise _bad_request("can't parse entities: Unsupported start tag")
    without_entities = _HTML_ENTITY_RE.sub("", chunk)
    if "&" in without_entities:
        raise _bad_request("can't parse entities: Unsupported HTML entity")


def _image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG or JPEG; Telegram rejects anything it cannot decode."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(b"\xff\xd8"):
        index = 2
        while index + 9 < len(data):
            if data[index] != 0xFF:
                break
            marker = data[index + 1]
            length = int.from_bytes(data[index + 2 : index + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2):
                height = int.from_bytes(data[index + 5 : index + 7], "big")
                width = int.from_bytes(data[index + 7 : index + 9], "big")
                return width, height
            index += 2 + length
    raise _bad_request("IMAGE_PROCESS_FAILED")


class FakeTelegram:
    """An in-process Bot API server: `/bot<TOKEN>/<method>` on 127.0.0.1, free port."""

    def __init__(
        self,
        *,
        token: str | None = None,
        bot_username: str = "hamster_test_bot",
        bot_first_name: str = "Hamster Test Bot",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot_id = 7000000000 + secrets.randbelow(10**8)
        self.token = token or f"{self.bot_id}:AA{secrets.token_urlsafe(24)}"
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self._clock = clock
        self.sent: list[SentMessage] = []
        self.calls: defaultdict[str, list[ApiCall]] = defaultdict(list)
        self.requests: list[ApiCall] = []
        self.commands_by_scope: dict[str, list[dict[str, str]]] = {}
        self.answered_callbacks: list[dict[str, Any]] = []
        self._chats: dict[int | str, dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._members: dict[tuple[int | str, int], _Member] = {}
        self._messages: dict[tuple[int | str, int], dict[str, Any]] = {}
        self._next_message_id: defaultdict[int | str, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1)
        )
        self._update_ids = itertools.count(100000001)
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        # Files users sent, by file_id: (file_unique_id, name, bytes); getFile gives them a path.
        self._user_files: dict[str, tuple[str, str, bytes]] = {}
        self._file_paths: dict[str, bytes] = {}
        self.downloads: list[str] = []  # file paths the bot downloaded, in order
        self._pending: list[dict[str, Any]] = []
        self._failures: defaultdict[str, list[_Failure]] = defaultdict(list)
        self._updates_changed = asyncio.Event()
        self._activity = asyncio.Event()
        self._poller_generation = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
            "getChat": self._get_chat,
            "getFile": self._get_file,
            "answerCallbackQuery": self._answer_callback_query,
            "editMessageText": self._edit_message_text,
            "close": self._true,
            "logOut": self._true,
        }

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        logger.debug("fake Telegram listening on 127.0.0.1:%d", self._port)

    async def close(self) -> None:
        self._closing = True
        # Release pending long polls at once instead of letting shutdown wait them out.
        self._updates_changed.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeTelegram.start() has not been awaited")
        return f"http://127.0.0.1:{self._port}/bot"

    @property
    def base_file_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeTelegram.start() has not been awaited")
        return f"http://127.0.0.1:{self._port}/file/bot"

    @property
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def __repr__(self) -> str:
        # The token must never end up in logs or assertion messages.
        return f"FakeTelegram(port={self._port}, bot=@{self.bot_username})"

    # -- test controls ------------------------------------------------------------------------

    def add_chat(
        self,
        chat_id: int,
        chat_type: str = "group",
        *,
        title: str | None = None,
        username: str | None = None,
        first_name: str | None = None,
    ) -> dict[str, Any]:
        """Make a chat known (pushing a message into it does this too) and return its JSON."""
        if chat_type not in ("private", "group", "supergroup", "channel"):
            raise ValueError(f"unknown chat type {chat_type!r}")
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name or f"User {chat_id}"
        else:
            chat["title"] = title or f"Hamster group {chat_id}"
        if username:
            chat["username"] = username
        existing = self._chats.get(chat_id)
        if existing is None or existing["type"] != chat_type or title or username:
            self._chats[chat_id] = chat
        return self._chats[chat_id]

    def push_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int,
        first_name: str,
        last_name: str | None = None,
        chat_type: str = "group",
        username: str | None = None,
        sender_chat: int | None = None,
        title: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> int:
        """Queue a message update as Telegram would deliver it; returns its update_id.

        `sender_chat` is the id of the chat the message is sent on behalf of: pass the group's own
        id for an anonymous group administrator (Telegram then shows GroupAnonymousBot as the
        sender), or a channel id for a post forwarded from a linked channel.
        """
        message = self._user_message(
            chat_id,
            user_id=user_id,
            first_name=first_name,
            last_name=last_name,
            chat_type=chat_type,
            username=username,
            sender_chat=sender_chat,
            title=title,
            reply_to_message_id=reply_to_message_id,
        )
        message["text"] = text
        entities = command_entities(text)
        if entities:
            message["entities"] = entities
        return self._push_update({"message": message})

    def push_document(
        self,
        chat_id: int,
        file_name: str | None,
        data: bytes,
        *,
        user_id: int,
        first_name: str,
        caption: str | None = None,
        mime_type: str | None = None,
        chat_type: str = "group",
        title: str | None = None,
        last_name: str | None = None,
    ) -> int:
        """Queue a message carrying a document (a file sent "as file"), as Telegram delivers it: the
        update holds only the file's id, name, type and size; the bytes come from getFile and then
        a download from the file URL."""
        file_id = f"BQACAgIAAxkBAAI{next(self._file_ids):06d}{secrets.token_urlsafe(8)}"
        unique_id = f"AgAD{secrets.token_urlsafe(6)}"
        self._user_files[file_id] = (unique_id, file_name or "", data)
        message = self._user_message(
            chat_id,
            user_id=user_id,
            first_name=first_name,
            last_name=last_name,
            chat_type=chat_type,
            title=title,
        )
        document: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": unique_id,
            "file_size": len(data),
        }
        if file_name is not None:
            document["file_name"] = file_name
        if mime_type is not None:
            document["mime_type"] = mime_type
        message["document"] = document
        if caption is not None:
            message["caption"] = caption
            entities = command_entities(caption)
            if entities:
                message["caption_entities"] = entities
        return self._push_update({"message": message})

    def _user_message(
        self,
        chat_id: int,
        *,
        user_id: int,
        first_name: str,
        last_name: str | None = None,
        chat_type: str = "group",
        username: str | None = None,
        sender_chat: int | None = None,
        title: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        self._users[user_id] = user
        if chat_type == "private":
            chat = self.add_chat(chat_id, "private", first_name=first_name, username=username)
        else:
            chat = self.add_chat(chat_id, chat_type, title=title)
        message: dict[str, Any] = {
            "message_id": next(self._next_message_id[chat_id]),
            "date": int(self._clock()),
            "chat": chat,
            "from": user,
        }
        if sender_chat is not None:
            if sender_chat == chat_id:
                message["from"] = GROUP_ANONYMOUS_BOT
                message["sender_chat"] = chat
            else:
                message["from"] = CHANNEL_BOT
                message["sender_chat"] = self._chats.get(sender_chat) or {
                    "id": sender_chat,
                    "type": "channel",
                    "title": f"Channel {sender_chat}",
                }
                message["is_automatic_forward"] = True
        if reply_to_message_id is not None:
            replied = self._messages.get((chat_id, reply_to_message_id))
            if replied is None:
                raise ValueError(f"no message {reply_to_message_id} in chat {chat_id}")
            message["reply_to_message"] = {
                k: v for k, v in replied.items() if k != "reply_to_message"
            }
        self._messages[(chat_id, message["message_id"])] = message
        return message

    def push_callback_query(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int,
        first_name: str,
    ) -> int:
        """Queue a button press on one of the bot's messages; returns its update_id."""
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        user = self._users.get(user_id) or {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
        }
        query = {
            "id": str(next(self._callback_ids)),
            "from": user,
            "message": message,
            "chat_instance": str(chat_id),
            "data": data,
        }
        return self._push_update({"callback_query": query})

    def set_member_status(
        self, chat_id: int, user_id: int, status: str, is_anonymous: bool = False
    ) -> None:
        """What getChatMember reports for (chat, user); unconfigured users are plain members."""
        if status not in _MEMBER_STATUSES:
            raise ValueError(f"unknown chat member status {status!r}")
        self._members[(chat_id, user_id)] = _Member(status, is_anonymous)

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: float | None = None,
        description: str | None = None,
        times: int = 1,
        *,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` with an error instead of handling them.

        `retry_after` may be fractional so tests need not sleep whole seconds; the real API
        only ever sends integers.
        """
        if description is None:
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after or 1}"
            elif status == 400:
                description = "Bad Request: injected failure"
            elif status == 403:
                description = "Forbidden: bot was kicked from the group chat"
            else:
                description = "Internal Server Error" if status == 500 else "Bad Gateway"
        self._failures[method].append(
            _Failure(status, description, retry_after, migrate_to_chat_id, times)
        )

    async def wait_for_sent(
        self,
        predicate: Callable[[SentMessage], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 -- a test helper; callers want one knob
    ) -> list[SentMessage]:
        """Wait until `count` sent messages match `predicate` (all, if None); return them."""

        def matching() -> list[SentMessage]:
            return [s for s in self.sent if predicate is None or predicate(s)]

        try:
            return await self._wait_until(matching, count, timeout)
        except TimeoutError:
            summary = [(s.method, s.chat_id, s.text or s.caption) for s in self.sent]
            raise AssertionError(
                f"expected {count} matching sent message(s) within {timeout}s; sent: {summary}"
            ) from None

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 -- a test helper; callers want one knob
    ) -> list[ApiCall]:
        """Wait until `count` requests to `method` matching `predicate` have arrived.

        Calls are recorded on arrival, so a long poll counts before it is answered.
        """

        def matching() -> list[ApiCall]:
            return [c for c in self.calls[method] if predicate is None or predicate(c)]

        try:
            return await self._wait_until(matching, count, timeout)
        except TimeoutError:
            raise AssertionError(
                f"expected {count} matching {method} call(s) within {timeout}s; "
                f"got {[c.params for c in self.calls[method]]}"
            ) from None

    async def _wait_until(
        self,
        matching: Callable[[], list[_T]],
        count: int,
        timeout: float,  # noqa: ASYNC109
    ) -> list[_T]:
        async with asyncio.timeout(timeout):
            while len(found := matching()) < count:
                activity = self._activity
                await activity.wait()
        return found

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet acknowledged by a getUpdates offset."""
        return list(self._pending)

    def messages_in(self, chat_id: int | str) -> list[dict[str, Any]]:
        """Every message in a chat, pushed or sent, in message_id order."""
        return [m for (chat, _), m in sorted(self._messages.items()) if chat == chat_id]

    # -- HTTP plumbing ------------------------------------------------------------------------

    def _push_update(self, payload: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self._pending.append({"update_id": update_id, **payload})
        self._wake_pollers()
        return update_id

    def _wake_pollers(self) -> None:
        self._updates_changed.set()
        self._updates_changed = asyncio.Event()

    def _record_sent(self, sent: SentMessage) -> None:
        self.sent.append(sent)
        self._notify_activity()

    def _notify_activity(self) -> None:
        self._activity.set()
        self._activity = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if not secrets.compare_digest(request.match_info["token"].encode(), self.token.encode()):
            return self._error(401, "Unauthorized")
        try:
            params = await self._read_params(request)
        except ValueError as exc:
            return self._error(400, f"Bad Request: {exc}")
        handler = self._handlers.get(method)
        # Match the real API case-insensitively, as it does.
        if handler is None:
            for name, candidate in self._handlers.items():
                if name.lower() == method.lower():
                    method, handler = name, candidate
                    break
        call = ApiCall(method, params, asyncio.get_running_loop().time())
        self.calls[method].append(call)
        self.requests.append(call)
        self._notify_activity()
        try:
            if handler is None:
                raise ApiError(404, "Not Found")
            failure = self._take_failure(method)
            if failure is not None:
                call.status = failure.status
                return self._failure_response(failure)
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
            call.status = 200
        except ApiError as exc:
            call.status = exc.status
            return self._error(exc.status, exc.description)
        except Exception:
            # A bug in the fake itself. Log it here, by method name, because aiohttp's own
            # handler would answer with a bare text page and the client sees only a 500.
            logger.exception("fake Telegram crashed handling %s", method)
            call.status = 500
            return self._error(500, "Internal Server Error: the fake crashed, see the log")
        finally:
            # The method name only: the URL carries the token.
            logger.debug("fake Telegram %s -> %s", method, call.status)
            self._notify_activity()
        return web.json_response({"ok": True, "result": result})

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = {k: self._coerce(k, v) for k, v in request.query.items()}
        if request.method != "POST" or not request.can_read_body:
            return params
        content_type = request.content_type
        if content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("JSON body must be an object")
            params.update(body)
        elif content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if part.name is None:
                    continue
                if part.filename is not None:
                    params[part.name] = _Upload(
                        part.filename, bytes(await part.read()), part.headers.get("Content-Type")
                    )
                else:
                    params[part.name] = self._coerce(part.name, await part.text())
        else:
            form = await request.post()
            params.update({k: self._coerce(k, v) for k, v in form.items() if isinstance(v, str)})
        return params

    @staticmethod
    def _coerce(name: str, value: str) -> Any:
        if name in _STRING_FIELDS:
            return value
        try:
            return json.loads(value)
        except ValueError:
            return value

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    @staticmethod
    def _error(status: int, description: str, **parameters: Any) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    def _failure_response(self, failure: _Failure) -> web.Response:
        parameters: dict[str, Any] = {}
        if failure.retry_after is not None:
            parameters["retry_after"] = failure.retry_after
        if failure.migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = failure.migrate_to_chat_id
        return self._error(failure.status, failure.description, **parameters)

    # -- helpers for method handlers ----------------------------------------------------------

    def _chat(self, params: dict[str, Any]) -> dict[str, Any]:
        if "chat_id" not in params or params["chat_id"] in ("", None):
            raise _bad_request("chat_id is empty")
        chat_id = params["chat_id"]
        chat = self._chats.get(chat_id)
        if chat is None and isinstance(chat_id, str):
            chat = next(
                (c for c in self._chats.values() if f"@{c.get('username')}" == chat_id), None
            )
        if chat is None:
            raise _bad_request("chat not found")
        return chat

    @staticmethod
    def _int_param(params: dict[str, Any], name: str, default: int | None = None) -> int | None:
        value = params.get(name, default)
        if value is None:
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _bad_request(f"invalid {name} specified") from None

    def _reply_target(self, chat: dict[str, Any], params: dict[str, Any]) -> int | None:
        reply_parameters = params.get("reply_parameters")
        allow_missing = bool(params.get("allow_sending_without_reply"))
        if isinstance(reply_parameters, dict):
            target = reply_parameters.get("message_id")
            allow_missing = allow_missing or bool(
                reply_parameters.get("allow_sending_without_reply")
            )
        else:
            target = params.get("reply_to_message_id")
        if target is None:
            return None
        target = int(target)
        if (chat["id"], target) not in self._messages:
            if allow_missing:
                return None
            raise _bad_request("message to be replied not found")
        return target

    def _new_bot_message(
        self, chat: dict[str, Any], reply_to: int | None, **content: Any
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._next_message_id[chat["id"]]),
            "date": int(self._clock()),
            "chat": chat,
            "from": self.bot_user,
            **content,
        }
        if reply_to is not None:
            replied = self._messages[(chat["id"], reply_to)]
            # Telegram nests only one level of replies.
            message["reply_to_message"] = {
                k: v for k, v in replied.items() if k != "reply_to_message"
            }
        self._messages[(chat["id"], message["message_id"])] = message
        return message

    def _member_json(self, chat_id: int | str, user_id: int) -> dict[str, Any]:
        if user_id == self.bot_id:
            user = self.bot_user
        else:
            user = self._users.get(user_id) or {
                "id": user_id,
                "is_bot": False,
                "first_name": f"User {user_id}",
            }
        member = self._members.get((chat_id, user_id), _Member("member"))
        body: dict[str, Any] = {"status": member.status, "user": user}
        if member.status == "creator":
            body["is_anonymous"] = member.is_anonymous
        elif member.status == "administrator":
            body.update(
                can_be_edited=False,
                is_anonymous=member.is_anonymous,
                can_manage_chat=True,
                can_delete_messages=True,
                can_manage_video_chats=True,
                can_restrict_members=True,
                can_promote_members=False,
                can_change_info=True,
                can_invite_users=True,
                can_post_stories=False,
                can_edit_stories=False,
                can_delete_stories=False,
                can_pin_messages=True,
            )
        elif member.status == "restricted":
            body.update(
                is_member=True,
                until_date=0,
                **dict.fromkeys(
                    (
                        "can_change_info",
                        "can_invite_users",
                        "can_pin_messages",
                        "can_send_messages",
                        "can_send_polls",
                        "can_send_other_messages",
                        "can_add_web_page_previews",
                        "can_manage_topics",
                        "can_send_audios",
                        "can_send_documents",
                        "can_send_photos",
                        "can_send_videos",
                        "can_send_video_notes",
                        "can_send_voice_notes",
                        "can_edit_tag",
                    ),
                    False,
                ),
            )
        elif member.status == "kicked":
            body["until_date"] = 0
        return body

    # -- Bot API methods ----------------------------------------------------------------------

    def _true(self, params: dict[str, Any]) -> bool:
        return True

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = self._int_param(params, "offset", 0) or 0
        limit = max(1, min(100, self._int_param(params, "limit", 100) or 100))
        timeout = float(params.get("timeout") or 0)
        if offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]
        allowed = params.get("allowed_updates")
        # Telegram lets only one getUpdates run at a time; a newer one ends the older with 409.
        self._poller_generation += 1
        generation = self._poller_generation
        self._wake_pollers()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poller_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running",
                )
            ready = [
                u
                for u in self._pending
                if not allowed or any(kind in u for kind in allowed if kind != "update_id")
            ]
            remaining = deadline - loop.time()
            if ready or remaining <= 0 or self._closing:
                return ready[:limit]
            changed = self._updates_changed
            try:
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                pass

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request('field "commands" must be an Array')
        if len(commands) > 100:
            raise _bad_request("too many commands")
        for command in commands:
            if not isinstance(command, dict):
                raise _bad_request("can't parse BotCommand")
            if not _BOT_COMMAND_NAME_RE.match(str(command.get("command", ""))):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = scope_key(params.get("scope"), params.get("language_code"))
        self.commands_by_scope[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def _get_my_commands(self, params: dict[str, Any]) -> list[dict[str, str]]:
        key = scope_key(params.get("scope"), params.get("language_code"))
        return self.commands_by_scope.get(key, [])

    def _delete_my_commands(self, params: dict[str, Any]) -> bool:
        self.commands_by_scope.pop(
            scope_key(params.get("scope"), params.get("language_code")), None
        )
        return True

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad_request("message text is empty")
        if _utf16_len(text) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        parse_mode = params.get("parse_mode")
        _check_markup(text, parse_mode)
        reply_to = self._reply_target(chat, params)
        message = self._new_bot_message(chat, reply_to, text=text)
        self._record_sent(
            SentMessage(
                method="sendMessage",
                chat_id=chat["id"],
                message_id=message["message_id"],
                text=text,
                parse_mode=parse_mode,
                reply_to_message_id=reply_to,
                params=params,
            )
        )
        return message

    def _send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        photo = params.get("photo")
        caption = params.get("caption")
        parse_mode = params.get("parse_mode")
        if caption is not None:
            if _utf16_len(caption) > MAX_CAPTION_LENGTH:
                raise _bad_request("message caption is too long")
            _check_markup(caption, parse_mode)
        if isinstance(photo, _Upload):
            width, height = _image_size(photo.content)
            data, filename = photo.content, photo.filename
        elif isinstance(photo, str) and photo:
            # A file_id or URL: nothing to decode, so report a nominal size.
            width, height, data, filename = 800, 600, None, None
        else:
            raise _bad_request("there is no photo in the request")
        file_number = next(self._file_ids)
        sizes = [
            {
                "file_id": f"AgACAgQAAxkDAAI{file_number:06d}{suffix}",
                "file_unique_id": f"AQAD{file_number:06d}{suffix}",
                "width": max(1, width // divisor),
                "height": max(1, height // divisor),
                "file_size": len(data) // divisor if data else 0,
            }
            for suffix, divisor in (("s", 4), ("m", 2), ("x", 1))
        ]
        content: dict[str, Any] = {"photo": sizes}
        if caption:
            content["caption"] = caption
        reply_to = self._reply_target(chat, params)
        message = self._new_bot_message(chat, reply_to, **content)
        self._record_sent(
            SentMessage(
                method="sendPhoto",
                chat_id=chat["id"],
                message_id=message["message_id"],
                caption=caption,
                parse_mode=parse_mode,
                reply_to_message_id=reply_to,
                photo=data,
                photo_filename=filename,
                params={k: v for k, v in params.items() if not isinstance(v, _Upload)},
            )
        )
        return message

    def _send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        document = params.get("document")
        caption = params.get("caption")
        if caption is not None and _utf16_len(caption) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        if not isinstance(document, _Upload):
            raise _bad_request("there is no document in the request")
        if not document.content:
            raise _bad_request("file must be non-empty")
        content: dict[str, Any] = {
            "document": {
                "file_id": f"BQACAgQAAxkDAAI{next(self._file_ids):06d}",
                "file_unique_id": f"AgAD{len(self.sent):06d}",
                "file_name": document.filename,
                "file_size": len(document.content),
            }
        }
        if caption:
            content["caption"] = caption
        reply_to = self._reply_target(chat, params)
        message = self._new_bot_message(chat, reply_to, **content)
        self._record_sent(
            SentMessage(
                method="sendDocument",
                chat_id=chat["id"],
                message_id=message["message_id"],
                caption=caption,
                reply_to_message_id=reply_to,
                params={k: v for k, v in params.items() if not isinstance(v, _Upload)},
                document=document.content,
                document_filename=document.filename,
            )
        )
        return message

    def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = params.get("file_id")
        if not isinstance(file_id, str) or file_id not in self._user_files:
            raise _bad_request("invalid file_id")
        unique_id, name, data = self._user_files[file_id]
        if len(data) > MAX_DOWNLOAD_BYTES:
            raise _bad_request("file is too big")
        suffix = name.rsplit(".", 1)[-1] if "." in name else ""
        # A new path for every getFile, as Telegram does; each stays valid (here: for ever).
        path = f"documents/file_{len(self._file_paths)}" + (f".{suffix}" if suffix else "")
        self._file_paths[path] = data
        return {
            "file_id": file_id,
            "file_unique_id": unique_id,
            "file_size": len(data),
            "file_path": path,
        }

    async def _download(self, request: web.Request) -> web.StreamResponse:
        """``GET /file/bot<TOKEN>/<file_path>``: the bytes behind a path getFile handed out."""
        if not secrets.compare_digest(request.match_info["token"].encode(), self.token.encode()):
            return web.Response(status=401, text="Unauthorized")
        path = request.match_info["file_path"]
        data = self._file_paths.get(path)
        if data is None:
            return web.Response(status=404, text="Not Found")
        self.downloads.append(path)
        self._notify_activity()
        return web.Response(body=data, content_type="application/octet-stream")

    def _get_chat_member(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        user_id = self._int_param(params, "user_id")
        if user_id is None:
            raise _bad_request("user_id is empty")
        return self._member_json(chat["id"], user_id)

    def _get_chat_administrators(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        chat = self._chat(params)
        if chat["type"] == "private":
            raise _bad_request("there are no administrators in the private chat")
        return [
            self._member_json(chat_id, user_id)
            for (chat_id, user_id), member in self._members.items()
            if chat_id == chat["id"] and member.status in ("creator", "administrator")
        ]

    def _get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        if not params.get("callback_query_id"):
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        self.answered_callbacks.append(params)
        return True

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad_request("message text is empty")
        parse_mode = params.get("parse_mode")
        _check_markup(text, parse_mode)
        if params.get("inline_message_id"):
            self._record_sent(
                SentMessage(
                    "editMessageText", None, None, text=text, parse_mode=parse_mode, params=params
                )
            )
            return True
        chat = self._chat(params)
        message_id = self._int_param(params, "message_id")
        message = self._messages.get((chat["id"], message_id or 0))
        if message is None:
            raise _bad_request("message to edit not found")
        if message.get("from", {}).get("id") != self.bot_id:
            raise _bad_request("message can't be edited")
        if message.get("text") == text:
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        message["text"] = text
        message["edit_date"] = int(self._clock())
        self._record_sent(
            SentMessage(
                method="editMessageText",
                chat_id=chat["id"],
                message_id=message_id,
                text=text,
                parse_mode=parse_mode,
                params=params,
            )
        )
        return message


@dataclass(frozen=True)
class _Upload:
    filename: str
    content: bytes
    content_type: str | None
