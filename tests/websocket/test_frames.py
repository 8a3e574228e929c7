"""Unit tests of the frame codec (``websocket.frames``): header decoding and its checks, frame
building, masking, close payloads. No connection state, no sockets.

Every header vector is parsed whole, from each of its prefixes (None: incomplete) and followed
by trailing bytes (the payload and a next frame must not change the result).
"""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest
from hypothesis import given, strategies as st

from krandog_asgi._abnf import close_code_is_sendable
from krandog_asgi.websocket import frames
from krandog_asgi.websocket.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    CloseCode,
    FrameError,
    FrameHeader,
    apply_mask,
    apply_mask_py,
    build_close_payload,
    build_frame,
    parse_close_payload,
    parse_header,
)
from tests.support.wsframes import MASK

TRAILING = b"payload bytes, then \x81\x05Hello"


def parse_three_ways(data: bytes, must_mask: bool) -> FrameHeader:
    """Parse a complete header whole, from every prefix (all None), with trailing bytes, and at
    an offset into a larger buffer; all must agree."""
    for end in range(len(data)):
        assert parse_header(data[:end], 0, must_mask) is None, f"{end} bytes are not a header"
    header = parse_header(data, 0, must_mask)
    assert header is not None
    assert parse_header(data + TRAILING, 0, must_mask) == header
    opcode, fin, rsv, length, mask, start = header
    shifted = parse_header(b"xyz" + data + TRAILING, 3, must_mask)
    assert shifted == (opcode, fin, rsv, length, mask, start + 3)
    return header


def refused_three_ways(data: bytes, must_mask: bool) -> FrameError:
    """A header that breaks RFC 6455: incomplete prefixes wait (None), the whole header raises,
    with or without trailing bytes, with the same error."""
    for end in range(len(data)):
        assert parse_header(data[:end], 0, must_mask) is None
    with pytest.raises(FrameError) as whole:
        parse_header(data, 0, must_mask)
    with pytest.raises(FrameError) as trailing:
        parse_header(data + TRAILING, 0, must_mask)
    assert (trailing.value.close_code, trailing.value.reason) == (
        whole.value.close_code,
        whole.value.reason,
    )
    return whole.value


# -- RFC 6455 §5.2: decoding a header ----------------------------------------------------------

HELLO_MASKED = b"\x37\xfa\x21\x3d"  # the masking key of the RFC's examples


@pytest.mark.parametrize(
    ("data", "must_mask", "expected"),
    [
        # §5.7: a single-frame unmasked text message, and the same masked
        (b"\x81\x05", False, (OP_TEXT, 0x80, 0, 5, None, 2)),
        (b"\x81\x85" + HELLO_MASKED, True, (OP_TEXT, 0x80, 0, 5, HELLO_MASKED, 6)),
        # §5.7: a fragmented unmasked text message
        (b"\x01\x03", False, (OP_TEXT, 0, 0, 3, None, 2)),
        (b"\x80\x02", False, (OP_CONT, 0x80, 0, 2, None, 2)),
        # §5.7: an unmasked ping, a masked pong
        (b"\x89\x05", False, (OP_PING, 0x80, 0, 5, None, 2)),
        (b"\x8a\x85" + HELLO_MASKED, True, (OP_PONG, 0x80, 0, 5, HELLO_MASKED, 6)),
        # §5.7: 256 bytes and 64 KiB of binary data, 16- and 64-bit lengths
        (b"\x82\x7e\x01\x00", False, (OP_BINARY, 0x80, 0, 256, None, 4)),
        (b"\x82\x7f" + struct.pack("!Q", 65536), False, (OP_BINARY, 0x80, 0, 65536, None, 10)),
        (b"\x82\xfe\x01\x00" + MASK, True, (OP_BINARY, 0x80, 0, 256, MASK, 8)),
        (
            b"\x82\xff" + struct.pack("!Q", 70000) + MASK,
            True,
            (OP_BINARY, 0x80, 0, 70000, MASK, 14),
        ),
        # the largest length the top-bit rule allows
        (
            b"\x82\x7f" + struct.pack("!Q", 2**63 - 1),
            False,
            (OP_BINARY, 0x80, 0, 2**63 - 1, None, 10),
        ),
        # length edges of the 7-bit form
        (b"\x82\x00", False, (OP_BINARY, 0x80, 0, 0, None, 2)),
        (b"\x82\x7d", False, (OP_BINARY, 0x80, 0, 125, None, 2)),
        # RSV bits of data frames are the connection's business (extensions): passed through
        (b"\xc1\x05", False, (OP_TEXT, 0x80, 0x40, 5, None, 2)),
        (b"\xb2\x05", False, (OP_BINARY, 0x80, 0x30, 5, None, 2)),
        (b"\x40\x01", False, (OP_CONT, 0, 0x40, 1, None, 2)),
        # control frames at their limits: empty close, 125-byte ping
        (b"\x88\x80" + MASK, True, (OP_CLOSE, 0x80, 0, 0, MASK, 6)),
        (b"\x89\xfd" + MASK, True, (OP_PING, 0x80, 0, 125, MASK, 6)),
    ],
)
def test_header_vectors(data: bytes, must_mask: bool, expected: FrameHeader) -> None:
    assert parse_three_ways(data, must_mask) == expected


