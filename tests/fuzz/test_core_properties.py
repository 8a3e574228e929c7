"""Hypothesis properties of the sans-I/O WebSocket core (``krandog_asgi.websocket``).

1. Any byte stream, in any chunking, on either side, with or without deflate: the core gives
   the same events whole and cut, only data/ping/pong events and at most one close or protocol
   failure (1002, 1007 or 1009), never another exception (``tests/support/fuzzing.py``). The
   streams are built from frames with every field drawn (opcodes, FIN, RSV, mask bit, length
   encodings, lengths that lie, deflated and non-UTF-8 payloads), plus raw bytes.
2. Round trips: frames through ``build_frame``/``parse_header``, close payloads, and messages
   through ``Connection.send_*``/``receive_data`` in both directions (masked from the client,
   unmasked from the server), fragmented, with deflate and its context-takeover variants.

Bounded ``max_examples``: the whole module runs in seconds.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, example, given, settings, strategies as st

from krandog_asgi.websocket.connection import Connection, Side
from krandog_asgi.websocket.deflate import PerMessageDeflate
from krandog_asgi.websocket.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    apply_mask_py,
    build_close_payload,
    build_frame,
    parse_close_payload,
    parse_header,
)
from tests.support.fuzzing import FAILURE_CODES, check_frame_stream, deflate_payload

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

payloads = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=80).map(lambda t: t.encode("utf-8")),
    st.text(max_size=80).map(lambda t: deflate_payload(t.encode("utf-8"))),
    st.binary(max_size=200).map(deflate_payload),
    st.sampled_from(
        [
            b"\xff\xfe",  # never UTF-8
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce",  # cut inside a character
            b"\xed\xa0\x80",  # a surrogate
            b"\x03\xe8",  # close code 1000
            b"\x03\xe8bye",
            b"\x03\xed",  # close code 1005: never sent
            b"\x0b\xb8\xff",  # 3000 with a non-UTF-8 reason
            b"\x01",  # a 1-byte close payload
            deflate_payload(b"\x00" * 200_000),  # a deflate bomb past FUZZ_MAX_SIZE
            b"\xff\xff\xff\xff",  # not deflate data
        ]
    ),
)


def _frame(
    draw: st.DrawFn, opcode: int, fin: bool, rsv: int, payload: bytes, masked: bool
) -> bytes:
    """The frame a peer would send, or now and then one with a field wrong: an opcode, RSV
    bits, the mask bit, a length that lies, a 64-bit length."""
    wrong = draw(st.sampled_from([None] * 24 + ["opcode", "rsv", "mask", "length", "huge"]))
    if wrong == "opcode":
        opcode = draw(st.integers(0, 15))
    elif wrong == "rsv":
        rsv = draw(st.integers(1, 7)) << 4
    elif wrong == "mask":
        masked = not masked
    size = len(payload) if wrong != "length" else draw(st.integers(0, 300))
    first = bytes([(0x80 if fin else 0) | rsv | opcode])
    mask_bit = 0x80 if masked else 0
    if wrong == "huge":
        head = first + bytes([mask_bit | 127]) + struct.pack("!Q", draw(st.integers(0, 2**64 - 1)))
    elif size >= 65536:
        head = first + bytes([mask_bit | 127]) + struct.pack("!Q", size)
    elif size >= 126 or draw(st.integers(0, 9)) == 0:  # sometimes a longer form than needed
        head = first + bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head = first + bytes([mask_bit | size])
    if not masked:
        return head + payload
    mask = draw(st.binary(min_size=4, max_size=4))
    return head + mask + apply_mask_py(payload, mask)


@st.composite
def streams(draw: st.DrawFn, masked: bool) -> bytes:
    """Messages (one frame or several), control frames between and inside them, now and then
    raw bytes: every field drawn, most frames valid so that parsing gets deep."""
    out = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["message"] * 4 + ["control", "raw"]))
        if kind == "raw":
            out.append(draw(st.binary(max_size=16)))
        elif kind == "control":
            opcode = draw(st.sampled_from([OP_PING, OP_PONG, OP_PING, OP_PONG, OP_CLOSE]))
            out.append(_frame(draw, opcode, True, 0, draw(payloads)[:125], masked))
        else:
            opcode = draw(st.sampled_from([OP_TEXT, OP_BINARY]))
            if draw(st.integers(0, 5)) == 0:
                content = draw(payloads)  # anything, text or not, compressed or not
            elif opcode == OP_TEXT:
                content = draw(st.text(max_size=300)).encode("utf-8")
            else:
                content = draw(st.binary(max_size=300) | st.integers(0, 70_000).map(bytes))
            rsv = 0x40 if draw(st.booleans()) else 0
            if rsv:
                content = deflate_payload(content)
            cuts = sorted(draw(st.lists(st.integers(0, len(content)), max_size=3)))
            parts = [content[a:b] for a, b in zip([0, *cuts], [*cuts, len(content)], strict=True)]
            for i, part in enumerate(parts):
                if i and draw(st.integers(0, 4)) == 0:
                    out.append(_frame(draw, OP_PING, True, 0, part[:125], masked))
                first, last = i == 0, i == len(parts) - 1
                opcode_i, rsv_i = (opcode, rsv) if first else (OP_CONT, 0)
                out.append(_frame(draw, opcode_i, last, rsv_i, part, masked))
    data = b"".join(out)
    if data and draw(st.integers(0, 5)) == 0:
        data = data[: draw(st.integers(0, len(data)))]  # the peer went away mid-frame
    return data


cuts = st.lists(st.integers(0, 4000), max_size=10)


@FAST
@given(data=streams(masked=True), cuts=cuts, deflate=st.booleans())
@example(data=b"\x81\x80" + b"\x00" * 4, cuts=[], deflate=False)
@example(data=b"\x88\x81\x00\x00\x00\x00\x01", cuts=[3], deflate=False)  # 1-byte close
def test_any_stream_from_a_client_parses_or_fails_with_a_close_code(
    data: bytes, cuts: list[int], deflate: bool
) -> None:
    check_frame_stream(data, cuts, Side.SERVER, deflate)


@FAST
@given(data=streams(masked=False), cuts=cuts, deflate=st.booleans())
def test_any_stream_from_a_server_parses_or_fails_with_a_close_code(
    data: bytes, cuts: list[int], deflate: bool
) -> None:
    check_frame_stream(data, cuts, Side.CLIENT, deflate)


@FAST
@given(data=st.binary(max_size=400), cuts=cuts, deflate=st.booleans(), server=st.booleans())
def test_raw_bytes_parse_or_fail_with_a_close_code(
    data: bytes, cuts: list[int], deflate: bool, server: bool
) -> None:
    check_frame_stream(data, cuts, Side.SERVER if server else Side.CLIENT, deflate)


def test_the_property_sees_failures_and_closes() -> None:
    """The checks above are not vacuous: these streams end each way."""
    good = build_frame(OP_TEXT, b"hi", mask=b"abcd")
    assert check_frame_stream(good, [1], Side.SERVER, False) == ["hi"]
    failure = check_frame_stream(build_frame(OP_TEXT, b"hi"), [], Side.SERVER, False)[-1]
    assert getattr(failure, "code", None) in FAILURE_CODES  # unmasked from a client: 1002
    close = build_frame(OP_CLOSE, build_close_payload(4000, "x"), mask=b"abcd")
    events = check_frame_stream(good + close + good, [5, 9], Side.SERVER, False)
    assert events[0] == "hi"
    assert (getattr(events[1], "code", None), len(events)) == (4000, 2)


# -- round trips ---------------------------------------------------------------------------------


@FAST
@given(
    opcode=st.sampled_from([OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG]),
    fin=st.booleans(),
    rsv1=st.booleans(),
    payload=st.binary(max_size=300) | st.integers(65530, 65540).map(bytes),
    mask=st.none() | st.binary(min_size=4, max_size=4),
)
def test_any_frame_round_trips_through_build_and_parse(
    opcode: int, fin: bool, rsv1: bool, payload: bytes, mask: bytes | None
) -> None:
    if opcode >= OP_CLOSE:
        fin, rsv1, payload = True, False, payload[:125]
    data = build_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=mask)
    header = parse_header(data, 0, mask is not None)
    assert header is not None
    got_op, got_fin, got_rsv, length, got_mask, start = header
    assert (got_op, bool(got_fin), got_rsv == 0x40, length, got_mask) == (
        opcode,
        fin,
        rsv1,
        len(payload),
        mask,
    )
    body = data[start:]
    assert (apply_mask_py(body, mask) if mask is not None else body) == payload
    for cut in range(start):  # an incomplete header is "not yet", never an error
        assert parse_header(data[:cut], 0, mask is not None) is None


@FAST
@given(
    code=st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014])
    | st.integers(3000, 4999),
    reason=st.text(max_size=40).filter(lambda r: len(r.encode()) <= 123),
)
def test_close_payloads_round_trip(code: int, reason: str) -> None:
    assert parse_close_payload(build_close_payload(code, reason)) == (code, reason)


def _codecs(
    server_no_takeover: bool, client_no_takeover: bool, bits: int
) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    server = PerMessageDeflate(
        local_no_context_takeover=server_no_takeover,
        remote_no_context_takeover=client_no_takeover,
        local_max_window_bits=bits,
        remote_max_window_bits=bits,
    )
    client = PerMessageDeflate(
        local_no_context_takeover=client_no_takeover,
        remote_no_context_takeover=server_no_takeover,
        local_max_window_bits=bits,
        remote_max_window_bits=bits,
    )
    return server, client


@FAST
@given(
    messages=st.lists(
        st.text(max_size=300)
        | st.binary(max_size=300)
        | st.integers(1, 3000).map(lambda n: "a" * n),
        min_size=1,
        max_size=5,
    ),
    fragment=st.none() | st.integers(1, 64),
    chunk=st.integers(1, 97),
    deflate=st.booleans(),
    from_client=st.booleans(),
    server_no_takeover=st.booleans(),
    client_no_takeover=st.booleans(),
    bits=st.integers(9, 15),
)
def test_messages_round_trip_both_ways_fragmented_and_deflated(
    messages: list[str | bytes],
    fragment: int | None,
    chunk: int,
    deflate: bool,
    from_client: bool,
    server_no_takeover: bool,
    client_no_takeover: bool,
    bits: int,
) -> None:
    server_codec, client_codec = (
        _codecs(server_no_takeover, client_no_takeover, bits) if deflate else (None, None)
    )
    out: list[bytes] = []
    if from_client:
        sender = Connection(Side.CLIENT, out.append, deflate=client_codec)
        receiver = Connection(Side.SERVER, lambda _: None, deflate=server_codec)
    else:
        sender = Connection(Side.SERVER, out.append, deflate=server_codec)
        receiver = Connection(Side.CLIENT, lambda _: None, deflate=client_codec)
    for message in messages:
        if isinstance(message, str):
            sender.send_text(message, fragment_size=fragment)
        else:
            sender.send_binary(message, fragment_size=fragment)
    data = b"".join(out)
    if not from_client:
        assert all(not b1 & 0x80 for b1 in _mask_bits(data))  # a server never masks
    events: list[object] = []
    for i in range(0, len(data), chunk):
        events += receiver.receive_data(data[i : i + chunk])
    assert events == messages


def _mask_bits(data: bytes) -> list[int]:
    """The second header byte of every frame in ``data`` (unmasked frames only)."""
    out, pos = [], 0
    while pos < len(data):
        header = parse_header(data, pos, False)
        assert header is not None
        out.append(data[pos + 1])
        pos = header[5] + header[3]
    return out
