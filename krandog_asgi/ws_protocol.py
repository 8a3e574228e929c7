"""Upgraded connections served as ASGI ``websocket`` scopes.

``HTTPProtocol`` hands over the request it parsed (scope and headers) and any bytes that followed
it. This module validates the handshake, runs the app, and translates between ASGI messages and
the sans-I/O core; the shared transport logic lives in ``transport.websocket_io``.

What the app may send depends on where the exchange stands, a ``Phase`` (model: hypercorn's
``ASGIWebsocketState``); ``send`` dispatches on (message type, phase) and raises
``UnexpectedMessage`` for any other pair.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from krandog_asgi.asgi_types import UnexpectedMessage
from krandog_asgi.http.response import (
    ClientDisconnected,
    check_header,
    error_response,
    escape_for_log,
    final_status_line,
    status_line,
)
from krandog_asgi.transport.flow import writev_of
from krandog_asgi.transport.websocket_io import END, WebSocketIO
from krandog_asgi.websocket.connection import Connection, Side
from krandog_asgi.websocket.deflate import negotiate_server
from krandog_asgi.websocket.frames import (
    MAX_CLOSE_REASON,
    OP_BINARY,
    OP_TEXT,
    CloseCode,
    build_frame,
)
from krandog_asgi.websocket.handshake import (
    HandshakeError,
    ServerHandshake,
    build_accept_response,
    check_request,
)

if TYPE_CHECKING:
    from krandog_asgi.asgi_types import Message, Scope
    from krandog_asgi.process.state import ServerState

__all__ = ["Phase", "WebSocketProtocol"]

logger = logging.getLogger("krandog_asgi.error")

ASGI_WS_VERSION = {"version": "3.0", "spec_version": "2.5"}
PENDING_LIMIT = 64 * 1024  # bytes a client may send before the app accepts, before we stop reading
# Response headers the handshake owns; an app cannot override them through websocket.accept.
_RESERVED = frozenset(
    {
        b"upgrade",
        b"connection",
        b"sec-websocket-accept",
        b"sec-websocket-protocol",
        b"sec-websocket-extensions",
        b"content-length",
        b"transfer-encoding",
    }
)
_CONNECT = {"type": "websocket.connect"}
# The frame of the last small message sent without compression, by the object it came from: a
# broadcast sends one ``str`` (or ``bytes``) to every connection, which then costs one encode
# and one frame for all. Held by identity, so only immutable types; small, so little memory.
SHARED_FRAME_MAX = 4096


class _SharedFrame:
    __slots__ = ("frame", "source")

    def __init__(self) -> None:
        self.source: object = None
        self.frame = b""


_shared = _SharedFrame()
_SERVER_CONTEXT = contextvars.Context()

# The messages that answer the upgrade request.
_ANSWERS = ("websocket.accept", "websocket.close", "websocket.http.response.start")


async def _failing(exc: Exception) -> None:
    raise exc


async def _awaiting(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class Phase(enum.Enum):
    """Where the app's side of the exchange stands."""

    HANDSHAKE = "handshake"  # the upgrade request waits for the app's answer
    CONNECTED = "connected"  # accepted: messages flow both ways
    RESPONSE = "response"  # a denial response is under way (its start was sent, not its end)
    CLOSED = "closed"  # accepted, then the app sent websocket.close
    REJECTED = "rejected"  # an HTTP response went instead of the upgrade (403, 4xx, 500, denial)
    # The app's accept was invalid (a subprotocol the client never offered, a bad or reserved
    # header): the handshake fails closed, the connection is closed without an answer (no
    # client can take such an upgrade; daphne and hypercorn do the same, Falcon's server tests
    # expect it), and whatever the app sends later raises.
    ABANDONED = "abandoned"


HANDSHAKE = Phase.HANDSHAKE
CONNECTED = Phase.CONNECTED
RESPONSE = Phase.RESPONSE
CLOSED = Phase.CLOSED
REJECTED = Phase.REJECTED
ABANDONED = Phase.ABANDONED
UNANSWERABLE = (REJECTED, ABANDONED)  # no upgrade will happen on this connection


