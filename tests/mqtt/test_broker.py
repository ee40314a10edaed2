"""Wheels through a real Mosquitto: gateway -> broker -> bot counts exactly what ``replay`` counts,
whatever happens to the broker, the gateway or the bot in between."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import config as config_module
from bot import gateway
from sensors.mqtt import (
    Backoff,
    MqttWheel,
    MqttWheelFeed,
    encode_reading,
    wheel_topic,
)
from storage.spool import Spool
from tests.conftest import make_ctx
from tests.mqtt.broker import Mosquitto
from tests.mqtt.conftest import (
    HOME,
    WHEEL,
    make_night,
    minutes,
    replay_reference,
    wait_until,
    write_capture,
    write_config,
)

FAST = Backoff(initial=0.05, cap=0.2)


async def _finish(process: asyncio.subprocess.Process) -> tuple[str, str]:
    """Its output once it exits (bounded: a gateway that never finishes fails the test)."""
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    return stdout.decode(), stderr.decode()


async def _gateway_cli(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "gateway",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def test_a_night_through_gateway_broker_and_bot_counts_what_replay_counts(
    tmp_path: Path, broker: Mosquitto, bots
) -> None:
    night = make_night()
    capture = write_capture(tmp_path / "night.csv", night)
    bot = bots(write_config(tmp_path / "bot.toml", broker))
    runtime = await bot.start()
    await wait_until(runtime.mqtt.connected.is_set)

    gateway_config = write_config(tmp_path / "gateway.toml", broker, database="gateway.db")
    process = await _gateway_cli(
        "--config", str(gateway_config), "--replay", str(capture), "--wheel", WHEEL
    )
    stdout, stderr = await _finish(process)
    assert process.returncode == 0, stderr
    assert f"Published {len(night)} readings of {WHEEL}" in stdout
    # Deleted from the spool only once acknowledged: nothing is left.
    with Spool.open(gateway.spool_path(config_module.load(gateway_config))) as spool:
        assert spool.count() == 0

    await wait_until(lambda: bot.last_at() == night[-1][0])
    await bot.stop()
    reference = await replay_reference(tmp_path, broker, capture)
    assert sum(r for _, r, _ in reference) > 500
    assert await minutes(tmp_path / "bot.db") == reference


async def test_the_same_readings_delivered_twice_and_out_of_order_change_nothing(
    tmp_path: Path, broker: Mosquitto, bots
) -> None:
    import aiomqtt

    night = make_night(300, seed=5)
    capture = write_capture(tmp_path / "night.csv", night)
    bot = bots(write_config(tmp_path / "bot.toml", broker))
    runtime = await bot.start()
    await wait_until(runtime.mqtt.connected.is_set)

    topic = wheel_topic("hamsterbot", HOME, WHEEL, "reading")
    messages = [encode_reading(at, p, "simulated", n + 1) for n, (at, p) in enumerate(night)]
    # The first half, part of it again (a redelivery after a lost PUBACK), the rest, then all again.
    order = messages[:150] + messages[40:150] + messages[150:] + messages
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        for message in order:
            await client.publish(topic, message, qos=1)
    await wait_until(lambda: runtime.mqtt.messages == len(order))
    wheel = runtime.mqtt._routes[topic][1]
    assert wheel.duplicates == len(order) - len(night)
    await bot.stop()
    assert await minutes(tmp_path / "bot.db") == await replay_reference(tmp_path, broker, capture)


async def test_broker_stopped_mid_night_and_restarted_loses_nothing(
    tmp_path: Path, broker: Mosquitto, bots
) -> None:
    night = make_night(400, seed=7)
    capture = write_capture(tmp_path / "night.csv", night)
    bot = bots(write_config(tmp_path / "bot.toml", broker))
    runtime = await bot.start()
    await wait_until(runtime.mqtt.connected.is_set)

    config = config_module.load(write_config(tmp_path / "gw.toml", broker, database="gw.db"))
    hamster = config.hamsters[0]
    with Spool.open(gateway.spool_path(config)) as spool:
        publisher = gateway.make_publisher(config, spool, hamster, backoff=FAST)
        sink = gateway.SpoolingSink(spool, publisher, "simulated")
        task = asyncio.create_task(publisher.run())
        try:
            for at, payload in night[:150]:
                sink.feed(payload, at)
            await wait_until(lambda: bot.last_at() == night[149][0])

            await broker.stop()
            await wait_until(lambda: not publisher.connected.is_set())
            for at, payload in night[150:300]:  # the hamster runs on while the broker is away
                sink.feed(payload, at)
            assert spool.count() == 150
            await broker.start()

            for at, payload in night[300:]:
                sink.feed(payload, at)
            await wait_until(lambda: bot.last_at() == night[-1][0])
            assert spool.count() == 0
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    await bot.stop()
    assert await minutes(tmp_path / "bot.db") == await replay_reference(tmp_path, broker, capture)


async def test_gateway_sigkilled_mid_night_restarts_from_its_spool(
    tmp_path: Path, broker: Mosquitto, bots
) -> None:
    night = make_night(450, seed=11)
    capture = write_capture(tmp_path / "night.csv", night)
    parts = [
        write_capture(tmp_path / "part1.csv", night[:150]),
        write_capture(tmp_path / "part2.csv", night[150:300]),
        write_capture(tmp_path / "part3.csv", night[300:]),
    ]
    bot = bots(write_config(tmp_path / "bot.toml", broker))
    runtime = await bot.start()
    await wait_until(runtime.mqtt.connected.is_set)
    gateway_config = write_config(tmp_path / "gateway.toml", broker, database="gateway.db")
    spool_file = gateway.spool_path(config_module.load(gateway_config))
    cli = ("--config", str(gateway_config), "--wheel", WHEEL, "--replay")

    first = await _gateway_cli(*cli, str(parts[0]))
    await _finish(first)
    assert first.returncode == 0
    await wait_until(lambda: bot.last_at() == night[149][0])

    # The broker goes away; the second part is spooled, and the gateway is killed while waiting.
    await broker.stop()
    second = await _gateway_cli(*cli, str(parts[1]))
    with Spool.open(spool_file) as spool:
        await wait_until(lambda: spool.count() == 150)
    second.send_signal(signal.SIGKILL)
    await _finish(second)
    assert second.returncode == -signal.SIGKILL
    with Spool.open(spool_file) as spool:
        assert spool.count() == 150  # nothing lost by the kill

    await broker.start()
    third = await _gateway_cli(*cli, str(parts[2]))
    stdout, stderr = await _finish(third)
    assert third.returncode == 0, stderr
    # The restarted gateway published what the killed one had spooled, then its own part.
    assert "Published 300 readings" in stdout
    await wait_until(lambda: bot.last_at() == night[-1][0])
    await bot.stop()
    assert await minutes(tmp_path / "bot.db") == await replay_reference(tmp_path, broker, capture)


async def test_bot_stopped_while_the_gateway_publishes_gets_everything_on_restart(
    tmp_path: Path, broker: Mosquitto, bots
) -> None:
    night = make_night(300, seed=13)
    capture = write_capture(tmp_path / "night.csv", night)
    bot_config = write_config(tmp_path / "bot.toml", broker)
    config = config_module.load(write_config(tmp_path / "gw.toml", broker, database="gw.db"))

    bot = bots(bot_config)
    runtime = await bot.start()
    await wait_until(runtime.mqtt.connected.is_set)
    await gateway.replay_through_gateway(config, config.hamsters[0], night[:100], backoff=FAST)
    await wait_until(lambda: bot.last_at() == night[99][0])
    await bot.stop()

    # The bot is down: the broker acknowledges and keeps them in the bot's persistent session.
    spooled, published = await gateway.replay_through_gateway(
        config, config.hamsters[0], night[100:], backoff=FAST
    )
    assert spooled == published == 200

    again = bots(bot_config)
    await again.start()
    await wait_until(lambda: again.last_at() == night[-1][0])
    await again.stop()
    assert await minutes(tmp_path / "bot.db") == await replay_reference(tmp_path, broker, capture)


async def test_a_diy_counter_with_rocking_a_reset_and_a_wrap(
    tmp_path: Path, broker: Mosquitto, bots
) -> None:
    import aiomqtt

    extra = """
