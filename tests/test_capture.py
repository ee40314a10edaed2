from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sensors.capture import (
    HEADER,
    CaptureLine,
    CaptureProblem,
    CaptureWriter,
    open_capture,
    parse_payload_hex,
    parse_received_at,
    read_capture,
)

CSC_A = bytes.fromhex("01e803000000a0")
CSC_B = bytes.fromhex("01ea03000010a4")


def _read_file(path: Path) -> list[CaptureLine | CaptureProblem]:
    with open_capture(path) as lines:
        return list(read_capture(lines))


def test_round_trip_through_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "wheel.csv"
    with CaptureWriter(path) as writer:
        writer.write(1764453600.125, CSC_A)
        writer.write(1764453601.0004, CSC_B)
        writer.write(1764453602.5, b"")

    assert path.read_text(encoding="utf-8").splitlines() == [
        HEADER,
        "1764453600.125,01e803000000a0",
        "1764453601.000,01ea03000010a4",
        "1764453602.500,",
    ]
    assert _read_file(path) == [
        CaptureLine(2, 1764453600.125, CSC_A),
        CaptureLine(3, 1764453601.0, CSC_B),
        CaptureLine(4, 1764453602.5, b""),
    ]


def test_each_line_reaches_the_file_before_close(tmp_path: Path) -> None:
    path = tmp_path / "wheel.csv"
    writer = CaptureWriter(path)
    try:
        writer.write(10.0, CSC_A)
        # Read through a separate handle, as a crash would leave the file.
        assert path.read_text(encoding="utf-8") == f"{HEADER}\n10.000,{CSC_A.hex()}\n"
    finally:
        writer.close()
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(11.0, CSC_A)


def test_appending_to_an_existing_capture_keeps_one_header(tmp_path: Path) -> None:
    path = tmp_path / "wheel.csv"
    with CaptureWriter(path) as writer:
        writer.write(1.0, CSC_A)
    with CaptureWriter(path) as writer:
        writer.write(2.0, CSC_B)

    assert path.read_text(encoding="utf-8").count(HEADER) == 1
    assert _read_file(path) == [CaptureLine(2, 1.0, CSC_A), CaptureLine(3, 2.0, CSC_B)]


def test_an_empty_existing_file_gets_the_header(tmp_path: Path) -> None:
    path = tmp_path / "wheel.csv"
    path.touch()
    with CaptureWriter(path) as writer:
        writer.write(1.0, CSC_A)
    assert path.read_text(encoding="utf-8") == f"{HEADER}\n1.000,{CSC_A.hex()}\n"


def test_appending_after_a_crash_mid_line_loses_only_that_line(tmp_path: Path) -> None:
    path = tmp_path / "wheel.csv"
    path.write_text(f"{HEADER}\n1.000,{CSC_A.hex()}\n2.0", encoding="utf-8")
    with CaptureWriter(path) as writer:
        writer.write(3.0, CSC_B)

    assert _read_file(path) == [
        CaptureLine(2, 1.0, CSC_A),
        CaptureProblem(3, "2.0", "expected 2 columns (received_at,payload_hex), found 1"),
        CaptureLine(4, 3.0, CSC_B),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-29T23:00:01Z", datetime(2025, 11, 29, 23, 0, 1, tzinfo=UTC)),
        ("2025-11-29T23:00:01.250+01:00", datetime(2025, 11, 29, 22, 0, 1, 250000, tzinfo=UTC)),
        ("2025-11-29T18:00:00-05:00", datetime(2025, 11, 29, 23, 0, 0, tzinfo=UTC)),
        # Naive means UTC, whatever the reader's local zone.
        ("2025-11-29T23:00:01", datetime(2025, 11, 29, 23, 0, 1, tzinfo=UTC)),
        ("2025-11-29 23:00:01", datetime(2025, 11, 29, 23, 0, 1, tzinfo=UTC)),
    ],
)
def test_iso_times_are_read_as_utc(text: str, expected: datetime) -> None:
    assert parse_received_at(text) == expected.timestamp()
    [line] = read_capture([HEADER, f"{text},{CSC_A.hex()}"])
    assert line == CaptureLine(2, expected.timestamp(), CSC_A)


