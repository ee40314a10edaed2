"""GATT Cycling Speed and Cadence (CSC) decoding: notification bytes -> values.

Pure byte parsing, no I/O. A hamster wheel sensor is a bicycle speed sensor taped to a wheel, so it
speaks the Bluetooth SIG CSC service (0x1816):

CSC Measurement (0x2A5B), little endian::

    flags         uint8    bit0 wheel revolution data present, bit1 crank revolution data present,
                           bits 2-7 reserved (must be zero)
    [bit0] cumulative wheel revolutions  uint32
           last wheel event time         uint16, 1/1024 s, rolls over every 64 s
    [bit1] cumulative crank revolutions  uint16
           last crank event time         uint16, 1/1024 s

Trailing bytes after the fields the flags announce are tolerated and ignored: some real sensors pad
notifications to a fixed length, and refusing them would lose every reading from such a sensor.

Dual-mode speed/cadence sensors (CooSpo BK467, Magene S3+, XOSS Vortex...) pick their mode from how
the battery was put in; in cadence mode they send crank data only (flags 0x02), and a magnet passing
once per turn of the hamster wheel counts the crank counter just as well.

Some DIY boards skip CSC and notify a bare little-endian counter; :func:`read_counter` reads all
the formats the rest of the program accepts, and says which counter it read.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)

CSC_SERVICE_UUID = "00001816-0000-1000-8000-00805f9b34fb"
CSC_MEASUREMENT_UUID = "00002a5b-0000-1000-8000-00805f9b34fb"
CSC_FEATURE_UUID = "00002a5c-0000-1000-8000-00805f9b34fb"
BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"

FLAG_WHEEL_DATA = 0x01
FLAG_CRANK_DATA = 0x02
_RESERVED_FLAGS = 0xFC

_WHEEL_BLOCK = struct.Struct("<IH")
_CRANK_BLOCK = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")

#: Width in bits of each ``counter_format``'s wheel counter; differences are modular in it.
COUNTER_BITS: dict[str, int] = {"csc": 32, "u16le": 16, "u32le": 32}

# The fields :func:`read_counter` counts: a CSC wheel or crank counter, or a DIY board's bare one.
WHEEL = "wheel"
CRANK = "crank"
COUNTER = "counter"
#: The CSC crank counter is a uint16 whatever the configuration says.
CRANK_BITS = 16

_RAW_COUNTERS: dict[str, struct.Struct] = {"u16le": _U16, "u32le": _U32}


class MalformedPayload(ValueError):
    """The bytes are not a valid notification; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class CscMeasurement:
    """One decoded CSC Measurement; a field is None when the flags say it is absent."""

    wheel_revolutions: int | None
    last_wheel_event_time: int | None
    crank_revolutions: int | None
    last_crank_event_time: int | None


@dataclass(frozen=True, slots=True)
class CscFeature:
    """CSC Feature (0x2A5C): what the sensor says it can measure."""

    wheel_revolution_data: bool
    crank_revolution_data: bool
    multiple_sensor_locations: bool


def _hex(data: bytes) -> str:
    return data.hex(" ") if data else "<empty>"


def parse_csc_measurement(data: bytes | bytearray | memoryview) -> CscMeasurement:
    """Decode a CSC Measurement notification.

    Raises :class:`MalformedPayload` when the payload is empty, shorter than its flags imply,
    sets reserved flag bits, or carries neither wheel nor crank data. Extra trailing bytes are
    ignored (see the module docstring).
    """
    payload = bytes(data)
    if not payload:
        raise MalformedPayload("empty CSC measurement")
    flags = payload[0]
    if flags & _RESERVED_FLAGS:
        raise MalformedPayload(
            f"CSC measurement sets reserved flag bits (flags 0x{flags:02x}): {_hex(payload)}"
        )
    has_wheel = bool(flags & FLAG_WHEEL_DATA)
    has_crank = bool(flags & FLAG_CRANK_DATA)
    if not has_wheel and not has_crank:
        raise MalformedPayload(f"CSC measurement has neither wheel nor crank data: {_hex(payload)}")
    expected = 1 + (_WHEEL_BLOCK.size if has_wheel else 0) + (_CRANK_BLOCK.size if has_crank else 0)
    if len(payload) < expected:
        raise MalformedPayload(
            f"CSC measurement truncated: flags 0x{flags:02x} need {expected} bytes, "
            f"got {len(payload)}: {_hex(payload)}"
        )

    offset = 1
    wheel_revolutions = last_wheel_event_time = None
    crank_revolutions = last_crank_event_time = None
    if has_wheel:
        wheel_revolutions, last_wheel_event_time = _WHEEL_BLOCK.unpack_from(payload, offset)
        offset += _WHEEL_BLOCK.size
    if has_crank:
        crank_revolutions, last_crank_event_time = _CRANK_BLOCK.unpack_from(payload, offset)
        offset += _CRANK_BLOCK.size
    if len(payload) > offset:
        _LOGGER.debug("ignoring %d padding byte(s) in CSC measurement", len(payload) - offset)
    return CscMeasurement(
        wheel_revolutions=wheel_revolutions,
        last_wheel_event_time=last_wheel_event_time,
        crank_revolutions=crank_revolutions,
        last_crank_event_time=last_crank_event_time,
    )


