"""Per-chat lanes: each chat's updates are handled in the order they came, different chats side by side.

Telegram hands updates over one at a time; handled inline, one group waiting out its flood limit (20 messages a
minute) held every other chat behind it. A lane per chat keeps what matters, the order within a chat (``/logrun``
then ``/undo``), and lets a chat's wait delay only that chat.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable


class ChatLanes:
    """Runs submitted work one at a time per chat key and concurrently across keys."""

    def __init__(self) -> None:
        self._last: dict[Hashable, asyncio.Task[None]] = {}  # each chat's newest work
        self._running: set[asyncio.Task[None]] = set()

    def submit(self, chat: Hashable, work: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Start ``work`` once everything submitted earlier for ``chat`` has finished.

        ``work`` should handle its own errors: one that escapes is logged by asyncio, and the chat's
        next work runs anyway.
        """
        task = asyncio.create_task(_after(self._last.get(chat), work))
        self._last[chat] = task
        self._running.add(task)
        task.add_done_callback(functools.partial(self._finished, chat))
        return task

    def _finished(self, chat: Hashable, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._last.get(chat) is task:
            del self._last[chat]

    @property
    def pending(self) -> int:
        return len(self._running)

    async def close(self) -> None:
        """Cancel whatever is still queued or running, and wait for it to stop."""
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _after(previous: asyncio.Task[None] | None, work: Callable[[], Awaitable[None]]) -> None:
    if previous is not None:
        await asyncio.wait([previous])  # its outcome is its own; only the order matters here
    await work()
