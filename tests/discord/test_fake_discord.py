"""The real discord.py client, pointed at FakeDiscord, logs in, syncs and answers slash commands."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
import yarl
from discord import app_commands

from tests.fakes.discord_api import EPHEMERAL_FLAG, FakeDiscord, Recorded, Upload

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # binary-unsafe bytes on purpose


def point_discord_at(api_base_url: str | None, gateway_url: str | None) -> None:
    """What the adapter does with `[discord] api_base_url` / `gateway_url` (process-wide)."""
    if api_base_url:
        # Every REST call, including interaction callbacks and webhook followups, builds its URL
        # from Route.BASE when the Route is created.
        discord.http.Route.BASE = api_base_url.rstrip("/")
    if gateway_url:
        # A plain Client never asks GET /gateway/bot: it connects to DEFAULT_GATEWAY, then
        # resumes at READY's resume_gateway_url and falls back to DEFAULT_GATEWAY on a fresh
        # IDENTIFY.
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class PingBot(discord.Client):
    def __init__(self, guild_id: int) -> None:
        # guild_ready_timeout: how long discord.py waits for more GUILD_CREATEs before on_ready.
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.home = discord.Object(guild_id)
        self.tree = app_commands.CommandTree(self)
        self.synced: list[app_commands.AppCommand] = []
        self.errors: list[BaseException] = []
        self.start_task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

        @self.tree.command(description="Is the bot alive?")
        @app_commands.describe(word="Something to echo back")
        async def ping(interaction: discord.Interaction, word: str | None = None) -> None:
            await interaction.response.send_message(f"pong {word or ''}".strip())

        @ping.autocomplete("word")
        async def ping_words(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            words = ["hamster", "wheel", "night"]
            return [app_commands.Choice(name=w, value=w) for w in words if w.startswith(current)]

        @self.tree.command(description="Only you can see this")
        async def whisper(interaction: discord.Interaction, times: int = 1) -> None:
            await interaction.response.send_message("psst " * times, ephemeral=True)

        @self.tree.command(description="A slow chart")
        async def chart(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            picture = discord.File(io.BytesIO(PNG_BYTES), filename="chart.png")
            await interaction.followup.send("last night", file=picture)

        @self.tree.command(description="Think first, then answer privately")
        async def ponder(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.edit_original_response(content="pondered")
            original = await interaction.original_response()
            await interaction.followup.send(f"said {original.content!r}", ephemeral=True)

        @self.tree.command(description="Weigh an attached file")
        async def weigh(interaction: discord.Interaction, file: discord.Attachment) -> None:
            data = await file.read()
            await interaction.response.send_message(
                f"{file.filename}: {file.size} bytes, read {len(data)}, sum {sum(data)}"
            )

        @self.tree.command(description="Cheer someone on")
        async def cheer(interaction: discord.Interaction, who: discord.Member, km: float) -> None:
            await interaction.response.send_message(
                f"{interaction.user.name} cheers {who.name} for {km:.1f} km"
            )

        @self.tree.command(description="Am I allowed to change settings?")
        async def whoami(interaction: discord.Interaction) -> None:
            admin = interaction.permissions.administrator
            await interaction.response.send_message("admin" if admin else "member", ephemeral=True)

        @self.tree.error
        async def on_error(interaction: discord.Interaction, error: Exception) -> None:
            self.errors.append(error)

    async def on_ready(self) -> None:
        self.ready.set()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py sleeps 5 s before every non-initial IDENTIFY to respect Discord's identify
        # rate limit; the fake has none, and the refused-RESUME test would wait for nothing.
        return None

    async def setup_hook(self) -> None:
        self.tree.copy_global_to(guild=self.home)
        self.synced = await self.tree.sync(guild=self.home)


@pytest.fixture
async def bot(fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[PingBot]:
    # Registered with monkeypatch first so the process-wide settings are restored afterwards.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket,
        "DEFAULT_GATEWAY",
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
    )
    point_discord_at(fake_discord.api_base_url, fake_discord.gateway_url)
    client = PingBot(fake_discord.guild.id)
    runner = client.start_task = asyncio.create_task(client.start(fake_discord.token))
    try:
        ready = asyncio.create_task(client.ready.wait())
        await asyncio.wait([ready, runner], timeout=5, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if runner.done():
            runner.result()  # login or the gateway failed: show why
        assert client.ready.is_set(), "the client never became ready"
        yield client
    finally:
        await client.close()
        await runner
    assert client.errors == []


def _for(interaction_id: int, kind: str):
    return lambda r: r.interaction_id == interaction_id and r.kind == kind


async def _run(fake: FakeDiscord, name: str, options: dict | None = None, **kwargs) -> int:
    runner = fake.user_named("runner")
    return await fake.send_interaction(
        fake.guild.id, fake.channel.id, runner.id, name, options or {}, **kwargs
    )


async def test_sync_records_the_guild_commands_with_ids(
    fake_discord: FakeDiscord, bot: PingBot
) -> None:
    registered = fake_discord.registered_commands(fake_discord.guild.id)
    assert sorted(c["name"] for c in registered) == [
        "chart",
        "cheer",
        "ping",
        "ponder",
        "weigh",
        "whisper",
        "whoami",
    ]
    ping = next(c for c in registered if c["name"] == "ping")
    assert ping["options"][0]["name"] == "word"
    assert ping["options"][0]["type"] == 3
    assert ping["options"][0].get("required", False) is False
    assert fake_discord.registered_commands() == []  # nothing global was synced
    assert {c.id for c in bot.synced} == {int(c["id"]) for c in registered}
    assert bot.user is not None and bot.user.id == fake_discord.bot_user.id
    assert bot.application_id == fake_discord.application_id
    guild = bot.get_guild(fake_discord.guild.id)
    assert guild is not None and guild.name == "Hamster Club"
    assert guild.get_channel(fake_discord.channel.id) is not None


async def test_public_reply_and_typed_option(fake_discord: FakeDiscord, bot: PingBot) -> None:
    interaction_id = await _run(fake_discord, "ping", {"word": "hamster"})
    reply = await fake_discord.wait_for(_for(interaction_id, "callback"))
    assert reply.callback_type == 4
    assert reply.content == "pong hamster"
    assert not reply.ephemeral

    bare = await _run(fake_discord, "ping")
    assert (await fake_discord.wait_for(_for(bare, "callback"))).content == "pong"


async def test_ephemeral_reply_with_integer_option(fake_discord: FakeDiscord, bot: PingBot) -> None:
    interaction_id = await _run(fake_discord, "whisper", {"times": 2})
    reply = await fake_discord.wait_for(_for(interaction_id, "callback"))
    assert reply.ephemeral
    assert reply.data["flags"] & EPHEMERAL_FLAG
    assert reply.content == "psst psst "


async def test_deferred_reply_then_followup_with_file(
    fake_discord: FakeDiscord, bot: PingBot
) -> None:
    interaction_id = await _run(fake_discord, "chart")
    followup = await fake_discord.wait_for(_for(interaction_id, "followup"))
    deferral = next(r for r in fake_discord.responses if r.interaction_id == interaction_id)
    assert deferral.kind == "callback" and deferral.callback_type == 5
    assert followup.content == "last night"
    assert [(f.filename, f.data) for f in followup.files] == [("chart.png", PNG_BYTES)]


async def test_deferred_ephemeral_reply_edited_then_read_back(
    fake_discord: FakeDiscord, bot: PingBot
) -> None:
    interaction_id = await _run(fake_discord, "ponder")
    followup = await fake_discord.wait_for(_for(interaction_id, "followup"))
    edit = await fake_discord.wait_for(_for(interaction_id, "edit_original"))
    assert (edit.content, edit.ephemeral) == ("pondered", True)
    assert (followup.content, followup.ephemeral) == ("said 'pondered'", True)


async def test_autocomplete_offers_matching_choices(
    fake_discord: FakeDiscord, bot: PingBot
) -> None:
    runner = fake_discord.user_named("runner")
    interaction_id = await fake_discord.send_autocomplete(
        fake_discord.guild.id, fake_discord.channel.id, runner.id, "ping", {"word": "h"}, "word"
    )
    answer = await fake_discord.wait_for(_for(interaction_id, "callback"))
    assert answer.callback_type == 8
    assert answer.data["choices"] == [{"name": "hamster", "value": "hamster"}]


async def test_rate_limited_channel_message_is_retried(
    fake_discord: FakeDiscord, bot: PingBot
) -> None:
    fake_discord.fail_next("/messages", status=429, retry_after=0.01, method="POST")
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("good morning", file=discord.File(io.BytesIO(PNG_BYTES), "a.png"))
    path = f"/channels/{fake_discord.channel.id}/messages"
    assert fake_discord.requests.count(("POST", path)) == 2
    [recorded] = [r for r in fake_discord.responses if r.kind == "channel_message"]
    assert recorded.content == "good morning"
    assert recorded.files[0].data == PNG_BYTES
    assert sent.id == recorded.message_id


async def test_rate_limited_interaction_callback_is_retried(
    fake_discord: FakeDiscord, bot: PingBot
) -> None:
    fake_discord.fail_next("/callback", status=429, retry_after=0.01)
    interaction_id = await _run(fake_discord, "ping", {"word": "again"})
    reply = await fake_discord.wait_for(_for(interaction_id, "callback"))
    assert reply.content == "pong again"


async def test_member_and_number_options_arrive_typed(
    fake_discord: FakeDiscord, bot: PingBot
) -> None:
    owner = fake_discord.user_named("owner")
    interaction_id = await _run(fake_discord, "cheer", {"who": owner.id, "km": 2})
    reply = await fake_discord.wait_for(_for(interaction_id, "callback"))
    assert reply.content == "runner cheers owner for 2.0 km"


async def test_member_permissions_reach_the_interaction(
    fake_discord: FakeDiscord, bot: PingBot
) -> None:
    owner = fake_discord.user_named("owner")
    guild, channel = fake_discord.guild, fake_discord.channel
    as_owner = await fake_discord.send_interaction(guild.id, channel.id, owner.id, "whoami", {})
    as_runner = await _run(fake_discord, "whoami")
    stripped = await fake_discord.send_interaction(
        guild.id, channel.id, owner.id, "whoami", {}, member_permissions=0
    )
    replies = [await fake_discord.wait_for(_for(i, "callback")) for i in (as_owner, as_runner)]
    assert [r.content for r in replies] == ["admin", "member"]
    assert (await fake_discord.wait_for(_for(stripped, "callback"))).content == "member"


async def test_interactions_still_work_after_the_gateway_drops(
    fake_discord: FakeDiscord, bot: PingBot
) -> None:
    await fake_discord.drop_gateway()
    interaction_id = await _run(fake_discord, "ping", {"word": "back"})
    reply = await fake_discord.wait_for(_for(interaction_id, "callback"))
    assert reply.content == "pong back"
    assert (fake_discord.identify_count, fake_discord.resume_count) == (1, 1)


async def test_refused_resume_leads_to_a_fresh_identify(
    fake_discord: FakeDiscord, bot: PingBot
) -> None:
    await fake_discord.drop_gateway(forget_sessions=True)
    interaction_id = await _run(fake_discord, "ping", {"word": "anew"})
    reply = await fake_discord.wait_for(_for(interaction_id, "callback"))
    assert reply.content == "pong anew"
    assert fake_discord.identify_count == 2


async def test_unknown_routes_answer_like_discord(fake_discord: FakeDiscord) -> None:
    headers = {"Authorization": f"Bot {fake_discord.token}"}
    async with aiohttp.ClientSession() as session:
        url = fake_discord.api_base_url + "/guilds/1/bans"
        async with session.get(url, headers=headers) as response:
            assert response.status == 404
            assert await response.json() == {"message": "404: Not Found", "code": 0}
        async with session.get(fake_discord.api_base_url + "/users/@me") as response:
            assert response.status == 401


async def test_wrong_token_is_a_login_failure(
    fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    point_discord_at(fake_discord.api_base_url, None)
    client = discord.Client(intents=discord.Intents.default())
    with pytest.raises(discord.LoginFailure):
        await client.login("not-the-token")
    await client.close()


async def test_close_leaves_no_tasks_behind(fake_discord: FakeDiscord, bot: PingBot) -> None:
    interaction_id = await _run(fake_discord, "ping")
    await fake_discord.wait_for(_for(interaction_id, "callback"))
    await bot.close()
    assert bot.start_task is not None
    await bot.start_task  # start() returns once close() has finished
    await fake_discord.close()
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftovers == []


def test_recorded_ephemeral_reads_the_callback_flags() -> None:
    assert Recorded("callback", {"type": 4, "data": {"flags": 64}}).ephemeral
    assert not Recorded("followup", {"content": "x"}).ephemeral


async def test_attachment_option_is_resolved_and_read_from_the_cdn(
    fake_discord: FakeDiscord, bot: PingBot
) -> None:
    weigh = next(
        c for c in fake_discord.registered_commands(fake_discord.guild.id) if c["name"] == "weigh"
    )
    assert weigh["options"][0]["type"] == 11  # ATTACHMENT
    data = bytes(range(256)) * 40
    interaction_id = await _run(fake_discord, "weigh", {"file": Upload("run.fit", data)})
    reply = await fake_discord.wait_for(_for(interaction_id, "callback"))
    assert reply.content == f"run.fit: {len(data)} bytes, read {len(data)}, sum {sum(data)}"
    assert len(fake_discord.downloads) == 1
    assert fake_discord.downloads[0].endswith("/run.fit")


async def test_cdn_urls_need_their_signature(fake_discord: FakeDiscord) -> None:
    attachment = fake_discord._attachment(fake_discord.new_id(), Upload("a.gpx", b"<gpx/>"))
    url = yarl.URL(attachment["url"])
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as good:
            assert good.status == 200 and await good.read() == b"<gpx/>"
        async with session.get(url.update_query(hm="0" * 64)) as forged:
            assert forged.status == 404