def close_reason(reason: str) -> str:
    """ASGI lets a close reason be any string; RFC 6455 §5.5 leaves room for 123 bytes of it.
    A longer one is cut on a character boundary instead of failing the app's close."""
    raw = reason.encode("utf-8")
    if len(raw) <= MAX_CLOSE_REASON:
        return reason
    return raw[:MAX_CLOSE_REASON].decode("utf-8", "ignore")


def accept_fields(message: Message, offered: list[str]) -> tuple[str | None, bytes]:
    """The subprotocol and extra header lines of a ``websocket.accept``, validated before
    anything is written; raises (RuntimeError, ValueError, TypeError) saying what is wrong."""
    subprotocol = message.get("subprotocol")
    if subprotocol is not None and subprotocol not in offered:
        raise RuntimeError(
            f"Subprotocol {subprotocol!r} was not offered by the client (offered: {offered})"
        )
    extra = []
    for name, value in message.get("headers") or ():
        check_header(name, value)
        if name.lower() in _RESERVED:
            raise ValueError(f"Header {name!r} is set by the WebSocket handshake")
        extra.append(b"%s: %s\r\n" % (name, value))
    return subprotocol, b"".join(extra)


def unexpected(kind: str, phase: Phase) -> UnexpectedMessage:
    """The error for a message that ``phase`` does not allow, saying what was wrong with it."""
    if kind == "websocket.send":
        when = "after 'websocket.close'" if phase is CLOSED else "before 'websocket.accept'"
        return UnexpectedMessage(f"'websocket.send' {when}")
    if kind == "websocket.close" and phase is CLOSED:
        return UnexpectedMessage("'websocket.close' sent twice")
    if kind in _ANSWERS:
        return UnexpectedMessage(f"Unexpected {kind!r}: the handshake was already answered.")
    if kind == "websocket.http.response.body":
        return UnexpectedMessage("'websocket.http.response.body' without a response start")
    return UnexpectedMessage(f"Unexpected ASGI message type {kind!r} in a WebSocket connection.")


