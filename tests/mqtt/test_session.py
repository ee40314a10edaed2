"""The bot's own paho session (sensors/mqtt_session.py) against a real Mosquitto: reading in
batches must never lose, double or strand a message."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiomqtt

from sensors.mqtt_session import Session
from tests.mqtt.broker import Mosquitto
from tests.mqtt.conftest import wait_until

TOPIC = "hamsterbot/h/w/reading"


@dataclass(frozen=True)
class _Settings:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None


class _Subscriber:
    """A session run as a task, collecting every payload it is handed."""

    def __init__(self, broker: Mosquitto, *, client_id: str, batch: int = 200) -> None:
        self.received: list[bytes] = []
        self.subscribed = asyncio.Event()
        self.session = Session(
            _Settings("127.0.0.1", broker.port),
            client_id=client_id,
            clean_session=False,
            on_message=lambda topic, payload: self.received.append(payload),
            batch=batch,
        )
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Subscriber:
        self.task = asyncio.create_task(self.session.run([TOPIC], self.subscribed.set))
        async with asyncio.timeout(10):
            await self.subscribed.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def _publish(broker: Mosquitto, payloads: list[bytes]) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await asyncio.gather(*(client.publish(TOPIC, p, qos=1) for p in payloads))


async def test_a_burst_bigger_than_a_batch_arrives_once_and_is_acknowledged(
    broker: Mosquitto,
) -> None:
    burst = [f"reading {n}".encode() for n in range(400)]
    async with _Subscriber(broker, client_id="burst", batch=7) as subscriber:
        await _publish(broker, burst)
        await wait_until(lambda: len(subscriber.received) >= len(burst))
        await asyncio.sleep(0.2)  # anything doubled would have come by now
        assert sorted(subscriber.received) == sorted(burst)
        # The broker sends up to 20 unacknowledged messages: reads were cut at 7 and went on.
        assert subscriber.session.full_batches > 0
    # Every one was acknowledged: the persistent session has nothing to deliver again.
    async with _Subscriber(broker, client_id="burst") as again:
        await _publish(broker, [b"after"])
        await wait_until(lambda: again.received)
        await asyncio.sleep(0.2)
        assert again.received == [b"after"]


async def test_reading_goes_on_after_every_kind_of_batch(broker: Mosquitto) -> None:
    """Quiet, then one message, then a few while a window is open, then quiet again, and so on:
    whatever state the reader is left in after a batch, the next message still wakes it."""
    window = 0.015
    sent: list[bytes] = []
    async with _Subscriber(broker, client_id="gaps") as subscriber:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            for round_ in range(6):
                for gap in (0.0, window / 3, window * 2, 0.25):
                    payload = f"{round_}:{gap}".encode()
                    sent.append(payload)
                    await client.publish(TOPIC, payload, qos=1)
                    await asyncio.sleep(gap)
                await wait_until(lambda: len(subscriber.received) == len(sent), 10)
        assert subscriber.received == sent  # in order, each once
