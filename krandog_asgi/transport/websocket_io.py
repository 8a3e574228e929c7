"""asyncio glue around ``websocket.connection.Connection``, shared by the server protocol and
the client.

It owns what the sans-I/O core cannot: the transport, flow control both ways, keepalive pings,
closing-handshake timers, and the order in which the consumer (the ASGI app, or the client's
user) sees events.

- Reading pauses while the consumer's queue is full *or* our writes are backed up: a peer that
  floods us with pings (each answered by a pong) or requests and never reads cannot make us
  buffer without bound. The core is fed at most ``max_queue`` messages per call, so one large
  read cannot overshoot the queue either; the rest waits, unparsed, in the core's buffer.
- A peer's close frame or protocol error is acted on once the consumer has taken the messages
  that arrived before it and finished the one it was handling (it calls ``next_event`` again),
  or after ``CLOSE_GRACE``: an echo of the last good message still goes out before our close
  frame, yet a consumer that never reads does not hold the connection open.

Timers are deadlines (floats), not TimerHandles: the server's tick polls them, the client
schedules one handle per connection (``schedule_deadline``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from typing import Any

from krandog_asgi.transport.flow import WriteFlowControl
from krandog_asgi.websocket.connection import (
    CloseReceived,
    Closing,
    Connection,
    InvalidState,
    Ping,
    Pong,
    ProtocolFailure,
)
from krandog_asgi.websocket.frames import CloseCode

__all__ = ["END", "WebSocketIO"]

logger = logging.getLogger("krandog_asgi.error")


class _End:
    """Returned by ``next_event`` once the connection is over; see ``end_code``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END = _End()
# How long a peer's close frame (or protocol error) may wait for the consumer to finish with the
# messages that arrived before it.
CLOSE_GRACE = 1.0


def _noop_write(data: bytes) -> None:
    pass


