"""The terminal chat: one person typing commands, the bot answering, through the same command core."""

from __future__ import annotations

import asyncio
import getpass
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TextIO

from bot.core.commands import COMMANDS, BotCore, CommandContext, Reply

PLATFORM = "console"
PROMPT = "> "


def default_user() -> str:
    """Who types in the terminal: the login name, or "me" where there is none (a container)."""
    try:
        name = getpass.getuser().strip()
    except (OSError, KeyError):  # no login name and no passwd entry
        name = ""
    return name or "me"


def context(
    *, chat_id: str, user: str | None, now: float, is_admin: bool = True, is_private: bool = False
) -> CommandContext:
    user = user or default_user()
    return CommandContext(
        platform=PLATFORM,
        chat_id=chat_id,
        user_id=user.casefold(),
        display_name=user,
        is_admin=is_admin,
        now=datetime.fromtimestamp(now, UTC),
        is_private=is_private,
    )


async def answer(core: BotCore, ctx: CommandContext, text: str) -> Reply | None:
    """One line of chat. A bare command word works too: ``race week`` means ``/race week``; other
    plain text gets a pointer to the commands, not "I don't know /hello"."""
    text = text.strip()
    if not text:
        return None
    if not text.startswith("/"):
        word = text.split(maxsplit=1)[0].lower()
        if word not in COMMANDS:
            return Reply(
                "I only understand commands: they start with /, like /race or /logrun 5 km. "
                "/help lists them all.",
                private=True,
            )
        text = "/" + text
    return await core.handle_text(ctx, text)


def save_image(reply: Reply, image_dir: Path, now: float) -> Path:
    image_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(reply.image_name).stem or "image"
    path = image_dir / f"{stem}-{int(now)}.png"
    counter = 1
    while path.exists():
        path = image_dir / f"{stem}-{int(now)}-{counter}.png"
        counter += 1
    path.write_bytes(reply.image_png or b"")
    return path


def save_file(name: str, data: bytes, folder: Path, now: float) -> Path:
    """An attachment saved as ``STEM-EPOCH.EXT`` in ``folder``, never over an existing file."""
    folder.mkdir(parents=True, exist_ok=True)
    plain = Path(Path(name).name)  # the name came from the core; still, no folders
    stem, suffix = plain.stem or "file", plain.suffix
    path = folder / f"{stem}-{int(now)}{suffix}"
    counter = 1
    while path.exists():
        path = folder / f"{stem}-{int(now)}-{counter}{suffix}"
        counter += 1
    path.write_bytes(data)
    return path


def render(reply: Reply, image_dir: Path, now: float) -> str:
    """The reply as terminal text; an image is saved and named on a line ``image: PATH``, other
    files on lines ``file: PATH``."""
    text = reply.text
    if reply.image_png:
        text += "\n" + _saved("image", partial(save_image, reply, image_dir, now), image_dir)
    for name, data in reply.attachments:
        text += "\n" + _saved("file", partial(save_file, name, data, image_dir, now), image_dir)
    return text


def _saved(kind: str, save: Callable[[], Path], folder: Path) -> str:
    """``kind: PATH``, or why it could not be saved: an unwritable folder never ends the chat."""
    try:
        return f"{kind}: {save()}"
    except OSError as err:
        return f"{kind}: not saved, {folder} cannot be written ({err.strerror or err})"


async def _stdin_lines(
    stream: TextIO, prompt_ready: threading.Event | None = None
) -> asyncio.Queue[str | None]:
    """Lines from a blocking stream, read in a daemon thread so Ctrl-C never waits for Enter.

    With ``prompt_ready`` the lines come from ``input()`` with readline's line editing and history
    (arrow keys, Ctrl-R), each prompt shown once the previous answer is printed (the event is set).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def lines() -> Iterator[str]:
        if prompt_ready is None:
            yield from stream
            return
        while prompt_ready.wait():
            prompt_ready.clear()
            try:
                yield input(PROMPT) + "\n"
            except EOFError:
                return

    def pump() -> None:
        try:
            for line in lines():
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError, RuntimeError):
            pass
        finally:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except RuntimeError:
                pass  # the loop is already closed: nobody is listening

    threading.Thread(target=pump, name="console-stdin", daemon=True).start()
    return queue


def _terminal_mode(stream: TextIO) -> list | None:
    try:
        import termios

        return termios.tcgetattr(stream.fileno())
    except (ImportError, OSError, ValueError):
        return None


def _restore_terminal(stream: TextIO, mode: list) -> None:
    try:
        import termios

        termios.tcsetattr(stream.fileno(), termios.TCSADRAIN, mode)
    except (ImportError, OSError, ValueError):
        pass


def _line_editing(stdin: TextIO, stdout: TextIO) -> bool:
    """readline's line editing for ``input()``, when both ends are this terminal and it exists."""
    if not (stdin is sys.stdin and stdout is sys.stdout and stdin.isatty() and stdout.isatty()):
        return False
    try:
        import readline  # noqa: F401  (importing it is what gives input() line editing)
    except ImportError:  # not on every platform (Windows without pyreadline)
        return False
    return True


async def run_console(
    core: BotCore,
    *,
    user: str | None = None,
    chat_id: str = "console",
    clock: Callable[[], float] = time.time,
    image_dir: Path = Path("."),
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> None:
    """Answer each line until end of input. Prompts only when talking to a terminal."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    user = user or default_user()
    interactive = stdin.isatty()
    if interactive:
        names = ", ".join(h.name for h in core.hamsters)
        print(
            f"hamsterbot terminal chat as {user} (admin). Watching {names}. "
            "Type /help, Ctrl-D to quit.",
            file=stdout,
        )
    prompt_ready = threading.Event() if _line_editing(stdin, stdout) else None
    # readline switches the terminal to its own mode while it reads a line; Ctrl-C ends us in the
    # middle of that, so the terminal's mode is put back on every way out.
    saved = _terminal_mode(stdin) if prompt_ready is not None else None
    try:
        lines = await _stdin_lines(stdin, prompt_ready)
        while True:
            if prompt_ready is not None:
                prompt_ready.set()
            elif interactive:
                print(PROMPT, end="", file=stdout, flush=True)
            line = await lines.get()
            if line is None:
                break
            now = clock()
            reply = await answer(core, context(chat_id=chat_id, user=user, now=now), line)
            if reply is not None:
                print(render(reply, image_dir, now), file=stdout, flush=True)
    finally:
        if saved is not None:
            _restore_terminal(stdin, saved)
    if interactive:
        print(file=stdout)