@pytest.mark.parametrize(
    ("data", "must_mask", "reason"),
    [
        # §5.1: a client must mask, a server must not
        (b"\x81\x05", True, "unmasked frame from client"),
        (b"\x81\x85" + MASK, False, "masked frame from server"),
        # §5.2: the most significant bit of a 64-bit length must be 0
        (b"\x82\xff" + struct.pack("!Q", 2**63) + MASK, True, "frame length with the top bit set"),
        (b"\x82\x7f" + b"\xff" * 8, False, "frame length with the top bit set"),
        # §5.5: control frames are not fragmented, have no RSV bits, carry <= 125 bytes
        (b"\x09\x80" + MASK, True, "fragmented control frame"),
        (b"\xc9\x80" + MASK, True, "reserved bits set on a control frame"),
        (b"\xa8\x80" + MASK, True, "reserved bits set on a control frame"),
        (b"\x9a\x80" + MASK, True, "reserved bits set on a control frame"),
        (b"\x89\xfe\x00\x7e" + MASK, True, "control frame payload over 125 bytes"),
        (b"\x88\x7e\x01\x00", False, "control frame payload over 125 bytes"),
        # the order of the checks: masking before the opcode
        (b"\x83\x00", True, "unmasked frame from client"),
    ],
)
def test_headers_that_break_the_rfc_raise_1002(data: bytes, must_mask: bool, reason: str) -> None:
    error = refused_three_ways(data, must_mask)
    assert error.close_code == CloseCode.PROTOCOL_ERROR
    assert error.reason == reason
    assert str(error) == reason


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
@pytest.mark.parametrize("must_mask", [True, False])
def test_reserved_opcodes_raise_1002(opcode: int, must_mask: bool) -> None:
    data = bytes([0x80 | opcode, 0x80 if must_mask else 0]) + (MASK if must_mask else b"")
    error = refused_three_ways(data, must_mask)
    assert (error.close_code, error.reason) == (1002, f"reserved opcode {opcode}")


def test_the_payload_is_not_needed_to_decode_the_header() -> None:
    header = parse_header(b"\x82\xff" + struct.pack("!Q", 2**40) + MASK, 0, True)
    assert header == (OP_BINARY, 0x80, 0, 2**40, MASK, 14)


@given(
    opcode=st.sampled_from([OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG]),
    fin=st.booleans(),
    rsv1=st.booleans(),
    size=st.one_of(st.integers(0, 130), st.integers(65530, 65540)),
    masked=st.booleans(),
)
def test_build_frame_and_parse_header_agree(
    opcode: int, fin: bool, rsv1: bool, size: int, masked: bool
) -> None:
    if opcode >= OP_CLOSE:
        fin, rsv1, size = True, False, min(size, 125)  # what a valid control frame can be
    mask = MASK if masked else None
    data = build_frame(opcode, b"x" * size, fin=fin, rsv1=rsv1, mask=mask)
    header = parse_three_ways(data[: len(data) - size], masked)
    assert header == (opcode, 0x80 if fin else 0, 0x40 if rsv1 else 0, size, mask, len(data) - size)
    if mask is not None:
        assert apply_mask(data[header[5] :], mask) == b"x" * size


