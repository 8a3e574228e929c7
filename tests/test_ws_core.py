"""Unit tests of the sans-I/O WebSocket core (frames, wsconn, deflate, handshake), no sockets.

Organised by RFC section. Every byte stream is fed three ways (whole, one byte at a time, and
followed by trailing bytes of a next frame) and must give the same events.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings, strategies as st

from krandog_asgi._abnf import close_code_is_sendable
from krandog_asgi.websocket import frames
from krandog_asgi.websocket.connection import (
    CloseReceived,
    Connection,
    InvalidState,
    Ping,
    Pong,
    ProtocolFailure,
    Side,
    State,
)
from krandog_asgi.websocket.deflate import (
    PerMessageDeflate,
    client_offer,
    negotiate_client,
    negotiate_server,
    parse_extensions,
)
from krandog_asgi.websocket.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    CloseCode,
    apply_mask,
    apply_mask_py,
    build_close_payload,
    parse_close_payload,
)
from krandog_asgi.websocket.handshake import (
    HandshakeError,
    accept_key,
    check_request,
    parse_subprotocols,
)

MASK = b"\x37\xfa\x21\x3d"


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = MASK,
    length: int | None = None,
) -> bytes:
    """A frame as a peer would send it (masked by default: a client talking to our server)."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    return head + mask + apply_mask_py(payload, mask)


def server(**kwargs: object) -> tuple[Connection, list[bytes]]:
    out: list[bytes] = []
    return Connection(Side.SERVER, out.append, **kwargs), out  # type: ignore[arg-type]


def client(**kwargs: object) -> tuple[Connection, list[bytes]]:
    out: list[bytes] = []
    return Connection(Side.CLIENT, out.append, mask_key=lambda: MASK, **kwargs), out  # type: ignore[arg-type]


def norm(events: list[object]) -> list[object]:
    return [e if isinstance(e, str | bytes) else repr(e) for e in events]


def feed_three_ways(
    make: Callable[[], tuple[Connection, list[bytes]]], data: bytes
) -> list[object]:
    """Feed ``data`` whole, byte by byte, and with a trailing ping; all must agree."""
    conn, _ = make()
    whole = norm(conn.receive_data(data))
    conn, _ = make()
    bytewise: list[object] = []
    for i in range(len(data)):
        bytewise += norm(conn.receive_data(data[i : i + 1]))
    assert bytewise == whole, "byte-by-byte feeding changed the events"
    conn, _ = make()
    ping = frame(OP_PING, b"next", mask=None if conn.side is Side.CLIENT else MASK)
    trailing = norm(conn.receive_data(data + ping))
    if whole and str(whole[-1]).startswith(("ProtocolFailure", "CloseReceived")):
        assert trailing == whole, "nothing may be parsed after a failure or a close"
    else:
        assert trailing == [*whole, "Ping(b'next')"]
    return whole


def failure(code: int) -> Callable[[list[object]], bool]:
    return lambda events: bool(events) and str(events[-1]).startswith(f"ProtocolFailure({code},")


# -- RFC 6455 §5.2: base framing ------------------------------------------------------------


class TestBaseFraming:
    @pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
    def test_payload_lengths_7_16_64_bit(self, size: int) -> None:
        payload = os.urandom(size)
        assert (
            feed_three_ways(server, frame(OP_BINARY, payload)) == [payload] if size < 2000 else True
        )
        conn, _ = server()
        assert conn.receive_data(frame(OP_BINARY, payload)) == [payload]

    def test_text_message(self) -> None:
        assert feed_three_ways(server, frame(OP_TEXT, "héllo wörld €".encode())) == [
            "héllo wörld €"
        ]

    def test_several_frames_in_one_read(self) -> None:
        data = frame(OP_TEXT, b"a") + frame(OP_BINARY, b"b") + frame(OP_TEXT, b"c")
        assert feed_three_ways(server, data) == ["a", b"b", "c"]

    @pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10])
    def test_reserved_bits_without_extension_fail_1002(self, rsv: int) -> None:
        events = feed_three_ways(server, frame(OP_TEXT, b"x", rsv=rsv))
        assert failure(1002)(events)

    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    def test_reserved_opcodes_fail_1002(self, opcode: int) -> None:
        assert failure(1002)(feed_three_ways(server, frame(opcode, b"")))

    def test_valid_message_before_protocol_error_is_delivered_first(self) -> None:
        events = feed_three_ways(server, frame(OP_TEXT, b"ok") + frame(5, b""))
        assert events[0] == "ok"
        assert failure(1002)(events)

    def test_64_bit_length_with_top_bit_set_fails(self) -> None:
        data = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 63) + MASK
        assert failure(1002)(feed_three_ways(server, data))


