"""One write for the answers to a batch of pipelined requests.

A client that pipelines sends many requests in one packet; answered one by one, each response
costs its own ``write`` system call and its own packet, which is most of the server's time for
small responses. While the requests of such a batch start, their responses are gathered here
and written together.

The bytes never wait on an application: each request started from the batch holds the
gathered bytes only until the event loop has run that request's first step (``hold`` puts the
release behind it in the loop's ready queue), so a response goes out at the latest one loop
iteration after it was complete, before any app that waits for something else keeps it.
"""

from __future__ import annotations

import asyncio

__all__ = ["GATHER_LIMIT", "GatheredWrites"]

# Bytes gathered at most before they are written anyway: large responses gain nothing from
# being joined, and the gathered bytes are outside the transport's flow control.
GATHER_LIMIT = 64 * 1024


class GatheredWrites:
    """A request cycle's transport while pipelined requests start: ``write`` and ``close``,
    the two things a cycle does to its transport, in the same order on the wire."""

    __slots__ = ("holds", "loop", "parts", "size", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.parts: list[bytes] = []
        self.size = 0
        self.holds = 0  # requests started whose first step has not run yet

    def hold(self) -> None:
        """A request was just started: gather until its first step has run."""
        self.holds += 1
        self.loop.call_soon(self.release)

    def release(self) -> None:
        self.holds -= 1
        if not self.holds:
            self.flush()

    def write(self, data: bytes) -> None:
        if not self.holds:
            self.transport.write(data)
            return
        self.parts.append(data)
        self.size += len(data)
        if self.size >= GATHER_LIMIT:
            self.flush()

    def flush(self) -> None:
        """Write what was gathered; the connection calls it before it writes or closes itself."""
        parts = self.parts
        if parts:
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            parts.clear()
            self.size = 0
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def discard(self) -> None:
        """The connection is gone: nothing gathered can be delivered any more."""
        self.parts.clear()
        self.size = 0
