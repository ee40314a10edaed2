"""A fake Discord REST API and gateway on 127.0.0.1 that the real discord.py client can log in to.

Only the parts hamsterbot's Discord frontend touches are implemented: login, application commands,
interaction callbacks and webhook followups, channel messages, and a gateway that speaks
HELLO / IDENTIFY / READY / GUILD_CREATE / heartbeats / RESUME. Everything the bot sends is recorded
in ``responses`` so tests can assert on what a user would have seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import logging
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, WSMsgType, web

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v10"

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_APPLICATION_COMMANDS = 1 << 31
ALL_PERMISSIONS = (1 << 51) - 1
MEMBER_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_APPLICATION_COMMANDS
)

EPHEMERAL_FLAG = 1 << 6
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)  # members, presences, message_content

# Gateway opcodes.
OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_RESUME = 6
OP_RECONNECT = 7
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

_JOINED_AT = "2024-01-01T00:00:00.000000+00:00"


@dataclass
class FakeUser:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None  # the display name; default: the username, title-cased

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "global_name": None if self.bot else (self.global_name or self.username.title()),
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
        }


@dataclass
class FakeRole:
    id: int
    name: str
    permissions: int
    position: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass
class FakeMember:
    user: FakeUser
    role_ids: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user.to_json(),
            "roles": [str(r) for r in self.role_ids],
            "nick": None,
            "avatar": None,
            "joined_at": _JOINED_AT,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
        }


@dataclass
class FakeChannel:
    id: int
    guild_id: int
    name: str
    position: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "nsfw": False,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
        }


@dataclass
class FakeGuild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, FakeRole] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    locale: str = "en-US"

    def permissions_of(self, user_id: int) -> int:
        """Guild-level permissions (no channel overwrites exist in the fake)."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        member = self.members[user_id]
        total = self.roles[self.id].permissions  # @everyone shares the guild's id
        for role_id in member.role_ids:
            total |= self.roles[role_id].permissions
        return ALL_PERMISSIONS if total & ADMINISTRATOR else total

    def to_create_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.to_json() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": self.locale,
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": _JOINED_AT,
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "voice_states": [],
            "members": [m.to_json() for m in self.members.values()],
            "channels": [c.to_json() for c in self.channels.values()],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


@dataclass
class RecordedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Recorded:
    """One thing the bot sent that a user could see (or a deferral that promises it).

    ``kind`` is ``callback`` (POST /interactions/{id}/{token}/callback), ``followup``
    (POST /webhooks/{app}/{token}), ``edit_original`` (PATCH .../messages/@original) or
    ``channel_message`` (POST /channels/{id}/messages).
    """

    kind: str
    payload: dict[str, Any]
    files: list[RecordedFile] = field(default_factory=list)
    interaction_id: int | None = None
    channel_id: int | None = None
    callback_type: int | None = None
    message_id: int | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The message body: callbacks nest it under ``data``, the other kinds send it flat."""
        if self.kind == "callback":
            return self.payload.get("data") or {}
        return self.payload

    @property
    def content(self) -> str | None:
        return self.data.get("content")

    @property
    def ephemeral(self) -> bool:
        return bool(int(self.data.get("flags") or 0) & EPHEMERAL_FLAG)


@dataclass
class _Interaction:
    id: int
    token: str
    guild_id: int
    channel_id: int
    acknowledged: bool = False
    ephemeral: bool = False
    original: dict[str, Any] | None = None


@dataclass
class _Session:
    id: str
    sequence: int = 0
    # Every dispatch of the session, so a RESUME can replay what a dropped connection missed.
    log: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class _Connection:
    ws: web.WebSocketResponse
    compressor: Any  # zlib compressobj when the client asked for zlib-stream, else None
    session: _Session | None = None


@dataclass(frozen=True)
class Upload:
    """A file a user attaches to a slash command's attachment option."""

    filename: str
    data: bytes
    content_type: str | None = None
    expired: bool = False  # the CDN link no longer works (404), as after its ex= time