def parse_csc_feature(data: bytes | bytearray | memoryview) -> CscFeature:
    """Decode the CSC Feature characteristic (uint16 little endian bit field)."""
    payload = bytes(data)
    if len(payload) < _U16.size:
        raise MalformedPayload(f"CSC feature needs 2 bytes, got {len(payload)}: {_hex(payload)}")
    (bits,) = _U16.unpack_from(payload, 0)
    return CscFeature(
        wheel_revolution_data=bool(bits & 0x0001),
        crank_revolution_data=bool(bits & 0x0002),
        multiple_sensor_locations=bool(bits & 0x0004),
    )


def encode_csc_measurement(
    wheel_revolutions: int | None,
    last_wheel_event_time: int = 0,
    crank_revolutions: int | None = None,
    last_crank_event_time: int = 0,
) -> bytes:
    """Build a CSC Measurement payload; the inverse of :func:`parse_csc_measurement`.

    Values are masked to their field widths, so a cumulative count past 2**32 wraps exactly as a
    real sensor's does. Passing neither wheel nor crank revolutions is a ValueError: such a
    payload would be malformed.
    """
    if wheel_revolutions is None and crank_revolutions is None:
        raise ValueError("a CSC measurement needs wheel or crank revolutions")
    flags = 0
    parts: list[bytes] = []
    if wheel_revolutions is not None:
        flags |= FLAG_WHEEL_DATA
        parts.append(
            _WHEEL_BLOCK.pack(wheel_revolutions & 0xFFFFFFFF, last_wheel_event_time & 0xFFFF)
        )
    if crank_revolutions is not None:
        flags |= FLAG_CRANK_DATA
        parts.append(_CRANK_BLOCK.pack(crank_revolutions & 0xFFFF, last_crank_event_time & 0xFFFF))
    return bytes([flags]) + b"".join(parts)


def read_counter(data: bytes | bytearray | memoryview, counter_format: str) -> tuple[str, int]:
    """Which cumulative counter a notification carries, and its raw value: ``(field, raw)``.

    ``counter_format`` is ``"csc"`` or ``"u16le"`` / ``"u32le"`` (a bare little-endian counter from
    a DIY board; extra bytes are ignored, the field is ``"counter"``). A CSC Measurement with wheel
    data counts its 32-bit wheel counter (``"wheel"``), even when a crank block rides along that
    never moves; one with crank data only (a dual-mode sensor in cadence mode) counts its 16-bit
    crank counter (``"crank"``). Raises :class:`MalformedPayload` for bytes that do not carry a
    counter, and ValueError for an unknown format.
    """
    if counter_format == "csc":
        # What every wheel sensor sends (flags 0x01, wheel data only) is read without building a
        # CscMeasurement: a replay decodes millions of them (benchmarks/ingest.py).
        if len(data) >= 7 and data[0] == FLAG_WHEEL_DATA:
            return WHEEL, _U32.unpack_from(data, 1)[0]
        measurement = parse_csc_measurement(data)
        if measurement.wheel_revolutions is not None:
            return WHEEL, measurement.wheel_revolutions
        crank = measurement.crank_revolutions
        if crank is None:  # parse_csc_measurement refuses a payload with neither block
            raise MalformedPayload(f"CSC measurement carries no counter: {_hex(bytes(data))}")
        return CRANK, crank
    layout = _RAW_COUNTERS.get(counter_format)
    if layout is None:
        known = ", ".join(sorted(COUNTER_BITS))
        raise ValueError(f"unknown counter format {counter_format!r}; expected one of {known}")
    payload = bytes(data)
    if len(payload) < layout.size:
        raise MalformedPayload(
            f"{counter_format} counter needs {layout.size} bytes, got {len(payload)}: "
            f"{_hex(payload)}"
        )
    (value,) = layout.unpack_from(payload, 0)
    return COUNTER, int(value)
