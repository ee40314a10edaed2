"""The fake Bot API server, proven against the real python-telegram-bot client."""

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
from telegram import Bot, BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import AIORateLimiter, Application, CommandHandler, ContextTypes

from tests.fakes.telegram_api import FakeTelegram, command_entities

GROUP = -100200300
ALICE = 4242


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 3, 2, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + bytes(range(9)) for _ in range(2)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def build_app(fake: FakeTelegram, rate_limiter: AIORateLimiter | None = None) -> Application:
    builder = (
        Application.builder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        # Updates are handled inline so that a test's `await` sees their effects in order.
        .concurrent_updates(False)
    )
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    return builder.build()


async def ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(f"pong {' '.join(context.args or [])}".strip())


@pytest.fixture
async def polling_app(fake_telegram: FakeTelegram) -> AsyncIterator[Application]:
    app = build_app(fake_telegram, AIORateLimiter(max_retries=2))
    app.add_handler(CommandHandler("ping", ping))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


@pytest.fixture
async def bot_app(fake_telegram: FakeTelegram) -> AsyncIterator[Application]:
    """An initialised application without polling, for calling Bot methods directly."""
    app = build_app(fake_telegram)
    await app.initialize()
    try:
        yield app
    finally:
        await app.shutdown()


async def test_polling_ping_gets_a_reply(
    fake_telegram: FakeTelegram, polling_app: Application
) -> None:
    update_id = fake_telegram.push_message(
        GROUP, "/ping now", user_id=ALICE, first_name="Alice", chat_type="supergroup"
    )
    [reply] = await fake_telegram.wait_for_sent()
    assert reply.method == "sendMessage"
    assert reply.chat_id == GROUP
    assert reply.text == "pong now"
    # PTB quotes the command in groups: the reply must point at the pushed message.
    assert reply.reply_to_message_id == fake_telegram.messages_in(GROUP)[0]["message_id"]
    assert fake_telegram.calls["getMe"]
    assert fake_telegram.calls["deleteWebhook"]
    # The next poll acknowledges the update through its offset.
    await fake_telegram.wait_for_call(
        "getUpdates", lambda call: call.params.get("offset") == update_id + 1
    )
    assert fake_telegram.pending_updates == []


async def test_command_addressed_to_this_bot_is_handled_and_others_are_not(
    fake_telegram: FakeTelegram, polling_app: Application
) -> None:
    fake_telegram.push_message(GROUP, "/ping@otherbot", user_id=ALICE, first_name="Alice")
    fake_telegram.push_message(GROUP, "/ping@hamster_test_bot", user_id=ALICE, first_name="Alice")
    [reply] = await fake_telegram.wait_for_sent()
    # Updates are processed in order, so the @otherbot one was already skipped.
    assert reply.reply_to_message_id == 2
    assert len(fake_telegram.sent) == 1


async def test_private_chat_and_anonymous_admin_messages_parse(
    fake_telegram: FakeTelegram, polling_app: Application
) -> None:
    seen: list[Update] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update)
        await ping(update, context)

    polling_app.add_handler(CommandHandler("who", record))
    fake_telegram.push_message(
        ALICE,
        "/who",
        user_id=ALICE,
        first_name="Alice",
        last_name="Liddell",
        chat_type="private",
        username="alice",
    )
    fake_telegram.push_message(GROUP, "/who", user_id=1, first_name="x", sender_chat=GROUP)
    await fake_telegram.wait_for_sent(count=2)
    private, anonymous = seen
    assert private.effective_chat is not None and private.effective_chat.type == "private"
    assert private.effective_user is not None
    assert private.effective_user.full_name == "Alice Liddell"
    assert anonymous.effective_message is not None
    assert anonymous.effective_message.sender_chat is not None
    assert anonymous.effective_message.sender_chat.id == GROUP
    assert anonymous.effective_user is not None
    assert anonymous.effective_user.username == "GroupAnonymousBot"


async def test_long_poll_returns_as_soon_as_an_update_is_pushed(
    fake_telegram: FakeTelegram, bot_app: Application
) -> None:
    poll = asyncio.create_task(bot_app.bot.get_updates(timeout=30))
    [call] = await fake_telegram.wait_for_call("getUpdates")
    assert call.status is None, "the long poll should still be open"
    fake_telegram.push_message(GROUP, "hello", user_id=ALICE, first_name="Alice")
    # Would take 30 s (and fail the wait_for below) if the poll were not woken.
    [update] = await asyncio.wait_for(poll, 5)
    assert update.effective_message is not None and update.effective_message.text == "hello"
    # Not acknowledged yet: the same update comes again until an offset confirms it.
    again = await bot_app.bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [update.update_id]
    assert await bot_app.bot.get_updates(offset=update.update_id + 1, timeout=0) == ()


