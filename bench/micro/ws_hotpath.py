"""Per-message Python cost of the server WebSocket echo path with no sockets.

    python bench/micro/ws_hotpath.py [--profile] [--core] [--messages N] [--size BYTES] [--binary]

Upgrades 64 fake connections through ``HTTPProtocol`` into ``WebSocketProtocol`` running an ASGI
echo app, feeds one masked text frame per connection per round, lets the app tasks run, and
reports microseconds of CPU per echoed message (syscalls excluded).

``--core`` times the sans-I/O parser alone: ``Connection.receive_data`` on one frame per call
and on 16 frames per call (nanoseconds per frame).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
import timeit
from typing import Any

import uvloop

from krandog_asgi.config import Config
from krandog_asgi.http_protocol import HTTPProtocol
from krandog_asgi.process.state import ServerState
from krandog_asgi.websocket.connection import Connection, Side
from krandog_asgi.websocket.frames import build_frame

UPGRADE = (
    b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            await send({"type": "websocket.send", "text": message["text"]})


class FakeTransport:
    def __init__(self) -> None:
        self.protocol: Any = None
        self.written = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name)

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.written += 1

    def writelines(self, data: Any) -> None:
        self.written += 1

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def run(messages: int, conns: int, size: int, opcode: int = 1) -> float:
    config = Config(app=app, access_log=False, ws_ping_interval=None)
    config.load()
    state = ServerState(config, app, asyncio.get_running_loop())
    transports = []
    for _ in range(conns):
        transport = FakeTransport()
        http = HTTPProtocol(state)
        http.connection_made(transport)  # type: ignore[arg-type]
        http.data_received(UPGRADE)
        transports.append(transport)
    for _ in range(5):
        await asyncio.sleep(0)
    frame = build_frame(opcode, b"x" * size, mask=b"\x01\x02\x03\x04")
    rounds = messages // conns
    t0 = time.process_time()
    for _ in range(rounds):
        for transport in transports:
            transport.protocol.data_received(frame)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    t1 = time.process_time()
    assert all(t.written >= rounds for t in transports), [t.written for t in transports][:4]
    for cycle in list(state.cycles):
        cycle.task.cancel()
    await asyncio.sleep(0)
    return (t1 - t0) / (rounds * conns) * 1e6


def core(size: int) -> None:
    conn = Connection(Side.SERVER, lambda data: None)
    frame = build_frame(1, b"x" * size, mask=b"\x01\x02\x03\x04")
    for frames, calls in ((1, 200_000), (16, 20_000)):
        data = frame * frames
        best = min(timeit.repeat(lambda: conn.receive_data(data), number=calls, repeat=5))  # noqa: B023
        print(f"{best / (calls * frames) * 1e9:.0f} ns per frame, {frames} per receive_data call")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--core", action="store_true")
    ap.add_argument("--binary", action="store_true", help="binary frames (default: text)")
    ap.add_argument("--conns", type=int, default=64)
    args = ap.parse_args()
    if args.core:
        core(args.size)
        return
    opcode = 2 if args.binary else 1
    loop = uvloop.new_event_loop()
    loop.run_until_complete(run(10_000, 64, args.size))
    if args.profile:
        pr = cProfile.Profile()
        pr.enable()
        loop.run_until_complete(run(args.messages, args.conns, args.size, opcode))
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(18)
    else:
        us = min(
            loop.run_until_complete(run(args.messages, args.conns, args.size, opcode))
            for _ in range(3)
        )
        print(f"{us:.2f} us per echoed message (CPU, no syscalls)")


if __name__ == "__main__":
    main()