# -- §5.3: masking ------------------------------------------------------------------------


class TestMasking:
    def test_server_rejects_unmasked_client_frames(self) -> None:
        assert failure(1002)(feed_three_ways(server, frame(OP_TEXT, b"hi", mask=None)))

    def test_client_rejects_masked_server_frames(self) -> None:
        assert failure(1002)(feed_three_ways(client, frame(OP_TEXT, b"hi", mask=MASK)))

    def test_client_accepts_unmasked_frames(self) -> None:
        assert feed_three_ways(client, frame(OP_TEXT, b"hi", mask=None)) == ["hi"]

    def test_client_masks_and_server_does_not(self) -> None:
        conn, out = client()
        conn.send_text("hello")
        assert out == [frame(OP_TEXT, b"hello", mask=MASK)]
        conn, out = server()
        conn.send_text("hello")
        assert out == [b"\x81\x05hello"]

    @pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 7, 8, 9, 63, 64, 65, 1000, 65536])
    def test_accelerated_mask_matches_python(self, size: int) -> None:
        data = os.urandom(size)
        mask = os.urandom(4)
        assert apply_mask(data, mask) == apply_mask_py(data, mask)
        assert apply_mask(apply_mask(data, mask), mask) == data

    def test_client_mask_keys_are_random(self) -> None:
        out: list[bytes] = []
        conn = Connection(Side.CLIENT, out.append)
        for _ in range(50):
            conn.send_binary(b"x")
        keys = {f[2:6] for f in out}
        assert len(keys) > 40


# -- §5.4: fragmentation --------------------------------------------------------------------


class TestFragmentation:
    def test_text_in_fragments(self) -> None:
        data = (
            frame(OP_TEXT, b"frag", fin=False)
            + frame(OP_CONT, b"men", fin=False)
            + frame(OP_CONT, b"ted")
        )
        assert feed_three_ways(server, data) == ["fragmented"]

    def test_control_frames_interleaved(self) -> None:
        conn, out = server()
        data = frame(OP_BINARY, b"ab", fin=False) + frame(OP_PING, b"p") + frame(OP_CONT, b"cd")
        events = conn.receive_data(data)
        assert norm(events) == ["Ping(b'p')", b"abcd"]
        assert out == [b"\x8a\x01p"]
        assert feed_three_ways(server, data) == ["Ping(b'p')", b"abcd"]

    def test_multibyte_character_split_across_fragments(self) -> None:
        raw = "€".encode()
        data = (
            frame(OP_TEXT, raw[:1], fin=False)
            + frame(OP_CONT, raw[1:2], fin=False)
            + frame(OP_CONT, raw[2:])
        )
        assert feed_three_ways(server, data) == ["€"]

    def test_continuation_without_message_fails(self) -> None:
        assert failure(1002)(feed_three_ways(server, frame(OP_CONT, b"x")))

    def test_new_message_inside_fragmented_message_fails(self) -> None:
        data = frame(OP_TEXT, b"a", fin=False) + frame(OP_TEXT, b"b")
        assert failure(1002)(feed_three_ways(server, data))

    def test_fragmented_control_frame_fails(self) -> None:
        assert failure(1002)(feed_three_ways(server, frame(OP_PING, b"x", fin=False)))

    def test_empty_fragments(self) -> None:
        data = frame(OP_TEXT, b"", fin=False) + frame(OP_CONT, b"", fin=False) + frame(OP_CONT, b"")
        assert feed_three_ways(server, data) == [""]

    def test_outgoing_fragmentation(self) -> None:
        conn, out = server()
        conn.send_binary(b"abcdefghij", fragment_size=4)
        assert out == [
            frame(OP_BINARY, b"abcd", fin=False, mask=None),
            frame(OP_CONT, b"efgh", fin=False, mask=None),
            frame(OP_CONT, b"ij", mask=None),
        ]
        peer, _ = client()
        assert peer.receive_data(b"".join(out)) == [b"abcdefghij"]