# -- §5.2 and §5.7: building frames ------------------------------------------------------------


def test_rfc_example_frames() -> None:
    assert build_frame(OP_TEXT, b"Hello") == b"\x81\x05Hello"
    masked = build_frame(OP_TEXT, b"Hello", mask=HELLO_MASKED)
    assert masked == b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert build_frame(OP_TEXT, b"Hel", fin=False) == b"\x01\x03Hel"
    assert build_frame(OP_CONT, b"lo") == b"\x80\x02lo"
    assert build_frame(OP_PING, b"Hello") == b"\x89\x05Hello"
    assert build_frame(OP_BINARY, bytes(256))[:4] == b"\x82\x7e\x01\x00"
    assert build_frame(OP_BINARY, bytes(65536))[:10] == b"\x82\x7f" + struct.pack("!Q", 65536)


def test_compressed_frames_carry_rsv1() -> None:
    assert build_frame(OP_TEXT, b"z", rsv1=True) == b"\xc1\x01z"
    assert build_frame(OP_TEXT, b"z", fin=False, rsv1=True) == b"\x41\x01z"


# -- §5.3: masking ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 7, 8, 9, 63, 64, 65, 1000, 65536])
def test_accelerated_mask_matches_python(size: int) -> None:
    data = os.urandom(size)
    mask = os.urandom(4)
    assert apply_mask(data, mask) == apply_mask_py(data, mask)
    assert apply_mask(apply_mask(data, mask), mask) == data


def test_mask_rotates_for_a_payload_slice() -> None:
    assert frames.rotate_mask(b"abcd", 1) == b"bcda"
    assert frames.rotate_mask(b"abcd", 4) == b"abcd"
    data = os.urandom(11)
    whole = apply_mask(data, MASK)
    assert apply_mask(data[5:], frames.rotate_mask(MASK, 5)) == whole[5:]


@pytest.fixture(params=["python", "c"])
def unmaskers(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    """(unmask, unmask_into) of the pure-Python fallback and of the C accelerator."""
    if request.param == "python":
        return frames.unmask_py, frames.unmask_into_py
    speedups = pytest.importorskip(
        "krandog_asgi.websocket._speedups", reason="the C accelerator is not built here"
    )
    return speedups.unmask, speedups.unmask_into


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 8, 9, 63, 64, 65, 1000, 65536])
@pytest.mark.parametrize("start", [0, 1, 3, 7])
@pytest.mark.parametrize("phase", [0, 1, 2, 3, 6])
def test_unmask_is_the_slice_masked_from_its_phase(
    unmaskers: tuple[Any, Any], size: int, start: int, phase: int
) -> None:
    unmask, _ = unmaskers
    data = os.urandom(start + size + 5)
    mask = os.urandom(4)
    expected = apply_mask_py(data[start : start + size], frames.rotate_mask(mask, phase))
    for source in (data, bytearray(data), memoryview(data)):
        result = unmask(source, mask, start, start + size, phase)
        assert type(result) is bytes
        assert result == expected


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 4097])
def test_unmask_into_appends_to_the_bytearray(unmaskers: tuple[Any, Any], size: int) -> None:
    _, unmask_into = unmaskers
    data = os.urandom(size + 3)
    dst = bytearray(b"kept")
    unmask_into(dst, data, 3, 3 + size, MASK, 2)
    assert dst == b"kept" + apply_mask_py(data[3:], frames.rotate_mask(MASK, 2))


