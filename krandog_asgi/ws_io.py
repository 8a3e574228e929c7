"""asyncio glue around ``wsconn.Connection``, shared by the server protocol and the client.

It owns what the sans-I/O core cannot: the transport, flow control both ways (reading pauses
while the consumer's queue is full; sending waits while the socket buffer is above its
high-water mark), keepalive pings, closing-handshake timers, and the order in which the
consumer sees events. A peer's close frame or protocol error is acted on only once the consumer
has taken the messages that arrived before it (or after a short grace period), so an echo of the
last good message still goes out before our close frame.

Timers are deadlines (floats), not TimerHandles: the server's tick polls them, the client
schedules one handle per connection (``schedule_deadline``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, cast

from krandog_asgi.frames import CloseCode
from krandog_asgi.wsconn import (
    CloseReceived,
    Connection,
    Ping,
    Pong,
    ProtocolFailure,
)

__all__ = ["END", "WebSocketIO"]

logger = logging.getLogger("krandog_asgi.error")


class _End:
    """Returned by ``next_event`` once the connection is over; see ``end_code``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END = _End()
# How long a peer's close frame (or protocol error) may wait for the consumer to take the
# messages queued before it.
CLOSE_GRACE = 1.0


def _noop_write(data: bytes) -> None:
    pass


