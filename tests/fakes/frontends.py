"""Starting and stopping a real chat frontend inside a test (Telegram and Discord alike)."""

from __future__ import annotations

import asyncio
from typing import Protocol

import pytest


class Frontend(Protocol):
    ready: asyncio.Event

    async def run(self) -> None: ...


async def start_frontend(frontend: Frontend, name: str) -> asyncio.Task[None]:
    """Run ``frontend`` in a task until it is ready; a start-up failure is raised here."""
    task = asyncio.create_task(frontend.run())
    ready = asyncio.create_task(frontend.ready.wait())
    await asyncio.wait([ready, task], timeout=5, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if task.done():
        task.result()
    assert frontend.ready.is_set(), f"the {name} frontend never became ready"
    return task


async def stop_frontend(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
