"""Home Assistant MQTT discovery: each hamster a device with four sensors, fed from the same reads as
/hamster, through a real Mosquitto."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt

from bot import app
from bot.homeassistant import discovery_messages, slugs, state_payload
from tests.mqtt.broker import Mosquitto
from tests.mqtt.conftest import WHEEL, wait_until, write_config


def test_slugs_are_unique_and_topic_safe() -> None:
    assert slugs(["Ursula", "Mr. Nibbles", "mr nibbles", "🐹"]) == {
        "Ursula": "ursula",
        "Mr. Nibbles": "mr_nibbles",
        "mr nibbles": "mr_nibbles_2",
        "🐹": "hamster",
    }


def test_discovery_configs_name_one_device_per_hamster() -> None:
    messages = dict(discovery_messages("hamsterbot", ["Ursula"]))
    assert sorted(messages) == [
        f"homeassistant/sensor/hamsterbot_ursula/{metric}/config"
        for metric in ("all_time", "battery", "last_night", "tonight")
    ]
    tonight = json.loads(messages["homeassistant/sensor/hamsterbot_ursula/tonight/config"])
    assert tonight["state_topic"] == "hamsterbot/bot/ursula/state"
    assert tonight["value_template"] == "{{ value_json.tonight_m }}"
    assert tonight["unit_of_measurement"] == "m" and tonight["device_class"] == "distance"
    assert tonight["unique_id"] == "hamsterbot_ursula_tonight"
    assert tonight["availability_topic"] == "hamsterbot/bot/status"
    assert tonight["device"]["identifiers"] == ["hamsterbot_ursula"]
    battery = json.loads(messages["homeassistant/sensor/hamsterbot_ursula/battery/config"])
    assert battery["device_class"] == "battery" and battery["unit_of_measurement"] == "%"


async def test_the_bot_publishes_discovery_and_live_state(
    tmp_path: Path, broker: Mosquitto, bots
) -> None:
    bot = bots(
        write_config(
            tmp_path / "bot.toml",
            broker,
            sensor="mqtt-counter:diy/ursula",
            mqtt_extra="homeassistant = true",
        )
    )
    seen: dict[str, bytes] = {}
    states: list[dict] = []

    async def observe(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            seen[message.topic.value] = bytes(message.payload)
            if message.topic.value.endswith("/state"):
                states.append(json.loads(message.payload))

    async with aiomqtt.Client("127.0.0.1", broker.port) as observer:
        await observer.subscribe([("homeassistant/#", 1), ("hamsterbot/bot/#", 1)])
        watcher = asyncio.create_task(observe(observer))
        try:
            runtime = await bot.start()
            app.start_homeassistant(runtime)
            await wait_until(lambda: len(states) >= 1)
            assert seen["hamsterbot/bot/status"] == b"online"
            assert len([t for t in seen if t.startswith("homeassistant/sensor/")]) == 4
            first = states[0]
            assert first == {
                "tonight_m": first["tonight_m"],
                "last_night_m": None,
                "all_time_m": 0.0,
                "battery": None,
            }
            # The DIY counter turns five revolutions: the state follows within flush_seconds.
            await wait_until(runtime.mqtt.connected.is_set)
            await observer.publish("diy/ursula", "1000", qos=1)
            await observer.publish("diy/ursula", "1005", qos=1)
            await wait_until(lambda: states[-1]["all_time_m"] > 0)
            circumference = bot.pipeline(WHEEL).hamster.circumference_m
            assert states[-1]["all_time_m"] == round(5 * circumference, 2)
            assert states[-1]["tonight_m"] == round(5 * circumference, 2)
            count = len(states)
            await asyncio.sleep(1.5)  # ticks pass, nothing changed: nothing is published again
            assert len(states) == count
            await bot.stop()
            await wait_until(lambda: seen["hamsterbot/bot/status"] == b"offline")
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


def test_state_payload_rounds_to_the_centimetre() -> None:
    from bot.core.model import HamsterNow, SensorStatus

    hamster = HamsterNow(
        "U", None, 12.3456, None, None, 1000.004, 5, SensorStatus(True, battery=80)
    )
    assert json.loads(state_payload(hamster)) == {
        "tonight_m": 12.35,
        "last_night_m": None,
        "all_time_m": 1000.0,
        "battery": 80,
    }
