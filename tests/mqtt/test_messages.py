"""The pure parts of the MQTT wheels: messages, DIY counts, config keys, the spool."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from bot import config as config_module
from bot.config import ConfigError
from sensors.mqtt import (
    GatewayReading,
    MalformedMessage,
    MqttWheel,
    MqttWheelFeed,
    count_payload,
    decode_count,
    decode_reading,
    decode_status,
    encode_reading,
    encode_status,
    reading_fields,
)
from storage.spool import Spool


def test_a_reading_round_trips_and_junk_is_malformed() -> None:
    message = encode_reading(
        1764453600.125, b"\x01\xe8\x03\x00\x00\xa0\x12", "C4:7C:8D:6A:12:34", 7
    )
    reading = decode_reading(message)
    assert reading.received_at == 1764453600.125
    assert reading.payload == b"\x01\xe8\x03\x00\x00\xa0\x12"
    assert (reading.sensor, reading.seq) == ("C4:7C:8D:6A:12:34", 7)
    for junk in (
        b"",
        b"[]",
        b"{}",
        b'{"received_at": "x", "payload_hex": "01"}',
        b'{"received_at": 1, "payload_hex": "zz"}',
        b'{"received_at": true, "payload_hex": ""}',
        b"\xff\xfe",
    ):
        with pytest.raises(MalformedMessage):
            decode_reading(junk)


def _reading_by_json_loads(data: Any) -> tuple[float, bytes, str, int]:
    """``decode_reading`` as it was before its fast path: ``json.loads`` and nothing else."""
    try:
        message = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedMessage("not JSON") from err
    if not isinstance(message, dict):
        raise MalformedMessage("not a JSON object")
    received_at = message.get("received_at")
    payload_hex = message.get("payload_hex")
    if (
        isinstance(received_at, bool)
        or not isinstance(received_at, int | float)
        or not math.isfinite(received_at)
    ):
        raise MalformedMessage("received_at")
    if not isinstance(payload_hex, str):
        raise MalformedMessage("payload_hex is missing")
    try:
        payload = bytes.fromhex(payload_hex)
    except ValueError as err:
        raise MalformedMessage("payload_hex is not hex") from err
    sensor = message.get("sensor")
    seq = message.get("seq")
    return (
        float(received_at),
        payload,
        sensor if isinstance(sensor, str) else "",
        seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
    )


_GOOD = encode_reading(1764453600.125, b"\x01\xe8\x03\x00\x00\xa0\x12", "C4:7C:8D:6A:12:34", 7)
_TEXT = _GOOD.decode()


@pytest.mark.parametrize(
    "data",
    [
        _GOOD,
        bytearray(_GOOD),
        memoryview(_GOOD),
        _TEXT.encode("utf-8-sig"),  # a BOM: json.loads takes it off
        _TEXT.encode("utf-16"),
        _TEXT.encode("utf-16-le"),
        _TEXT.encode("utf-16-be"),
        _TEXT.encode("utf-32-le"),
        _TEXT.replace("C4:7C", "\u00e9\u00e9").encode(),  # UTF-8 beyond ASCII
        _GOOD.replace(b"C4:7C", b"\xed\xa0\x80"),  # an encoded surrogate: surrogatepass
        _GOOD.replace(b"C4:7C", b"\xff"),  # not UTF-8
        _GOOD.replace(b"C4:7C", b"\\ud800"),  # an escaped lone surrogate
        b" " + _GOOD,
        _GOOD + b" ",
        _GOOD + b"x",
        _GOOD.replace(b"1764453600.125", b"1764453600"),
        _GOOD.replace(b"1764453600.125", b"17644536001e-1"),
        _GOOD.replace(b"1764453600.125", b"NaN"),
        _GOOD.replace(b"1764453600.125", b"Infinity"),
        _GOOD.replace(b"1764453600.125", b"-Infinity"),
        _GOOD.replace(b"1764453600.125", b"1e400"),
        _GOOD.replace(b"1764453600.125", b"true"),
        _GOOD.replace(b"1764453600.125", b'"1764453600"'),
        _GOOD.replace(b'"seq":7', b'"seq":true'),
        _GOOD.replace(b'"seq":7', b'"seq":7.0'),
        _GOOD.replace(b'"C4:7C:8D:6A:12:34"', b"null"),
        _GOOD.replace(b"01e803", b"01 e8 03"),
        _GOOD.replace(b"01e803", b"01e80"),
        _GOOD.replace(b'"received_at"', b'"received_at":1,"received_at"'),
        b'{"received_at":1764453600.5,"payload_hex":""}',
        b'{"payload_hex":"01"}',
        b'{"',
        b'{"}',
        b"[1]",
        b"{}",
        b"",
    ],
)
def test_reading_fields_decode_exactly_as_json_loads(data: Any) -> None:
    """The JSON fast path (``{"``-led bytes) and the checks after it accept, refuse and decode
    every message as ``json.loads`` and the checks before them did."""
    try:
        expected: object = _reading_by_json_loads(data)
    except Exception as err:
        expected = type(err)
    try:
        got: object = reading_fields(data)
    except Exception as err:
        got = type(err)
    assert repr(got) == repr(expected)  # repr: NaN-free, and -0.0 or a lone surrogate show
    if isinstance(got, tuple):
        assert type(got[0]) is float
        assert decode_reading(data) == GatewayReading(*got)


@pytest.mark.parametrize(
    ("payload", "path", "count"),
    [
        (b"1234", None, 1234),
        (b" 77\n", None, 77),
        (b"1234.0", None, 1234),
        (b'"42"', None, 42),
        (b'{"COUNTER": {"C1": 981}}', "COUNTER.C1", 981),
        (b'{"a": [5, {"b": 6}]}', "a.1.b", 6),
        (b'{"total": "12"}', "total", 12),
    ],
)
def test_diy_counts(payload: bytes, path: str | None, count: int) -> None:
    assert decode_count(payload, path) == count


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        (b"", None),
        (b"abc", None),
        (b"-3", None),
        (b"1.5", None),
        (b"true", None),
        (b"NaN", None),
        (b'{"COUNTER": {"C2": 1}}', "COUNTER.C1"),
        (b'{"COUNTER": 5}', "COUNTER.C1"),
        (b'{"COUNTER": {"C1": 1}}', None),
    ],
)
def test_diy_junk_is_malformed(payload: bytes, path: str | None) -> None:
    with pytest.raises(MalformedMessage):
        decode_count(payload, path)


def test_count_payload_keeps_the_low_32_bits() -> None:
    assert count_payload(5) == b"\x05\x00\x00\x00"
    assert count_payload(2**32 + 7) == b"\x07\x00\x00\x00"


def test_status_round_trips() -> None:
    assert decode_status(encode_status(True, 80)).battery == 80
    assert decode_status(encode_status(False)).online is False
    with pytest.raises(MalformedMessage):
        decode_status(b'{"state": "sleepy"}')


class _Sink:
    def __init__(self) -> None:
        self.fed: list[tuple[bytes, float]] = []
        self.sensors: list[str | None] = []
        self.events: list[tuple[str, float | None]] = []

    def feed(self, payload: bytes, received_at: float, sensor: str | None = None) -> None:
        self.fed.append((payload, received_at))
        self.sensors.append(sensor)

    def link_event(
        self, kind: str, at: float, value: float | None = None, detail: str = ""
    ) -> None:
        self.events.append((kind, value))


def _feed(sink: _Sink, last_at: float | None = None) -> MqttWheelFeed:
    settings = config_module.parse(
        {"mqtt": {"url": "mqtt://127.0.0.1"}, "hamsters": [{"name": "U", "wheel_diameter_cm": 20}]}
    ).mqtt
    wheel = MqttWheel("U", "mqtt:home/U", sink, last_at=last_at)
    return MqttWheelFeed(settings, [wheel], client_id="t")


def test_readings_no_newer_than_the_last_are_redeliveries() -> None:
    sink = _Sink()
    feed = _feed(sink, last_at=100.0)
    topic = "hamsterbot/home/U/reading"
    for at in (99.0, 100.0, 101.0, 101.0, 100.5, 102.0):
        feed.handle(topic, encode_reading(at, b"\x01", "s", 1), now=500.0)
    assert [at for _, at in sink.fed] == [101.0, 102.0]
    assert sink.sensors == ["s", "s"]  # the gateway's sensor: another one is another counter
    feed.handle(topic, b"not json", now=500.0)  # logged, ignored
    feed.handle("hamsterbot/home/other/reading", encode_reading(200, b"", "s", 1), now=500.0)
    assert len(sink.fed) == 2


def test_status_changes_become_link_events_once() -> None:
    sink = _Sink()
    feed = _feed(sink)
    topic = "hamsterbot/home/U/status"
    for status in (
        encode_status(True, 90),
        encode_status(True, 90),
        encode_status(True, 85),
        encode_status(False),
    ):
        feed.handle(topic, status, now=1.0)
    assert sink.events == [
        ("connected", None),
        ("battery", 90),
        ("battery", 85),
        ("disconnected", None),
    ]


def _parse(**sections: object) -> config_module.Config:
    raw: dict[str, object] = {"hamsters": [{"name": "U", "wheel_diameter_cm": 20}]}
    raw.update(sections)
    return config_module.parse(raw)


def test_mqtt_config_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HAMSTERBOT_MQTT_PASSWORD", raising=False)
    config = _parse(
        mqtt={"url": "mqtts://broker.example:8884", "username": "u", "password": "p"},
        gateway={"home": "flat 3"},
    )
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.tls) == ("broker.example", 8884, True)
    assert config.mqtt.topic_prefix == "hamsterbot" and config.mqtt.homeassistant is False
    assert "'p'" not in repr(config.mqtt)
    assert config.gateway.home == "flat 3"
    assert _parse(mqtt={"url": "mqtt://[::1]"}).mqtt.port == 1883
    monkeypatch.setenv("HAMSTERBOT_MQTT_PASSWORD", "from-env")
    assert _parse(mqtt={"url": "mqtt://h", "password": "p"}).mqtt.password == "from-env"


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"mqtt": {"url": "http://h"}}, "[mqtt] url: expected a URL starting with mqtt://"),
        ({"mqtt": {"url": "mqtt://u:pw@h"}}, "[mqtt] url: put the user name and password in"),
        ({"mqtt": {"url": "mqtt://h:99999"}}, '[mqtt] url: "99999" is not a port'),
        (
            {"mqtt": {"url": "mqtt://h", "homeassitant": True}},
            'unknown key "homeassitant" (did you',
        ),
        (
            {"mqtt": {"url": "mqtt://h", "topic_prefix": "a/#"}},
            "[mqtt] topic_prefix: expected an MQTT",
        ),
        ({"gateway": {"home": "a/b"}}, '[gateway] home: must not contain "/"'),
        ({"gateway": {"house": "a"}}, '[gateway]: unknown key "house"'),
    ],
)
def test_mqtt_config_errors_name_the_key(sections: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _parse(**sections)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("hamster", "message"),
    [
        ({"sensor": "mqtt:home"}, 'expected "mqtt:HOME/WHEEL" (one slash)'),
        ({"sensor": "mqtt:home/a/b"}, 'expected "mqtt:HOME/WHEEL" (one slash)'),
        ({"sensor": "mqtt:ho+me/a"}, 'sensor (home): must not contain "+"'),
        ({"sensor": "mqtt-counter:a/#"}, "sensor: expected an MQTT topic without wildcards"),
        ({"sensor": "mqtt-counter:a/b", "value": "A..B"}, "value: expected a dotted path"),
        ({"sensor": "simulated", "value": "A"}, 'value: only applies to sensor = "mqtt-counter'),
        ({"sensor": "mqtt-counter:a", "counter_format": "u16le"}, "counter_format: does not apply"),
    ],
)
def test_mqtt_sensor_errors_name_the_key(hamster: dict, message: str) -> None:
    raw = {"name": "U", "wheel_diameter_cm": 20, **hamster}
    with pytest.raises(ConfigError) as caught:
        config_module.parse({"mqtt": {"url": "mqtt://h"}, "hamsters": [raw]})
    assert message in str(caught.value)
    assert '[[hamsters]] "U"' in str(caught.value) or "[[hamsters]] #1" in str(caught.value)


def test_an_mqtt_sensor_needs_a_broker() -> None:
    with pytest.raises(ConfigError, match=r"needs \[mqtt\] url"):
        config_module.parse(
            {"hamsters": [{"name": "U", "wheel_diameter_cm": 20, "sensor": "mqtt:h/U"}]}
        )
    config = config_module.parse(
        {
            "mqtt": {"url": "mqtt://h"},
            "hamsters": [
                {"name": "U", "wheel_diameter_cm": 20, "sensor": "mqtt-counter:t", "value": "a.b"}
            ],
        }
    )
    assert config.hamsters[0].counter_format == "u32le" and config.hamsters[0].counter_bits == 32
    assert config.hamsters[0].mqtt_source == "mqtt-counter"


def test_the_spool_keeps_order_and_forgets_only_what_was_acknowledged(tmp_path: Path) -> None:
    with Spool.open(tmp_path / "spool.db") as spool:
        seqs = [spool.add("U", 10.0 + i, bytes([i]), "sim") for i in range(5)]
        spool.add("P", 1.0, b"p", "sim")
        assert seqs == sorted(seqs)
        first = spool.pending("U", limit=2)
        assert [r.payload for r in first] == [b"\x00", b"\x01"]
        spool.acknowledged(first)
        assert [r.payload for r in spool.pending("U")] == [b"\x02", b"\x03", b"\x04"]
        assert spool.count() == 4 and spool.count("P") == 1
        assert spool.last_reading("U") == (14.0, b"\x04")
        spool.acknowledged(spool.pending("U"))
        assert spool.last_reading("U") == (14.0, b"\x04")  # remembered after the delete
        # seq never goes back, even once the table is empty
        assert spool.add("U", 20.0, b"x", "sim") > seqs[-1]


def test_the_bot_without_mqtt_never_imports_aiomqtt(tmp_path: Path) -> None:
    import subprocess

    code = (
        "import sys, bot.app, bot.cli, bot.wheels, bot.gateway;"
        "print('aiomqtt' in sys.modules, 'paho' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("config_text", "args", "message"),
    [
        ("", [], '[mqtt] url = "mqtt://HOST:PORT" is needed by the gateway'),
        ('[mqtt]\nurl = "mqtt://127.0.0.1:1"\n', [], '[gateway] home = "NAME" is needed'),
        (
            '[mqtt]\nurl = "mqtt://127.0.0.1:1"\n[gateway]\nhome = "h"\n',
            ["--wheel", "Ursula"],
            "--wheel goes with --replay FILE",
        ),
        (
            '[mqtt]\nurl = "mqtt://127.0.0.1:1"\n[gateway]\nhome = "h"\n',
            ["--replay", "night.csv"],
            "--replay FILE needs --wheel NAME",
        ),
        (
            '[mqtt]\nurl = "mqtt://127.0.0.1:1"\n[gateway]\nhome = "h"\n',
            ["--replay", "night.csv", "--wheel", "Nobody"],
            'no hamster called "Nobody"',
        ),
    ],
)
def test_gateway_usage_errors_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config_text: str, args: list, message: str
) -> None:
    from bot.cli import main

    path = tmp_path / "gw.toml"
    path.write_text(
        f'[bot]\ndatabase = "{tmp_path / "gw.db"}"\n{config_text}\n'
        '[[hamsters]]\nname = "Ursula"\nwheel_diameter_cm = 20\nsensor = "simulated"\n',
        encoding="utf-8",
    )
    assert main(["gateway", "--config", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
