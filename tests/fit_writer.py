"""A small FIT encoder for tests, written from the FIT protocol: a 14-byte header with its CRC, definition
messages, data messages and the file CRC. Enough for activity files (file_id, record, session) with the
fields the bot reads; everything little-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime

FIT_EPOCH = datetime(1989, 12, 31, tzinfo=UTC)

# (field number, size, base type, struct code)
ENUM = (1, 0x00, "B")
UINT16 = (2, 0x84, "H")
UINT32 = (4, 0x86, "I")
SINT32 = (4, 0x85, "i")

FILE_ID, SESSION, RECORD = 0, 18, 20
SPORTS = {"generic": 0, "running": 1, "cycling": 2, "swimming": 5, "walking": 11, "hiking": 17}
_FILE_TYPES = {"activity": 4, "course": 6}

_CRC_TABLE = (
    0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401,
    0xA001, 0x6C00, 0x7800, 0xB401, 0x5000, 0x9C01, 0x8801, 0x4400,
)  # fmt: skip


def fit_crc(data: bytes, crc: int = 0) -> int:
    for byte in data:
        for nibble in (byte & 0xF, byte >> 4):
            tmp = _CRC_TABLE[crc & 0xF]
            crc = (crc >> 4) & 0x0FFF
            crc ^= tmp ^ _CRC_TABLE[nibble]
    return crc


def fit_time(moment: datetime) -> int:
    return int((moment - FIT_EPOCH).total_seconds())


def semicircles(degrees: float) -> int:
    return round(degrees * 2**31 / 180.0)


@dataclass
class FitWriter:
    """``message(global_number, [(field_number, kind, value), ...])`` then ``bytes()``."""

    body: bytearray = field(default_factory=bytearray)
    _definitions: dict[int, tuple] = field(default_factory=dict)

    def message(self, global_number: int, fields: list[tuple[int, tuple, int]]) -> None:
        local = {FILE_ID: 0, SESSION: 1, RECORD: 2}.get(global_number, 3)
        layout = tuple((number, kind) for number, kind, _ in fields)
        if self._definitions.get(local) != (global_number, layout):
            self._definitions[local] = (global_number, layout)
            self.body += struct.pack("<BBBHB", 0x40 | local, 0, 0, global_number, len(fields))
            for number, (size, base, _) in layout:
                self.body += struct.pack("<BBB", number, size, base)
        self.body.append(local)
        for _, (_, _, code), value in fields:
            self.body += struct.pack("<" + code, value)

    def bytes(self, *, protocol: int = 0x20, profile: int = 2132) -> bytes:
        header = struct.pack("<BBHI4s", 14, protocol, profile, len(self.body), b".FIT")
        header += struct.pack("<H", fit_crc(header))
        content = header + bytes(self.body)
        return content + struct.pack("<H", fit_crc(content))


def activity_fit(
    *,
    start: datetime,
    points: list[tuple[float, float, float]] = (),  # type: ignore[assignment]
    sport: str | None = "running",
    distance_m: float | None = None,
    timer_s: float | None = None,
    elapsed_s: float | None = None,
    file_type: str = "activity",
) -> bytes:
    """An activity: file_id, a record per (seconds after start, lat, lon), and a session when any of
    sport/distance/times is given."""
    fit = FitWriter()
    fit.message(
        FILE_ID,
        [(0, ENUM, _FILE_TYPES[file_type]), (1, UINT16, 1), (4, UINT32, fit_time(start))],
    )
    for seconds, lat, lon in points:
        fit.message(
            RECORD,
            [
                (253, UINT32, fit_time(start) + int(seconds)),
                (0, SINT32, semicircles(lat)),
                (1, SINT32, semicircles(lon)),
            ],
        )
    if sport is not None or distance_m is not None or timer_s is not None:
        session = [(253, UINT32, fit_time(start)), (2, UINT32, fit_time(start))]
        if sport is not None:
            session.append((5, ENUM, SPORTS[sport]))
        if distance_m is not None:
            session.append((9, UINT32, round(distance_m * 100)))
        if timer_s is not None:
            session.append((8, UINT32, round(timer_s * 1000)))
        if elapsed_s is not None:
            session.append((7, UINT32, round(elapsed_s * 1000)))
        fit.message(SESSION, session)
    return fit.bytes()
