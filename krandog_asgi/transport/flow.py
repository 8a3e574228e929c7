"""Write flow control shared by every protocol: ``pause_writing``/``resume_writing`` and ``drain``.

asyncio calls ``pause_writing`` when a transport's buffer passes its high-water mark; ``send``
paths then ``await drain()`` so that a slow reader cannot make the server buffer without bound.
"""

from __future__ import annotations

import asyncio

__all__ = ["WriteFlowControl"]


class WriteFlowControl:
    """Mixin for ``asyncio.Protocol`` classes, which provide ``loop`` and ``closed``."""

    __slots__ = ("drain_waiter", "write_paused")

    loop: asyncio.AbstractEventLoop
    closed: bool

    def __init__(self) -> None:
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.release_drain()

    def release_drain(self) -> None:
        """Wake a task waiting in ``drain`` (also called when the connection is lost)."""
        waiter = self.drain_waiter
        if waiter is not None:
            self.drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def drain(self) -> None:
        """Wait while the transport's buffer is above its high-water mark.

        Every sender waits on the same future through ``shield``: cancelling one of them (a
        timeout around ``send``) must not cancel the others, nor leave a cancelled future behind
        for the next ones.
        """
        if self.write_paused and not self.closed:
            waiter = self.drain_waiter
            if waiter is None or waiter.done():
                waiter = self.drain_waiter = self.loop.create_future()
            await asyncio.shield(waiter)
