"""Unit tests of the sans-I/O connection (``websocket.connection``): what needs the connection's
state, fed as bytes and read back as events, no sockets.

Organised by RFC 6455 section. Every byte stream is fed three ways (whole, one byte at a time,
and followed by trailing bytes of a next frame) and must give the same events.
"""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings, strategies as st

from krandog_asgi.websocket import connection as connection_module, frames
from krandog_asgi.websocket.connection import (
    WRITEV_MIN,
    CloseReceived,
    Closing,
    Connection,
    InvalidState,
    Ping,
    Pong,
    ProtocolFailure,
    Side,
    State,
)
from krandog_asgi.websocket.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    build_close_payload,
)
from tests.support.wsframes import (
    MASK,
    client,
    deflate_pair,
    failure,
    feed_three_ways,
    frame,
    norm,
    server,
)

# -- RFC 6455 §5.2: base framing ------------------------------------------------------------------


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


# -- §5.3: masking --------------------------------------------------------------------------------


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

    def test_client_mask_keys_are_random(self) -> None:
        out: list[bytes] = []
        conn = Connection(Side.CLIENT, out.append)
        for _ in range(50):
            conn.send_binary(b"x")
        keys = {f[2:6] for f in out}
        assert len(keys) > 40


# -- §5.4: fragmentation --------------------------------------------------------------------------


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


# -- §5.5: control frames -------------------------------------------------------------------------


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


# -- §7: closing handshake and states -------------------------------------------------------------


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


class TestClosingStates:
    """``Connection.closing`` through each way a connection ends, and the readyState (WHATWG)
    that ``state`` derives from it."""

    def test_clean_close_we_start(self) -> None:
        conn, _ = server()
        assert (conn.closing, conn.state) == (Closing.OPEN, State.OPEN)
        conn.send_close(1000)
        assert (conn.closing, conn.state) == (Closing.CLOSE_SENT, State.CLOSING)
        assert conn.closing.reading
        assert conn.closing.close_sent
        conn.receive_data(frame(OP_CLOSE, b"\x03\xe8"))
        assert (conn.closing, conn.state) == (Closing.CLOSED, State.CLOSED)

    def test_clean_close_the_peer_starts_may_still_send_before_answering(self) -> None:
        conn, out = server()
        conn.receive_data(frame(OP_CLOSE, b"\x03\xe8"))
        assert (conn.closing, conn.state) == (Closing.CLOSE_RECEIVED, State.CLOSING)
        assert not conn.closing.reading
        conn.send_text("last words")  # RFC 6455 §5.5.1: our close frame may wait
        conn.send_close(1000)
        assert (conn.closing, conn.state) == (Closing.CLOSED, State.CLOSED)
        assert out == [b"\x81\x0alast words", b"\x88\x02\x03\xe8"]

    def test_protocol_error_stops_reading_but_not_sending_until_fail(self) -> None:
        conn, out = server()
        events = conn.receive_data(frame(OP_TEXT, b"ok") + frame(OP_CONT, b"x"))
        assert norm(events)[0] == "ok"
        assert conn.closing is Closing.PEER_FAILED
        assert conn.state is State.OPEN
        assert conn.receive_data(frame(OP_TEXT, b"ignored")) == []
        conn.send_text("echo of ok")  # the consumer may answer what came before the error
        conn.fail(1002, "continuation frame without a message")
        assert (conn.closing, conn.state) == (Closing.FAILED, State.CLOSED)
        assert out[0] == b"\x81\x0aecho of ok"
        assert out[1] == b"\x88\x26\x03\xeacontinuation frame without a message"
        with pytest.raises(InvalidState):
            conn.send_text("too late")

    def test_protocol_error_after_our_close_frame_fails_at_once(self) -> None:
        conn, out = server()
        conn.send_close(1000)
        assert failure(1002)(norm(conn.receive_data(frame(OP_CONT, b"x"))))
        assert conn.closing is Closing.FAILED
        conn.fail(1002)
        assert out == [b"\x88\x02\x03\xe8"]  # no second close frame

    def test_closing_after_a_protocol_error_counts_as_failed(self) -> None:
        conn, out = server()
        conn.receive_data(frame(OP_CONT, b"x"))
        conn.send_close(1000)
        assert conn.closing is Closing.FAILED
        assert out == [b"\x88\x02\x03\xe8"]

    def test_fail_after_a_clean_close_marks_it_failed(self) -> None:
        conn, out = server()
        conn.receive_data(frame(OP_CLOSE, b"\x03\xe8"))
        conn.send_close(1000)
        conn.fail(1011)
        assert conn.closing is Closing.FAILED
        assert conn.close_code() == (1000, "")  # what the peer said is still what it said
        assert len(out) == 1

    def test_sending_after_our_close_frame_is_refused(self) -> None:
        conn, _ = server()
        conn.send_close(1000)
        with pytest.raises(InvalidState):
            conn.send_binary(b"x")
        with pytest.raises(InvalidState):
            conn.send_ping(b"x")
        with pytest.raises(InvalidState):
            conn.send_pong(b"x")


# -- §8.1: UTF-8, failing fast --------------------------------------------------------------------


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


# -- limits (CVE-2026-44545, fragment floods) -----------------------------------------------------


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

    def test_default_fragment_cap_allows_autobahn_and_stops_floods(self) -> None:

        conn, _ = server()

        many = frame(OP_BINARY, b"x" * 64, fin=False) + frame(OP_CONT, b"x" * 64, fin=False) * 65535

        assert conn.receive_data(many + frame(OP_CONT, b"")) == [b"x" * 64 * 65536]

        conn, _ = server()

        flood = frame(OP_BINARY, b"a", fin=False) + frame(OP_CONT, b"b", fin=False) * 100_000

        assert failure(1009)(norm(conn.receive_data(flood)))