def test_epoch_seconds_in_any_decimal_form() -> None:
    assert parse_received_at("1764453600") == 1764453600.0
    assert parse_received_at(" 1764453600.5 ") == 1764453600.5
    assert parse_received_at("1.7644536e9") == 1764453600.0


@pytest.mark.parametrize(
    "text", ["01E8030000A0", "01 e8 03 00 00 a0", "01:E8:03:00:00:A0", "01-e8-03-00-00-a0"]
)
def test_hex_is_case_insensitive_and_tolerates_separators(text: str) -> None:
    assert parse_payload_hex(text) == bytes.fromhex("01e8030000a0")


def test_spreadsheet_quoting_crlf_and_bom_are_accepted() -> None:
    lines = ['\ufeff"received_at","payload_hex"\r\n', f'"1.5","{CSC_A.hex()}"\r\n']
    assert list(read_capture(lines)) == [CaptureLine(2, 1.5, CSC_A)]


def test_every_bad_line_shape_is_a_problem_with_its_line_number() -> None:
    lines = [
        HEADER + "\n",  # 1
        "1.0,01e803000000a0\n",  # 2 good
        "\n",  # 3 blank: skipped silently
        "   \n",  # 4 blank: skipped silently
        "yesterday,01e803000000a0\n",  # 5 bad time
        "2025-13-40T25:00:00Z,01e803000000a0\n",  # 6 impossible ISO time
        "nan,01e803000000a0\n",  # 7 not finite
        ",01e803000000a0\n",  # 8 empty time
        "2.0,01e80\n",  # 9 odd hex
        "2.0,01zz\n",  # 10 not hex
        "2.0,0x01e8\n",  # 11 0x prefix is not hex
        "2.0\n",  # 12 one column
        "2.0,01e8,extra\n",  # 13 three columns
        '2.0,"01e8\n',  # 14 unterminated quote
        "3.0,01ea03000010a4",  # 15 good, no trailing newline
    ]
    found = list(read_capture(lines))

    assert [item.line_no for item in found] == [2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    assert found[0] == CaptureLine(2, 1.0, CSC_A)
    assert found[-1] == CaptureLine(15, 3.0, CSC_B)
    problems = found[1:-1]
    assert all(isinstance(p, CaptureProblem) for p in problems)
    assert [p.text for p in problems] == [line.rstrip("\n") for line in lines[4:14]]
    reasons = [p.reason for p in problems]
    assert "neither epoch seconds nor an ISO 8601 time" in reasons[0]
    assert "neither epoch seconds nor an ISO 8601 time" in reasons[1]
    assert "not a finite number" in reasons[2]
    assert "received_at is empty" in reasons[3]
    assert "odd number of hex digits" in reasons[4]
    assert "not hex" in reasons[5]
    assert "not hex" in reasons[6]
    assert "found 1" in reasons[7]
    assert "found 3" in reasons[8]
    assert "not a CSV line" in reasons[9]


def test_a_missing_header_is_a_problem_but_a_data_line_1_is_still_read() -> None:
    found = list(read_capture(["1.0,01e803000000a0\n", "2.0,01ea03000010a4\n"]))
    assert found == [
        CaptureProblem(1, "1.0,01e803000000a0", f"missing header {HEADER!r}; line 1 read as data"),
        CaptureLine(1, 1.0, CSC_A),
        CaptureLine(2, 2.0, CSC_B),
    ]


@pytest.mark.parametrize("first", ["time,payload", "received_at,payload_hex,rssi", "", "garbage"])
def test_a_wrong_header_is_a_problem_on_line_1_and_reading_continues(first: str) -> None:
    found = list(read_capture([first + "\n", "2.0,01ea03000010a4\n"]))
    assert len(found) == 2
    problem, line = found
    assert isinstance(problem, CaptureProblem)
    assert (problem.line_no, problem.text) == (1, first)
    assert HEADER in problem.reason
    assert line == CaptureLine(2, 2.0, CSC_B)


def test_reading_streams_instead_of_loading_everything() -> None:
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        yield HEADER
        n = 0
        while True:
            n += 1
            pulled += 1
            yield f"{n}.0,01e803000000a0"

    reader = read_capture(endless())
    first = next(reader)
    assert first == CaptureLine(2, 1.0, CSC_A)
    assert pulled == 1


def _read_the_long_way(line: str) -> list[CaptureLine | CaptureProblem]:
    """What the general reader makes of ``line`` as line 2 of a capture."""
    from sensors.capture import _BadLine, _parse_data

    text = line.rstrip("\r\n")
    if not text.strip():
        return []
    try:
        return [_parse_data(2, text)]
    except _BadLine as exc:
        return [CaptureProblem(2, text, str(exc))]


_TRICKY_LINES = [
    "1.5,01e803000000a0",
    "1.5,01E803000000A0",
    "1.5,",
    " 1.5 ,01e8",
    "\t1.5,01e8",
    "1.5\r,01e8",
    "1.5\n,01e8",
    "1_5.25,01e8",
    "1e9,01e8",
    "-0,01e8",
    "inf,01e8",
    "nan,01e8",
    "1.5,01 e8",
    "1.5,01e8 ",
    "1.5,0x01",
    "1.5,01e",
    "1.5,01e8,02",
    '"1.5",01e8',
    '1.5,"01e8"',
    "1.5\0,01e8",
    "1.5,\u0663\u0663",
    "2025-11-29T23:00:01Z,01e8",
    ",01e8",
    ",",
]


@pytest.mark.parametrize("line", _TRICKY_LINES)
def test_plain_lines_read_directly_match_the_long_way(line: str) -> None:
    # read_capture reads lines as CaptureWriter writes them without the csv/strip machinery; it
    # must give exactly what the general reader gives, values and problem messages alike.
    assert list(read_capture([HEADER, line])) == _read_the_long_way(line)


def test_random_lines_read_directly_match_the_long_way() -> None:
    rng = random.Random(7)
    alphabet = [*'0123456789abcdefABCDEF.,-+eE _\t\r"\0', "inf", "nan", "1764453600.125"]
    for _ in range(5000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        assert list(read_capture([HEADER, line])) == _read_the_long_way(line), repr(line)


def test_a_huge_bad_line_is_reported_in_a_few_words(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    junk = "zz" * 5_000_000  # a 10 MB line that is not hex
    path.write_text(f"{HEADER}\n1764453600.0,{junk}\n1764453600.0,{'q' * 50}\n1764453601.0,0101\n")
    with open_capture(path) as handle:
        found = list(read_capture(handle))
    problems = [item for item in found if isinstance(item, CaptureProblem)]
    assert [p.line_no for p in problems] == [2, 3]
    assert all(len(p.reason) < 200 for p in problems)
    assert "line is 10,000,014 characters long" in problems[0].reason
    assert "50 characters" in problems[1].reason
    assert [item.line_no for item in found if isinstance(item, CaptureLine)] == [4]


def test_a_stray_carriage_return_keeps_later_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "cr.csv"
    # Line 3 has a bare "\r" inside it; lines end in "\r\n" elsewhere (a Windows editor).
    path.write_bytes(
        b"received_at,payload_hex\r\n1764453600.0,0101\r\n1764453601.0,01\r02\r\n"
        b"1764453602.0,zz\r\n1764453603.0,0103\r\n"
    )
    with open_capture(path) as handle:
        found = list(read_capture(handle))
    assert [(type(i).__name__, i.line_no) for i in found] == [
        ("CaptureLine", 2),
        ("CaptureProblem", 3),
        ("CaptureProblem", 4),
        ("CaptureLine", 5),
    ]
