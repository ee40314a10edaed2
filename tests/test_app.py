"""Lifecycle pieces of the process: supervision and the demo clock."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot import app
from bot.frontends import FrontendOff


async def test_supervise_restarts_a_crashing_part(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = 0
    done = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError("lost the connection")
        done.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(app.supervise("flaky", flaky, initial=0.01, cap=0.02))
    await asyncio.wait_for(done.wait(), 5)
    assert runs == 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_supervise_gives_up_on_a_permanent_failure(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def rejected() -> None:
        nonlocal calls
        calls += 1
        raise FrontendOff("the token was rejected")

    with caplog.at_level(logging.ERROR):
        await asyncio.wait_for(app.supervise("Telegram", rejected, initial=0.01), 5)
    assert calls == 1
    assert [r.getMessage() for r in caplog.records] == ["Telegram is off: the token was rejected"]


def test_demo_clock_runs_fast_until_it_catches_up() -> None:
    wall = [1000.0]
    clock = app.DemoClock(speedup=600, lead=3600, wall=lambda: wall[0])
    assert clock() == 1000.0 - 3600
    assert clock.rate == 600
    wall[0] += 3  # 1800 simulated seconds
    assert clock() == pytest.approx(1000.0 - 3600 + 1800 + 3 - 3)
    wall[0] += 10  # would be 6000 s ahead: clamped to the wall clock
    assert clock() == wall[0]
    assert clock.rate == 1.0