def test_a_payload_unmasked_in_pieces_equals_it_unmasked_whole(
    unmaskers: tuple[Any, Any],
) -> None:
    """A frame read in several chunks: each piece resumes the mask where the last one ended."""
    unmask, unmask_into = unmaskers
    payload = os.urandom(70001)
    mask = os.urandom(4)
    whole = apply_mask_py(payload, mask)
    into, parts, offset = bytearray(), [], 0
    for cut in (1, 2, 5, 4096, 65535, 65536, 70001):
        unmask_into(into, payload, offset, cut, mask, offset)
        parts.append(unmask(payload, mask, offset, cut, offset))
        offset = cut
    assert into == whole
    assert b"".join(parts) == whole


@pytest.mark.parametrize(("start", "end"), [(-1, 2), (3, 2), (0, 11), (11, 11)])
def test_unmask_refuses_a_range_outside_the_data(
    unmaskers: tuple[Any, Any], start: int, end: int
) -> None:
    unmask, unmask_into = unmaskers
    with pytest.raises(ValueError, match="start and end"):
        unmask(bytes(10), MASK, start, end, 0)
    dst = bytearray()
    with pytest.raises(ValueError, match="start and end"):
        unmask_into(dst, bytes(10), start, end, MASK, 0)
    assert dst == b""


def test_unmask_needs_a_4_byte_mask_and_a_bytearray_target(unmaskers: tuple[Any, Any]) -> None:
    unmask, unmask_into = unmaskers
    with pytest.raises(ValueError, match="4 bytes"):
        unmask(bytes(10), b"abc", 0, 10, 0)
    with pytest.raises(TypeError, match="bytearray"):
        unmask_into(b"immutable", bytes(10), 0, 10, MASK, 0)


# -- the C fast path of the parser: whole single-frame messages ----------------------------------


@pytest.fixture
def scan() -> Any:
    speedups = pytest.importorskip(
        "krandog_asgi.websocket._speedups", reason="the C accelerator is not built here"
    )
    assert frames.scan_messages is speedups.scan_messages  # what the parser calls
    return speedups.scan_messages


BIG = 1 << 62


def test_scan_takes_whole_final_messages_from_pos(scan: Any) -> None:
    data = (
        b"xy"
        + build_frame(OP_TEXT, "κόσμε".encode(), mask=MASK)
        + build_frame(OP_BINARY, b"\x00" * 300, mask=MASK)  # 16-bit length
        + build_frame(OP_BINARY, b"z" * 70_000, mask=MASK)  # 64-bit length
        + build_frame(OP_TEXT, b"", mask=MASK)
    )
    events: list[object] = []
    assert scan(data, 2, True, BIG, BIG, events) == len(data)
    assert events == ["κόσμε", b"\x00" * 300, b"z" * 70_000, ""]
    events = []
    unmasked = build_frame(OP_TEXT, b"hi") + build_frame(OP_BINARY, b"\x01\x02")
    assert scan(unmasked, 0, False, BIG, BIG, events) == len(unmasked)  # a server's frames
    assert events == ["hi", b"\x01\x02"]


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (build_frame(OP_PING, b"p", mask=MASK), "a control frame"),
        (build_frame(OP_CLOSE, b"\x03\xe8", mask=MASK), "a close frame"),
        (build_frame(OP_TEXT, b"part", fin=False, mask=MASK), "a first fragment"),
        (build_frame(OP_CONT, b"rest", mask=MASK), "a continuation"),
        (build_frame(OP_TEXT, b"x", rsv1=True, mask=MASK), "RSV1 (deflate)"),
        (b"\xa1\x81" + MASK + b"x", "RSV2"),
        (build_frame(3, b"x", mask=MASK), "a reserved opcode"),
        (build_frame(OP_TEXT, b"unmasked"), "an unmasked frame from a client"),
        (build_frame(OP_TEXT, b"\xff\xfe", mask=MASK), "invalid UTF-8"),
        (build_frame(OP_TEXT, b"\xed\xa0\x80", mask=MASK), "a surrogate"),
        (build_frame(OP_BINARY, b"q" * 11, mask=MASK), "over max_size"),
        (build_frame(OP_BINARY, b"q" * 300, mask=MASK)[:-1], "a payload not all here"),
        (b"\x82\xff" + b"\x80" + bytes(7) + MASK, "the top bit of a 64-bit length"),
        (b"\x82\xfe\x01", "a header not all here"),
        (b"\x81", "one byte"),
    ],
)
def test_scan_stops_at_any_other_frame_and_leaves_it_to_python(
    scan: Any, frame: bytes, why: str
) -> None:
    good = build_frame(OP_TEXT, b"ok", mask=MASK)
    events: list[object] = []
    assert scan(good + frame + good, 0, True, 10, BIG, events) == len(good), why
    assert events == ["ok"]