async def test_get_updates_respects_limit(
    fake_telegram: FakeTelegram, bot_app: Application
) -> None:
    ids = [
        fake_telegram.push_message(GROUP, f"m{i}", user_id=ALICE, first_name="A") for i in range(3)
    ]
    first = await bot_app.bot.get_updates(limit=2, timeout=0)
    assert [u.update_id for u in first] == ids[:2]


async def test_send_photo_bytes_arrive_intact(
    fake_telegram: FakeTelegram, bot_app: Application
) -> None:
    fake_telegram.add_chat(GROUP, "supergroup")
    png = tiny_png()
    message = await bot_app.bot.send_photo(GROUP, png, caption="last night: 1.2 km")
    [sent] = fake_telegram.sent
    assert sent.method == "sendPhoto"
    assert sent.photo == png
    assert sent.caption == "last night: 1.2 km"
    assert message.photo[-1].width == 3 and message.photo[-1].height == 2
    assert message.caption == "last night: 1.2 km"


async def test_send_photo_rejects_non_images(
    fake_telegram: FakeTelegram, bot_app: Application
) -> None:
    fake_telegram.add_chat(GROUP, "supergroup")
    with pytest.raises(BadRequest, match=r"(?i)IMAGE_PROCESS_FAILED"):
        await bot_app.bot.send_photo(GROUP, b"not an image")


async def test_rate_limiter_retries_after_429(fake_telegram: FakeTelegram) -> None:
    fake_telegram.add_chat(GROUP, "supergroup")
    fake_telegram.fail_next("sendMessage", status=429, retry_after=0.05)
    app = build_app(fake_telegram, AIORateLimiter(max_retries=1))
    async with app:
        message = await app.bot.send_message(GROUP, "after the flood")
    assert message.text == "after the flood"
    assert [c.status for c in fake_telegram.calls["sendMessage"]] == [429, 200]
    assert [s.text for s in fake_telegram.sent] == ["after the flood"]


