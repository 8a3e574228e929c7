"""In-memory stand-ins for the tests that drive a protocol without sockets.

- ``FakeTransport`` records what a protocol writes and how it flow-controls, and delivers
  ``connection_lost`` on the next loop iteration after ``close``, as asyncio transports do.
- ``FakeClockLoop`` is an asyncio event loop whose ``time()`` moves only when a test calls
  ``advance``: timers (keep-alive, header deadlines, WebSocket pings and closing timeouts) are
  driven by the test, not waited out with sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["FakeClockLoop", "FakeTransport", "run", "run_with_fake_clock"]

T = TypeVar("T")

PEER = ("127.0.0.1", 50000)
SOCKNAME = ("127.0.0.1", 8000)


class FakeTransport(asyncio.Transport):
    """What a protocol wrote (``written`` chunks, ``data`` joined) and asked of its transport."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        extra: dict[str, Any] | None = None,
        write_buffer: int = 0,
    ) -> None:
        super().__init__()
        self.loop = loop or asyncio.get_event_loop()
        self.extra = {"peername": PEER, "sockname": SOCKNAME, **(extra or {})}
        self.written: list[bytes] = []
        self.reading = True
        self.closing = False
        self.aborted = False
        self.lost = False
        self.eof_written = False
        self.write_buffer = write_buffer  # what get_write_buffer_size reports
        self.high_water: int | None = None
        self.protocol: asyncio.BaseProtocol | None = None

    @property
    def data(self) -> bytes:
        return b"".join(self.written)

    def take(self) -> bytes:
        """What was written since the last ``take``."""
        data = self.data
        self.written.clear()
        return data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closing, "write after close"
        self.written.append(bytes(data))

    def writelines(self, data: Any) -> None:
        for chunk in data:
            self.write(chunk)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high_water = high

    def get_write_buffer_size(self) -> int:
        return self.write_buffer

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.loop.call_soon(self._lost)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def _lost(self) -> None:
        if not self.lost:
            self.lost = True
            if self.protocol is not None:
                self.protocol.connection_lost(None)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True


class FakeClockLoop(asyncio.SelectorEventLoop):
    """``time()`` is a counter the test moves with ``advance``; callbacks due by then run."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    async def advance(self, seconds: float) -> None:
        """Move the clock and let every timer that fell due (and what it triggers) run."""
        self.now += seconds
        for _ in range(5):
            await asyncio.sleep(0)


def run(coro: Awaitable[T], timeout: float = 30.0) -> T:
    """``asyncio.run`` with an upper bound, so a hanging test fails instead of blocking CI."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def run_with_fake_clock(main: Callable[[FakeClockLoop], Awaitable[T]]) -> T:
    """Run ``main(loop)`` on a ``FakeClockLoop``; no wall-clock bound is needed (nothing sleeps)."""
    loop = FakeClockLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
