"""The soak load: many concurrent clients, each opening connections of a randomly drawn kind
until a count or a time is reached, against a real server (tests/apps/soak_app.py).

Kinds: ``keepalive`` (several requests on one connection), ``pipeline`` (ten requests in one
write, answers checked in order), ``websocket`` (echo of text and binary messages, then a
clean close), ``reset`` (an abrupt RST via SO_LINGER 0: mid-head, mid-body, before reading the
answer, mid-WebSocket-frame), ``slow_http`` and ``slow_ws`` (a small receive buffer, a few
slow reads of a large response or a WebSocket flood, then a RST or a fast read of the rest).

Every answer is checked; a wrong one raises. WebSocket frames are built and parsed with our
own sans-I/O core: the soak test is about resources, conformance is tested elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass, field

from krandog_asgi.websocket.connection import CloseReceived, Connection, Side

KINDS = ("keepalive", "pipeline", "websocket", "reset", "slow_http", "slow_ws")
WEIGHTS = (30, 15, 25, 15, 8, 7)
READ_TIMEOUT = 30.0


@dataclass
class Totals:
    connections: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    messages: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def total_connections(self) -> int:
        return sum(self.connections.values())


async def _open(
    port: int, rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if rcvbuf is None:
        return await asyncio.open_connection("127.0.0.1", port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock, limit=rcvbuf)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a RST instead of a FIN (SO_LINGER with a zero timeout)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT)
    return status, body


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: soak\r\n\r\n".encode()


def _post(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: soak\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _expect(got: tuple[int, bytes], body: bytes) -> None:
    if got != (200, body):
        raise AssertionError(f"expected 200 {body[:40]!r}, got {got[0]} {got[1][:40]!r}")


async def keepalive(port: int, rng: random.Random, totals: Totals) -> None:
    reader, writer = await _open(port)
    for i in range(rng.randint(2, 12)):
        if rng.random() < 0.5:
            body = os.urandom(rng.randint(0, 20000))
            writer.write(_post("/echo", body))
        else:
            body = f"p/{i}".encode()
            writer.write(_get(f"/p/{i}"))
        _expect(await read_response(reader), body)
        totals.requests += 1
    await _close(writer)


async def pipeline(port: int, rng: random.Random, totals: Totals) -> None:
    reader, writer = await _open(port)
    count = rng.randint(2, 10)
    writer.write(b"".join(_get(f"/p/{i}") for i in range(count)))
    for i in range(count):
        _expect(await read_response(reader), f"p/{i}".encode())
        totals.requests += 1
    await _close(writer)


async def _ws_open(
    port: int, path: str, rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Connection, list[bytes]]:
    reader, writer = await _open(port, rcvbuf)
    key = base64.b64encode(os.urandom(16))
    writer.write(
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: soak\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: "
        + key
        + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
    if not head.startswith(b"HTTP/1.1 101 "):
        raise AssertionError(f"no 101: {head[:60]!r}")
    out: list[bytes] = []
    return reader, writer, Connection(Side.CLIENT, out.append, max_size=None), out


async def _ws_events(reader: asyncio.StreamReader, conn: Connection, want: int) -> list[object]:
    events: list[object] = []
    while len(events) < want:
        data = await asyncio.wait_for(reader.read(65536), READ_TIMEOUT)
        if not data:
            raise AssertionError("the server closed the WebSocket early")
        # Keepalive pings from the server are answered by the core; not what we wait for.
        events += [e for e in conn.receive_data(data) if isinstance(e, str | bytes | CloseReceived)]
    return events


async def websocket(port: int, rng: random.Random, totals: Totals) -> None:
    reader, writer, conn, out = await _ws_open(port, "/ws")
    for _ in range(rng.randint(1, 15)):
        if rng.random() < 0.5:
            message: str | bytes = "é" * rng.randint(0, 3000)
            conn.send_text(message, fragment_size=rng.choice([None, 100]))
        else:
            message = os.urandom(rng.randint(0, 70000))
            conn.send_binary(message)
        writer.write(b"".join(out))
        out.clear()
        got = await _ws_events(reader, conn, 1)
        if got != [message]:
            raise AssertionError("wrong WebSocket echo")
        totals.messages += 1
    conn.send_close(1000)
    writer.write(b"".join(out))
    events = await _ws_events(reader, conn, 1)
    if not isinstance(events[-1], CloseReceived):
        raise AssertionError(f"expected the close answer, got {events[-1]!r}")
    await _close(writer)


async def reset(port: int, rng: random.Random, totals: Totals) -> None:
    how = rng.choice(["head", "body", "unread", "frame", "idle"])
    if how == "frame":
        _, writer, conn, out = await _ws_open(port, "/ws")
        conn.send_binary(os.urandom(5000))
        writer.write(b"".join(out)[: rng.randint(1, 4000)])  # part of a frame
    else:
        _, writer = await _open(port)
        if how == "head":
            writer.write(_get("/p/0")[: rng.randint(1, 20)])
        elif how == "body":
            writer.write(_post("/echo", os.urandom(10000))[: rng.randint(80, 5000)])
        elif how == "unread":
            writer.write(_get("/big?200000") + _get("/p/1"))
    await writer.drain()
    await asyncio.sleep(rng.random() * 0.02)
    _reset(writer)


async def slow_http(port: int, rng: random.Random, totals: Totals) -> None:
    reader, writer = await _open(port, rcvbuf=4096)
    size = 4 * 1024 * 1024
    writer.write(_get(f"/big?{size}"))
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
    got = 0
    for _ in range(rng.randint(3, 10)):
        got += len(await asyncio.wait_for(reader.read(4096), READ_TIMEOUT))
        await asyncio.sleep(0.01)
    if rng.random() < 0.7:
        _reset(writer)  # gone while the server's writes are backed up
        return
    while got < size:
        chunk = await asyncio.wait_for(reader.read(1 << 20), READ_TIMEOUT)
        if not chunk:
            raise AssertionError("the big response ended early")
        got += len(chunk)
    totals.requests += 1
    await _close(writer)


async def slow_ws(port: int, rng: random.Random, totals: Totals) -> None:
    reader, writer, _, _ = await _ws_open(port, "/flood", rcvbuf=4096)
    for _ in range(rng.randint(3, 10)):
        await asyncio.wait_for(reader.read(4096), READ_TIMEOUT)
        await asyncio.sleep(0.01)
    _reset(writer)


SCENARIOS = {
    "keepalive": keepalive,
    "pipeline": pipeline,
    "websocket": websocket,
    "reset": reset,
    "slow_http": slow_http,
    "slow_ws": slow_ws,
}


async def _client(
    port: int, seed: int, totals: Totals, stop_at: float, max_connections: int | None
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < stop_at and (
        max_connections is None or totals.total_connections < max_connections
    ):
        kind = rng.choices(KINDS, WEIGHTS)[0]
        totals.connections[kind] += 1
        try:
            await SCENARIOS[kind](port, rng, totals)
        except (AssertionError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            totals.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            if len(totals.errors) > 20:
                return


async def drive(
    port: int,
    *,
    seconds: float,
    clients: int = 32,
    max_connections: int | None = None,
    seed: int = 1,
    totals: Totals | None = None,
) -> Totals:
    """Run the mixed load for ``seconds`` (or ``max_connections`` connections, if given)."""
    totals = totals if totals is not None else Totals()
    stop_at = time.monotonic() + seconds
    await asyncio.gather(
        *(_client(port, seed * 1000 + i, totals, stop_at, max_connections) for i in range(clients))
    )
    return totals