# -- §5.5: control frames -------------------------------------------------------------------


class TestControlFrames:
    def test_ping_is_answered_with_same_payload(self) -> None:
        conn, out = server()
        assert norm(conn.receive_data(frame(OP_PING, b"payload"))) == ["Ping(b'payload')"]
        assert out == [frame(OP_PONG, b"payload", mask=None)]

    def test_pong_event(self) -> None:
        assert feed_three_ways(server, frame(OP_PONG, b"x")) == ["Pong(b'x')"]

    def test_control_payload_over_125_fails(self) -> None:
        assert failure(1002)(feed_three_ways(server, frame(OP_PING, b"x" * 126)))

    def test_control_frame_with_rsv_fails(self) -> None:
        assert failure(1002)(feed_three_ways(server, frame(OP_PING, b"", rsv=0x40)))

    def test_close_frame(self) -> None:
        events = feed_three_ways(server, frame(OP_CLOSE, build_close_payload(1000, "bye")))
        assert events == ["CloseReceived(1000, 'bye')"]

    def test_empty_close_is_1005(self) -> None:
        assert feed_three_ways(server, frame(OP_CLOSE, b"")) == ["CloseReceived(1005, '')"]

    def test_nothing_is_parsed_after_close(self) -> None:
        conn, _ = server()
        events = conn.receive_data(frame(OP_CLOSE, b"\x03\xe8") + frame(OP_TEXT, b"late"))
        assert norm(events) == ["CloseReceived(1000, '')"]
        assert conn.receive_data(frame(OP_TEXT, b"later")) == []
        assert conn.state is State.CLOSING

    def test_close_in_the_middle_of_a_fragmented_message(self) -> None:
        data = (
            frame(OP_TEXT, b"frag", fin=False) + frame(OP_CLOSE, b"\x03\xe8") + frame(OP_CONT, b"x")
        )
        assert feed_three_ways(server, data) == ["CloseReceived(1000, '')"]

    def test_one_byte_close_payload_fails(self) -> None:
        assert failure(1002)(feed_three_ways(server, frame(OP_CLOSE, b"\x03")))

    @pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000])
    def test_invalid_close_codes_fail_1002(self, code: int) -> None:
        assert failure(1002)(feed_three_ways(server, frame(OP_CLOSE, struct.pack("!H", code))))

    def test_close_reason_must_be_utf8(self) -> None:
        assert failure(1007)(feed_three_ways(server, frame(OP_CLOSE, b"\x03\xe8\xff")))


# -- §7.4: close codes ------------------------------------------------------------------------


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


# -- §7: closing handshake and states -----------------------------------------------------------


class TestClosing:
    def test_local_close_then_peer_reply(self) -> None:
        conn, out = server()
        conn.send_close(1000, "done")
        assert out == [b"\x88\x06\x03\xe8done"]
        assert conn.state is State.CLOSING
        with pytest.raises(InvalidState):
            conn.send_text("too late")
        assert norm(conn.receive_data(frame(OP_CLOSE, b"\x03\xe8"))) == ["CloseReceived(1000, '')"]
        assert conn.state is State.CLOSED
        assert conn.close_code() == (1000, "")

    def test_reply_to_peer_close_is_sent_once(self) -> None:
        conn, out = server()
        conn.receive_data(frame(OP_CLOSE, b"\x0f\xa0"))
        conn.send_close(4000)
        conn.send_close(4000)
        assert out == [b"\x88\x02\x0f\xa0"]
        assert conn.state is State.CLOSED

    def test_no_pong_after_our_close(self) -> None:
        conn, out = server()
        conn.send_close(1000)
        conn.receive_data(frame(OP_PING, b"x"))
        assert out == [b"\x88\x02\x03\xe8"]

    def test_fail_writes_one_close_frame_and_stops_reading(self) -> None:
        conn, out = server()
        events = conn.receive_data(frame(OP_TEXT, b"\xff"))
        assert failure(1007)(norm(events))
        conn.fail(1007, "invalid UTF-8")
        conn.fail(1002)
        assert len(out) == 1
        assert out[0][:4] == b"\x88\x0f\x03\xef"
        assert conn.state is State.CLOSED
        assert conn.receive_data(frame(OP_TEXT, b"x")) == []

    def test_abnormal_close_code_without_close_frame(self) -> None:
        conn, _ = server()
        assert conn.close_code() == (1006, "")


