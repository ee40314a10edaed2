"""The whole process: ``hamsterbot run`` as a subprocess against fake Telegram and Discord servers
and a simulated wheel, driven like a new user would, then stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import ClientSession

from tests.fakes.discord_api import FakeDiscord, Recorded
from tests.fakes.telegram_api import FakeTelegram

GROUP = -1009876543
ALICE, BOB = 501, 502
START_SECONDS = 20.0  # generous: a cold interpreter imports both chat libraries first


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeTelegram, FakeDiscord]]:
    telegram = FakeTelegram()
    discord = FakeDiscord(heartbeat_interval_ms=1000)
    await telegram.start()
    await discord.start()
    try:
        yield telegram, discord
    finally:
        await telegram.close()
        await discord.close()


def _write_config(path: Path, telegram: FakeTelegram, discord: FakeDiscord) -> None:
    # The Telegram token comes from the environment, the Discord one from the file: both paths.
    path.write_text(
        f"""
[bot]
database = "{path.parent / "bot.db"}"
timezone = "UTC"
units = "km"
flush_seconds = 1
log_level = "DEBUG"

[[hamsters]]
name = "Ursula"
wheel_diameter_cm = 20
sensor = "simulated"

[simulation]
speedup = 600

[web]
listen = "127.0.0.1:0"

[telegram]
base_url = "{telegram.base_url}"

[discord]
token = "{discord.token}"
guild_ids = [{discord.guild.id}]
api_base_url = "{discord.api_base_url}"
gateway_url = "{discord.gateway_url}"
""",
        encoding="utf-8",
    )


async def _drain(stream: asyncio.StreamReader, into: bytearray) -> None:
    while chunk := await stream.read(65536):
        into.extend(chunk)


async def _wait_until(condition: Callable[[], object], seconds: float) -> None:
    async with asyncio.timeout(seconds):
        # The fakes' state changes in this loop, but neither fake signals command syncs.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_run_answers_on_both_platforms_and_exits_cleanly_on_sigterm(
    tmp_path: Path, fakes: tuple[FakeTelegram, FakeDiscord]
) -> None:
    telegram, discord = fakes
    config = tmp_path / "hamsterbot.toml"
    _write_config(config, telegram, discord)
    env = {**os.environ, "HAMSTERBOT_TELEGRAM_TOKEN": telegram.token}
    env.pop("HAMSTERBOT_DISCORD_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = bytearray(), bytearray()
    readers = [
        asyncio.create_task(_drain(process.stdout, out)),
        asyncio.create_task(_drain(process.stderr, err)),
    ]
    try:
        # Both platforms register their commands at start.
        await _wait_until(
            lambda: (
                len(telegram.commands_by_scope) == 4
                and discord.registered_commands(discord.guild.id)
            ),
            START_SECONDS,
        )
        await discord.wait_connected(START_SECONDS)

        # Telegram: two runners and the hamster.
        telegram.push_message(
            GROUP, "/logrun 5 km", user_id=ALICE, first_name="Alice", chat_type="supergroup"
        )
        telegram.push_message(
            GROUP, "/logrun 3.1 mi", user_id=BOB, first_name="Bob", chat_type="supergroup"
        )
        telegram.push_message(
            GROUP, "/logrun banana", user_id=BOB, first_name="Bob", chat_type="supergroup"
        )
        telegram.push_message(
            GROUP, "/race", user_id=ALICE, first_name="Alice", chat_type="supergroup"
        )
        sent = await telegram.wait_for_sent(lambda s: s.chat_id == GROUP, count=4, timeout=10)
        texts = [s.text or "" for s in sent]
        assert "Logged 5.00 km" in texts[0] and "Alice" in texts[0]
        assert "(3.10 mi) for Bob" in texts[1]
        assert "banana" in texts[2] or "/logrun" in texts[2]
        assert all(name in texts[3] for name in ("Alice", "Bob", "Ursula"))

        # The public page is served by the same process.
        page = re.search(rb"The page is at (http://127\.0\.0\.1:[0-9]+)", err)
        assert page, err[-2000:].decode()
        async with (
            ClientSession() as session,
            session.get(page.group(1).decode() + "/api/hamsters") as response,
        ):
            assert [h["name"] for h in (await response.json())["hamsters"]] == ["Ursula"]

        # Discord: one runner and the hamster; a mistake is ephemeral.
        runner = discord.user_named("runner")

        async def slash(name: str, options: dict) -> Recorded:
            interaction_id = await discord.send_interaction(
                discord.guild.id, discord.channel.id, runner.id, name, options
            )
            return await discord.wait_for(
                lambda r: (
                    r.interaction_id == interaction_id
                    and (r.kind == "followup" or r.callback_type == 4)
                ),
                timeout=10,
            )

        logged = await slash("logrun", {"distance": "5 km"})
        assert "Logged 5" in (logged.content or "") and not logged.ephemeral
        banana = await slash("logrun", {"distance": "banana"})
        assert banana.ephemeral
        race = await slash("race", {})
        assert "Runner" in (race.content or "") and "Ursula" in (race.content or "")
        assert not race.ephemeral
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                returncode = await process.wait()
                await asyncio.gather(*readers)
        except TimeoutError:
            process.kill()
            await process.wait()
            await asyncio.gather(*readers)
            raise AssertionError(
                f"no exit within 10 s of SIGTERM; log tail:\n{err[-3000:].decode()}"
            ) from None

    log = err.decode(errors="replace") + out.decode(errors="replace")
    assert returncode == 0, log[-3000:]
    assert "Telegram: polling as @" in log and "slash commands registered in server" in log
    assert telegram.token not in log and discord.token not in log
    # the token's secret half alone must not leak either
    assert telegram.token.split(":", 1)[1] not in log
    assert "Traceback" not in log
    assert (tmp_path / "bot.db").exists()


async def test_platforms_without_a_token_are_off_and_say_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from bot import app
    from bot import config as config_module

    monkeypatch.delenv("HAMSTERBOT_TELEGRAM_TOKEN", raising=False)
    monkeypatch.delenv("HAMSTERBOT_DISCORD_TOKEN", raising=False)
    config = config_module.parse(
        {
            "bot": {"database": str(tmp_path / "bot.db"), "timezone": "UTC"},
            "hamsters": [{"name": "Ursula", "wheel_diameter_cm": 20}],
        }
    )
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="bot.app")
    running = asyncio.create_task(app.run(config, stop=stop))
    await asyncio.sleep(0.2)
    stop.set()
    await running
    messages = [r.getMessage() for r in caplog.records if r.name == "bot.app"]
    assert sum("Telegram is off" in m for m in messages) == 1
    assert sum("Discord is off" in m for m in messages) == 1