def test_scan_stops_at_the_event_limit(scan: Any) -> None:
    frame = build_frame(OP_BINARY, b"m", mask=MASK)
    events: list[object] = ["queued already"]
    assert scan(frame * 5, 0, True, BIG, 3, events) == 2 * len(frame)
    assert events == ["queued already", b"m", b"m"]
    assert scan(frame, 0, True, BIG, 3, events) == 0  # at the limit: nothing taken


def test_a_server_frame_masked_is_left_to_python(scan: Any) -> None:
    events: list[object] = []
    assert scan(build_frame(OP_TEXT, b"hi", mask=MASK), 0, False, BIG, BIG, events) == 0
    assert events == []


def test_scan_checks_its_arguments(scan: Any) -> None:
    frame = build_frame(OP_TEXT, b"hi", mask=MASK)
    with pytest.raises(TypeError, match="list"):
        scan(frame, 0, True, BIG, BIG, ())
    with pytest.raises(ValueError, match="pos"):
        scan(frame, len(frame) + 1, True, BIG, BIG, [])
    with pytest.raises(ValueError, match="pos"):
        scan(frame, -1, True, BIG, BIG, [])
    with pytest.raises(TypeError, match="6 arguments"):
        scan(frame, 0, True, BIG, BIG)
    with pytest.raises(TypeError):
        scan("not bytes", 0, True, BIG, BIG, [])
    events: list[object] = []
    assert scan(memoryview(frame), 0, True, BIG, BIG, events) == len(frame)
    assert events == ["hi"]


# -- §5.5.1 and §7.4: close payloads and codes ---------------------------------------------------


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        (1000, True),
        (1001, True),
        (1002, True),
        (1003, True),
        (1007, True),
        (1008, True),
        (1009, True),
        (1010, True),
        (1011, True),
        (1012, True),
        (1013, True),
        (1014, True),
        (3000, True),
        (3999, True),
        (4000, True),
        (4999, True),
        (999, False),
        (1004, False),
        (1005, False),
        (1006, False),
        (1015, False),
        (1016, False),
        (2999, False),
        (5000, False),
    ],
)
def test_close_code_validity(code: int, valid: bool) -> None:
    assert close_code_is_sendable(code) is valid


def test_close_payload_round_trip_and_limits() -> None:
    assert parse_close_payload(build_close_payload(4000, "ok")) == (4000, "ok")
    assert build_close_payload(None) == b""
    with pytest.raises(ValueError):
        build_close_payload(1000, "x" * 124)
    with pytest.raises(ValueError):
        build_close_payload(1006)
    assert len(build_close_payload(1000, "é" * 61)) == 2 + 122


@pytest.mark.parametrize(
    ("payload", "code", "reason"),
    [
        (b"\x03", 1002, "close frame with a 1-byte payload"),
        (b"\x03\xed", 1002, "invalid close code 1005"),
        (b"\x03\xe8\xff", 1007, "close reason is not UTF-8"),
    ],
)
def test_invalid_close_payloads_raise_frame_error(payload: bytes, code: int, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        parse_close_payload(payload)
    assert (info.value.close_code, info.value.reason) == (code, reason)


def test_empty_close_payload_means_no_status() -> None:
    assert parse_close_payload(b"") == (CloseCode.NO_STATUS_RCVD, "")
    assert CloseCode.SERVICE_RESTART == 1012
