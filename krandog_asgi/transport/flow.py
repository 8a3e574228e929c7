"""Write flow control shared by every protocol: ``pause_writing``/``resume_writing`` and ``drain``.

asyncio calls ``pause_writing`` when a transport's buffer passes its high-water mark; ``send``
paths then ``await drain()`` so that a slow reader cannot make the server buffer without bound.
While paused, the protocol also remembers since when the peer has taken none of our bytes
(``write_stalled_for``): a peer that stops reading must not hold a connection, and the task
waiting in ``drain``, forever.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
from collections.abc import Callable

try:
    import fcntl
    import termios

    # SIOCOUTQ on Linux (same number): bytes of a TCP socket not yet acknowledged by the peer.
    _OUTQ: int | None = termios.TIOCOUTQ if hasattr(termios, "TIOCOUTQ") else None
except ImportError:  # pragma: no cover - Windows
    _OUTQ = None

__all__ = ["WriteFlowControl", "abort_dropping_unsent", "unacknowledged", "writev_of"]

_INT = struct.Struct("i")


def writev_of(transport: asyncio.WriteTransport) -> Callable[[tuple[bytes, bytes]], None]:
    """How to write a large frame as (header, payload) without joining them.

    uvloop's ``writelines`` is one writev and pauses the protocol like ``write``; before 3.12
    asyncio's joins the buffers and calls ``write``. asyncio's selector transport on 3.12+ has
    its own ``writelines`` that never calls ``pause_writing``: a peer that stops reading would
    never stop a sender, and ``drain`` would not wait. There, two ``write`` calls.
    """
    if sys.version_info < (3, 12) or type(transport).__module__.startswith("uvloop"):
        return transport.writelines
    write = transport.write

    def write_both(buffers: tuple[bytes, bytes]) -> None:
        write(buffers[0])
        write(buffers[1])

    return write_both


_ZERO = bytes(4)
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, zero timeout: close() sends a RST


def unacknowledged(transport: asyncio.BaseTransport) -> int:
    """Bytes we wrote that the peer has not acknowledged: the transport's buffer plus, on Linux,
    the kernel's send queue. The kernel wakes a writer only once half its (autotuned, often
    megabytes) buffer is free, so a peer that reads slowly would look stalled for a long time
    by the transport's buffer alone."""
    size = transport.get_write_buffer_size()  # type: ignore[attr-defined]
    if _OUTQ is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                size += _INT.unpack(fcntl.ioctl(sock.fileno(), _OUTQ, _ZERO))[0]
            except (OSError, ValueError):
                pass  # closed, or not a socket (a pipe in a test)
    return int(size)


def abort_dropping_unsent(transport: asyncio.WriteTransport) -> None:
    """Abort a connection whose peer reads nothing, and make the kernel drop what it still holds.

    A plain close leaves the unsent bytes (up to the whole, often megabyte-sized, send buffer)
    queued in an orphaned socket in FIN-WAIT-1, probing a zero window for minutes: the memory a
    stalled peer held would outlive its connection. A zero linger time makes the close a RST
    that frees it at once."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except (OSError, ValueError, AttributeError):
            pass  # already closed, or not a TCP socket (a pipe, a Unix socket in a test)
    transport.abort()


class WriteFlowControl:
    """Mixin for ``asyncio.Protocol`` classes, which provide ``loop``, ``closed`` and
    ``transport``."""

    __slots__ = ("drain_waiter", "stall_mark", "stalled_since", "write_paused")

    loop: asyncio.AbstractEventLoop
    closed: bool
    transport: asyncio.Transport

    def __init__(self) -> None:
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        # While paused: when the bytes in flight last shrank, and their fewest since then.
        self.stalled_since = 0.0
        self.stall_mark = 0

    def pause_writing(self) -> None:
        self.write_paused = True
        self.stalled_since = self.loop.time()
        self.stall_mark = unacknowledged(self.transport)

    def resume_writing(self) -> None:
        self.write_paused = False
        self.stalled_since = 0.0
        self.release_drain()

    def write_stalled_for(self, now: float) -> float:
        """Seconds the peer has acknowledged none of our bytes while writes are paused; 0.0
        while they flow.

        Any byte the peer takes restarts the count: this bounds a peer that reads nothing, not
        a slow one (whose pace the transport's flow control already sets)."""
        if not self.write_paused:
            return 0.0
        size = unacknowledged(self.transport)
        if size < self.stall_mark:
            self.stall_mark = size
            self.stalled_since = now
        return now - self.stalled_since

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