async def test_plain_bot_raises_retry_after(
    fake_telegram: FakeTelegram, bot_app: Application
) -> None:
    fake_telegram.add_chat(GROUP, "supergroup")
    fake_telegram.fail_next("sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot_app.bot.send_message(GROUP, "x")
    assert "Retry in 7 seconds" in str(caught.value)
    assert fake_telegram.sent == []


async def test_400_raises_bad_request(fake_telegram: FakeTelegram, bot_app: Application) -> None:
    fake_telegram.add_chat(GROUP, "supergroup")
    fake_telegram.fail_next("sendMessage", status=400, description="Bad Request: nope")
    with pytest.raises(BadRequest, match=r"(?i)nope"):
        await bot_app.bot.send_message(GROUP, "x")
    # Only the next call fails.
    await bot_app.bot.send_message(GROUP, "x")
    fake_telegram.fail_next(
        "sendMessage",
        status=400,
        description="Bad Request: group chat was upgraded",
        migrate_to_chat_id=-1009999,
    )
    with pytest.raises(ChatMigrated) as caught:
        await bot_app.bot.send_message(GROUP, "x")
    assert caught.value.new_chat_id == -1009999


@pytest.mark.parametrize("status", [500, 502])
async def test_server_errors_surface_as_network_error(
    fake_telegram: FakeTelegram, bot_app: Application, status: int
) -> None:
    fake_telegram.add_chat(GROUP, "supergroup")
    fake_telegram.fail_next("sendMessage", status=status, times=2)
    for _ in range(2):
        with pytest.raises(NetworkError) as caught:
            await bot_app.bot.send_message(GROUP, "x")
        assert not isinstance(caught.value, BadRequest)
    await bot_app.bot.send_message(GROUP, "x")


async def test_realistic_validation_errors(
    fake_telegram: FakeTelegram, bot_app: Application
) -> None:
    bot = bot_app.bot
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(GROUP, "x")
    fake_telegram.add_chat(GROUP, "supergroup")
    with pytest.raises(BadRequest, match=r"(?i)reserved"):
        await bot.send_message(GROUP, "1.5 km!", parse_mode="MarkdownV2")
    await bot.send_message(GROUP, r"1\.5 km\! `v1.2`", parse_mode="MarkdownV2")
    with pytest.raises(BadRequest, match=r"(?i)Unsupported start tag"):
        await bot.send_message(GROUP, "a < b", parse_mode="HTML")
    await bot.send_message(GROUP, "<b>a &lt; b</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(GROUP, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)replied not found"):
        await bot.send_message(GROUP, "x", reply_to_message_id=999)
    assert [s.parse_mode for s in fake_telegram.sent] == ["MarkdownV2", "HTML"]


async def test_set_my_commands_recorded_per_scope(
    fake_telegram: FakeTelegram, bot_app: Application
) -> None:
    bot = bot_app.bot
    await bot.set_my_commands([BotCommand("ping", "Check the bot is alive")])
    await bot.set_my_commands(
        [BotCommand("run", "Log a run"), BotCommand("race", "Standings")],
        scope=BotCommandScopeChat(GROUP),
    )
    assert fake_telegram.commands_by_scope == {
        "default": [{"command": "ping", "description": "Check the bot is alive"}],
        f"chat:{GROUP}": [
            {"command": "run", "description": "Log a run"},
            {"command": "race", "description": "Standings"},
        ],
    }
    got = await bot.get_my_commands(scope=BotCommandScopeChat(GROUP))
    assert [c.command for c in got] == ["run", "race"]
    await bot.delete_my_commands(scope=BotCommandScopeDefault())
    assert await bot.get_my_commands() == ()
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Ping", "uppercase is not allowed")])


async def test_get_chat_member_returns_configured_status(
    fake_telegram: FakeTelegram, bot_app: Application
) -> None:
    bot = bot_app.bot
    fake_telegram.push_message(GROUP, "hi", user_id=ALICE, first_name="Alice")
    fake_telegram.set_member_status(GROUP, ALICE, "creator", is_anonymous=True)
    fake_telegram.set_member_status(GROUP, 77, "administrator")
    owner = await bot.get_chat_member(GROUP, ALICE)
    assert owner.status == "creator"
    assert owner.user.first_name == "Alice"
    assert getattr(owner, "is_anonymous", None) is True
    assert (await bot.get_chat_member(GROUP, 77)).status == "administrator"
    assert (await bot.get_chat_member(GROUP, 78)).status == "member"
    admins = await bot.get_chat_administrators(GROUP)
    assert sorted(a.user.id for a in admins) == [77, ALICE]
    chat = await bot.get_chat(GROUP)
    assert chat.id == GROUP and chat.type == "group"


async def test_edit_message_text_and_callback_answer(
    fake_telegram: FakeTelegram, bot_app: Application
) -> None:
    fake_telegram.add_chat(GROUP, "supergroup")
    bot = bot_app.bot
    sent = await bot.send_message(GROUP, "draft")
    edited = await bot.edit_message_text("final", chat_id=GROUP, message_id=sent.message_id)
    assert isinstance(edited, object) and getattr(edited, "text", None) == "final"
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_text("final", chat_id=GROUP, message_id=sent.message_id)
    assert await bot.answer_callback_query("1", text="ok")
    assert fake_telegram.answered_callbacks[0]["text"] == "ok"
    assert [s.method for s in fake_telegram.sent] == ["sendMessage", "editMessageText"]


async def test_wrong_token_and_unknown_method(fake_telegram: FakeTelegram) -> None:
    async with httpx.AsyncClient() as client:
        wrong = await client.post(f"{fake_telegram.base_url}123:wrong/getMe")
        assert wrong.status_code == 401
        assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        unknown = await client.post(f"{fake_telegram.base_url}{fake_telegram.token}/noSuchMethod")
        assert unknown.status_code == 404
        assert unknown.json()["description"] == "Not Found"
        as_json = await client.post(f"{fake_telegram.base_url}{fake_telegram.token}/getMe", json={})
        assert as_json.json()["result"]["username"] == "hamster_test_bot"
    bot = Bot("123:wrong", base_url=fake_telegram.base_url)
    try:
        with pytest.raises(InvalidToken):
            await bot.initialize()
    finally:
        # Application.shutdown() skips a half-initialised bot; its HTTP pool must still close.
        await bot.shutdown()
    assert fake_telegram.token not in repr(fake_telegram)


def test_command_entities_use_utf16_offsets() -> None:
    assert command_entities("🐹 /run 2km /race@hamster_test_bot") == [
        {"type": "bot_command", "offset": 3, "length": 4},
        {"type": "bot_command", "offset": 12, "length": 22},
    ]
    assert command_entities("a/b http://x/y") == []


async def test_lifecycle_by_hand_leaves_nothing_running() -> None:
    fake = FakeTelegram()
    await fake.start()
    app = build_app(fake, AIORateLimiter())
    app.add_handler(CommandHandler("ping", ping))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=5)
    fake.push_message(GROUP, "/ping", user_id=ALICE, first_name="Alice")
    await fake.wait_for_sent()
    # Stop while a 5 s long poll is open: nothing may wait it out.
    await fake.wait_for_call("getUpdates", lambda call: call.status is None)
    await app.updater.stop()
    await app.stop()
    await app.shutdown()
    await fake.close()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    assert fake.pending_updates == []


