"""The notification log format: record live sensor notifications, read them back for replay.

A capture is CSV with the header ``received_at,payload_hex`` and one notification per line::

    received_at,payload_hex
    1764453600.125,01e8030000a012
    2025-11-29T23:00:01.5+01:00,01 e9 03 00 00 a0 16

``received_at``
    UTC epoch seconds (a decimal number), or ISO 8601. An ISO time with an offset or ``Z`` is
    converted to UTC; a naive ISO time is taken as UTC, never as the reader's local time, so a
    capture means the same thing on every machine.
``payload_hex``
    The notification bytes as hex, case-insensitive. Spaces, colons and hyphens between digits
    are ignored, so bytes copied from nRF Connect (``01-E8-03-...``) or from a ``bytes.hex(" ")``
    or ``bytes.hex(":")`` dump paste in as they are; a ``0x`` prefix is not. An empty field is an empty
    notification: it is a real thing a radio can deliver, and the decoder, not the log format,
    decides it is malformed. Fields may be double-quoted, as spreadsheets write them.

Reading never stops at a bad line. Blank lines are skipped silently; any other line that cannot be
read becomes a :class:`CaptureProblem` carrying its 1-based line number, and reading goes on. The
first line must be the header. If it is not, that is a problem on line 1; when line 1 is itself a
valid data line (someone dropped the header) it is also yielded as data, so a headerless capture
still replays completely, with one warning.

:class:`CaptureWriter` writes what :func:`read_capture` reads: epoch seconds with millisecond
precision and lowercase hex without separators, flushed line by line.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

_LOGGER = logging.getLogger(__name__)

HEADER = "received_at,payload_hex"
_HEADER_FIELDS = ("received_at", "payload_hex")
_HEX_SEPARATORS = str.maketrans("", "", " :-\t")
#: The longest a notification can be (an ATT value is at most 512 bytes), in hex with separators.
MAX_PAYLOAD_FIELD = 512 * 3
#: The longest line a notification can take: an ISO time, quotes, the payload with separators.
MAX_LINE_CHARS = MAX_PAYLOAD_FIELD + 128
#: How much of a bad field a problem message shows: a 50 MB line must not become 50 MB of stderr.
SHOWN_CHARS = 40


@dataclass(frozen=True, slots=True)
class CaptureLine:
    """One notification read from a capture."""

    line_no: int
    received_at: float
    payload: bytes


# A frozen dataclass sets each field through object.__setattr__, which made building a CaptureLine a
# third of reading a plain line (benchmarks/ingest.py). The reader builds them through the slots'
# own descriptors instead: the same object, made without the frozen check that only guards later
# assignments.
_new_object = object.__new__
_set_line_no = vars(CaptureLine)["line_no"].__set__
_set_received_at = vars(CaptureLine)["received_at"].__set__
_set_payload = vars(CaptureLine)["payload"].__set__


def _capture_line(line_no: int, received_at: float, payload: bytes) -> CaptureLine:
    line = _new_object(CaptureLine)
    _set_line_no(line, line_no)
    _set_received_at(line, received_at)
    _set_payload(line, payload)
    return line


@dataclass(frozen=True, slots=True)
class CaptureProblem:
    """A line that could not be read; ``text`` is the line as found, without its line ending."""

    line_no: int
    text: str
    reason: str


class _BadLine(ValueError):
    pass


def shown(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters with the full length said."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"


def open_capture(path: Path) -> TextIO:
    """Open a capture for :func:`read_capture`: lines end at "\n" only (a stray "\r" inside a line
    stays in it, so later line numbers stay right), and undecodable bytes never stop reading."""
    return path.open(encoding="utf-8", errors="replace", newline="\n")


def _split(text: str) -> list[str]:
    # Lines as CaptureWriter writes them need no CSV machinery, and a replay reads millions of them
    # (benchmarks/ingest.py); csv.reader would split them identically.
    if text and '"' not in text and "\r" not in text and "\n" not in text and "\0" not in text:
        return text.split(",")
    # csv handles quoted fields; one physical line at a time keeps line numbers exact.
    try:
        return next(csv.reader([text], strict=True))
    except (csv.Error, StopIteration) as exc:
        raise _BadLine(f"not a CSV line: {exc}") from exc


def parse_received_at(field: str) -> float:
    """Read a ``received_at`` field: epoch seconds or ISO 8601 (naive means UTC) -> epoch seconds.

    Raises ValueError, with a message fit for a problem report, when it is neither.
    """
    text = field.strip()
    if not text:
        raise _BadLine("received_at is empty")
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise _BadLine(f"received_at is not a finite number: {shown(text)}")
        return value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _BadLine(
            f"received_at is neither epoch seconds nor an ISO 8601 time: {shown(text)}"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_payload_hex(field: str) -> bytes:
    """Read a ``payload_hex`` field (case-insensitive; spaces, colons, hyphens ignored) -> bytes.

    Raises ValueError when it is not an even number of hex digits.
    """
    if len(field) > MAX_PAYLOAD_FIELD and len(field.strip()) > MAX_PAYLOAD_FIELD:
        raise _BadLine(
            f"payload_hex is {len(field.strip()):,} characters long, more than any notification: "
            f"{shown(field.strip())}"
        )
    digits = field.strip().translate(_HEX_SEPARATORS)
    if len(digits) % 2:
        raise _BadLine(f"payload_hex has an odd number of hex digits: {shown(field.strip())}")
    try:
        return bytes.fromhex(digits)
    except ValueError as exc:
        raise _BadLine(f"payload_hex is not hex: {shown(field.strip())}") from exc


def _parse_data(line_no: int, text: str) -> CaptureLine:
    # The general reader: quotes, separators in the hex, ISO times, and every problem message.
    # read_capture() reads plain lines (as CaptureWriter writes them) before coming here.
    fields = _split(text)
    if len(fields) != 2:
        raise _BadLine(f"expected 2 columns (received_at,payload_hex), found {len(fields)}")
    return _capture_line(line_no, parse_received_at(fields[0]), parse_payload_hex(fields[1]))


def _is_header(text: str) -> bool:
    try:
        fields = _split(text)
    except _BadLine:
        return False
    return tuple(f.strip().lower() for f in fields) == _HEADER_FIELDS


def _read_first_line(line_no: int, raw: str) -> Iterator[CaptureLine | CaptureProblem]:
    """Line 1: the header, or a problem (and the line as data, when it is a valid data line)."""
    # A UTF-8 BOM from a spreadsheet export must not spoil the header.
    text = raw.rstrip("\r\n").removeprefix("\ufeff")
    if _is_header(text):
        return
    if not text.strip():
        yield CaptureProblem(line_no, text, f"missing header {HEADER!r}: line 1 is blank")
        return
    try:
        first = _parse_data(line_no, text)
    except _BadLine:
        yield CaptureProblem(line_no, text, f"expected header {HEADER!r}")
    else:
        yield CaptureProblem(line_no, text, f"missing header {HEADER!r}; line 1 read as data")
        yield first


def read_capture(lines: Iterable[str]) -> Iterator[CaptureLine | CaptureProblem]:
    """Read a capture line by line; yields notifications and problems in file order.

    Pure and streaming: ``lines`` may be an open text file of any size (one line is held at a
    time). See the module docstring for what counts as a problem.
    """
    numbered = enumerate(lines, start=1)
    first = next(numbered, None)
    if first is not None:
        yield from _read_first_line(*first)
    for line_no, raw in numbered:
        if len(raw) > MAX_LINE_CHARS:
            # Refused before any copy is made: a 50 MB line costs its own size, not five times it.
            reason = (
                f"line is {len(raw):,} characters long, more than any notification: {shown(raw)}"
            )
            yield CaptureProblem(line_no, raw[:SHOWN_CHARS], reason)
            continue
        text = raw.rstrip("\r\n")
        # Lines as CaptureWriter writes them (epoch seconds, plain hex) are read right here: a
        # replay reads millions (benchmarks/ingest.py). Whatever this cannot read exactly (ISO
        # times, separators, quotes, blank lines, junk) takes the long way, _parse_data(), which
        # gives the same value or the problem's message. fromhex() would skip whitespace inside
        # the hex, hence isalnum(); float() skips the same whitespace as strip(), except line
        # breaks, which csv refuses; quotes and NUL never survive float().
        at_text, comma, hex_text = text.partition(",")
        if (
            comma
            and len(hex_text) <= MAX_PAYLOAD_FIELD
            and hex_text.isalnum()
            and "\r" not in at_text
            and "\n" not in at_text
        ):
            try:
                at = float(at_text)
                payload = bytes.fromhex(hex_text)
            except ValueError:
                pass
            else:
                if math.isfinite(at):
                    yield _capture_line(line_no, at, payload)
                    continue
        if not text.strip():
            continue
        try:
            yield _parse_data(line_no, text)
        except _BadLine as exc:
            yield CaptureProblem(line_no, text, str(exc))


def format_line(received_at: float, payload: bytes) -> str:
    """One capture line (with its newline) for a notification."""
    if not math.isfinite(received_at):
        raise ValueError(f"received_at must be finite, got {received_at!r}")
    return f"{received_at:.3f},{bytes(payload).hex()}\n"


class CaptureWriter:
    """Append notifications to a capture file.

    Writes the header when the file is new or empty and appends otherwise. Each line is flushed
    as it is written, so a crash loses at most the line being written; if an earlier crash left a
    partial last line, a newline is added first so that only that line is lost on replay.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file: TextIO | None = None
        needs_header, needs_newline = self._inspect(self.path)
        # Line buffering flushes every line to the OS; newline="" keeps "\n" on every platform.
        self._file = self.path.open("a", encoding="utf-8", newline="", buffering=1)
        if needs_newline:
            _LOGGER.warning("%s ended in a partial line; starting a new line", self.path)
            self._file.write("\n")
        if needs_header:
            self._file.write(HEADER + "\n")

    @staticmethod
    def _inspect(path: Path) -> tuple[bool, bool]:
        try:
            with path.open("rb") as existing:
                existing.seek(0, 2)
                size = existing.tell()
                if size == 0:
                    return True, False
                existing.seek(size - 1)
                return False, existing.read(1) != b"\n"
        except FileNotFoundError:
            return True, False

    def write(self, received_at: float, payload: bytes) -> None:
        """Append one notification; raises ValueError after :meth:`close`."""
        if self._file is None:
            raise ValueError(f"capture {self.path} is closed")
        self._file.write(format_line(received_at, payload))

    def close(self) -> None:
        """Close the file; closing twice is harmless."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
