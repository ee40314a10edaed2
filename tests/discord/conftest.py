from collections.abc import AsyncIterator

import pytest

from tests.fakes.discord_api import FakeDiscord


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    # A short heartbeat keeps the heartbeat/ACK path exercised without slowing tests down.
    fake = FakeDiscord(heartbeat_interval_ms=250)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