# -- large frames: unmasked straight into the message, written as header + payload ---------------


@pytest.fixture(params=["python", "c"])
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The parser run in pure Python (unmasking, and no C fast path for whole messages) and
    with the C accelerator."""
    if request.param == "python":
        monkeypatch.setattr(connection_module, "unmask", frames.unmask_py)
        monkeypatch.setattr(connection_module, "unmask_into", frames.unmask_into_py)
        monkeypatch.setattr(connection_module, "scan_messages", None)
    else:
        speedups = pytest.importorskip(
            "krandog_asgi.websocket._speedups", reason="the C accelerator is not built here"
        )
        monkeypatch.setattr(connection_module, "unmask", speedups.unmask)
        monkeypatch.setattr(connection_module, "unmask_into", speedups.unmask_into)
        monkeypatch.setattr(connection_module, "scan_messages", speedups.scan_messages)
    return str(request.param)


def feed_in_pieces(conn: Connection, data: bytes, cuts: list[int]) -> list[object]:
    events: list[object] = []
    start = 0
    for cut in [*cuts, len(data)]:
        events += norm(conn.receive_data(data[start:cut]))
        start = cut
    return events


class TestLargeFrames:
    CUTS = [[], [1], [3, 9], [14, 15], [4096], [65535, 65537], [100, 5000, 69000]]

    @pytest.mark.parametrize("cuts", CUTS)
    def test_masked_binary_frame_split_anywhere_is_one_message(
        self, codec: str, cuts: list[int]
    ) -> None:
        payload = os.urandom(70000)
        conn, _ = server()
        assert feed_in_pieces(conn, frame(OP_BINARY, payload), cuts) == [payload]
        # and the connection goes on with the next message
        assert conn.receive_data(frame(OP_BINARY, b"next")) == [b"next"]

    @pytest.mark.parametrize("cuts", CUTS)
    def test_masked_text_frame_split_anywhere_is_validated_and_decoded(
        self, codec: str, cuts: list[int]
    ) -> None:
        text = "€uro " * 14000  # 3-byte characters cut at arbitrary places
        conn, _ = server()
        assert feed_in_pieces(conn, frame(OP_TEXT, text.encode()), cuts) == [text]

    def test_invalid_utf8_in_a_split_text_frame_fails_1007(self, codec: str) -> None:
        data = frame(OP_TEXT, b"a" * 5000 + b"\xff" + b"b" * 5000)
        conn, _ = server()
        assert failure(1007)(feed_in_pieces(conn, data, [100, 4000, 6000]))

    def test_fragmented_binary_message_over_many_reads(self, codec: str) -> None:
        parts = [os.urandom(n) for n in (3000, 1, 9000)]
        data = (
            frame(OP_BINARY, parts[0], fin=False)
            + frame(OP_CONT, parts[1], fin=False)
            + frame(OP_CONT, parts[2])
        )
        conn, _ = server()
        assert feed_in_pieces(conn, data, list(range(7, len(data), 1111))) == [b"".join(parts)]

    def test_unmasked_frame_split_on_the_client_side(self, codec: str) -> None:
        payload = os.urandom(70000)
        conn, _ = client()
        data = frame(OP_BINARY, payload, mask=None)
        assert feed_in_pieces(conn, data, [5, 40000]) == [payload]

    def test_large_frame_goes_out_as_header_and_the_same_payload_object(self) -> None:
        writes: list[bytes] = []
        vectors: list[tuple[bytes, bytes]] = []
        conn = Connection(Side.SERVER, writes.append, writev=vectors.append)
        payload = os.urandom(WRITEV_MIN)
        conn.send_binary(payload)
        assert writes == []
        ((header, sent),) = vectors
        assert sent is payload  # no copy behind the header
        assert header + sent == frame(OP_BINARY, payload, mask=None)
        conn.send_binary(b"small")
        assert writes == [frame(OP_BINARY, b"small", mask=None)]

    def test_large_client_frame_through_writev_is_masked(self) -> None:
        vectors: list[tuple[bytes, bytes]] = []
        sender = Connection(
            Side.CLIENT, lambda data: None, writev=vectors.append, mask_key=lambda: MASK
        )
        payload = os.urandom(100_000)
        sender.send_binary(payload)
        ((header, masked),) = vectors
        assert masked != payload
        receiver, _ = server()
        assert receiver.receive_data(header + masked) == [payload]

    def test_without_writev_a_large_frame_is_one_write(self) -> None:
        conn, out = server()
        payload = os.urandom(WRITEV_MIN * 2)
        conn.send_binary(payload)
        assert out == [frame(OP_BINARY, payload, mask=None)]

    def test_prebuilt_frame_is_refused_after_our_close(self) -> None:
        conn, out = server()
        prebuilt = frame(OP_TEXT, b"hi", mask=None)
        conn.send_frame(prebuilt)
        conn.send_close(1000)
        with pytest.raises(InvalidState):
            conn.send_frame(prebuilt)
        assert out[0] == prebuilt
        assert len(out) == 2


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


# -- the core stays sans-I/O ----------------------------------------------------------------------


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


def test_events_carry_their_data() -> None:
    assert isinstance(Ping(b""), Ping)
    assert isinstance(Pong(b""), Pong)
    assert CloseReceived(1000, "").code == 1000
    assert ProtocolFailure(1002, "").code == 1002