class WebSocketProtocol(WebSocketIO):
    """One upgraded connection: the handshake, then ASGI ``receive``/``send`` for the app."""

    __slots__ = (
        "connect_delivered",
        "counted_ip",
        "denial",
        "handshake",
        "handshake_waiter",
        "opened_at",
        "pending",
        "phase",
        "scope",
        "state",
        "task",
    )

    def __init__(
        self,
        state: ServerState,
        scope: Scope,
        transport: asyncio.Transport,
    ) -> None:
        config = state.config
        super().__init__(
            state.loop,
            is_server=True,
            max_queue=config.ws_max_queue,
            ping_interval=config.ws_ping_interval,
            ping_timeout=config.ws_ping_timeout,
            close_timeout=config.ws_close_timeout,
            write_stall_timeout=config.timeout_write_stall or 0.0,
        )
        self.state = state
        self.scope = scope
        self.transport = transport
        self.counted_ip: str | None = None  # handed over by HTTPProtocol: released by us
        self.handshake: ServerHandshake | None = None
        self.pending = b""
        self.phase = HANDSHAKE
        # The receive side's own progress: websocket.connect comes first even to an app that
        # answers before it receives (as uvicorn and hypercorn do it).
        self.connect_delivered = False
        self.denial: tuple[list[bytes], list[bytes]] | None = None  # head and body, in RESPONSE
        self.handshake_waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.opened_at = 0.0  # time.monotonic() at the accept, for the access log

    def start(self, rest: bytes) -> None:
        """Validate the upgrade request and start the app; ``rest`` followed the request head."""
        scope = self.scope
        self.state.connections.add(self)  # from here on the tick drives our timers
        try:
            handshake = check_request(scope["method"], scope["http_version"], scope["headers"])
        except HandshakeError as exc:
            self.reject(exc.status, str(exc), exc.headers)
            return
        self.handshake = handshake
        self.pending = rest
        scope["type"] = "websocket"
        scope["asgi"] = ASGI_WS_VERSION
        scope["scheme"] = "wss" if scope["scheme"] in ("https", "wss") else "ws"
        del scope["method"]
        scope["subprotocols"] = handshake.subprotocols
        extensions = scope.get("extensions")
        if extensions is None:
            scope["extensions"] = {"websocket.http.response": {}}
        else:  # the request's own copy (HTTPProtocol made it): extended in place
            extensions["websocket.http.response"] = {}
        self.state.cycles.add(self)
        # The app's coroutine is the Task's own, with no wrapper frame kept for the whole life
        # of the connection; its end is handled by a done callback.
        try:
            coro = self.state.app(scope, self.receive, self.send)
        except Exception as exc:  # raised before returning an awaitable: an app error too
            coro = _failing(exc)
        if not asyncio.iscoroutine(coro):
            coro = _awaiting(coro)
        self.task = task = self.loop.create_task(coro)
        # Our own context, not a copy of the current one per connection (app_done reads no
        # context variable): one object less held by every open connection.
        task.add_done_callback(self.app_done, context=_SERVER_CONTEXT)

    def reject(self, status: int, message: str, headers: bytes = b"") -> None:
        self.phase = REJECTED
        self.handshake_done()
        logger.debug("WebSocket handshake refused: %s", message)
        self.log_access(status_line(status)[9:-2].decode("latin-1"))
        self.transport.write(error_response(status, message, self.state.default_headers + headers))
        self.close_transport()

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def handshake_data(self, data: bytes) -> None:
        """The client spoke before the app accepted: keep it for after the accept."""
        self.pending += data
        if len(self.pending) > PENDING_LIMIT and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self.state.admission.release(self.counted_ip)
        self.counted_ip = None
        WebSocketIO.connection_lost(self, exc)
        self.handshake_done()
        conn = self.conn
        if conn is not None and self.state.access_log:
            elapsed = time.monotonic() - self.opened_at
            self.log_access(
                f"closed {self.end_code} after {elapsed:.3f}s "
                f"({conn.bytes_in} bytes in, {conn.bytes_out} bytes out)"
            )

    def log_access(self, outcome: str) -> None:
        """One access-log line per handshake answer and per close, as uvicorn users read
        them: ``127.0.0.1:50000 - "WebSocket /ws" [accepted]``."""
        if not self.state.access_log:
            return
        scope = self.scope
        client = scope.get("client")
        # Escaped: behind a trusted proxy it comes from X-Forwarded-For, any visible bytes.
        client_s = escape_for_log(f"{client[0]}:{client[1]}") if client else "-"
        path = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            path += "?" + scope["query_string"].decode("latin-1")
        self.state.log_access('%s - "WebSocket %s" %s', client_s, escape_for_log(path), outcome)

    def handshake_done(self) -> None:
        """Wake a ``receive`` that was waiting for the handshake to be answered."""
        waiter = self.handshake_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- server hooks -------------------------------------------------------------------------

    def wrap_message(self, message: str | bytes) -> Message:
        if type(message) is str:
            return {"type": "websocket.receive", "text": message}
        return {"type": "websocket.receive", "bytes": message}

    def shutdown(self) -> None:
        """Graceful shutdown: RFC 6455 code 1012 ("service restart") for open connections."""
        if self.conn is not None:
            if not self.conn.closing.close_sent:
                self.start_close(CloseCode.SERVICE_RESTART, "server shutting down")
        elif self.phase in UNANSWERABLE or self.handshake is None:
            self.transport.close()

    def is_idle(self) -> bool:
        return False

    # -- the app ------------------------------------------------------------------------------

    def app_done(self, task: asyncio.Task[Any]) -> None:
        self.state.cycles.discard(self)
        if task.cancelled():  # at shutdown, or the loop is closing
            self.after_app(error=True)
            return
        exc = task.exception()
        if exc is None:
            if task.result() is not None:
                logger.error("ASGI callable returned a value other than None: %r", task.result())
            self.after_app(error=False)
        elif isinstance(exc, ClientDisconnected):
            # ASGI: the server raised it (send on a closed connection); not an app error.
            self.after_app(error=False)
        else:
            if isinstance(exc, Exception):
                logger.error("Exception in ASGI application", exc_info=exc)
            self.after_app(error=True)

    def after_app(self, error: bool) -> None:
        if self.closed:
            return
        if self.conn is not None:
            if not self.conn.closing.close_sent:
                # The app is gone: 1011 after a crash, a normal close otherwise.
                code = CloseCode.INTERNAL_ERROR if error else CloseCode.NORMAL_CLOSURE
                self.start_close(code)
        elif self.phase not in UNANSWERABLE:
            # Not answered, or a denial response the app started but never finished.
            if not error:
                logger.error("ASGI callable returned without accepting or closing the WebSocket.")
            self.reject(500, "Internal Server Error")

    async def receive(self) -> Message:
        if not self.connect_delivered:
            self.connect_delivered = True
            return dict(_CONNECT)
        if self.conn is None:
            # Not accepted yet (another task of the app is deciding): wait for the accept or
            # for the end of the connection.
            if not self.closed and self.phase not in UNANSWERABLE:
                if self.handshake_waiter is None:
                    self.handshake_waiter = self.loop.create_future()
                await self.handshake_waiter
            if self.conn is None:
                gone = self.closed or self.phase is ABANDONED  # no close frame will ever come
                return {
                    "type": "websocket.disconnect",
                    "code": CloseCode.ABNORMAL_CLOSURE if gone else 1000,
                    "reason": "",
                }
        item = self.take_event()  # (next_event inlined: no coroutine of its own while idle)
        if item is None:
            waiter = self.new_waiter()
            try:
                item = await waiter
            except asyncio.CancelledError:
                self.waiter_cancelled(waiter)
                raise
            finally:
                if self.waiter is waiter:
                    self.waiter = None
        if item is END:
            return {
                "type": "websocket.disconnect",
                "code": self.end_code,
                "reason": self.end_reason,
            }
        message: Message = item
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.send" and self.phase is CONNECTED:
            conn = self.conn
            assert conn is not None
            if self.closed or conn.closing.close_sent:
                raise ClientDisconnected("The WebSocket connection is closed")
            text = message.get("text")
            if text is not None:
                if message.get("bytes") is not None:
                    # ASGI: "Exactly one of bytes or text must be non-None."
                    raise ValueError("'websocket.send' with both 'text' and 'bytes'")
                self.send_data(conn, OP_TEXT, text)
            else:
                data = message.get("bytes")
                if data is None:
                    raise ValueError("'websocket.send' needs 'text' or 'bytes'")
                self.send_data(conn, OP_BINARY, data)
            if self.write_paused:
                await self.drain()
                if self.closed:
                    raise ClientDisconnected("The WebSocket connection is closed")
            return
        phase = self.phase
        if phase is ABANDONED:
            # ASGI: a send on a closed connection raises an OSError subclass.
            raise ClientDisconnected(f"{kind!r} after the WebSocket handshake was abandoned")
        if kind == "websocket.accept" and phase is HANDSHAKE:
            self.accept(message)
        elif kind == "websocket.close" and phase is HANDSHAKE:
            # ASGI: closing before accepting refuses the handshake with 403.
            self.check_client_present()
            self.reject(403, "Forbidden")
        elif kind == "websocket.close" and phase is CONNECTED:
            self.phase = CLOSED
            if not self.closed:
                self.start_close(
                    message.get("code", CloseCode.NORMAL_CLOSURE),
                    close_reason(message.get("reason") or ""),
                )
        elif kind == "websocket.http.response.start" and phase is HANDSHAKE:
            self.denial_start(message)
        elif kind == "websocket.http.response.body" and phase is RESPONSE:
            self.denial_body(message)
        else:
            raise unexpected(kind, phase)

    def send_data(self, conn: Connection, opcode: int, data: Any) -> None:
        """One data message (``str`` for text; bytes-like for binary, as the app gave it); the
        frame is shared with the previous send when it was the same small immutable object (a
        broadcast) and nothing is compressed."""
        if conn.deflate is None and len(data) < SHARED_FRAME_MAX:
            shared = _shared
            if shared.source is data:
                conn.send_frame(shared.frame)
                return
            if type(data) is str:
                frame = build_frame(opcode, data.encode("utf-8"))
            elif type(data) is bytes:
                frame = build_frame(opcode, data)
            else:  # a bytearray or memoryview can change under us: never shared
                conn.send_message(opcode, bytes(data))
                return
            shared.source = data
            shared.frame = frame
            conn.send_frame(frame)
            return
        if conn.writev is None:
            # The first message that may be large: from here on its frames go out as (header,
            # payload) buffers. Given only now, so an idle connection does not hold it.
            conn.writev = writev_of(self.transport)
        if type(data) is str:
            conn.send_message(opcode, data.encode("utf-8"))
        else:
            conn.send_message(opcode, data)

    def check_client_present(self) -> None:
        """An answer to the upgrade request needs the client still there to take it."""
        if self.closed:
            raise ClientDisconnected("The client disconnected during the handshake")

    def accept(self, message: Message) -> None:
        self.check_client_present()
        handshake = self.handshake
        assert handshake is not None
        try:
            subprotocol, extra = accept_fields(message, handshake.subprotocols)
        except (TypeError, ValueError, RuntimeError) as exc:
            short = "subprotocol not offered" if isinstance(exc, RuntimeError) else "invalid accept"
            self.abandon_handshake(f"invalid 'websocket.accept': {exc}", short)
            raise
        config = self.state.config
        deflate = None
        extension_header = None
        if config.ws_per_message_deflate and handshake.extensions:
            negotiated = negotiate_server(
                handshake.extensions,
                window_bits=config.ws_deflate_window_bits,
                mem_level=config.ws_deflate_mem_level,
            )
            if negotiated is not None:
                extension_header, deflate = negotiated
        transport = self.transport
        transport.write(
            build_accept_response(
                handshake.key,
                self.state.default_headers,
                subprotocol,
                extension_header,
                extra,
            )
        )
        self.phase = CONNECTED
        self.handshake = None  # not needed any more; keeps the connection small
        if self.state.access_log:
            self.opened_at = time.monotonic()
            self.log_access("[accepted]")
        conn = Connection(
            Side.SERVER,
            transport.write,  # writev: given by send_data when a large message comes
            max_size=config.ws_max_size,
            max_fragments=config.ws_max_fragments,
            deflate=deflate,
        )
        self.attach(transport, conn, config.ws_write_limit)
        if self.read_paused:
            self.read_paused = False
            transport.resume_reading()
        if self.pending:
            data, self.pending = self.pending, b""
            self.data_received(data)
        self.handshake_done()
        if self.state.shutting_down:
            self.start_close(CloseCode.SERVICE_RESTART, "server shutting down")

    def abandon_handshake(self, why: str, short: str) -> None:
        """Fail the opening handshake closed: the app's answer was invalid, so the connection
        closes without an answer (never a 101, nor the 403 a later ``websocket.close`` would
        have produced: RFC 6455 §4.2.2 leaves no valid response), and the log says why."""
        logger.error("WebSocket handshake abandoned, connection closed unanswered: %s", why)
        self.phase = ABANDONED
        self.handshake_done()
        self.log_access(f"[abandoned: {short}]")
        self.close_transport()

    def denial_start(self, message: Message) -> None:
        """WebSocket Denial Response extension: an HTTP response instead of the upgrade."""
        self.check_client_present()
        try:
            head = [final_status_line(message.get("status")), self.state.default_headers]
            for name, value in message.get("headers") or ():
                check_header(name, value)
                if name.lower() in (b"content-length", b"transfer-encoding", b"connection"):
                    continue  # the body is framed by us
                head.append(b"%s: %s\r\n" % (name, value))
        except (TypeError, ValueError) as exc:
            # The app chose to answer with HTTP, and its answer is broken: a 500 instead, as
            # for an HTTP response, at once (a later websocket.close must not become a 403).
            logger.error("Invalid WebSocket denial response, 500 sent instead: %s", exc)
            self.reject(500, "Internal Server Error")
            raise
        self.denial = (head, [])
        self.phase = RESPONSE

    def denial_body(self, message: Message) -> None:
        assert self.denial is not None
        head, body = self.denial
        body.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        payload = b"".join(body)
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(payload))
        head.append(payload)
        self.phase = REJECTED
        self.log_access(head[0][9:-2].decode("latin-1"))
        self.transport.write(b"".join(head))
        self.close_transport()

    def __repr__(self) -> str:
        return f"<WebSocketProtocol {self.scope.get('path')!r} client={self.scope.get('client')}>"