class WebSocketIO(WriteFlowControl, asyncio.Protocol):
    """One established WebSocket connection on an asyncio transport."""

    __slots__ = (
        "backlog",
        "busy",
        "close_deadline",
        "close_timeout",
        "closed",
        "conn",
        "deadline",
        "end_code",
        "end_reason",
        "ended",
        "grace_deadline",
        "inbox",
        "is_server",
        "loop",
        "max_queue",
        "next_ping",
        "pending_end",
        "ping_interval",
        "ping_payload",
        "ping_timeout",
        "pings",
        "pong_deadline",
        "read_paused",
        "stall_deadline",
        "transport",
        "waiter",
        "write_stall_timeout",
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
        write_stall_timeout: float | None = None,
    ) -> None:
        self.loop = loop
        self.is_server = is_server
        self.max_queue = max(max_queue, 1)
        self.ping_interval = ping_interval or 0.0
        self.ping_timeout = ping_timeout or 0.0
        self.close_timeout = close_timeout
        # A peer that takes none of our bytes this long is cut off. None: one keepalive period
        # (while we cannot write we do not read either, so keepalive cannot see the peer); 0:
        # never.
        if write_stall_timeout is None:
            both = self.ping_interval and self.ping_timeout
            write_stall_timeout = self.ping_interval + self.ping_timeout if both else 0.0
        self.write_stall_timeout = write_stall_timeout
        self.conn: Connection | None = None
        self.inbox: deque[Any] | None = None  # created on first use: idle connections stay small
        self.waiter: asyncio.Future[Any] | None = None
        self.busy = False  # the consumer took a message and has not asked for the next one yet
        self.backlog = False  # complete messages may wait unparsed in the core's buffer
        self.pending_end: CloseReceived | ProtocolFailure | None = None
        self.read_paused = False
        WriteFlowControl.__init__(self)
        self.closed = False  # the transport is gone
        self.ended = False  # the end code is final; the consumer gets END after the inbox
        self.end_code: int = CloseCode.ABNORMAL_CLOSURE
        self.end_reason = ""
        self.deadline = 0.0
        self.next_ping = 0.0
        self.pong_deadline = 0.0
        self.ping_payload = b""  # our unanswered keepalive ping, if any
        # Every unanswered ping in the order sent (keepalive ones have no waiter): RFC 6455
        # §5.5.3 lets a peer answer only the latest, which then acknowledges all earlier ones.
        self.pings: dict[bytes, tuple[asyncio.Future[float] | None, float]] | None = None
        self.close_deadline = 0.0
        self.grace_deadline = 0.0
        self.stall_deadline = 0.0  # our writes have not drained since then: the peer may be gone

    # -- hooks for subclasses -----------------------------------------------------------------

    def wrap_message(self, message: str | bytes) -> Any:
        """What the consumer receives for a data message."""
        return message

    def handshake_data(self, data: bytes) -> None:
        """Bytes that arrived before ``attach``: the handshake's, or frames sent right after it."""

    def schedule_deadline(self) -> None:
        """Called when ``deadline`` moved earlier; the server's tick needs nothing."""

    def on_ended(self) -> None:
        """Called once, when the end code is final."""

    def ping_error(self) -> Exception:
        """What an unanswered ping's waiter gets when the connection ends."""
        return ConnectionError("the WebSocket connection is closed")

    # -- pings --------------------------------------------------------------------------------

    def ping(self, data: bytes | None = None) -> asyncio.Future[float]:
        """Send a ping; the future gives the round-trip time once a pong answers it."""
        conn = self.conn
        assert conn is not None
        pings = self.pings
        if pings is None:
            pings = self.pings = {}
        if data is None:
            data = os.urandom(4)
            while data in pings:
                data = os.urandom(4)
        elif data in pings:
            raise ValueError("A ping with this payload is already waiting for its pong")
        if self.closed:
            raise InvalidState("the connection is closed")
        conn.send_ping(data)  # InvalidState once our close frame is out
        waiter: asyncio.Future[float] = self.loop.create_future()
        pings[data] = (waiter, self.loop.time())
        return waiter

    def pong_received(self, data: bytes) -> None:
        """A pong acknowledges its own ping and every earlier one (RFC 6455 §5.5.3)."""
        pings = self.pings
        if not pings or data not in pings:
            return  # unsolicited: ignored
        now = self.loop.time()
        while pings:
            payload = next(iter(pings))
            waiter, sent = pings.pop(payload)
            if waiter is not None and not waiter.done():
                waiter.set_result(now - sent)
            if payload == self.ping_payload:
                self.ping_payload = b""
                if self.pong_deadline:
                    self.pong_deadline = 0.0
                    self.update_deadline()
            if payload == data:
                break

    def fail_pings(self) -> None:
        pings = self.pings
        if pings:
            error = self.ping_error()
            for waiter, _ in pings.values():
                if waiter is not None and not waiter.done():
                    waiter.set_exception(error)
            pings.clear()

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
            self.handshake_data(data)
            return
        # After our close frame nothing is queued any more, so there is nothing to limit. Only
        # the last event (a close frame or a protocol error) can change that.
        dropping = conn.closing.close_sent
        limit = None if dropping else self.max_queue
        events = conn.receive_data(data, limit)
        if limit is not None and len(events) >= limit and conn.buf:
            # Parsing stopped at the limit: read no more until the consumer catches up.
            self.backlog = True
            self.update_reading()
        for event in events:
            # One ``type()`` per event and no ``cast`` call: mypy cannot narrow through
            # ``kind``, hence the ignores.
            kind = type(event)
            if kind is str or kind is bytes:
                if not dropping:
                    self.push(self.wrap_message(event))  # type: ignore[arg-type]
            elif kind is Pong:
                self.pong_received(event.data)  # type: ignore[union-attr]
            elif kind is Ping:
                pass  # the core has answered it
            else:
                self.peer_ending(event)  # type: ignore[arg-type]

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
        self.release_drain()
        self.fail_pings()
        # Whatever the consumer has not taken yet stays readable; after it, END.
        self.wake(END)

    def pause_writing(self) -> None:
        WriteFlowControl.pause_writing(self)
        if self.write_stall_timeout:
            self.stall_deadline = self.stalled_since + self.write_stall_timeout
            self.update_deadline()
        self.update_reading()

    def resume_writing(self) -> None:
        WriteFlowControl.resume_writing(self)
        self.stall_deadline = 0.0
        self.update_reading()

    def update_reading(self) -> None:
        """Read only while the consumer has room and our own writes are flowing."""
        inbox = self.inbox
        conn = self.conn
        closing = conn is not None and conn.closing.close_sent  # messages are dropped from now on
        pause = self.write_paused or (
            not closing and (self.backlog or (inbox is not None and len(inbox) >= self.max_queue))
        )
        if pause == self.read_paused or self.closed:
            return
        self.read_paused = pause
        if pause:
            self.transport.pause_reading()
            # The peer's pong cannot be read now; its deadline waits for reading to resume.
            if self.pong_deadline:
                self.pong_deadline = 0.0
                self.update_deadline()
        else:
            self.transport.resume_reading()
            if self.ping_payload and self.ping_timeout:
                self.pong_deadline = self.loop.time() + self.ping_timeout
                self.update_deadline()

    # -- the consumer's side ------------------------------------------------------------------

    def push(self, item: Any) -> None:
        """Hand a message to the consumer: directly if it is waiting, else through the inbox."""
        waiter = self.waiter
        if waiter is not None and not self.inbox:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(item)
                self.busy = True
                return
        inbox = self.inbox
        if inbox is None:
            inbox = self.inbox = deque()
        inbox.append(item)
        if len(inbox) >= self.max_queue and not self.read_paused:
            self.update_reading()

    def wake(self, item: Any) -> bool:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(item)
                return True
        return False

    def take_event(self) -> Any:
        """The next message, END once the connection is over, or None: nothing yet, wait on
        ``new_waiter()``. Split from the wait so that a consumer can await the future in its
        own frame (``WebSocketProtocol.receive``: one coroutine less per idle connection)."""
        self.busy = False
        if self.backlog and not self.inbox:
            # Parse what was left in the core's buffer while the queue was full.
            self.backlog = False
            self.data_received(b"")
            self.update_reading()
        inbox = self.inbox
        if inbox:
            item = inbox.popleft()
            if self.read_paused and len(inbox) < self.max_queue:
                self.update_reading()
            self.busy = True
            return item
        if self.pending_end is not None:
            self.finish_peer_ending()
            return END
        if self.ended:
            return END
        return None

    def new_waiter(self) -> asyncio.Future[Any]:
        if self.waiter is not None and not self.waiter.done():
            raise RuntimeError("another task is already waiting for the next message")
        waiter = self.waiter = self.loop.create_future()
        return waiter

    def waiter_cancelled(self, waiter: asyncio.Future[Any]) -> None:
        """Cancelled (a timeout around receive(), a task group) just as a message was handed
        over: keep it for the next call instead of losing it."""
        if waiter.done() and not waiter.cancelled():
            if self.inbox is None:
                self.inbox = deque()
            self.inbox.appendleft(waiter.result())

    async def next_event(self) -> Any:
        """The next message, or END once the connection is over (then END forever)."""
        item = self.take_event()
        if item is not None:
            return item
        waiter = self.new_waiter()
        try:
            return await waiter
        except asyncio.CancelledError:
            self.waiter_cancelled(waiter)
            raise
        finally:
            if self.waiter is waiter:
                self.waiter = None

    # -- closing ------------------------------------------------------------------------------

    def peer_ending(self, event: CloseReceived | ProtocolFailure) -> None:
        """The peer closed or broke the protocol: act now, unless the consumer still has earlier
        messages to take (or is handling the last one), then once it asks for more."""
        assert self.conn is not None
        self.pending_end = event
        if self.conn.closing.close_sent or not (self.inbox or self.busy):
            self.finish_peer_ending()
            self.wake(END)
            return
        self.grace_deadline = self.loop.time() + CLOSE_GRACE
        self.update_deadline()

    def finish_peer_ending(self) -> None:
        event = self.pending_end
        conn = self.conn
        assert event is not None
        assert conn is not None
        self.pending_end = None
        self.grace_deadline = 0.0
        if not self.ended:
            self.end(event.code, event.reason)
        if type(event) is ProtocolFailure:
            conn.fail(event.code, event.reason)
            self.close_transport()
            return
        if not conn.closing.close_sent:
            # RFC 6455 §5.5.1: echo the status code we received (and its reason, so that the
            # peer's CloseEvent.reason is what it sent).
            if event.code == CloseCode.NO_STATUS_RCVD:
                conn.send_close(None)
            else:
                conn.send_close(event.code, event.reason)
        if self.is_server:
            # RFC 6455 §7.1.1: the server closes the TCP connection first.
            self.close_transport()
        elif not self.closed:
            self.close_deadline = self.loop.time() + self.close_timeout
            self.update_deadline()

    def end(self, code: int, reason: str) -> None:
        if not self.ended:
            self.ended = True
            self.end_code = code
            self.end_reason = reason
            self.next_ping = self.pong_deadline = 0.0
            self.ping_payload = b""
            self.on_ended()

    def start_close(self, code: int | None, reason: str = "") -> None:
        """Our side starts the closing handshake; the peer has ``close_timeout`` to answer."""
        conn = self.conn
        if conn is None or self.closed:
            return
        if conn.close_rcvd is not None or conn.closing is Closing.FAILED:
            if not conn.closing.close_sent:
                conn.send_close(code, reason)
            self.close_transport()
            return
        conn.send_close(code, reason)
        self.next_ping = self.pong_deadline = 0.0
        self.ping_payload = b""
        self.close_deadline = self.loop.time() + self.close_timeout
        self.update_deadline()
        # The peer's answer must be read even if the consumer's queue is full: nothing more is
        # queued now, so parse what is buffered and read on.
        if self.backlog:
            self.backlog = False
            self.data_received(b"")
        self.update_reading()

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
            for t in (
                self.next_ping,
                self.pong_deadline,
                self.close_deadline,
                self.grace_deadline,
                self.stall_deadline,
            )
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
        if self.grace_deadline and now >= self.grace_deadline and self.pending_end is not None:
            # The consumer did not catch up in time: close now. It still reads the queued
            # messages, then END.
            self.finish_peer_ending()
            self.wake(END)
        if self.stall_deadline and now >= self.stall_deadline:
            limit = self.write_stall_timeout
            stalled = self.write_stalled_for(now)
            if stalled >= limit:
                logger.log(
                    logging.INFO if self.is_server else logging.DEBUG,
                    "Closing WebSocket %r: the peer took none of our data for %.1fs",
                    self,
                    stalled,
                )
                self.abort(CloseCode.INTERNAL_ERROR, "peer stopped reading")
                return
            # Not yet: look again a quarter of the timeout on (the count restarted when a look
            # found fewer bytes in flight), so a peer is cut at most 1.25 timeouts after its
            # last byte taken.
            if self.write_paused:
                self.stall_deadline = min(self.stalled_since + limit, now + limit / 4)
            else:
                self.stall_deadline = 0.0
        if self.pong_deadline and now >= self.pong_deadline:
            logger.debug("WebSocket keepalive ping timed out")
            self.end(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            if conn is not None:
                conn.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")  # best effort
            self.abort(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            return
        if self.next_ping and now >= self.next_ping and conn is not None:
            # No new ping while one is unanswered, or while we are not reading (the pong could
            # not be seen).
            outstanding = self.ping_payload and self.ping_timeout
            if not outstanding and not self.read_paused and not conn.closing.close_sent:
                if self.pings is None:
                    self.pings = {}
                elif self.ping_payload:  # never answered (no timeout set): forget it
                    self.pings.pop(self.ping_payload, None)
                payload = os.urandom(4)
                while payload in self.pings:
                    payload = os.urandom(4)
                self.ping_payload = payload
                self.pings[payload] = (None, now)
                conn.send_ping(payload)
                if self.ping_timeout:
                    self.pong_deadline = now + self.ping_timeout
            self.next_ping = now + self.ping_interval
        self.deadline = 0.0
        self.update_deadline()
