"""Peers for the client tests: our server, the ``websockets`` server as the independent
peer (in a thread, so any test can use it), and raw asyncio servers that misbehave on purpose.

The raw servers frame and parse by hand here instead of using
``krandog_asgi.websocket.frames``, so a bug in our codec cannot hide itself from the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import queue
import ssl
import struct
import threading
from base64 import b64encode
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from tests.support.certs import Certificates
from tests.support.servers import RunningServer, start_server

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STEP = 10.0  # upper bound for anything a test awaits that should happen at once


# -- our server ---------------------------------------------------------------------------------


@contextlib.contextmanager
def krandog_server(certs: Certificates | None = None, *flags: str) -> Iterator[RunningServer]:
    """Our server running ``tests/apps/client_peer.py`` (wss:// when ``certs`` is given)."""
    tls = (
        ["--ssl-certfile", str(certs.certfile), "--ssl-keyfile", str(certs.keyfile)]
        if certs
        else []
    )
    server = start_server(
        "client_peer:app", "--no-access-log", "--timeout-graceful-shutdown", "1", *tls, *flags
    )
    try:
        yield server
    finally:
        server.stop()


# -- the independent peer: websockets' server ---------------------------------------------------


@dataclass
class WebsocketsPeer:
    """``websockets.asyncio.server`` in a thread, with the same paths as ``client_peer.py`` plus
    a few it is better placed to serve (fragments, close reports)."""

    ssl_context: ssl.SSLContext | None = None
    port: int = 0
    close_reports: queue.Queue[tuple[int | None, str | None]] = field(default_factory=queue.Queue)
    sni_names: list[str | None] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl_context else 'ws'}://127.0.0.1:{self.port}"

    def __enter__(self) -> WebsocketsPeer:
        if self.ssl_context is not None:
            self.ssl_context.sni_callback = lambda _sock, name, _ctx: self.sni_names.append(name)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(STEP):
            raise RuntimeError("the websockets server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        assert self._thread is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(STEP)

    def _run(self, ready: threading.Event) -> None:
        asyncio.run(self._serve(ready))

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(
            self._handler,
            "127.0.0.1",
            0,
            ssl=self.ssl_context,
            select_subprotocol=lambda _ws, offered: next(
                (p for p in offered if p in ("superchat", "chat")), None
            ),
            process_request=self._process_request,
            max_size=2**24,
            ping_interval=None,
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            ready.set()
            await self._stop.wait()

    @staticmethod
    def _process_request(ws: ServerConnection, request: Request) -> Response | None:
        if request.path == "/deny":
            return ws.respond(HTTPStatus.UNAUTHORIZED, "go away\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        path = ws.request.path.split("?")[0]
        if path.startswith("/close/"):
            await ws.close(int(path[7:]), "bye")
            return
        if path == "/abort":
            ws.transport.abort()
            return
        if path == "/report-close":
            await ws.wait_closed()
            self.close_reports.put((ws.close_code, ws.close_reason))
            return
        if path == "/echo-once":
            message = await ws.recv()
            await ws.send(f"Echo: {message}")
            await ws.close(1000, "bye")
            return
        if path == "/fragments":
            # the sizes of the frames of each message received
            while True:
                sizes = [len(fragment) async for fragment in ws.recv_streaming(decode=False)]
                await ws.send(json.dumps(sizes))
        if path == "/welcome":
            await ws.send("welcome")
        elif path == "/headers":
            headers = {name.lower(): value for name, value in ws.request.headers.raw_items()}
            await ws.send(json.dumps(headers))
        elif path == "/send-fragmented":
            await ws.send(["ab", "cd", "ef"])
        elif path.startswith("/big/"):
            await ws.send(bytes(int(path[5:])))
        async for message in ws:
            await ws.send(message)


# -- raw servers --------------------------------------------------------------------------------

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handler: RawHandler) -> AsyncIterator[str]:
    """A TCP server on loopback running ``handler`` per connection; yields its ws:// URL."""
    tasks: set[asyncio.Task[None]] = set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the test is over
        finally:
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.wait_for(server.wait_closed(), STEP)


async def read_request(reader: asyncio.StreamReader) -> dict[str, str]:
    """The upgrade request's headers (lower-case names), plus ``:target``."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), STEP)
    lines = head.decode("latin-1").split("\r\n")
    headers = {":target": lines[0].split(" ")[1]}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return headers


def accept_key(key: str) -> str:
    return b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def switching_protocols(
    request: dict[str, str], extra: str = "", accept: str | None = None
) -> bytes:
    """A 101 response for ``request``; ``extra`` header lines end with CRLF."""
    if accept is None:
        accept = accept_key(request["sec-websocket-key"])
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    ).encode()


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """An unmasked (server) frame."""
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if n < 126:
        return bytes([first, n]) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """One client frame: (opcode, fin, unmasked payload); it must be masked."""
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), STEP)
    assert b1 & 0x80, "a client frame must be masked"
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4)
    data = await reader.readexactly(n)
    return b0 & 0x0F, bool(b0 & 0x80), bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def accept_websocket(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, extra: str = ""
) -> dict[str, str]:
    request = await read_request(reader)
    writer.write(switching_protocols(request, extra))
    await writer.drain()
    return request