[[hamsters]]
name = "Pip"
wheel_diameter_cm = 20
sensor = "mqtt-counter:diy/pip/count"
counter_bits = 16
"""
    bot = bots(
        write_config(
            tmp_path / "bot.toml",
            broker,
            sensor="mqtt-counter:tele/tasmota_4F2A/SENSOR",
            extra_hamster='value = "COUNTER.C1"\n' + extra,
        )
    )
    runtime = await bot.start()
    await wait_until(runtime.mqtt.connected.is_set)
    # Tasmota: JSON with the count at COUNTER.C1. Rocking back (1003, 1004) adds nothing until
    # the wheel passes 1005 again; the drop to 2 is a reset, credited from zero.
    tasmota = [1000, 1003, 1005, 1003, 1004, 1006, 2, 5, "junk", 7]
    # A bare 16-bit counter that wraps: 65534 -> 3 is five revolutions.
    pip = ["65530", "65534", "3", "3", "6.0"]
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        for value in tasmota:
            body = f'{{"Time":"2026-12-01T22:00:00","COUNTER":{{"C1":{value}}}}}'
            await client.publish("tele/tasmota_4F2A/SENSOR", body if value != "junk" else "?")
        for value in pip:
            await client.publish("diy/pip/count", value, qos=1)
    await wait_until(lambda: runtime.mqtt.messages == len(tasmota) + len(pip))
    await wait_until(lambda: bot.pipeline("Pip").notifications == len(pip))
    ursula, pip_pipeline = bot.pipeline(), bot.pipeline("Pip")
    assert ursula.credited == 3 + 2 + 1 + 2 + 3 + 2
    assert pip_pipeline.credited == 4 + 5 + 0 + 3
    await bot.stop()
    from storage.db import Database

    async with await Database.open(tmp_path / "bot.db") as db:
        kinds = [r[0] for r in await db.fetchall("SELECT kind FROM sensor_events")]
        total = await db.scalar("SELECT SUM(revolutions) FROM wheel_minutes")
    assert kinds.count("reset") == 1
    assert total == 13 + 12


async def test_wrong_password_says_so_once_and_keeps_trying(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = Mosquitto(tmp_path / "broker", users={"bot": "right-horse-battery"})
    await broker.start()
    try:
        path = write_config(
            tmp_path / "bot.toml",
            broker,
            mqtt_extra='username = "bot"\npassword = "right-horse-battery"',
        )
        monkeypatch.setenv("HAMSTERBOT_MQTT_PASSWORD", "wrong-staple-123")
        config = config_module.load(path)
        assert config.mqtt.password == "wrong-staple-123"  # the environment wins
        assert "wrong-staple" not in repr(config.mqtt)

        class Sink:
            def feed(
                self, payload: bytes, received_at: float, sensor: str | None = None
            ) -> None: ...

            def link_event(self, *args: object, **kwargs: object) -> None: ...

        wheels = [MqttWheel(WHEEL, f"mqtt:{HOME}/{WHEEL}", Sink())]
        feed = MqttWheelFeed(config.mqtt, wheels, client_id="wrong", backoff=FAST)
        attempts = 0
        real_next = feed.backoff.next

        def counting_next() -> float:
            nonlocal attempts
            attempts += 1
            return real_next()

        feed.backoff.next = counting_next  # type: ignore[method-assign]
        caplog.set_level(logging.DEBUG, logger="sensors.mqtt")
        task = asyncio.create_task(feed.run())
        try:
            await wait_until(lambda: attempts >= 4)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(loud) == 1, [r.getMessage() for r in loud]
        assert "refused the login" in loud[0].getMessage()
        assert "HAMSTERBOT_MQTT_PASSWORD" in loud[0].getMessage()
        assert all("wrong-staple" not in r.getMessage() for r in caplog.records)
        assert not feed.connected.is_set()

        monkeypatch.setenv("HAMSTERBOT_MQTT_PASSWORD", "right-horse-battery")
        right = MqttWheelFeed(config_module.load(path).mqtt, wheels, client_id="right")
        task = asyncio.create_task(right.run())
        try:
            await wait_until(right.connected.is_set)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await broker.stop()


async def test_the_live_gateway_says_online_and_offline_on_a_retained_status(
    tmp_path: Path, broker: Mosquitto
) -> None:
    import aiomqtt

    config = write_config(tmp_path / "gateway.toml", broker, sensor="simulated", database="gw.db")
    status_topic = wheel_topic("hamsterbot", HOME, WHEEL, "status")
    reading_topic = wheel_topic("hamsterbot", HOME, WHEEL, "reading")
    seen: list[tuple[str, bytes]] = []

    async def observe(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            seen.append((message.topic.value, bytes(message.payload)))

    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(f"hamsterbot/{HOME}/{WHEEL}/#", qos=1)
        watcher = asyncio.create_task(observe(client))
        try:
            process = await _gateway_cli("--config", str(config))
            await wait_until(lambda: (status_topic, b'{"state":"online"}') in seen)
            await wait_until(lambda: any(topic == reading_topic for topic, _ in seen))
            process.send_signal(signal.SIGTERM)
            _, stderr = await _finish(process)
            assert process.returncode == 0, stderr
            assert seen[-1] == (status_topic, b'{"state":"offline"}')  # said on the way out

            # Killed, it cannot say so: the broker publishes its last will.
            process = await _gateway_cli("--config", str(config))
            await wait_until(lambda: seen[-1] != (status_topic, b'{"state":"offline"}'))
            await wait_until(lambda: (status_topic, b'{"state":"online"}') in seen[-3:])
            process.send_signal(signal.SIGKILL)
            await _finish(process)
            await wait_until(lambda: seen[-1] == (status_topic, b'{"state":"offline"}'))
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    # The last word is retained: a bot that subscribes later learns the wheel is offline.
    async with aiomqtt.Client("127.0.0.1", broker.port) as late:
        await late.subscribe(status_topic, qos=1)
        async with asyncio.timeout(10):
            message = await anext(aiter(late.messages))
        assert message.retain and bytes(message.payload) == b'{"state":"offline"}'


async def test_mqtts_carries_a_night_over_tls(
    tmp_path: Path, bots, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.mqtt.broker import self_signed_certificate

    certificate, key = self_signed_certificate(tmp_path / "tls")
    broker = Mosquitto(tmp_path / "tls-broker", tls=(certificate, key))
    await broker.start()
    try:
        assert broker.url.startswith("mqtts://")
        # Not trusted: the certificate is checked, so the connection is refused. (In a child process:
        # paho leaves the socket of a failed TLS handshake to the garbage collector.)
        probe = write_config(tmp_path / "probe.toml", broker)
        code = (
            "import asyncio, aiomqtt\n"
            "from bot import config\n"
            "from sensors.mqtt import make_client\n"
            "async def main():\n"
            f"    settings = config.load(__import__('pathlib').Path({str(probe)!r})).mqtt\n"
            "    try:\n"
            "        async with make_client(settings, client_id='probe', clean_session=True):\n"
            "            print('connected')\n"
            "    except aiomqtt.MqttError as err:\n"
            "        print('refused', err)\n"
            "asyncio.run(main())\n"
        )
        env = {**os.environ, "SSL_CERT_FILE": str(tmp_path / "no-such-ca.pem")}
        probe_run = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, _ = await _finish(probe_run)
        assert stdout.startswith("refused") and "CERTIFICATE_VERIFY_FAILED" in stdout
        # Trusted the way a system CA would be (OpenSSL's default paths).
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
        night = make_night(120, seed=17)
        capture = write_capture(tmp_path / "night.csv", night)
        bot = bots(write_config(tmp_path / "bot.toml", broker))
        runtime = await bot.start()
        await wait_until(runtime.mqtt.connected.is_set)
        config = config_module.load(write_config(tmp_path / "gw.toml", broker, database="gw.db"))
        assert config.mqtt.tls
        await gateway.replay_through_gateway(config, config.hamsters[0], night, backoff=FAST)
        await wait_until(lambda: bot.last_at() == night[-1][0])
        await bot.stop()
        reference = await replay_reference(tmp_path, broker, capture)
        assert await minutes(tmp_path / "bot.db") == reference
    finally:
        await broker.stop()


async def test_the_gateway_status_carries_the_battery_to_the_bot(
    tmp_path: Path, broker: Mosquitto, bots
) -> None:
    bot = bots(write_config(tmp_path / "bot.toml", broker))
    runtime = await bot.start()
    await wait_until(runtime.mqtt.connected.is_set)
    config = config_module.load(write_config(tmp_path / "gw.toml", broker, database="gw.db"))
    with Spool.open(gateway.spool_path(config)) as spool:
        publisher = gateway.make_publisher(config, spool, config.hamsters[0], backoff=FAST)
        sink = gateway.SpoolingSink(spool, publisher, "C4:7C:8D:6A:12:34")
        task = asyncio.create_task(publisher.run())
        try:
            await wait_until(lambda: bot.pipeline().status.online is True)
            sink.link_event("battery", 1.0, 77)  # what the BLE link reports beside the cage
            await wait_until(lambda: bot.pipeline().status.battery == 77)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    # The gateway said goodbye on its way out.
    await wait_until(lambda: bot.pipeline().status.online is False)
    reply = await runtime.core.dispatch(make_ctx(datetime.now(UTC)), "hamster", "")
    assert "battery 77%" in reply.text


async def test_doctor_logs_in_to_the_broker_or_says_why_not(
    tmp_path: Path, broker: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    path = write_config(tmp_path / "bot.toml", broker)
    code = await asyncio.to_thread(main, ["doctor", "--config", str(path)])
    out = capsys.readouterr().out
    assert f"ok    mqtt: logged in to 127.0.0.1:{broker.port} (1 MQTT wheels)" in out
    assert "sensor Ursula" not in out and "bluetooth: not needed" in out
    assert code == 1  # no chat token in this config: that check fails, and says so
    await broker.stop()
    await asyncio.to_thread(main, ["doctor", "--config", str(path)])
    out = capsys.readouterr().out
    assert f"FAIL  mqtt: cannot reach the broker at 127.0.0.1:{broker.port}" in out