# -- §8.1: UTF-8, failing fast ----------------------------------------------------------------


class TestUTF8:
    @pytest.mark.parametrize(
        "payload",
        [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"abc\xce", b"\xe2\x82"],
    )
    def test_invalid_text_fails_1007(self, payload: bytes) -> None:
        assert failure(1007)(feed_three_ways(server, frame(OP_TEXT, payload)))

    def test_fails_as_soon_as_the_invalid_byte_arrives_inside_a_frame(self) -> None:
        conn, _ = server()
        whole = frame(OP_TEXT, b"valid " + b"\xf4\x90\x80\x80" + b" rest" * 100)
        header = 2 + 2 + 4  # 16-bit length, mask key
        assert conn.receive_data(whole[: header + 6]) == []  # "valid "
        assert conn.receive_data(whole[header + 6 : header + 7]) == []  # \xf4 could still be valid
        events = conn.receive_data(whole[header + 7 : header + 8])  # \x90 cannot follow \xf4
        assert failure(1007)(norm(events))

    def test_fails_fast_inside_a_fragmented_message(self) -> None:
        conn, _ = server()
        assert conn.receive_data(frame(OP_TEXT, b"ok", fin=False)) == []
        events = conn.receive_data(frame(OP_CONT, b"\xc0", fin=False))
        assert failure(1007)(norm(events))

    def test_truncated_sequence_at_message_end_fails(self) -> None:
        data = frame(OP_TEXT, b"\xe2\x82", fin=False) + frame(OP_CONT, b"")
        assert failure(1007)(feed_three_ways(server, data))

    def test_binary_is_not_validated(self) -> None:
        assert feed_three_ways(server, frame(OP_BINARY, b"\xff\xfe")) == [b"\xff\xfe"]


# -- limits (CVE-2026-44545, fragment floods) ----------------------------------------------------


class TestLimits:
    def test_too_big_fails_1009_from_the_header_alone(self) -> None:
        conn, _ = server(max_size=1000)
        header = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 2**40) + MASK
        assert failure(1009)(norm(conn.receive_data(header)))

    def test_fragmented_message_counts_the_whole_message(self) -> None:
        data = frame(OP_BINARY, b"x" * 600, fin=False) + frame(OP_CONT, b"x" * 600)
        assert failure(1009)(feed_three_ways(lambda: server(max_size=1000), data))
        assert feed_three_ways(lambda: server(max_size=1200), data) == [b"x" * 1200]

    def test_fragment_count_is_capped(self) -> None:
        data = b"".join(frame(OP_CONT if i else OP_BINARY, b"x", fin=False) for i in range(11))
        conn, _ = server(max_fragments=10)
        assert failure(1009)(norm(conn.receive_data(data)))
        conn, _ = server(max_fragments=11)
        assert conn.receive_data(data) == []

    def test_many_tiny_fragments_keep_one_buffer(self) -> None:
        conn, _ = server()
        data = frame(OP_BINARY, b"a", fin=False) + frame(OP_CONT, b"b", fin=False) * 20000
        assert conn.receive_data(data) == []
        assert isinstance(conn.msg_bytes, bytearray)
        assert len(conn.msg_bytes) == 20001
        assert conn.receive_data(frame(OP_CONT, b"c")) == [b"a" + b"b" * 20000 + b"c"]


# -- RFC 7692: permessage-deflate ----------------------------------------------------------------


def deflate_pair(window: int = 12) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    offers = parse_extensions([client_offer(window)])
    negotiated = negotiate_server(offers, window_bits=window)
    assert negotiated is not None
    header, server_codec = negotiated
    client_codec = negotiate_client(parse_extensions([header]), window_bits=window)
    return server_codec, client_codec


