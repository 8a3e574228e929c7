"""Write stalls in memory (``transport.flow`` and the tick of ``process.state``), on a
FakeTransport whose write buffer the test sets and a FakeClockLoop: no sockets, no sleeps.

A connection is stalled while its writes are paused and the bytes it has in flight do not
shrink; the tick closes an HTTP connection stalled for ``--timeout-write-stall``, and the app
waiting in ``send`` gets ``ClientDisconnected``. The same on real sockets:
tests/test_limits_stall.py.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pytest
import uvloop

from krandog_asgi.config import Config
from krandog_asgi.http.response import ClientDisconnected
from krandog_asgi.http_protocol import HTTPProtocol
from krandog_asgi.process.state import ServerState
from krandog_asgi.transport.flow import WriteFlowControl, unacknowledged, writev_of
from tests.support.fakes import FakeClockLoop, FakeTransport, run_with_fake_clock

REQUEST = b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"


class Flow(WriteFlowControl):
    __slots__ = ("closed", "loop", "transport")

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: FakeTransport) -> None:
        super().__init__()
        self.loop = loop
        self.transport = transport
        self.closed = False


def test_a_paused_buffer_that_does_not_shrink_is_stalled_since_the_pause() -> None:
    async def main(loop: FakeClockLoop) -> None:
        transport = FakeTransport(loop, write_buffer=100_000)
        flow = Flow(loop, transport)
        assert flow.write_stalled_for(loop.time()) == 0.0  # writes flow
        flow.pause_writing()
        await loop.advance(3)
        assert flow.write_stalled_for(loop.time()) == 3.0
        transport.write_buffer = 120_000  # more written, none taken: still no progress
        await loop.advance(1)
        assert flow.write_stalled_for(loop.time()) == 4.0

    run_with_fake_clock(main)


def test_any_byte_the_peer_takes_restarts_the_count() -> None:
    async def main(loop: FakeClockLoop) -> None:
        transport = FakeTransport(loop, write_buffer=100_000)
        flow = Flow(loop, transport)
        flow.pause_writing()
        await loop.advance(3)
        transport.write_buffer = 99_999
        assert flow.write_stalled_for(loop.time()) == 0.0
        await loop.advance(2)
        assert flow.write_stalled_for(loop.time()) == 2.0

    run_with_fake_clock(main)


def test_resumed_writes_end_the_stall() -> None:
    async def main(loop: FakeClockLoop) -> None:
        transport = FakeTransport(loop, write_buffer=100_000)
        flow = Flow(loop, transport)
        flow.pause_writing()
        await loop.advance(5)
        flow.resume_writing()
        assert flow.write_stalled_for(loop.time()) == 0.0

    run_with_fake_clock(main)


def test_unacknowledged_counts_the_kernel_send_queue_of_a_real_socket() -> None:
    """On Linux the kernel's unacknowledged bytes count too: a peer that reads slowly frees
    them long before the kernel lets the transport write again."""
    import socket
    import sys

    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        sent = 0
        try:
            while True:
                sent += a.send(b"x" * 65536)
        except BlockingIOError:
            pass

        class Transport(FakeTransport):
            def get_extra_info(self, name: str, default: Any = None) -> Any:
                return a if name == "socket" else default

        transport = Transport(asyncio.new_event_loop(), write_buffer=10)
        queued = unacknowledged(transport)
        if sys.platform == "linux":
            assert queued > 10
            b.recv(1 << 20)
            assert unacknowledged(transport) < queued
        else:
            assert queued >= 10
        transport.loop.close()
    finally:
        a.close()
        b.close()


# -- HTTP: the tick closes a stalled connection -------------------------------------------------


async def streaming_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    try:
        while True:
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
    except ClientDisconnected:
        RAISED.append("ClientDisconnected")


RAISED: list[str] = []


class FullTransport(FakeTransport):
    """Pauses its protocol at the first write, as a transport whose buffer is full does."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        super().write(data)
        protocol = self.protocol
        if isinstance(protocol, HTTPProtocol) and not protocol.write_paused:
            protocol.pause_writing()


