"""CSC decoding, byte by byte: public vectors, sensor-shaped captures, every malformed shape."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensors.csc import (
    BATTERY_LEVEL_UUID,
    BATTERY_SERVICE_UUID,
    COUNTER_BITS,
    CSC_FEATURE_UUID,
    CSC_MEASUREMENT_UUID,
    CSC_SERVICE_UUID,
    CscFeature,
    CscMeasurement,
    MalformedPayload,
    encode_csc_measurement,
    parse_csc_feature,
    parse_csc_measurement,
    read_counter,
)

# --- public vectors -------------------------------------------------------------------------


def test_pycycling_vector_all_fields_at_their_extremes() -> None:
    # The measurement vector from pycycling's test/test_cycling_speed_cadence_service.py.
    payload = bytes(
        [
            0b00000011,
            0b11111111, 0b11111111, 0b11111111, 0b11111111,
            0b00000011, 0b00111111,
            0b11111111, 0b00000111,
            0b11100111, 0b00001111,
        ]
    )  # fmt: skip
    assert parse_csc_measurement(payload) == CscMeasurement(
        wheel_revolutions=4294967295,
        last_wheel_event_time=16131,
        crank_revolutions=2047,
        last_crank_event_time=4071,
    )


def test_combined_sensor_vector() -> None:
    # Wheel and crank data as a speed+cadence combo sensor sends it (a published trainer-bridge
    # test vector): every field decodes little endian from its own offset.
    payload = bytes.fromhex("03 7d 2a 00 00 ca a8 59 0c cb 3a")
    assert parse_csc_measurement(payload) == CscMeasurement(
        wheel_revolutions=10877,
        last_wheel_event_time=0xA8CA,
        crank_revolutions=0x0C59,
        last_crank_event_time=0x3ACB,
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            [0b00000111, 0b00000000],
            CscFeature(
                wheel_revolution_data=True,
                crank_revolution_data=True,
                multiple_sensor_locations=True,
            ),
        ),
        (
            [0b00000101, 0b00000000],
            CscFeature(
                wheel_revolution_data=True,
                crank_revolution_data=False,
                multiple_sensor_locations=True,
            ),
        ),
        (
            [0b00000000, 0b00000000],
            CscFeature(
                wheel_revolution_data=False,
                crank_revolution_data=False,
                multiple_sensor_locations=False,
            ),
        ),
        # A speed-only sensor (Wahoo/Garmin speed pod) reports just bit 0.
        (
            [0x01, 0x00],
            CscFeature(
                wheel_revolution_data=True,
                crank_revolution_data=False,
                multiple_sensor_locations=False,
            ),
        ),
    ],
)
def test_feature_vectors(raw: list[int], expected: CscFeature) -> None:
    assert parse_csc_feature(bytes(raw)) == expected


def test_feature_ignores_high_reserved_bits_and_extra_bytes() -> None:
    feature = parse_csc_feature(bytes([0x02, 0xFF, 0xAA]))
    assert feature == CscFeature(
        wheel_revolution_data=False, crank_revolution_data=True, multiple_sensor_locations=False
    )


@pytest.mark.parametrize("raw", [b"", b"\x07"])
def test_feature_too_short(raw: bytes) -> None:
    with pytest.raises(MalformedPayload, match="CSC feature needs 2 bytes"):
        parse_csc_feature(raw)


# --- captures shaped like real speed sensors ------------------------------------------------


def test_speed_sensor_capture_flags_01_seven_bytes() -> None:
    # A speed-only pod: flags 0x01, 1234567 revolutions (0x0012D687), event time 0x8001.
    payload = bytes([0x01, 0x87, 0xD6, 0x12, 0x00, 0x01, 0x80])
    assert len(payload) == 7
    assert parse_csc_measurement(payload) == CscMeasurement(
        wheel_revolutions=1234567,
        last_wheel_event_time=0x8001,
        crank_revolutions=None,
        last_crank_event_time=None,
    )
    assert read_counter(payload, "csc") == ("wheel", 1234567)


def test_speed_sensor_in_combo_mode_with_junk_crank_block() -> None:
    # Some combo sensors mounted as speed pods still set bit 1 and send a meaningless crank block.
    payload = bytes([0x03, 0x2A, 0x00, 0x00, 0x00, 0x10, 0x27, 0xEF, 0xBE, 0xAD, 0xDE])
    measurement = parse_csc_measurement(payload)
    assert measurement.wheel_revolutions == 42
    assert measurement.last_wheel_event_time == 10000
    assert measurement.crank_revolutions == 0xBEEF
    assert measurement.last_crank_event_time == 0xDEAD
    assert read_counter(payload, "csc") == ("wheel", 42)


def test_crank_only_measurement() -> None:
    payload = bytes([0x02, 0x05, 0x00, 0x00, 0x04])
    assert parse_csc_measurement(payload) == CscMeasurement(
        wheel_revolutions=None,
        last_wheel_event_time=None,
        crank_revolutions=5,
        last_crank_event_time=1024,
    )


def test_trailing_padding_is_ignored() -> None:
    base = bytes([0x01, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06])
    padded = base + bytes(13)  # padded to a 20-byte ATT payload
    assert parse_csc_measurement(padded) == parse_csc_measurement(base)
    assert parse_csc_measurement(padded).wheel_revolutions == 0x04030201
    assert parse_csc_measurement(padded).last_wheel_event_time == 0x0605


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_accepts_bytes_like(wrap: type) -> None:
    payload = wrap(bytes([0x01, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x04]))
    assert parse_csc_measurement(payload).wheel_revolutions == 255
    assert read_counter(payload, "csc") == ("wheel", 255)
    assert parse_csc_feature(wrap(b"\x01\x00")).wheel_revolution_data is True


# --- malformed shapes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"\x00", "neither wheel nor crank"),
        (b"\x00\x01\x02\x03\x04\x05\x06", "neither wheel nor crank"),
        (b"\x04\x01\x00\x00\x00\x00\x00", "reserved flag bits"),
        (b"\x81\x01\x00\x00\x00\x00\x00", "reserved flag bits"),
        (b"\xff" + bytes(10), "reserved flag bits"),
        (b"\x01", "truncated"),
        (b"\x01\x01\x00\x00\x00\x00", "truncated"),  # wheel block one byte short
        (b"\x02\x01\x00\x00", "truncated"),  # crank block one byte short
        (b"\x03\x01\x00\x00\x00\x00\x00", "truncated"),  # wheel only, crank block missing
        (b"\x03" + bytes(9), "truncated"),  # one byte short of 11
    ],
)
def test_malformed_measurements(payload: bytes, message: str) -> None:
    with pytest.raises(MalformedPayload, match=message):
        parse_csc_measurement(payload)


def test_malformed_payload_is_a_value_error_naming_the_bytes() -> None:
    with pytest.raises(ValueError, match="need 7 bytes, got 3: 01 aa bb"):
        parse_csc_measurement(b"\x01\xaa\xbb")


@given(st.integers(min_value=0, max_value=255), st.binary(max_size=16))
def test_parser_raises_only_malformed_payload(flags: int, body: bytes) -> None:
    try:
        measurement = parse_csc_measurement(bytes([flags]) + body)
    except MalformedPayload:
        return
    assert flags & 0xFC == 0
    assert (measurement.wheel_revolutions is not None) == bool(flags & 0x01)
    assert (measurement.crank_revolutions is not None) == bool(flags & 0x02)


# --- encoding -------------------------------------------------------------------------------


def test_encode_speed_only_matches_sensor_bytes() -> None:
    assert encode_csc_measurement(1234567, 0x8001) == bytes(
        [0x01, 0x87, 0xD6, 0x12, 0x00, 0x01, 0x80]
    )


def test_encode_masks_to_field_widths() -> None:
    payload = encode_csc_measurement(2**32 + 5, 0x10000 + 7, 0x10000 + 3, -1)
    assert parse_csc_measurement(payload) == CscMeasurement(5, 7, 3, 0xFFFF)


def test_encode_needs_some_data() -> None:
    with pytest.raises(ValueError, match="wheel or crank"):
        encode_csc_measurement(None)


_u32 = st.integers(min_value=0, max_value=2**32 - 1)
_u16 = st.integers(min_value=0, max_value=2**16 - 1)


@given(st.none() | _u32, _u16, st.none() | _u16, _u16)
def test_encode_parse_round_trip(
    wheel: int | None, wheel_time: int, crank: int | None, crank_time: int
) -> None:
    if wheel is None and crank is None:
        return
    payload = encode_csc_measurement(wheel, wheel_time, crank, crank_time)
    assert len(payload) == 1 + (6 if wheel is not None else 0) + (4 if crank is not None else 0)
    assert parse_csc_measurement(payload) == CscMeasurement(
        wheel_revolutions=wheel,
        last_wheel_event_time=wheel_time if wheel is not None else None,
        crank_revolutions=crank,
        last_crank_event_time=crank_time if crank is not None else None,
    )


# --- raw counters ---------------------------------------------------------------------------


def test_read_counter_raw_formats() -> None:
    assert read_counter(b"\x34\x12", "u16le") == ("counter", 0x1234)
    assert read_counter(b"\x34\x12\xff", "u16le") == ("counter", 0x1234)
    assert read_counter(b"\x78\x56\x34\x12", "u32le") == ("counter", 0x12345678)
    assert read_counter(bytearray(b"\xff\xff\xff\xff"), "u32le") == ("counter", 2**32 - 1)


@pytest.mark.parametrize(
    ("payload", "counter_format"),
    [(b"", "u16le"), (b"\x01", "u16le"), (b"\x01\x02\x03", "u32le"), (b"", "u32le")],
)
def test_read_counter_too_short(payload: bytes, counter_format: str) -> None:
    with pytest.raises(MalformedPayload, match=f"{counter_format} counter needs"):
        read_counter(payload, counter_format)


def test_cadence_mode_counts_the_crank_counter() -> None:
    # A dual-mode sensor in cadence mode: crank data only. It is a counter, not a malformed payload.
    assert read_counter(bytes([0x02, 0x05, 0x00, 0x00, 0x04]), "csc") == ("crank", 5)
    assert read_counter(bytes([0x02, 0xFF, 0xFF, 0x00, 0x04, 0x00]), "csc") == ("crank", 65535)


def test_wheel_data_wins_over_a_crank_block() -> None:
    # Flags 0x03 count the wheel, whatever the crank block does.
    assert read_counter(encode_csc_measurement(7, 0, 3, 0), "csc") == ("wheel", 7)
    assert read_counter(encode_csc_measurement(8, 0, 3, 0), "csc") == ("wheel", 8)


def test_read_counter_csc_propagates_malformed() -> None:
    with pytest.raises(MalformedPayload, match="truncated"):
        read_counter(b"\x01\x00", "csc")


def test_read_counter_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown counter format 'u8'") as excinfo:
        read_counter(b"\x01\x02", "u8")
    assert not isinstance(excinfo.value, MalformedPayload)


def test_counter_bits_cover_every_format() -> None:
    assert COUNTER_BITS == {"csc": 32, "u16le": 16, "u32le": 32}
    for counter_format, bits in COUNTER_BITS.items():
        top = 2**bits - 1
        payload = (
            encode_csc_measurement(top)
            if counter_format == "csc"
            else top.to_bytes(bits // 8, "little")
        )
        assert read_counter(payload, counter_format)[1] == top


def test_uuids_are_the_sig_base_uuids() -> None:
    assert CSC_SERVICE_UUID == "00001816-0000-1000-8000-00805f9b34fb"
    assert CSC_MEASUREMENT_UUID == "00002a5b-0000-1000-8000-00805f9b34fb"
    assert CSC_FEATURE_UUID == "00002a5c-0000-1000-8000-00805f9b34fb"
    assert BATTERY_SERVICE_UUID == "0000180f-0000-1000-8000-00805f9b34fb"
    assert BATTERY_LEVEL_UUID == "00002a19-0000-1000-8000-00805f9b34fb"


# --- real sensors, byte for byte -------------------------------------------------------------

_VECTORS = Path(__file__).parent / "data" / "csc_vectors.csv"


def _published_vectors() -> list[dict[str, str]]:
    with _VECTORS.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def _field(text: str) -> int | None:
    return None if text == "-" else int(text)


@pytest.mark.parametrize("vector", _published_vectors(), ids=lambda v: v["payload_hex"])
def test_published_real_sensor_vectors(vector: dict[str, str]) -> None:
    payload = bytes.fromhex(vector["payload_hex"])
    assert vector["source"]  # every vector says where it was published
    assert parse_csc_measurement(payload) == CscMeasurement(
        wheel_revolutions=_field(vector["wheel_revolutions"]),
        last_wheel_event_time=_field(vector["last_wheel_event_time"]),
        crank_revolutions=_field(vector["crank_revolutions"]),
        last_crank_event_time=_field(vector["last_crank_event_time"]),
    )
    field, raw = vector["counts"].split(":")
    assert read_counter(payload, "csc") == (field, int(raw))


def test_the_issue_vectors_are_all_there() -> None:
    # The three captures issue 11 names, so that trimming the file cannot drop one silently.
    hexes = {v["payload_hex"] for v in _published_vectors()}
    assert {"032D060000A3A9900A289F", "036D010000FC7E2C01F87E", "02C4005E07"} <= hexes