class TestDeflate:
    def test_negotiation_defaults_to_12_bit_windows(self) -> None:
        negotiated = negotiate_server(
            parse_extensions(["permessage-deflate; client_max_window_bits"])
        )
        assert negotiated is not None
        header, codec = negotiated
        assert header == "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
        assert codec.local_max_window_bits == 12
        assert codec.remote_max_window_bits == 12

    @pytest.mark.parametrize(
        ("offer", "expected"),
        [
            ("permessage-deflate", "permessage-deflate; server_max_window_bits=12"),
            (
                "permessage-deflate; server_no_context_takeover",
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=12",
            ),
            (
                "permessage-deflate; client_no_context_takeover",
                "permessage-deflate; client_no_context_takeover; server_max_window_bits=12",
            ),
            (
                "permessage-deflate; server_max_window_bits=9",
                "permessage-deflate; server_max_window_bits=9",
            ),
            (
                "permessage-deflate; client_max_window_bits=15",
                "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
            ),
            (
                "permessage-deflate; client_max_window_bits=10",
                "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10",
            ),
            (
                "x-webkit-deflate-frame, permessage-deflate",
                "permessage-deflate; server_max_window_bits=12",
            ),
            (
                "permessage-deflate; server_max_window_bits=8, permessage-deflate",
                "permessage-deflate; server_max_window_bits=12",
            ),
        ],
    )
    def test_server_negotiation(self, offer: str, expected: str) -> None:
        negotiated = negotiate_server(parse_extensions([offer]))
        assert negotiated is not None
        assert negotiated[0] == expected

    @pytest.mark.parametrize(
        "offer",
        [
            "permessage-deflate; unknown=1",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover=1",
            "permessage-deflate; server_max_window_bits=08",
            "other-extension",
        ],
    )
    def test_unacceptable_offers_are_declined(self, offer: str) -> None:
        assert negotiate_server(parse_extensions([offer])) is None

    def test_compressed_messages_round_trip_with_context_takeover(self) -> None:
        server_codec, client_codec = deflate_pair()
        out: list[bytes] = []
        sender = Connection(Side.CLIENT, out.append, deflate=client_codec)
        receiver, _ = server(deflate=server_codec)
        text = "compress me " * 200
        for _ in range(3):
            sender.send_text(text)
        wire = b"".join(out)
        assert len(wire) < len(text)  # the second and third messages reuse the window
        assert receiver.receive_data(wire) == [text] * 3

    def test_compressed_fragmented_message(self) -> None:
        server_codec, client_codec = deflate_pair()
        out: list[bytes] = []
        sender = Connection(Side.CLIENT, out.append, deflate=client_codec)
        sender.send_binary(os.urandom(3000) + b"z" * 5000, fragment_size=100)
        receiver, _ = server(deflate=server_codec)
        events = []
        data = b"".join(out)
        for i in range(0, len(data), 7):
            events += receiver.receive_data(data[i : i + 7])
        assert len(events) == 1
        assert len(events[0]) == 8000

    def test_deflate_bomb_fails_1009_with_bounded_output(self) -> None:
        server_codec, _client_codec = deflate_pair()
        bomb = zlib.compressobj(9, zlib.DEFLATED, -12)
        payload = bomb.compress(b"\x00" * (50 * 1024 * 1024)) + bomb.flush(zlib.Z_SYNC_FLUSH)
        payload = payload[:-4]
        assert len(payload) < 100_000
        conn, _ = server(deflate=server_codec, max_size=1024 * 1024)
        events = conn.receive_data(frame(OP_BINARY, payload, rsv=0x40))
        assert failure(1009)(norm(events))

    @pytest.mark.parametrize("mem_level", [1, 8])
    def test_size_limit_counts_the_inflated_message_not_the_wire(self, mem_level: int) -> None:
        """Incompressible data grows a little when deflated (stored blocks): a message of exactly
        max_size bytes is accepted even though its compressed frame is longer; one byte more
        inflated is 1009."""
        limit = 65536
        for size, ok in ((limit, True), (limit + 1, False)):
            server_codec, _ = deflate_pair()
            data = os.urandom(size)
            packer = zlib.compressobj(6, zlib.DEFLATED, -12, mem_level)
            payload = (packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH))[:-4]
            assert len(payload) > size  # the wire form is longer than the message
            conn, _ = server(deflate=server_codec, max_size=limit)
            events = norm(conn.receive_data(frame(OP_BINARY, payload, rsv=0x40)))
            if ok:
                assert events == [data]
            else:
                assert failure(1009)(events)

    def test_invalid_compressed_data_fails_1007(self) -> None:
        server_codec, _ = deflate_pair()
        conn, _ = server(deflate=server_codec)
        events = norm(conn.receive_data(frame(OP_BINARY, b"\xff\xff\xff\xff", rsv=0x40)))
        assert failure(1007)(events)
        # The reason names zlib's finding, not its "Error -3 while decompressing data" prefix.
        assert "Error -3" not in str(events[-1])
        assert "invalid compressed data: " in str(events[-1])

    def test_rsv1_on_continuation_fails(self) -> None:
        server_codec, _ = deflate_pair()
        data = frame(OP_TEXT, b"a", fin=False, rsv=0x40) + frame(OP_CONT, b"b", rsv=0x40)
        assert failure(1002)(feed_three_ways(lambda: server(deflate=server_codec), data))

    def test_no_context_takeover_drops_zlib_state(self) -> None:
        negotiated = negotiate_server(
            parse_extensions(
                ["permessage-deflate; server_no_context_takeover; client_no_context_takeover"]
            )
        )
        assert negotiated is not None
        codec = negotiated[1]
        codec.compress(b"hello" * 10)
        assert codec.compressor is None
        assert codec.decompressor is None

    def test_idle_codec_holds_no_zlib_objects(self) -> None:
        server_codec, _ = deflate_pair()
        assert server_codec.compressor is None
        assert server_codec.decompressor is None

    def test_client_refuses_an_unexpected_or_invalid_answer(self) -> None:
        with pytest.raises(ValueError):
            negotiate_client(parse_extensions(["x-unknown"]))
        with pytest.raises(ValueError):
            negotiate_client(
                parse_extensions(["permessage-deflate; server_max_window_bits=15"]), window_bits=12
            )
        with pytest.raises(ValueError):
            negotiate_client(parse_extensions(["permessage-deflate; client_max_window_bits=8"]))


