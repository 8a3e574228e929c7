#!/usr/bin/env python3
"""Write the hand-made seed inputs into fuzz/corpus/ (idempotent; the fuzzers grow from them).

    python fuzz/seeds.py

Seed names start with ``seed-``; the fuzzers' own finds are named by content hash.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from krandog_asgi.websocket.frames import (  # noqa: E402
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    build_close_payload,
    build_frame,
)
from tests.support.fuzzing import deflate_payload  # noqa: E402

MASK = b"\x11\x22\x33\x44"
SERVER, DEFLATE = 0x01, 0x02


def masked(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    return build_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=MASK)


FRAMES = {
    "seed-text": bytes([SERVER]) + masked(OP_TEXT, b"hello"),
    "seed-fragmented": bytes([SERVER | 0x20, 3, 9])
    + masked(OP_TEXT, b"frag", fin=False)
    + masked(OP_PING, b"p")
    + masked(OP_CONT, b"mented"),
    "seed-binary-16": bytes([SERVER]) + masked(OP_BINARY, bytes(300)),
    "seed-close": bytes([SERVER]) + masked(OP_CLOSE, build_close_payload(1000, "bye")),
    "seed-deflate": bytes([SERVER | DEFLATE])
    + masked(OP_TEXT, deflate_payload(b"squeeze " * 20), rsv1=True),
    "seed-client-side": bytes([0]) + build_frame(OP_TEXT, b"from a server"),
    "seed-client-deflate": bytes([DEFLATE])
    + build_frame(OP_BINARY, deflate_payload(bytes(5000)), rsv1=True),
}

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: chat\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
)
HTTP = {
    "seed-get": b"\x00GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "seed-pipelined": b"\x10\x05GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.0\r\n\r\n",
    "seed-post-length": b"\x00POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    "seed-post-chunked": b"\x00POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n",
    "seed-expect": b"\x00PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
    b"Content-Length: 2\r\n\r\nok",
    "seed-proxy": b"\x00GET http://x/y?z HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
    "seed-upgrade": b"\x00" + UPGRADE + masked(OP_TEXT, b"hi") + masked(OP_CLOSE, b"\x03\xe8"),
}


def main() -> None:
    for folder, seeds in (("frames", FRAMES), ("http", HTTP)):
        target = ROOT / "fuzz" / "corpus" / folder
        target.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (target / name).write_bytes(data)
    print(f"wrote {len(FRAMES)} frame seeds and {len(HTTP)} HTTP seeds")


if __name__ == "__main__":
    main()
