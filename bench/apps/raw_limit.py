"""The raw limits: what the bench workloads cost with no ASGI layer at all.

Not a server anyone should run: a reference point for "how much of the cost is the server".
``--kind http`` is a uvloop ``asyncio.Protocol`` with httptools and responses built by hand
(the same routes and bytes as ``bench_app.py``: ``/``, ``/json``, ``POST /echo``, ``/stream``
as 16 chunks of 64 KiB). ``--kind ws`` is picows (Cython), echoing or fanning out each frame
from its frame callback (``/echo``, ``/broadcast``; any other path stays idle). Both skip what
a real server must do (limits, timeouts, fragmentation, validation beyond the parsers'), so a
server's ratio to them is an upper bound on what rewriting its Python could still gain.

Run: ``python raw_limit.py --kind http|ws --port P`` (needs uvloop, httptools; picows for ws).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from email.utils import formatdate
from typing import Any

import uvloop

HELLO = b"Hello, world!"
STREAM_CHUNK = b"s" * 65536
STREAM_CHUNKS = 16
_date = [0, b""]


def _date_header() -> bytes:
    now = int(time.time())
    if now != _date[0]:
        _date[0] = now
        _date[1] = b"date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
    return _date[1]  # type: ignore[return-value]


def _head(status: bytes, content_type: bytes, length: int | None) -> bytes:
    framing = (
        b"transfer-encoding: chunked\r\n" if length is None else b"content-length: %d\r\n" % length
    )
    return (
        b"HTTP/1.1 " + status + b"\r\nserver: raw\r\n" + _date_header()
        + b"content-type: " + content_type + b"\r\n" + framing + b"\r\n"
    )  # fmt: skip


class RawHTTP(asyncio.Protocol):
    """One connection; answers each request from the parser's message-complete callback."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        url, self.url = self.url, b""
        write = self.transport.write
        if url == b"/":
            write(_head(b"200 OK", b"text/plain", len(HELLO)) + HELLO)
        elif url == b"/json":
            body = json.dumps({"message": "Hello, world!"}).encode()
            write(_head(b"200 OK", b"application/json", len(body)) + body)
        elif url == b"/echo":
            body = b"".join(self.body)
            self.body = []
            write(_head(b"200 OK", b"application/octet-stream", len(body)) + body)
        elif url == b"/stream":
            write(_head(b"200 OK", b"application/octet-stream", None))
            for _ in range(STREAM_CHUNKS):
                write(b"%x\r\n%b\r\n" % (len(STREAM_CHUNK), STREAM_CHUNK))
            write(b"0\r\n\r\n")
        else:
            write(_head(b"404 Not Found", b"text/plain", 0))
        if not self.parser.should_keep_alive():
            self.transport.close()


def _ws_listener(path: str) -> Any:
    import picows

    room: set[Any] = _ROOM

    class Listener(picows.WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport: Any) -> None:
            if path == "/broadcast":
                room.add(transport)

        def on_ws_disconnected(self, transport: Any) -> None:
            room.discard(transport)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            kind = frame.msg_type
            if kind == picows.WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            elif kind == picows.WSMsgType.PING:
                transport.send_pong(frame.get_payload_as_bytes())
            elif kind in (picows.WSMsgType.TEXT, picows.WSMsgType.BINARY):
                payload = frame.get_payload_as_bytes()
                if path == "/echo":
                    transport.send(kind, payload)
                elif path == "/broadcast":
                    for member in room:
                        member.send(kind, payload)

    return Listener()


_ROOM: set[Any] = set()


async def _serve(kind: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    if kind == "http":
        server = await loop.create_server(RawHTTP, "127.0.0.1", port, backlog=2048)
    else:
        import picows

        server = await picows.ws_create_server(
            lambda request: _ws_listener(request.path.decode()), "127.0.0.1", port
        )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("http", "ws"), required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(_serve(args.kind, args.port))


if __name__ == "__main__":
    main()