# -- §4: the opening handshake -----------------------------------------------------------------


def hs_headers(**overrides: bytes | None) -> list[tuple[bytes, bytes]]:
    base = {
        b"host": b"example.com",
        b"upgrade": b"websocket",
        b"connection": b"keep-alive, Upgrade",
        b"sec-websocket-key": b"dGhlIHNhbXBsZSBub25jZQ==",
        b"sec-websocket-version": b"13",
    }
    for key, value in overrides.items():
        name = key.replace("_", "-").encode()
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return list(base.items())


class TestHandshake:
    def test_rfc_accept_key_vector(self) -> None:
        assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    def test_valid_request(self) -> None:
        hs = check_request("GET", "1.1", hs_headers(sec_websocket_protocol=b"chat, superchat"))
        assert hs.subprotocols == ["chat", "superchat"]

    @pytest.mark.parametrize(
        ("method", "version", "overrides", "status"),
        [
            ("POST", "1.1", {}, 400),
            ("GET", "1.0", {}, 400),
            ("GET", "1.1", {"upgrade": None}, 400),
            ("GET", "1.1", {"connection": b"keep-alive"}, 400),
            ("GET", "1.1", {"sec_websocket_key": None}, 400),
            ("GET", "1.1", {"sec_websocket_key": b"short"}, 400),
            ("GET", "1.1", {"sec_websocket_version": None}, 400),
            ("GET", "1.1", {"sec_websocket_version": b"8"}, 426),
            ("GET", "1.1", {"sec_websocket_protocol": b"\x80\xff"}, 400),
            ("GET", "1.1", {"sec_websocket_protocol": b"a b"}, 400),
            ("GET", "1.1", {"sec_websocket_extensions": b"permessage-deflate; ="}, 400),
        ],
    )
    def test_invalid_requests(
        self, method: str, version: str, overrides: dict[str, bytes | None], status: int
    ) -> None:
        with pytest.raises(HandshakeError) as info:
            check_request(method, version, hs_headers(**overrides))
        assert info.value.status == status
        if status == 426:
            assert info.value.headers == b"sec-websocket-version: 13\r\n"

    def test_subprotocol_parsing(self) -> None:
        assert parse_subprotocols(["a, b", "c"]) == ["a", "b", "c"]
        with pytest.raises(ValueError):
            parse_subprotocols(["a;b"])