async def test_form_and_json_bodies_decode_alike(fake_telegram: FakeTelegram) -> None:
    fake_telegram.add_chat(GROUP, "supergroup")
    url = f"{fake_telegram.base_url}{fake_telegram.token}/sendMessage"
    async with httpx.AsyncClient() as client:
        form = await client.post(url, data={"chat_id": str(GROUP), "text": "123"})
        as_json = await client.post(url, json={"chat_id": GROUP, "text": "123"})
        query = await client.get(url, params={"chat_id": str(GROUP), "text": "0042"})
    assert [r.status_code for r in (form, as_json, query)] == [200, 200, 200]
    # Numeric-looking text stays text; chat ids become numbers whatever the encoding.
    assert [(s.chat_id, s.text) for s in fake_telegram.sent] == [
        (GROUP, "123"),
        (GROUP, "123"),
        (GROUP, "0042"),
    ]
    assert form.json()["result"]["chat"]["id"] == GROUP


async def test_a_second_get_updates_terminates_the_first(
    fake_telegram: FakeTelegram, bot_app: Application
) -> None:
    first = asyncio.create_task(bot_app.bot.get_updates(timeout=5))
    await fake_telegram.wait_for_call("getUpdates")
    # A second bot instance polling with the same token (PTB's own pool holds one poll).
    async with httpx.AsyncClient() as other_instance:
        second = await other_instance.post(
            f"{fake_telegram.base_url}{fake_telegram.token}/getUpdates", data={"timeout": "0"}
        )
    assert second.json() == {"ok": True, "result": []}
    with pytest.raises(Conflict):
        await first


async def test_documents_arrive_as_ids_then_getfile_and_a_download(
    fake_telegram: FakeTelegram, bot_app: Application
) -> None:
    data = b"<gpx>" + bytes(range(256)) * 10 + b"</gpx>"
    fake_telegram.push_document(
        GROUP, "Morning Run.gpx", data, user_id=ALICE, first_name="Alice", caption="/logrun"
    )
    [update] = await bot_app.bot.get_updates(timeout=0)
    message = update.message
    assert message is not None and message.text is None
    document = message.document
    assert document is not None and document.file_name == "Morning Run.gpx"
    assert document.file_size == len(data)
    assert message.caption == "/logrun"
    assert message.caption_entities[0].type == "bot_command"
    telegram_file = await bot_app.bot.get_file(document.file_id)
    assert telegram_file.file_path is not None and telegram_file.file_path.endswith(".gpx")
    assert bytes(await telegram_file.download_as_bytearray()) == data
    assert len(fake_telegram.downloads) == 1
    assert telegram_file.file_path.endswith(fake_telegram.downloads[0])


async def test_getfile_refuses_unknown_ids_and_files_over_20_mb(
    fake_telegram: FakeTelegram, bot_app: Application
) -> None:
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await bot_app.bot.get_file("nope")
    fake_telegram.push_document(
        GROUP, "huge.fit", bytes(20 * 1024 * 1024 + 1), user_id=ALICE, first_name="Alice"
    )
    [update] = await bot_app.bot.get_updates(timeout=0)
    assert update.message is not None and update.message.document is not None
    with pytest.raises(BadRequest, match=r"(?i)too big"):
        await bot_app.bot.get_file(update.message.document.file_id)
    assert fake_telegram.downloads == []


async def test_file_downloads_need_the_token(
    fake_telegram: FakeTelegram, bot_app: Application
) -> None:
    fake_telegram.push_document(GROUP, "a.fit", b"abc", user_id=ALICE, first_name="Alice")
    [update] = await bot_app.bot.get_updates(timeout=0)
    assert update.message is not None and update.message.document is not None
    telegram_file = await bot_app.bot.get_file(update.message.document.file_id)
    path = str(telegram_file.file_path).rsplit("/", 2)[-2:]
    base = fake_telegram.base_file_url
    async with httpx.AsyncClient() as client:
        wrong = await client.get(f"{base}123:nottoken/{'/'.join(path)}")
        right = await client.get(f"{base}{fake_telegram.token}/{'/'.join(path)}")
    assert wrong.status_code == 401 and right.status_code == 200 and right.content == b"abc"