@dataclass
class _Failure:
    route_substring: str
    status: int
    retry_after: float
    method: str | None
    remaining: int
    skip: int = 0  # matching requests to let through first


class FakeDiscord:
    """Discord REST + gateway on a free loopback port. Use ``async with`` or start()/close()."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        heartbeat_interval_ms: int = 41_250,
        with_default_guild: bool = True,
    ) -> None:
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._ids = itertools.count(1_200_000_000_000_000_000)
        self.application_id = self.new_id()
        self.bot_user = FakeUser(self.new_id(), "hamsterbot", bot=True)
        self.guilds: dict[int, FakeGuild] = {}
        self.responses: list[Recorded] = []
        self.requests: list[tuple[str, str]] = []  # (method, path without the API prefix)
        self.identify_count = 0
        self.resume_count = 0
        self._commands: dict[int | None, list[dict[str, Any]]] = {}
        self._interactions: dict[str, _Interaction] = {}
        self._sessions: dict[str, _Session] = {}
        self._connections: list[_Connection] = []
        self._failures: list[_Failure] = []
        self._messages: dict[int, list[dict[str, Any]]] = {}
        # Attachments users sent with commands, served like Discord's CDN: (path, signature) -> bytes
        self._cdn: dict[str, tuple[str, bytes]] = {}
        self.downloads: list[str] = []  # CDN paths fetched, in order
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        if with_default_guild:
            self.add_guild("Hamster Club")

    # -- world building -------------------------------------------------------------------------

    def new_id(self) -> int:
        return next(self._ids)

    def add_guild(self, name: str, *, owner_name: str = "owner") -> FakeGuild:
        """A guild with @everyone, an Admin role, its owner, one regular member, the bot, #general."""
        guild_id = self.new_id()
        owner = FakeUser(self.new_id(), owner_name)
        guild = FakeGuild(guild_id, name, owner.id)
        guild.roles[guild_id] = FakeRole(guild_id, "@everyone", MEMBER_PERMISSIONS)
        admin = FakeRole(self.new_id(), "Admin", ADMINISTRATOR, position=1)
        guild.roles[admin.id] = admin
        guild.members[owner.id] = FakeMember(owner, [admin.id])
        guild.members[self.bot_user.id] = FakeMember(self.bot_user)
        self.guilds[guild_id] = guild
        self.add_member(guild_id, "runner")
        self.add_text_channel(guild_id, "general")
        return guild

    def add_member(self, guild_id: int, username: str, *, admin: bool = False) -> FakeMember:
        guild = self.guilds[guild_id]
        roles = [r.id for r in guild.roles.values() if admin and r.permissions & ADMINISTRATOR]
        member = FakeMember(FakeUser(self.new_id(), username), roles)
        guild.members[member.user.id] = member
        return member

    def add_text_channel(self, guild_id: int, name: str) -> FakeChannel:
        guild = self.guilds[guild_id]
        channel = FakeChannel(self.new_id(), guild_id, name, position=len(guild.channels))
        guild.channels[channel.id] = channel
        return channel

    @property
    def guild(self) -> FakeGuild:
        """The first guild, for tests that need only one."""
        return next(iter(self.guilds.values()))

    @property
    def channel(self) -> FakeChannel:
        return next(iter(self.guild.channels.values()))

    def user_named(self, username: str, guild_id: int | None = None) -> FakeUser:
        guild = self.guilds[guild_id] if guild_id else self.guild
        for member in guild.members.values():
            if member.user.username == username:
                return member.user
        raise KeyError(username)

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/gateway"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        app.router.add_get("/ephemeral-attachments/{tail:.*}", self._cdn_file)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only through the server's sockets
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]
        logger.debug("fake discord listening on %s", self.base_url)

    async def close(self) -> None:
        for connection in list(self._connections):
            await connection.ws.close(code=1001, message=b"fake discord shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- test controls --------------------------------------------------------------------------

    def registered_commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """The last bulk overwrite for a guild (or the global commands when guild_id is None)."""
        return list(self._commands.get(guild_id, []))

    def fail_next(
        self,
        route_substring: str,
        status: int = 429,
        *,
        retry_after: float = 0.01,
        method: str | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """Answer the next ``times`` requests whose path contains route_substring with an error
        (after letting ``after`` of them through)."""
        self._failures.append(_Failure(route_substring, status, retry_after, method, times, after))

    async def drop_gateway(self, code: int = 4000, *, forget_sessions: bool = False) -> None:
        """Close every live gateway connection the way a network blip or Discord restart would.

        discord.py answers with a RESUME; with ``forget_sessions`` that RESUME is refused
        (INVALID_SESSION) and the client has to IDENTIFY again from scratch.
        """
        if forget_sessions:
            self._sessions.clear()
        for connection in list(self._connections):
            await connection.ws.close(code=code, message=b"dropped by test")

    async def wait_connected(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Until some client has an IDENTIFIED or RESUMED live gateway connection."""
        await self._wait_until(lambda: self._live_connection() is not None, timeout)

    async def wait_for(
        self,
        predicate: Callable[[Recorded], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 -- the brief's API; a default keeps tests terse
    ) -> Recorded:
        """The first recorded response (already recorded or arriving later) matching predicate."""
        found: list[Recorded] = []

        def check() -> bool:
            found[:] = [r for r in self.responses if predicate(r)][:1]
            return bool(found)

        await self._wait_until(check, timeout)
        return found[0]

    async def send_interaction(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        member_permissions: int | None = None,
        locale: str = "en-US",
    ) -> int:
        """Push an APPLICATION_COMMAND interaction as if user_id ran ``/name`` and return its id.

        ``name`` may hold subcommands separated by spaces. Option values are typed according
        to the registered command, so the payload looks like what Discord would send.
        """
        data = self._command_data(guild_id, name, options or {}, focused=None)
        return await self._dispatch_interaction(
            2, data, guild_id, channel_id, user_id, member_permissions, locale
        )

    async def send_autocomplete(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        name: str,
        options: dict[str, Any],
        focused: str,
        *,
        locale: str = "en-US",
    ) -> int:
        """Push an APPLICATION_COMMAND_AUTOCOMPLETE interaction with ``focused`` being typed."""
        data = self._command_data(guild_id, name, options, focused=focused)
        return await self._dispatch_interaction(
            4, data, guild_id, channel_id, user_id, None, locale
        )

    def messages_in(self, channel_id: int) -> list[dict[str, Any]]:
        return list(self._messages.get(channel_id, []))

    # -- internals: waiting ---------------------------------------------------------------------

    async def _wait_until(self, condition: Callable[[], bool], seconds: float) -> None:
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(condition)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _record(self, recorded: Recorded) -> None:
        self.responses.append(recorded)
        await self._notify()

    # -- internals: interactions ----------------------------------------------------------------

    def _find_command(self, guild_id: int, name: str) -> dict[str, Any]:
        for scope in (guild_id, None):
            for command in self._commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == 1:
                    return command
        raise KeyError(f"no registered slash command /{name} for guild {guild_id}")

    def _command_data(
        self, guild_id: int, name: str, options: dict[str, Any], focused: str | None
    ) -> dict[str, Any]:
        top, *path = name.split()
        command = self._find_command(guild_id, top)
        data: dict[str, Any] = {"id": command["id"], "name": top, "type": 1}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        resolved: dict[str, dict[str, Any]] = {}
        container = data
        schema = command.get("options", [])
        for sub in path:
            option = next((o for o in schema if o["name"] == sub and o["type"] in (1, 2)), None)
            if option is None:
                raise KeyError(f"/{top} has no subcommand {sub!r}")
            nested: dict[str, Any] = {"name": sub, "type": option["type"]}
            container["options"] = [nested]
            container = nested
            schema = option.get("options", [])
        typed = [self._typed_option(guild_id, o, options, focused, resolved) for o in schema]
        container["options"] = [o for o in typed if o is not None]
        unknown = set(options) - {o["name"] for o in schema}
        if unknown:
            raise KeyError(f"/{name} has no option(s) {sorted(unknown)}")
        if resolved:
            data["resolved"] = resolved
        return data

    def _typed_option(
        self,
        guild_id: int,
        schema: dict[str, Any],
        options: dict[str, Any],
        focused: str | None,
        resolved: dict[str, dict[str, Any]],
    ) -> dict[str, Any] | None:
        name, kind = schema["name"], schema["type"]
        if name not in options:
            if schema.get("required") and focused is None:
                raise ValueError(f"required option {name!r} missing")
            return None
        value = options[name]
        option: dict[str, Any] = {"name": name, "type": kind}
        if name == focused:
            option["focused"] = True
            option["value"] = str(value)  # autocomplete sends what the user has typed so far
            return option
        guild = self.guilds[guild_id]
        if kind == 3:
            option["value"] = str(value)
        elif kind == 4:
            option["value"] = int(value)
        elif kind == 5:
            option["value"] = bool(value)
        elif kind == 10:
            option["value"] = float(value)
        elif kind == 6:
            member = guild.members[int(value)]
            option["value"] = str(member.user.id)
            resolved.setdefault("users", {})[str(member.user.id)] = member.user.to_json()
            member_json = member.to_json()
            del member_json["user"]
            member_json["permissions"] = str(guild.permissions_of(member.user.id))
            resolved.setdefault("members", {})[str(member.user.id)] = member_json
        elif kind == 7:
            channel = guild.channels[int(value)]
            option["value"] = str(channel.id)
            channel_json = channel.to_json()
            channel_json["permissions"] = str(ALL_PERMISSIONS)
            resolved.setdefault("channels", {})[str(channel.id)] = channel_json
        elif kind == 8:
            role = guild.roles[int(value)]
            option["value"] = str(role.id)
            resolved.setdefault("roles", {})[str(role.id)] = role.to_json()
        elif kind == 11:
            if not isinstance(value, Upload):
                raise ValueError(f"option {name!r} takes an Upload")
            attachment_id = self.new_id()
            option["value"] = str(attachment_id)
            resolved.setdefault("attachments", {})[str(attachment_id)] = self._attachment(
                attachment_id, value
            )
        else:
            raise ValueError(f"option type {kind} is not supported by the fake")
        return option

    def _attachment(self, attachment_id: int, upload: Upload) -> dict[str, Any]:
        """The resolved attachment as Discord sends it: metadata and a signed, expiring CDN URL."""
        path = f"/ephemeral-attachments/{self.application_id}/{attachment_id}/{upload.filename}"
        signature = secrets.token_hex(32)
        if not upload.expired:
            self._cdn[path] = (signature, upload.data)
        expires = int(dt.datetime.now(dt.UTC).timestamp()) + 86400
        url = f"{self.base_url}{path}?ex={expires:x}&is={expires - 86400:x}&hm={signature}&"
        attachment = {
            "id": str(attachment_id),
            "filename": upload.filename,
            "size": len(upload.data),
            "url": url,
            "proxy_url": url,
            "ephemeral": True,
        }
        if upload.content_type:
            attachment["content_type"] = upload.content_type
        return attachment

    async def _cdn_file(self, request: web.Request) -> web.StreamResponse:
        """The CDN: the bytes behind an attachment URL, only with its signature (as the real one)."""
        entry = self._cdn.get(request.path)
        if entry is None or not secrets.compare_digest(
            request.query.get("hm", "").encode(), entry[0].encode()
        ):
            return web.Response(status=404, text="This content is no longer available.")
        self.downloads.append(request.path)
        await self._notify()
        return web.Response(body=entry[1], content_type="application/octet-stream")

    async def _dispatch_interaction(
        self,
        kind: int,
        data: dict[str, Any],
        guild_id: int,
        channel_id: int,
        user_id: int,
        member_permissions: int | None,
        locale: str,
    ) -> int:
        guild = self.guilds[guild_id]
        channel = guild.channels[channel_id]
        member = guild.members[user_id]
        permissions = (
            guild.permissions_of(user_id) if member_permissions is None else member_permissions
        )
        interaction = _Interaction(
            self.new_id(), "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48), guild_id, channel_id
        )
        self._interactions[interaction.token] = interaction
        member_json = member.to_json()
        member_json["permissions"] = str(permissions)
        channel_json = channel.to_json()
        channel_json["permissions"] = str(permissions)
        payload = {
            "id": str(interaction.id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild_id": str(guild_id),
            "guild": {"id": str(guild_id), "locale": guild.locale, "features": []},
            "channel_id": str(channel_id),
            "channel": channel_json,
            "member": member_json,
            "token": interaction.token,
            "version": 1,
            "app_permissions": str(guild.permissions_of(self.bot_user.id)),
            "locale": locale,
            "guild_locale": guild.locale,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild_id)},
            "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        await self.wait_connected()
        await self._dispatch_event("INTERACTION_CREATE", payload)
        return interaction.id

    def _message_json(
        self, channel_id: int, body: dict[str, Any], files: list[RecordedFile], **extra: Any
    ) -> dict[str, Any]:
        message_id = self.new_id()
        attachments = []
        for index, recorded in enumerate(files):
            attachment_id = self.new_id()
            url = f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{recorded.filename}"
            attachments.append(
                {
                    "id": str(attachment_id),
                    "filename": recorded.filename,
                    "size": len(recorded.data),
                    "url": url,
                    "proxy_url": url,
                    "content_type": recorded.content_type,
                    "description": _attachment_field(body, index, "description"),
                }
            )
        message = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": self.bot_user.to_json(),
            "content": body.get("content") or "",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": body.get("embeds") or [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": int(body.get("flags") or 0),
        }
        message.update(extra)
        self._messages.setdefault(channel_id, []).append(message)
        return message

    # -- internals: REST ------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path.removeprefix(API_PREFIX)
        if request.path.startswith(API_PREFIX):
            self.requests.append((request.method, path))
            failure = self._take_failure(request.method, path)
            if failure is not None:
                return _failure_response(failure)
        return await handler(request)

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for failure in self._failures:
            if failure.route_substring in path and failure.method in (None, method):
                if failure.skip > 0:
                    failure.skip -= 1
                    return None
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        parts = request.match_info["tail"].strip("/").split("/")
        method = request.method
        needs_auth = parts[0] not in ("interactions", "webhooks")
        if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
            return _error(401, "401: Unauthorized", 0)
        match (method, parts):
            case ("GET", ["users", "@me"]):
                return _json(self.bot_user.to_json())
            case ("GET", ["gateway", "bot"]):
                return _json(
                    {
                        "url": self.gateway_url,
                        "shards": 1,
                        "session_start_limit": {
                            "total": 1000,
                            "remaining": 999,
                            "reset_after": 0,
                            "max_concurrency": 1,
                        },
                    }
                )
            case ("GET", ["gateway"]):
                return _json({"url": self.gateway_url})
            case ("GET", ["oauth2", "applications", "@me"] | ["applications", "@me"]):
                return _json(self._application_json())
            case ("GET", ["applications", app, "commands"]) if app == str(self.application_id):
                return _json(self.registered_commands(None))
            case ("PUT", ["applications", app, "commands"]) if app == str(self.application_id):
                return _json(self._overwrite_commands(None, await request.json()))
            case ("GET", ["applications", app, "guilds", guild, "commands"]) if app == str(
                self.application_id
            ):
                return _json(self.registered_commands(int(guild)))
            case ("PUT", ["applications", app, "guilds", guild, "commands"]) if app == str(
                self.application_id
            ):
                if int(guild) not in self.guilds:
                    return _error(404, "Unknown Guild", 10004)
                body = await request.json()
                return _json(self._overwrite_commands(int(guild), body))
            case ("POST", ["interactions", interaction_id, token, "callback"]):
                return await self._callback(request, int(interaction_id), token)
            case ("POST", ["webhooks", app, token]) if app == str(self.application_id):
                return await self._followup(request, token)
            case (
                "PATCH" | "GET" | "DELETE",
                ["webhooks", app, token, "messages", "@original"],
            ) if app == str(self.application_id):
                return await self._original(request, token)
            case ("GET", ["channels", channel_id]):
                channel = self._channel(int(channel_id))
                if channel is None:
                    return _error(404, "Unknown Channel", 10003)
                return _json(channel.to_json())
            case ("POST", ["channels", channel_id, "messages"]):
                return await self._channel_message(request, int(channel_id))
        return _error(404, "404: Not Found", 0)

    def _application_json(self) -> dict[str, Any]:
        owner = FakeUser(self.new_id(), "developer")
        return {
            "id": str(self.application_id),
            "name": "hamsterbot",
            "icon": None,
            "description": "",
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "bot": self.bot_user.to_json(),
            "owner": owner.to_json(),
            "team": None,
            "verify_key": "0" * 64,
            "flags": (1 << 19),  # GATEWAY_MESSAGE_CONTENT_LIMITED
            "interactions_endpoint_url": None,
            "tags": [],
            "redirect_uris": [],
            "approximate_guild_count": len(self.guilds),
        }

    def _overwrite_commands(
        self, guild_id: int | None, body: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        # Discord keeps a command's id across overwrites when the name and type are unchanged.
        old_ids = {(c["name"], c.get("type", 1)): c["id"] for c in self._commands.get(guild_id, [])}
        stored = []
        for command in body:
            key = (command["name"], command.get("type", 1))
            entry = {
                "type": 1,
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "nsfw": False,
                **command,
                "id": old_ids.get(key) or str(self.new_id()),
                "application_id": str(self.application_id),
                "version": str(self.new_id()),
            }
            if guild_id is not None:
                entry["guild_id"] = str(guild_id)
            stored.append(entry)
        self._commands[guild_id] = stored
        return stored

    def _channel(self, channel_id: int) -> FakeChannel | None:
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild.channels[channel_id]
        return None

    async def _callback(
        self, request: web.Request, interaction_id: int, token: str
    ) -> web.StreamResponse:
        interaction = self._interactions.get(token)
        if interaction is None or interaction.id != interaction_id:
            return _error(404, "Unknown interaction", 10062)
        if interaction.acknowledged:
            return _error(400, "Interaction has already been acknowledged.", 40060)
        body, files = await _read_body(request)
        callback_type = int(body["type"])
        data = body.get("data") or {}
        interaction.acknowledged = True
        interaction.ephemeral = bool(int(data.get("flags") or 0) & EPHEMERAL_FLAG)
        await self._record(
            Recorded(
                "callback",
                body,
                files,
                interaction_id=interaction.id,
                channel_id=interaction.channel_id,
                callback_type=callback_type,
            )
        )
        response: dict[str, Any] = {"id": str(interaction.id), "type": 2}
        resource: dict[str, Any] = {"type": callback_type}
        if callback_type == 4:  # CHANNEL_MESSAGE_WITH_SOURCE
            interaction.original = self._message_json(
                interaction.channel_id, data, files, webhook_id=str(self.application_id)
            )
            resource["message"] = interaction.original
            response["response_message_id"] = interaction.original["id"]
            response["response_message_ephemeral"] = interaction.ephemeral
        elif callback_type == 5:  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
            response["response_message_loading"] = True
            response["response_message_ephemeral"] = interaction.ephemeral
        if request.query.get("with_response") in ("1", "true", "True"):
            return _json({"interaction": response, "resource": resource})
        return web.Response(status=204)

    async def _followup(self, request: web.Request, token: str) -> web.StreamResponse:
        interaction = self._interactions.get(token)
        if interaction is None:
            return _error(404, "Unknown Webhook", 10015)
        if not interaction.acknowledged:
            return _error(404, "Unknown Webhook", 10015)
        body, files = await _read_body(request)
        message = self._message_json(
            interaction.channel_id, body, files, webhook_id=str(self.application_id)
        )
        await self._record(
            Recorded(
                "followup",
                body,
                files,
                interaction_id=interaction.id,
                channel_id=interaction.channel_id,
                message_id=int(message["id"]),
            )
        )
        if request.query.get("wait") in ("1", "true", "True"):
            return _json(message)
        return web.Response(status=204)

    async def _original(self, request: web.Request, token: str) -> web.StreamResponse:
        interaction = self._interactions.get(token)
        if interaction is None or not interaction.acknowledged:
            return _error(404, "Unknown Webhook", 10015)
        if request.method == "GET":
            if interaction.original is None:
                return _error(404, "Unknown Message", 10008)
            return _json(interaction.original)
        if request.method == "DELETE":
            interaction.original = None
            return web.Response(status=204)
        body, files = await _read_body(request)
        merged = {**(interaction.original or {}), **body}
        if interaction.ephemeral:
            merged["flags"] = int(merged.get("flags") or 0) | EPHEMERAL_FLAG
        message = self._message_json(
            interaction.channel_id, merged, files, webhook_id=str(self.application_id)
        )
        if interaction.original is not None:
            message["id"] = interaction.original["id"]
            message["edited_timestamp"] = message["timestamp"]
        interaction.original = message
        await self._record(
            Recorded(
                "edit_original",
                {**body, "flags": message["flags"]},
                files,
                interaction_id=interaction.id,
                channel_id=interaction.channel_id,
                message_id=int(message["id"]),
            )
        )
        return _json(message)

    async def _channel_message(self, request: web.Request, channel_id: int) -> web.StreamResponse:
        if self._channel(channel_id) is None:
            return _error(404, "Unknown Channel", 10003)
        body, files = await _read_body(request)
        if not body.get("content") and not files and not body.get("embeds"):
            return _error(400, "Cannot send an empty message", 50006)
        message = self._message_json(channel_id, body, files)
        await self._record(
            Recorded(
                "channel_message", body, files, channel_id=channel_id, message_id=int(message["id"])
            )
        )
        return _json(message)

    # -- internals: gateway ---------------------------------------------------------------------

    def _live_connection(self) -> _Connection | None:
        for connection in self._connections:
            if connection.session is not None and not connection.ws.closed:
                return connection
        return None

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        compressor = None
        if request.query.get("compress") == "zlib-stream":
            compressor = zlib.compressobj()
        # zstd-stream is not implemented; discord.py also accepts plain text frames, which is
        # what it gets then.
        connection = _Connection(ws, compressor)
        self._connections.append(connection)
        try:
            await self._send(
                connection,
                {"op": OP_HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}},
            )
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                await self._gateway_message(connection, json.loads(message.data))
        finally:
            self._connections.remove(connection)
            await self._notify()
        return ws

    async def _gateway_message(self, connection: _Connection, message: dict[str, Any]) -> None:
        op, data = message.get("op"), message.get("d")
        if op == OP_HEARTBEAT:
            await self._send(connection, {"op": OP_HEARTBEAT_ACK})
        elif op == OP_IDENTIFY:
            await self._identify(connection, data)
        elif op == OP_RESUME:
            await self._resume(connection, data)
        else:
            logger.debug("fake gateway ignores op %s", op)

    async def _identify(self, connection: _Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        if int(data.get("intents", 0)) & PRIVILEGED_INTENTS:
            await connection.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        self.identify_count += 1
        session = _Session(secrets.token_hex(16))
        self._sessions[session.id] = session
        connection.session = session
        ready = {
            "v": 10,
            "user": self.bot_user.to_json(),
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
            "session_id": session.id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 1 << 19},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
        }
        await self._dispatch_event("READY", ready, session)
        for guild in self.guilds.values():
            await self._dispatch_event("GUILD_CREATE", guild.to_create_json(), session)
        await self._notify()

    async def _resume(self, connection: _Connection, data: dict[str, Any]) -> None:
        session = self._sessions.get(data.get("session_id", ""))
        if data.get("token") != self.token or session is None:
            await self._send(connection, {"op": OP_INVALID_SESSION, "d": False})
            return
        self.resume_count += 1
        connection.session = session
        last_seen = int(data.get("seq") or 0)
        for sequence, event, payload in session.log:
            if sequence > last_seen:
                await self._send(
                    connection, {"op": OP_DISPATCH, "s": sequence, "t": event, "d": payload}
                )
        await self._dispatch_event("RESUMED", {}, session)
        await self._notify()

    async def _dispatch_event(
        self, event: str, payload: dict[str, Any], session: _Session | None = None
    ) -> None:
        connection = self._live_connection()
        if session is None:
            if connection is None or connection.session is None:
                raise RuntimeError("no client is connected to the fake gateway")
            session = connection.session
        session.sequence += 1
        session.log.append((session.sequence, event, payload))
        for live in self._connections:
            if live.session is session and not live.ws.closed:
                frame = {"op": OP_DISPATCH, "s": session.sequence, "t": event, "d": payload}
                await self._send(live, frame)

    async def _send(self, connection: _Connection, frame: dict[str, Any]) -> None:
        text = json.dumps(frame)
        with contextlib.suppress(ConnectionResetError):
            if connection.compressor is None:
                await connection.ws.send_str(text)
            else:
                chunk = connection.compressor.compress(text.encode())
                chunk += connection.compressor.flush(zlib.Z_SYNC_FLUSH)
                await connection.ws.send_bytes(chunk)


def _attachment_field(body: dict[str, Any], index: int, name: str) -> Any:
    for attachment in body.get("attachments") or []:
        if int(attachment.get("id", -1)) == index:
            return attachment.get(name)
    return None


async def _read_body(request: web.Request) -> tuple[dict[str, Any], list[RecordedFile]]:
    """JSON bodies as they are; multipart bodies split into payload_json and the file parts."""
    if not request.content_type.startswith("multipart/"):
        if not request.can_read_body:
            return {}, []
        return await request.json(), []
    body: dict[str, Any] = {}
    files: list[RecordedFile] = []
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(
            part, BodyPartReader
        ):  # nested multipart never comes from Discord clients
            continue
        content = await part.read()
        if part.name == "payload_json":
            body = json.loads(content)
        else:
            files.append(
                RecordedFile(
                    part.filename or part.name or "",
                    part.headers.get("Content-Type", "application/octet-stream"),
                    bytes(content),
                )
            )
    return body, files


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly "application/json",
    # so no "; charset=utf-8" suffix (which aiohttp's json_response would add).
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def _error(status: int, message: str, code: int) -> web.Response:
    return _json({"message": message, "code": code}, status=status)


def _failure_response(failure: _Failure) -> web.Response:
    if failure.status == 429:
        # discord.py only retries a 429 that came through Discord's proxy (a Via header);
        # without one it assumes a Cloudflare ban and raises.
        return _json(
            {
                "message": "You are being rate limited.",
                "retry_after": failure.retry_after,
                "global": False,
            },
            status=429,
            headers={
                "Via": "1.1 google",
                "Retry-After": str(max(1, round(failure.retry_after))),
                "X-RateLimit-Scope": "user",
            },
        )
    if failure.status >= 500:
        return _error(failure.status, f"{failure.status}: Internal Server Error", 0)
    return _error(failure.status, f"{failure.status}: Error", 0)
