"""The asyncio glue (``transport.websocket_io.WebSocketIO``) on a FakeTransport: queue bounds,
cancellation, deferred closing, and every timer (keepalive, close timeout, close grace, write
stall) driven by a FakeClockLoop, as the server's tick drives them. No sockets, no sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from krandog_asgi.transport.websocket_io import CLOSE_GRACE, END, WebSocketIO
from krandog_asgi.websocket.connection import Connection, Side
from krandog_asgi.websocket.frames import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    build_close_payload,
    build_frame,
)
from tests.support.fakes import FakeClockLoop, FakeTransport, run_with_fake_clock

MASK = b"\x01\x02\x03\x04"
CLOSE_TIMEOUT = 5.0
TICK = 0.05  # the server's smallest tick interval


def make(
    max_queue: int = 4,
    *,
    server: bool = True,
    ping_interval: float | None = None,
    ping_timeout: float | None = None,
    connected: bool = True,
) -> tuple[WebSocketIO, FakeTransport]:
    """An established connection; ``connected=False`` leaves the transport without a protocol,
    so that closing it never delivers ``connection_lost`` (a peer that never finishes)."""
    loop = asyncio.get_running_loop()
    io = WebSocketIO(
        loop,
        is_server=server,
        max_queue=max_queue,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=CLOSE_TIMEOUT,
    )
    transport = FakeTransport(loop)
    if connected:
        transport.set_protocol(io)
    side = Side.SERVER if server else Side.CLIENT
    io.attach(transport, Connection(side, transport.write), 65536)
    return io, transport


def text(data: str) -> bytes:
    return build_frame(OP_TEXT, data.encode(), mask=MASK)


def close(code: int = 1000) -> bytes:
    return build_frame(OP_CLOSE, build_close_payload(code), mask=MASK)


async def elapse(loop: FakeClockLoop, io: WebSocketIO, seconds: float) -> None:
    """Let ``seconds`` pass on the fake clock, firing ``io``'s deadline as the server's tick
    does (``process.state.ServerState.tick``), every ``TICK``."""
    end = loop.time() + seconds
    while loop.time() < end - 1e-9:
        await loop.advance(min(TICK, end - loop.time()))
        if io.deadline and io.deadline <= loop.time():
            io.on_deadline(loop.time())


def opcodes(transport: FakeTransport) -> list[int]:
    """The opcodes of the (unmasked, server-sent) frames written so far."""
    peer = Connection(Side.CLIENT, lambda _: None)
    found = []
    for event in peer.receive_data(transport.data):
        name = type(event).__name__
        found.append({"Ping": OP_PING, "Pong": OP_PONG, "CloseReceived": OP_CLOSE}.get(name, 0))
    return found


def fake_clock(main: Callable[[FakeClockLoop], Awaitable[None]]) -> None:
    run_with_fake_clock(main)


# -- the consumer's queue ----------------------------------------------------------------------


def test_one_large_read_cannot_overshoot_the_queue() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, transport = make(max_queue=4)
        io.data_received(b"".join(text(f"m{i}") for i in range(1000)))
        assert io.inbox is not None
        assert len(io.inbox) == 4
        assert not transport.reading  # the rest waits, unparsed, in the core's buffer
        got = [await io.next_event() for _ in range(1000)]
        assert got == [f"m{i}" for i in range(1000)]
        assert transport.reading

    fake_clock(main)


def test_a_cancelled_receive_does_not_lose_the_message() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, _ = make()
        task = asyncio.ensure_future(io.next_event())
        await asyncio.sleep(0)  # the task now waits for a message
        io.data_received(text("precious"))  # handed to the waiting task...
        task.cancel()  # ...which is cancelled before it runs
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
        assert await io.next_event() == "precious"

    fake_clock(main)


def test_two_concurrent_consumers_are_refused() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, _ = make()
        first = asyncio.ensure_future(io.next_event())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="already waiting"):
            await io.next_event()
        io.data_received(text("one"))
        assert await first == "one"

    fake_clock(main)


# -- flow control ------------------------------------------------------------------------------


def test_backed_up_writes_pause_reading_until_they_drain() -> None:
    """A peer that floods us with pings (each answered by a pong) and never reads: once our
    writes back up we stop reading, so it cannot make us buffer pongs without bound."""

    async def main(loop: FakeClockLoop) -> None:
        io, transport = make()
        io.data_received(build_frame(OP_PING, b"p", mask=MASK) * 3)
        assert opcodes(transport) == [OP_PONG] * 3
        io.pause_writing()
        assert not transport.reading
        io.resume_writing()
        assert transport.reading

    fake_clock(main)


def test_cancelling_one_sender_in_drain_spares_the_others() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, _ = make()
        io.pause_writing()
        first = asyncio.ensure_future(io.drain())
        second = asyncio.ensure_future(io.drain())
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        io.resume_writing()
        await asyncio.wait_for(second, 1)
        assert first.cancelled()
        assert not second.cancelled()
        io.pause_writing()
        third = asyncio.ensure_future(io.drain())
        await asyncio.sleep(0)
        assert not third.done()  # not failed at once by a leftover cancelled future
        io.resume_writing()
        await asyncio.wait_for(third, 1)

    fake_clock(main)


# -- closing: the peer's close frame and the consumer ------------------------------------------


def test_close_waits_for_the_consumer_to_finish_the_last_message() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, transport = make()
        waiter = asyncio.ensure_future(io.next_event())
        await asyncio.sleep(0)
        io.data_received(text("last"))
        assert await waiter == "last"  # the consumer is now busy with it
        io.data_received(close())
        assert not transport.closing  # our reply waits: the echo of "last" may still come
        assert io.conn is not None
        io.conn.send_text("echo of last")
        assert await io.next_event() is END
        assert transport.written[-2:] == [b"\x81\x0cecho of last", b"\x88\x02\x03\xe8"]
        assert transport.closing

    fake_clock(main)


def test_close_is_answered_at_once_when_the_consumer_is_idle() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, transport = make()
        io.data_received(close())
        assert transport.closing
        assert transport.written == [b"\x88\x02\x03\xe8"]
        assert await io.next_event() is END

    fake_clock(main)


def test_a_busy_consumer_gets_a_grace_period_then_the_close_goes_out() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, transport = make()
        io.data_received(text("work"))
        assert await io.next_event() == "work"
        io.data_received(close())
        await elapse(loop, io, CLOSE_GRACE - 0.1)
        assert not transport.closing  # still within the grace period
        await elapse(loop, io, 0.2)  # the consumer never came back
        assert transport.written == [b"\x88\x02\x03\xe8"]
        assert transport.closing
        assert await io.next_event() is END

    fake_clock(main)


def test_our_close_is_answered_even_with_a_full_inbox() -> None:
    """A client that stops reading (async for ... break) and closes must still read the reply."""

    async def main(loop: FakeClockLoop) -> None:
        io, transport = make(max_queue=2, server=False)
        io.data_received(b"".join(build_frame(OP_TEXT, b"m%d" % i) for i in range(10)))
        assert not transport.reading
        io.start_close(1000)
        assert transport.reading
        io.data_received(build_frame(OP_CLOSE, b"\x03\xe8"))
        assert io.ended
        assert io.end_code == 1000
        assert io.conn is not None
        assert io.conn.close_rcvd is not None

    fake_clock(main)


# -- closing: timeouts -------------------------------------------------------------------------


def test_our_close_frame_unanswered_is_1006_after_the_close_timeout() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, transport = make()
        io.start_close(1000)
        assert opcodes(transport) == [OP_CLOSE]
        await elapse(loop, io, CLOSE_TIMEOUT - 0.1)
        assert not transport.closing
        await elapse(loop, io, 0.2)
        assert transport.closing
        assert not transport.aborted
        assert io.end_code == 1006

    fake_clock(main)


def test_a_transport_that_does_not_finish_closing_is_aborted() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, transport = make(connected=False)  # connection_lost never comes
        io.data_received(close())  # answered; the server closes TCP first
        assert transport.closing
        await elapse(loop, io, CLOSE_TIMEOUT - 0.1)
        assert not transport.aborted
        await elapse(loop, io, 0.2)
        assert transport.aborted
        assert io.end_code == 1000  # what the peer said stands

    fake_clock(main)


# -- keepalive ---------------------------------------------------------------------------------


def test_keepalive_ping_goes_out_each_interval_and_its_pong_clears_the_timeout() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, transport = make(ping_interval=1, ping_timeout=1)
        await elapse(loop, io, 0.9)
        assert transport.written == []
        await elapse(loop, io, 0.2)
        assert opcodes(transport) == [OP_PING]
        payload = io.ping_payload
        io.data_received(build_frame(OP_PONG, payload, mask=MASK))
        assert not io.pong_deadline
        await elapse(loop, io, 1.0)  # past the pong timeout: answered, so nothing happens
        assert not io.ended
        assert opcodes(transport) == [OP_PING, OP_PING]  # the next interval's ping

    fake_clock(main)


def test_unanswered_keepalive_ping_fails_the_connection_1011() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, transport = make(ping_interval=1, ping_timeout=1)
        await elapse(loop, io, 1.05)
        assert opcodes(transport) == [OP_PING]
        await elapse(loop, io, 0.9)
        assert not io.ended
        await elapse(loop, io, 0.2)
        assert io.end_code == 1011
        assert io.end_reason == "keepalive ping timeout"
        assert opcodes(transport) == [OP_PING, OP_CLOSE]
        assert transport.aborted

    fake_clock(main)


def test_keepalive_spares_a_peer_whose_pong_waits_behind_a_full_queue() -> None:
    """While the consumer's queue is full we do not read, so the peer's pong cannot be seen:
    no ping is sent and no pong is awaited until reading resumes."""

    async def main(loop: FakeClockLoop) -> None:
        io, transport = make(max_queue=1, ping_interval=0.3, ping_timeout=0.3)
        await elapse(loop, io, 0.35)
        assert opcodes(transport) == [OP_PING]  # a ping is out, its pong due in 0.3 s
        io.data_received(text("m0") + text("m1"))  # the queue fills: reading pauses
        assert not transport.reading
        await elapse(loop, io, 3.0)  # ten keepalive periods
        assert not io.ended
        assert opcodes(transport) == [OP_PING]  # no new ping while reading is paused
        assert await io.next_event() == "m0"  # the consumer catches up...
        assert await io.next_event() == "m1"
        assert transport.reading  # ...and reading resumes
        io.data_received(build_frame(OP_PONG, io.ping_payload, mask=MASK))
        await elapse(loop, io, 0.25)
        assert not io.ended

    fake_clock(main)


def test_a_pong_for_the_latest_ping_acknowledges_the_keepalive_ping() -> None:
    """RFC 6455 §5.5.3: a peer may answer only the most recent ping."""

    async def main(loop: FakeClockLoop) -> None:
        io, _ = make(ping_interval=1, ping_timeout=1)
        await elapse(loop, io, 1.01)  # keepalive ping sent, pong due within 1 s
        assert io.pong_deadline
        user = io.ping(b"user")
        io.data_received(build_frame(OP_PONG, b"user", mask=MASK))  # a pong for the user ping
        assert await asyncio.wait_for(user, 1) >= 0
        assert not io.pong_deadline
        assert not io.pings
        await elapse(loop, io, 1.5)  # no keepalive timeout
        assert not io.ended

    fake_clock(main)


def test_a_peer_that_stops_reading_is_closed_after_a_keepalive_period() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, transport = make(ping_interval=1, ping_timeout=1)
        io.pause_writing()  # our writes back up; reading pauses, so no pong could be seen
        await elapse(loop, io, 1.5)
        assert not transport.closing
        await elapse(loop, io, 0.6)
        assert transport.closing
        assert io.end_code == 1011

    fake_clock(main)


def test_ping_interval_zero_sends_no_keepalive_pings() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, transport = make(ping_interval=0, ping_timeout=1)
        await elapse(loop, io, 100)
        assert transport.written == []
        assert not io.deadline

    fake_clock(main)


def test_write_stall_timeout_closes_a_peer_that_takes_nothing() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, transport = make(ping_interval=20, ping_timeout=20)
        io.write_stall_timeout = 1.0  # what the server passes from --timeout-write-stall
        transport.write_buffer = 100_000
        io.pause_writing()
        await elapse(loop, io, 0.9)
        assert not transport.closing
        await elapse(loop, io, 0.2)
        assert transport.aborted
        assert io.end_code == 1011

    fake_clock(main)


def test_write_stall_spares_a_peer_that_takes_some_bytes() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, transport = make()
        io.write_stall_timeout = 1.0
        transport.write_buffer = 100_000
        io.pause_writing()
        for _ in range(6):
            await elapse(loop, io, 0.8)
            transport.write_buffer -= 100
        assert not transport.closing
        # And now nothing more: cut within 1.25 timeouts (progress is looked for each quarter).
        await elapse(loop, io, 1.3)
        assert transport.aborted

    fake_clock(main)


def test_write_stall_timeout_zero_never_closes() -> None:
    async def main(loop: FakeClockLoop) -> None:
        io, transport = make(ping_interval=1, ping_timeout=1)
        io.write_stall_timeout = 0.0
        io.pause_writing()
        await elapse(loop, io, 10)
        assert not transport.closing

    fake_clock(main)
