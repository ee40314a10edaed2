"""``/forget``: a person takes their data back (their runs and their name), after a confirmation.

* ``/forget`` says what would go (your runs in this chat; your name too once you have no runs elsewhere);
  ``/forget yes`` does it.
* ``/forget everywhere`` (in a private chat with the bot): the same for every chat of this platform.
* ``/forget NAME`` (admins): someone who left the chat; ``/forget NAME yes`` does it.

Deleted means gone: undone runs too, so exports, standings, the public race page and the morning report never
show them again. Nothing else about a person is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core.parsing import UserError
from bot.core.race import clean_name
from bot.core.registry import CommandContext, Reply, command, short
from storage import chats as chat_store
from storage import runs as run_store

if TYPE_CHECKING:
    from bot.core.commands import BotCore

_YES = ("yes", "confirm")


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


@command(
    "forget",
    "/forget [yes | everywhere | NAME]",
    "delete your runs and your name in this chat (asks first); admins: someone who left",
)
async def forget(core: BotCore, ctx: CommandContext, args: str) -> Reply:
    words = args.split()
    confirmed = bool(words) and words[-1].casefold() in _YES
    if confirmed:
        words = words[:-1]
    if [w.casefold() for w in words] == ["everywhere"]:
        return await _everywhere(core, ctx, confirmed)
    if words:
        return await _someone_else(core, ctx, " ".join(words), confirmed)
    chat, _, _, person = await core.chat_and_person(ctx)
    count = 0
    if chat is not None and person is not None:
        count = await run_store.count_person_runs(core.db, person.id, chat.id)
    if chat is None or person is None or not count:
        return Reply("I have no runs of yours in this chat.", private=True)
    if not confirmed:
        elsewhere = await run_store.count_person_runs(core.db, person.id) - count
        name = (
            "your name stays for the other chats you ran in" if elsewhere else "your name goes too"
        )
        return Reply(
            f"This deletes your {_runs(count)} in this chat for good ({name}); standings, exports "
            "and the morning report won't show you again. Send /forget yes to do it.",
            private=True,
        )
    gone = await run_store.forget_person(core.db, person.id, chat.id)
    name = " and your name" if gone.name_removed else ""
    return Reply(f"🗑️ Done: I deleted your {_runs(gone.runs)}{name} in this chat.", private=True)


async def _everywhere(core: BotCore, ctx: CommandContext, confirmed: bool) -> Reply:
    if not ctx.is_private:
        raise UserError(
            "Send /forget everywhere to me in a private chat. Here, /forget removes you from "
            "this chat."
        )
    person = await chat_store.get_person(core.db, ctx.platform, ctx.user_id)
    if person is None:
        return Reply("I have nothing of yours anywhere.", private=True)
    count = await run_store.count_person_runs(core.db, person.id)
    if not confirmed:
        return Reply(
            f"This deletes your {_runs(count)} in every chat here and your name, for good. "
            "Send /forget everywhere yes to do it.",
            private=True,
        )
    gone = await run_store.forget_person(core.db, person.id)
    return Reply(f"🗑️ Done: I deleted your {_runs(gone.runs)} and your name.", private=True)


async def _someone_else(core: BotCore, ctx: CommandContext, name: str, confirmed: bool) -> Reply:
    if not (ctx.is_admin or ctx.is_private):
        raise UserError(
            "Only the chat's admins can remove someone else. /forget removes you; "
            "/forget yes confirms it."
        )
    chat = await chat_store.get_chat(core.db, ctx.platform, ctx.chat_id)
    candidates = await chat_store.people_called(core.db, ctx.platform, name.removeprefix("@"))
    found = []
    for person in candidates:
        count = await run_store.count_person_runs(core.db, person.id, chat.id) if chat else 0
        if count:
            found.append((person, count))
    if not found:
        raise UserError(f"Nobody called “{short(name)}” has runs in this chat.")
    if len(found) > 1:
        ids = ", ".join(p.user_key for p, _ in found)
        raise UserError(f"Several people here are called “{short(name)}”: give the id ({ids}).")
    assert chat is not None
    person, count = found[0]
    shown = clean_name(person.display_name)
    if not confirmed:
        return Reply(
            f"This deletes {shown}'s {_runs(count)} in this chat for good. "
            f"Send /forget {short(name)} yes to do it.",
            private=True,
        )
    gone = await run_store.forget_person(core.db, person.id, chat.id)
    return Reply(f"🗑️ Done: I deleted {shown}'s {_runs(gone.runs)} in this chat.")