# -- property: any message, any fragmentation, any chunking ---------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    messages=st.lists(
        st.one_of(st.text(max_size=300), st.binary(max_size=300)), min_size=1, max_size=5
    ),
    fragment=st.integers(min_value=1, max_value=64),
    chunk=st.integers(min_value=1, max_value=97),
    compress=st.booleans(),
)
def test_round_trip_any_split(
    messages: list[str | bytes], fragment: int, chunk: int, compress: bool
) -> None:
    server_codec, client_codec = deflate_pair() if compress else (None, None)
    out: list[bytes] = []
    sender = Connection(Side.CLIENT, out.append, deflate=client_codec)
    for message in messages:
        if isinstance(message, str):
            sender.send_text(message, fragment_size=fragment)
        else:
            sender.send_binary(message, fragment_size=fragment)
    data = b"".join(out)
    receiver, _ = server(deflate=server_codec)
    events: list[object] = []
    for i in range(0, len(data), chunk):
        events += receiver.receive_data(data[i : i + chunk])
    assert events == messages


def test_frames_module_has_no_asyncio() -> None:
    import subprocess
    import sys

    code = (
        "import sys, krandog_asgi.websocket.connection, krandog_asgi.websocket.frames, "
        "krandog_asgi.websocket.deflate, krandog_asgi.websocket.handshake; "
        "bad = [m for m in ('asyncio', 'uvloop', 'httptools') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unused_helpers_are_exercised() -> None:
    assert frames.rotate_mask(b"abcd", 1) == b"bcda"
    assert frames.rotate_mask(b"abcd", 4) == b"abcd"
    assert isinstance(Ping(b""), Ping)
    assert isinstance(Pong(b""), Pong)
    assert CloseReceived(1000, "").code == 1000
    assert ProtocolFailure(1002, "").code == 1002
    assert CloseCode.SERVICE_RESTART == 1012


def test_default_fragment_cap_allows_autobahn_and_stops_floods() -> None:
    conn, _ = server()
    many = frame(OP_BINARY, b"x" * 64, fin=False) + frame(OP_CONT, b"x" * 64, fin=False) * 65535
    assert conn.receive_data(many + frame(OP_CONT, b"")) == [b"x" * 64 * 65536]
    conn, _ = server()
    flood = frame(OP_BINARY, b"a", fin=False) + frame(OP_CONT, b"b", fin=False) * 100_000
    assert failure(1009)(norm(conn.receive_data(flood)))


def test_deflate_stream_ended_with_bfinal_resets_for_the_next_message() -> None:
    """RFC 7692 §7.2.3.3: a sender may end each message with a BFINAL block."""
    server_codec, _ = deflate_pair()
    conn, _ = server(deflate=server_codec)
    wire = b""
    for text in ("first message", "second message"):
        comp = zlib.compressobj(6, zlib.DEFLATED, -12)
        wire += frame(OP_TEXT, comp.compress(text.encode()) + comp.flush(zlib.Z_FINISH), rsv=0x40)
    assert conn.receive_data(wire) == ["first message", "second message"]


def test_deflate_data_after_the_final_block_fails_1007() -> None:
    server_codec, _ = deflate_pair()
    conn, _ = server(deflate=server_codec)
    comp = zlib.compressobj(6, zlib.DEFLATED, -12)
    payload = comp.compress(b"hello") + comp.flush(zlib.Z_FINISH) + b"junk after the end"
    assert failure(1007)(norm(conn.receive_data(frame(OP_BINARY, payload, rsv=0x40))))


def test_random_looking_data_is_sent_uncompressed_and_text_compressed() -> None:
    server_codec, client_codec = deflate_pair()
    out: list[bytes] = []
    sender = Connection(Side.CLIENT, out.append, deflate=client_codec)
    noise = os.urandom(4096)
    text = "compressible " * 400
    sender.send_binary(noise)
    sender.send_text(text)
    sender.send_binary(noise)
    assert out[0][0] & 0x40 == 0  # RSV1 clear: sent as it is
    assert out[1][0] & 0x40 == 0x40  # compressed
    assert len(out[1]) < len(text) // 10
    receiver, _ = server(deflate=server_codec)
    assert receiver.receive_data(b"".join(out)) == [noise, text, noise]