def serve_stream(
    loop: FakeClockLoop, **options: Any
) -> tuple[ServerState, HTTPProtocol, FakeTransport]:
    config = Config(app=streaming_app, access_log=False, lifespan="off", **options)
    config.load()
    state = ServerState(config, streaming_app, loop)
    transport = FullTransport(loop, write_buffer=200_000)
    protocol = HTTPProtocol(state)
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    protocol.data_received(REQUEST)
    return state, protocol, transport


async def elapse(loop: FakeClockLoop, state: ServerState, seconds: float) -> None:
    """Let ``seconds`` pass, ticking as the server does (``ServerState.tick``)."""
    end = loop.time() + seconds
    while loop.time() < end - 1e-9:
        await loop.advance(min(state.tick_interval, end - loop.time()))
        state.stop_ticking()
        state.tick()


def test_tick_aborts_an_http_connection_whose_client_reads_nothing() -> None:
    async def main(loop: FakeClockLoop) -> None:
        RAISED.clear()
        state, protocol, transport = serve_stream(loop, timeout_write_stall=2.0)
        await loop.advance(0)
        assert protocol.write_paused
        assert state.write_stalls == {protocol}
        await elapse(loop, state, 1.9)
        assert not transport.aborted
        await elapse(loop, state, 0.6)
        assert transport.aborted
        await loop.advance(0)
        assert RAISED == ["ClientDisconnected"]  # the app's send did not wait forever
        assert not state.write_stalls
        assert protocol not in state.connections
        state.stop_ticking()

    run_with_fake_clock(main)


def test_tick_spares_an_http_client_that_keeps_taking_bytes() -> None:
    async def main(loop: FakeClockLoop) -> None:
        RAISED.clear()
        state, protocol, transport = serve_stream(loop, timeout_write_stall=2.0)
        await loop.advance(0)
        for _ in range(5):  # 7.5 s paused, but some bytes drain every 1.5 s
            await elapse(loop, state, 1.5)
            transport.write_buffer -= 1000
        assert not transport.aborted
        protocol.resume_writing()  # the app writes once more, and the transport pauses again
        await loop.advance(0)
        assert protocol.write_paused
        await elapse(loop, state, 1.5)
        assert not transport.aborted
        transport.abort()
        await loop.advance(0)
        state.stop_ticking()

    run_with_fake_clock(main)


def test_write_stall_zero_never_closes() -> None:
    async def main(loop: FakeClockLoop) -> None:
        state, protocol, transport = serve_stream(loop, timeout_write_stall=0)
        await loop.advance(0)
        assert protocol.write_paused
        assert not state.write_stalls
        await elapse(loop, state, 120)
        assert not transport.aborted
        transport.abort()
        await loop.advance(0)
        state.stop_ticking()

    run_with_fake_clock(main)


class _Recorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.paused = 0

    def pause_writing(self) -> None:
        self.paused += 1


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop])
def test_a_large_frame_written_as_two_buffers_pauses_the_protocol(loop_factory: Any) -> None:
    """asyncio's own writelines on 3.12+ never calls pause_writing: writev_of must not use it
    there, or a sender of large frames never feels a peer that stopped reading."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    header, payload = b"\x82\x7f" + (8 << 20).to_bytes(8, "big"), os.urandom(8 << 20)

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(_Recorder, sock=ours)
        writev_of(transport)((header, payload))
        assert protocol.paused == 1  # the peer has read nothing yet
        received = bytearray()
        while len(received) < len(header) + len(payload):
            received += await loop.sock_recv(theirs, 1 << 20)
        transport.close()
        return bytes(received)

    loop = loop_factory()
    try:
        assert loop.run_until_complete(asyncio.wait_for(main(), 30)) == header + payload
    finally:
        loop.close()
        theirs.close()
