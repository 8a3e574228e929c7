"""Peer-side WebSocket frames and drivers for the sans-I/O core, shared by the tests of
``krandog_asgi.websocket`` (and anything else that feeds a ``Connection``).

``frame`` builds a frame the way a peer sends it, independently of our own encoder (masked by
default: a client talking to our server); ``feed_three_ways`` feeds a byte stream whole, one
byte at a time and followed by a next frame, and checks that all three give the same events.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from krandog_asgi.websocket.connection import Connection, Side
from krandog_asgi.websocket.deflate import (
    PerMessageDeflate,
    client_offer,
    negotiate_client,
    negotiate_server,
    parse_extensions,
)
from krandog_asgi.websocket.frames import OP_PING, apply_mask_py

__all__ = [
    "MASK",
    "client",
    "deflate_pair",
    "failure",
    "feed_three_ways",
    "frame",
    "norm",
    "server",
]

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


def deflate_pair(window: int = 12) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    offers = parse_extensions([client_offer(window)])
    negotiated = negotiate_server(offers, window_bits=window)
    assert negotiated is not None
    header, server_codec = negotiated
    client_codec = negotiate_client(parse_extensions([header]), window_bits=window)
    return server_codec, client_codec