class WebSocketIO(asyncio.Protocol):
    """One established WebSocket connection on an asyncio transport."""

    __slots__ = (
        "close_deadline",
        "close_timeout",
        "closed",
        "conn",
        "deadline",
        "drain_waiter",
        "end_code",
        "end_reason",
        "ended",
        "grace_deadline",
        "inbox",
        "is_server",
        "loop",
        "max_queue",
        "next_ping",
        "ping_interval",
        "ping_payload",
        "ping_timeout",
        "pong_deadline",
        "read_paused",
        "transport",
        "waiter",
        "write_paused",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        is_server: bool,
        max_queue: int,
        ping_interval: float | None,
        ping_timeout: float | None,
        close_timeout: float,
    ) -> None:
        self.loop = loop
        self.is_server = is_server
        self.max_queue = max(max_queue, 1)
        self.ping_interval = ping_interval or 0.0
        self.ping_timeout = ping_timeout or 0.0
        self.close_timeout = close_timeout
        self.conn: Connection | None = None
        self.inbox: list[Any] | None = None
        self.waiter: asyncio.Future[Any] | None = None
        self.read_paused = False
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.closed = False  # the transport is gone
        self.ended = False  # the consumer has been (or will be) told the connection is over
        self.end_code: int = CloseCode.ABNORMAL_CLOSURE
        self.end_reason = ""
        self.deadline = 0.0
        self.next_ping = 0.0
        self.pong_deadline = 0.0
        self.ping_payload = b""
        self.close_deadline = 0.0
        self.grace_deadline = 0.0

    # -- hooks for subclasses -----------------------------------------------------------------

    def wrap_message(self, message: str | bytes) -> Any:
        """What the consumer receives for a data message."""
        return message

    def schedule_deadline(self) -> None:
        """Called when ``deadline`` moved earlier; the server's tick needs nothing."""

    def on_ended(self) -> None:
        """Called once, when the end code is final."""

    def pong_received(self, data: bytes) -> None:
        """A pong arrived; subclasses that send their own pings extend this to match them."""
        if self.pong_deadline and data == self.ping_payload:
            self.pong_deadline = 0.0
            self.update_deadline()

    # -- setup --------------------------------------------------------------------------------

    def attach(self, transport: asyncio.Transport, conn: Connection, write_limit: int) -> None:
        """Start running the established connection ``conn`` on ``transport``."""
        self.transport = transport
        self.conn = conn
        transport.set_write_buffer_limits(high=write_limit)
        if self.ping_interval:
            self.next_ping = self.loop.time() + self.ping_interval
            self.update_deadline()

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is None:
            return
        for event in conn.receive_data(data):
            kind = type(event)
            if kind is str or kind is bytes:
                if not conn.close_sent:
                    self.push(self.wrap_message(cast("str | bytes", event)))
            elif kind is Pong:
                self.pong_received(cast(Pong, event).data)
            elif kind is Ping:
                pass  # the core has answered it
            else:
                self.peer_ending(cast("CloseReceived | ProtocolFailure", event))

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.deadline = 0.0
        conn = self.conn
        if conn is not None:
            conn.write = _noop_write
            if not self.ended:
                code, reason = conn.close_code()
                self.end(code, reason)
        elif not self.ended:
            self.end(CloseCode.ABNORMAL_CLOSURE, "")
        drain_waiter = self.drain_waiter
        if drain_waiter is not None and not drain_waiter.done():
            drain_waiter.set_result(None)
        # Whatever the consumer has not taken yet stays readable; after it, END.
        waiter = self.waiter
        if waiter is not None and not waiter.done() and not self.inbox:
            self.waiter = None
            waiter.set_result(END)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self.drain_waiter
        if waiter is not None:
            self.drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def drain(self) -> None:
        """Wait while the socket buffer is above its high-water mark."""
        if self.write_paused and not self.closed:
            waiter = self.drain_waiter
            if waiter is None:
                waiter = self.drain_waiter = self.loop.create_future()
            await waiter

    # -- the consumer's queue -----------------------------------------------------------------

    def push(self, item: Any) -> None:
        waiter = self.waiter
        if waiter is not None and not self.inbox:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(item)
                return
        inbox = self.inbox
        if inbox is None:
            inbox = self.inbox = []
        inbox.append(item)
        if len(inbox) >= self.max_queue and not self.read_paused and not self.closed:
            self.read_paused = True
            self.transport.pause_reading()

    def consumer_waiting(self) -> bool:
        waiter = self.waiter
        return waiter is not None and not waiter.done() and not self.inbox

    async def next_event(self) -> Any:
        """The next message, or END once the connection is over (then END forever)."""
        inbox = self.inbox
        if inbox:
            item = inbox.pop(0)
            if self.read_paused and len(inbox) < self.max_queue and not self.closed:
                self.read_paused = False
                self.transport.resume_reading()
        elif self.ended:
            return END
        else:
            waiter = self.waiter = self.loop.create_future()
            try:
                item = await waiter
            finally:
                if self.waiter is waiter:
                    self.waiter = None
        if type(item) is CloseReceived or type(item) is ProtocolFailure:
            self.finish_peer_ending(item)
            return END
        return item

    # -- closing ------------------------------------------------------------------------------

    def peer_ending(self, event: CloseReceived | ProtocolFailure) -> None:
        """The peer closed or broke the protocol: act now if the consumer is idle, else once it
        has taken what arrived before (or after ``CLOSE_GRACE``)."""
        assert self.conn is not None
        if self.conn.close_sent or self.consumer_waiting():
            self.finish_peer_ending(event)
            self.push(END)
            return
        # Messages are queued ahead of it, or the consumer is still busy with the last one.
        self.push(event)
        self.grace_deadline = self.loop.time() + CLOSE_GRACE
        self.update_deadline()

    def finish_peer_ending(self, event: CloseReceived | ProtocolFailure) -> None:
        conn = self.conn
        assert conn is not None
        self.grace_deadline = 0.0
        if type(event) is ProtocolFailure:
            if not self.ended:
                self.end(event.code, event.reason)
            conn.fail(event.code, event.reason)
            self.close_transport()
            return
        if not conn.close_sent:
            # RFC 6455 §5.5.1: echo the status code we received (and its reason, so that the
            # peer's CloseEvent.reason is what it sent).
            if event.code == CloseCode.NO_STATUS_RCVD:
                conn.send_close(None)
            else:
                conn.send_close(event.code, event.reason)
        if not self.ended:
            self.end(event.code, event.reason)
        if self.is_server:
            # RFC 6455 §7.1.1: the server closes the TCP connection first.
            self.close_transport()
        else:
            self.close_deadline = self.loop.time() + self.close_timeout
            self.update_deadline()

    def end(self, code: int, reason: str) -> None:
        if not self.ended:
            self.ended = True
            self.end_code = code
            self.end_reason = reason
            self.next_ping = self.pong_deadline = 0.0
            self.on_ended()

    def start_close(self, code: int | None, reason: str = "") -> None:
        """Our side starts the closing handshake; the peer has ``close_timeout`` to answer."""
        conn = self.conn
        if conn is None or self.closed:
            return
        if conn.close_rcvd is not None or conn.failed:
            if not conn.close_sent:
                conn.send_close(code, reason)
            self.close_transport()
            return
        conn.send_close(code, reason)
        self.next_ping = self.pong_deadline = 0.0
        self.close_deadline = self.loop.time() + self.close_timeout
        self.update_deadline()

    def close_transport(self) -> None:
        """Close after flushing; abort if the peer does not take our bytes within the timeout."""
        if self.closed:
            return
        self.transport.close()
        self.close_deadline = self.loop.time() + self.close_timeout
        self.update_deadline()

    def abort(self, code: int, reason: str) -> None:
        if not self.ended:
            self.end(code, reason)
        if not self.closed:
            self.transport.abort()

    # -- timers -------------------------------------------------------------------------------

    def update_deadline(self) -> None:
        times = [
            t
            for t in (self.next_ping, self.pong_deadline, self.close_deadline, self.grace_deadline)
            if t
        ]
        new = min(times) if times else 0.0
        moved_earlier = new and (not self.deadline or new < self.deadline)
        self.deadline = new
        if moved_earlier:
            self.schedule_deadline()

    def on_deadline(self, now: float) -> None:
        if self.closed:
            self.deadline = 0.0
            return
        conn = self.conn
        if self.close_deadline and now >= self.close_deadline:
            self.close_deadline = 0.0
            if not self.transport.is_closing():
                # Our close frame got no answer (or a client waited for the server's FIN).
                if conn is not None and conn.close_rcvd is None and not self.ended:
                    self.end(CloseCode.ABNORMAL_CLOSURE, "")
                self.transport.close()
                self.close_deadline = now + self.close_timeout
            else:
                self.abort(CloseCode.ABNORMAL_CLOSURE, "")
                return
        if self.grace_deadline and now >= self.grace_deadline:
            self.grace_deadline = 0.0
            item = next(
                (i for i in self.inbox or () if type(i) in (CloseReceived, ProtocolFailure)), None
            )
            if item is not None:
                # The consumer did not catch up in time: close now. It still reads the queued
                # messages, then END.
                self.inbox.remove(item)  # type: ignore[union-attr]
                self.finish_peer_ending(item)
                self.push(END)
        if self.pong_deadline and now >= self.pong_deadline:
            self.pong_deadline = 0.0
            logger.debug("WebSocket keepalive ping timed out")
            self.end(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            if conn is not None:
                conn.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            self.abort(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            return
        if self.next_ping and now >= self.next_ping and conn is not None:
            if not self.pong_deadline and not conn.close_sent:
                self.ping_payload = os.urandom(4)
                conn.send_ping(self.ping_payload)
                if self.ping_timeout:
                    self.pong_deadline = now + self.ping_timeout
            self.next_ping = now + self.ping_interval
        self.deadline = 0.0
        self.update_deadline()
