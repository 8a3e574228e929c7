"""The asyncio glue (ws_io.WebSocketIO) with a fake transport: queue bounds, cancellation,
deferred closing. No sockets; each test runs its own event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from krandog_asgi.frames import OP_CLOSE, OP_TEXT, build_frame
from krandog_asgi.ws_io import END, WebSocketIO
from krandog_asgi.wsconn import Connection, Side

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


def make(max_queue: int = 4) -> tuple[WebSocketIO, FakeTransport]:
    loop = asyncio.get_running_loop()
    io = WebSocketIO(
        loop,
        is_server=True,
        max_queue=max_queue,
        ping_interval=None,
        ping_timeout=None,
        close_timeout=5,
    )
    transport = FakeTransport()
    io.attach(transport, Connection(Side.SERVER, transport.write), 65536)  # type: ignore[arg-type]
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
