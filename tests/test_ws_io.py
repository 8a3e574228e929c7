"""The asyncio glue (ws_io.WebSocketIO) with a fake transport: queue bounds, cancellation,
deferred closing. No sockets; each test runs its own event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from krandog_asgi.transport.websocket_io import END, WebSocketIO
from krandog_asgi.websocket.connection import Connection, Side
from krandog_asgi.websocket.frames import OP_CLOSE, OP_TEXT, build_frame

MASK = b"\x01\x02\x03\x04"


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.reading = True
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True


def make(
    max_queue: int = 4,
    *,
    server: bool = True,
    ping_interval: float | None = None,
    ping_timeout: float | None = None,
) -> tuple[WebSocketIO, FakeTransport]:
    loop = asyncio.get_running_loop()
    io = WebSocketIO(
        loop,
        is_server=server,
        max_queue=max_queue,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=5,
    )
    transport = FakeTransport()
    side = Side.SERVER if server else Side.CLIENT
    io.attach(transport, Connection(side, transport.write), 65536)  # type: ignore[arg-type]
    return io, transport


def text(data: str) -> bytes:
    return build_frame(OP_TEXT, data.encode(), mask=MASK)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_one_large_read_cannot_overshoot_the_queue() -> None:
    async def main() -> None:
        io, transport = make(max_queue=4)
        io.data_received(b"".join(text(f"m{i}") for i in range(1000)))
        assert io.inbox is not None
        assert len(io.inbox) == 4
        assert not transport.reading  # the rest waits, unparsed, in the core's buffer
        got = [await io.next_event() for _ in range(1000)]
        assert got == [f"m{i}" for i in range(1000)]
        assert transport.reading

    run(main())


def test_a_cancelled_receive_does_not_lose_the_message() -> None:
    async def main() -> None:
        io, _ = make()
        task = asyncio.ensure_future(io.next_event())
        await asyncio.sleep(0)  # the task now waits for a message
        io.data_received(text("precious"))  # handed to the waiting task...
        task.cancel()  # ...which is cancelled before it runs
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
        assert await io.next_event() == "precious"

    run(main())


def test_close_waits_for_the_consumer_to_finish_the_last_message() -> None:
    async def main() -> None:
        io, transport = make()
        waiter = asyncio.ensure_future(io.next_event())
        await asyncio.sleep(0)
        io.data_received(text("last"))
        assert await waiter == "last"  # the consumer is now busy with it
        io.data_received(build_frame(OP_CLOSE, b"\x03\xe8", mask=MASK))
        assert not transport.closing  # our reply waits: the echo of "last" may still come
        assert io.conn is not None
        io.conn.send_text("echo of last")
        assert await io.next_event() is END
        assert transport.written[-2:] == [b"\x81\x0cecho of last", b"\x88\x02\x03\xe8"]
        assert transport.closing

    run(main())


def test_close_is_answered_at_once_when_the_consumer_is_idle() -> None:
    async def main() -> None:
        io, transport = make()
        io.data_received(build_frame(OP_CLOSE, b"\x03\xe8", mask=MASK))
        assert transport.closing
        assert transport.written == [b"\x88\x02\x03\xe8"]
        assert await io.next_event() is END

    run(main())


def test_a_busy_consumer_gets_a_grace_period_then_the_close_goes_out() -> None:
    async def main() -> None:
        io, transport = make()
        io.data_received(text("work"))
        assert await io.next_event() == "work"
        io.data_received(build_frame(OP_CLOSE, b"\x03\xe8", mask=MASK))
        assert not transport.closing
        io.on_deadline(io.grace_deadline + 0.001)  # the consumer never came back
        assert transport.closing
        assert await io.next_event() is END

    run(main())


# -- second review: each failed before its fix ----------------------------------------------------


def test_our_close_is_answered_even_with_a_full_inbox() -> None:
    """A client that stops reading (async for ... break) and closes must still read the reply."""

    async def main() -> None:
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

    run(main())


def test_cancelling_one_sender_in_drain_spares_the_others() -> None:
    async def main() -> None:
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

    run(main())


def test_two_concurrent_consumers_are_refused() -> None:
    async def main() -> None:
        io, _ = make()
        first = asyncio.ensure_future(io.next_event())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="already waiting"):
            await io.next_event()
        io.data_received(text("one"))
        assert await first == "one"

    run(main())


def test_a_peer_that_stops_reading_is_closed_after_a_keepalive_period() -> None:
    async def main() -> None:
        io, transport = make(ping_interval=1, ping_timeout=1)
        now = asyncio.get_running_loop().time()
        io.pause_writing()  # our writes back up; reading pauses, so no pong could be seen
        io.on_deadline(now + 1.5)
        assert not transport.closing
        io.on_deadline(now + 2.1)
        assert transport.closing
        assert io.end_code == 1011

    run(main())


def test_a_pong_for_the_latest_ping_acknowledges_the_keepalive_ping() -> None:
    """RFC 6455 §5.5.3: a peer may answer only the most recent ping."""

    async def main() -> None:
        io, _ = make(ping_interval=1, ping_timeout=1)
        now = asyncio.get_running_loop().time()
        io.on_deadline(now + 1.01)  # keepalive ping sent, pong due within 1 s
        assert io.pong_deadline
        user = io.ping(b"user")
        io.data_received(build_frame(10, b"user", mask=MASK))  # a pong for the user ping only
        assert await asyncio.wait_for(user, 1) >= 0
        assert not io.pong_deadline
        assert not io.pings
        io.on_deadline(now + 3)  # no keepalive timeout
        assert not io.ended

    run(main())
