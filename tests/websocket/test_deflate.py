"""Unit tests of permessage-deflate (RFC 7692, ``websocket.deflate``): negotiation, and
compressed messages through a ``Connection``."""

from __future__ import annotations

import os
import zlib

import pytest

from krandog_asgi.websocket.connection import Connection, Side
from krandog_asgi.websocket.deflate import (
    negotiate_client,
    negotiate_server,
    parse_extensions,
)
from krandog_asgi.websocket.frames import OP_BINARY, OP_CONT, OP_TEXT
from tests.support.wsframes import deflate_pair, failure, feed_three_ways, frame, norm, server


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


# -- §7.2.3.3: a message may end its own deflate stream -------------------------------------------


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


# -- what is worth compressing --------------------------------------------------------------------


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
