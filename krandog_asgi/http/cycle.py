"""The ASGI ``http`` exchange of one request: ``receive`` and ``send`` as two small state machines.

``RequestState`` is the request body's side (what ``receive`` can still deliver, and whether the
client is gone); ``ResponseState`` is the app's side (what ``send`` accepts). ``send`` dispatches
on the message type and the response state, and a message the state does not allow raises
``UnexpectedMessage``. Framing is ``ResponseWriter``'s; the connection (``HTTPProtocol``) owns
parsing, ordering and flow control and is seen here only through ``Connection``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from krandog_asgi.asgi_types import UnexpectedMessage
from krandog_asgi.http.request_head import RequestError
from krandog_asgi.http.response import (
    ClientDisconnected,
    ContentTooLong,
    ResponseWriter,
    error_response,
    escape_for_log,
    status_line,
)
from krandog_asgi.transport.eager import start_eagerly

if TYPE_CHECKING:
    from krandog_asgi.asgi_types import ASGIApp, Message, Scope
    from krandog_asgi.config import Config
    from krandog_asgi.process.state import ServerState

__all__ = ["Connection", "RequestCycle", "RequestState", "ResponseState"]

logger = logging.getLogger("krandog_asgi.error")

HIGH_WATER = 64 * 1024  # request body bytes buffered before we stop reading the socket
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class RequestState(enum.Enum):
    """What ``receive`` has left to give."""

    BODY = 1  # more of the body may still arrive
    COMPLETE = 2  # the body is all here; its last ``http.request`` is not yet delivered
    DELIVERED = 3  # every ``http.request`` went out; ``receive`` now waits for the end
    DISCONNECTED = 4  # the client is gone (or the response was cut off): ``send`` raises


class ResponseState(enum.Enum):
    """What ``send`` accepts next."""

    START = 1  # ``http.response.start``
    BODY = 2  # ``http.response.body`` (the head may still wait in ``pending_head``)
    DONE = 3  # nothing: further messages are ignored


# Module constants: a global load and an identity test on the hot path.
_BODY, _COMPLETE, _DELIVERED, _DISCONNECTED = RequestState
_START, _SENDING, _DONE = ResponseState


class Connection(Protocol):
    """What a request cycle reads from and asks of its connection (``HTTPProtocol``)."""

    state: ServerState
    config: Config
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: tuple[str, int] | None
    cycle: RequestCycle | None
    pipeline: deque[RequestCycle]
    eof: bool
    read_paused: bool
    write_paused: bool

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    async def drain(self) -> None: ...

    def on_cycle_done(self, cycle: RequestCycle) -> None: ...

    def start_body_deadline(self, cycle: RequestCycle) -> None: ...


class RequestCycle(ResponseWriter):
    """One request and its response: the ASGI ``receive``/``send`` pair for an ``http`` scope."""

    __slots__ = (
        "body",
        "body_size",
        "expect_continue",
        "protocol",
        "received",
        "request_state",
        "response_state",
        "scope",
        "start_time",
        "task",
        "waiter",
    )

    def __init__(
        self, protocol: Connection, scope: Scope, keep_alive: bool, expect_continue: bool
    ) -> None:
        self.protocol = protocol
        self.transport = protocol.transport
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.body: list[bytes] = []
        self.body_size = 0  # buffered, for flow control
        self.received = 0  # in total, for --limit-request-body and the body deadline
        self.request_state = _BODY
        self.response_state = _START
        self.waiter: asyncio.Future[None] | None = None
        self.pending_head = b""
        self.bytes_sent = 0
        self.status = 0  # 0 until a response is started: logged as "-"
        self.task: asyncio.Task[None] | None = None
        self.start_time: float  # set by start() when access logging is on

    def start(self, app: ASGIApp, eager: bool = False) -> None:
        """Run the app in a Task. ``eager`` (Python 3.12+, from ``ServerState.start_deferred``,
        so outside any parser callback and any other app): an eager Task, whose first step
        runs now."""
        protocol = self.protocol
        if protocol.state.access_log:
            self.start_time = time.perf_counter()
        if eager:
            self.task = start_eagerly(protocol.loop, self.run_asgi(app))
        else:
            self.task = protocol.loop.create_task(self.run_asgi(app))

    async def run_asgi(self, app: ASGIApp) -> None:
        state = self.protocol.state
        cycles = state.cycles
        limit = state.config.limit_concurrency
        if limit is not None and (len(cycles) >= limit or len(state.connections) > limit):
            logger.warning("Exceeded concurrency limit.")
            app = _service_unavailable
        cycles.add(self)
        try:
            result = await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            self.on_app_error(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            if result is not None:
                logger.error("ASGI callable returned a value other than None: %r", result)
            response = self.response_state
            if response is not _DONE and self.request_state is not _DISCONNECTED:
                if response is _START:
                    logger.error("ASGI callable returned without starting response.")
                    self.send_500()
                else:
                    logger.error("ASGI callable returned without completing response.")
                    if self.pending_head:
                        self.send_500()  # nothing was written yet: the client can still be told
                    else:
                        self.abort()
        finally:
            cycles.discard(self)

    def on_app_error(self, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError):
            if self.response_state is not _DONE:
                self.abort()
            return
        if isinstance(exc, ClientDisconnected) and self.request_state is _DISCONNECTED:
            return
        logger.error("Exception in ASGI application", exc_info=exc)
        response = self.response_state
        if response is _START or self.pending_head:
            # Nothing on the wire yet (the head waits for the first body chunk), so the
            # response can still be replaced by an error (ASGI: "leeway to replace").
            self.send_500()
        elif response is _SENDING:
            self.abort()

    def send_500(self) -> None:
        if self.request_state is _DISCONNECTED:
            return
        self.keep_alive = False
        self.pending_head = b""
        self.response_state = _DONE
        self.status = 500
        data = error_response(
            500,
            "Internal Server Error",
            self.protocol.state.default_headers,
            head=self.scope["method"] == "HEAD",  # RFC 9110 §9.3.2: never content for HEAD
        )
        self.bytes_sent = len(data)
        self.transport.write(data)
        self.finish()

    def abort(self) -> None:
        """The response cannot be completed: closing is the only honest signal left."""
        self.keep_alive = False
        self.pending_head = b""
        self.response_state = _DONE
        if self.request_state is not _DISCONNECTED:
            self.transport.close()
            self.request_state = _DISCONNECTED  # the connection is gone: later sends raise
        self.finish()

    # -- request body (parser side) ---------------------------------------------------------

    def on_body(self, chunk: bytes) -> None:
        self.received += len(chunk)
        limit = self.protocol.config.limit_request_body
        if limit is not None and self.received > limit:
            raise RequestError(413, "Request body too large.")
        if self.response_state is _DONE or self.request_state is _DISCONNECTED:
            return  # nobody will read it; keep parsing to reach the next request
        self.body.append(chunk)
        self.body_size += len(chunk)
        if self.body_size > HIGH_WATER:
            self.protocol.pause_reading()
        self.wake()

    def on_body_complete(self) -> None:
        if self.request_state is _BODY:
            self.request_state = _COMPLETE
        self.wake()

    def on_disconnect(self) -> None:
        self.request_state = _DISCONNECTED
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- ASGI receive -----------------------------------------------------------------------

    async def receive(self) -> Message:
        if self.expect_continue and self.request_state is _BODY and self.response_state is _START:
            self.expect_continue = False
            self.transport.write(CONTINUE)
            self.protocol.start_body_deadline(self)  # the client may send it from now on
        while self.request_state is not _DISCONNECTED and self.response_state is not _DONE:
            if self.body or self.request_state is _COMPLETE:
                return self.take_body()
            protocol = self.protocol
            if protocol.eof:
                # The client half-closed and all it sent has been read: waiting for more means
                # waiting for a client that is gone.
                self.request_state = _DISCONNECTED
                self.transport.close()
                break
            if protocol.read_paused and protocol.cycle is self and not protocol.pipeline:
                protocol.resume_reading()
            waiter = self.waiter = protocol.loop.create_future()
            await waiter
        return {"type": "http.disconnect"}

    def take_body(self) -> Message:
        body = self.body
        data = body[0] if len(body) == 1 else b"".join(body)
        self.body = []
        self.body_size = 0
        more = self.request_state is _BODY
        if not more:
            self.request_state = _DELIVERED
        return {"type": "http.request", "body": data, "more_body": more}

    # -- ASGI send --------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.request_state is _DISCONNECTED:
            raise ClientDisconnected("The client disconnected")
        response = self.response_state
        if kind == "http.response.body" and response is _SENDING:
            more_body = message.get("more_body", False)
            try:
                self.write_body(message.get("body", b""), more_body)
            except ContentTooLong:
                if self.pending_head:
                    self.send_500()  # nothing written yet: say so instead of a bare close
                else:
                    self.abort()
                raise
            if not more_body:
                self.response_state = _DONE
                self.finish()
            if self.protocol.write_paused:
                await self.protocol.drain()
                if self.request_state is _DISCONNECTED:
                    raise ClientDisconnected("The client disconnected")
        elif kind == "http.response.start" and response is _START:
            self.start_response(message)
        elif response is _DONE and (kind == "http.response.body" or kind == "http.response.start"):
            return  # ASGI: "any further messages on the channel will be ignored"
        else:
            raise UnexpectedMessage(_unexpected(kind))

    def start_response(self, message: Message) -> None:
        protocol = self.protocol
        scope = self.scope
        self.frame_head(
            message,
            protocol.state.default_headers,
            scope["method"] == "HEAD",
            scope["http_version"] == "1.0",
            self.expect_continue and self.request_state is _BODY,
        )
        self.response_state = _SENDING
        # Written with the first body chunk (one write, one packet), or on the next loop
        # iteration if the app awaits something else first.
        pending = protocol.state.pending_heads
        pending.append(self)
        if len(pending) == 1:
            protocol.loop.call_soon(protocol.state.flush_heads)

    def flush_head(self) -> None:
        head = self.pending_head
        if head and self.request_state is not _DISCONNECTED:
            self.pending_head = b""
            self.transport.write(head)

    def finish(self) -> None:
        if self.waiter is not None:
            self.wake()
        protocol = self.protocol
        state = protocol.state
        state.total_requests += 1
        if state.on_limit_reached is not None:
            state.count_request()
        if state.access_log:
            self.log_access()
        protocol.on_cycle_done(self)

    def log_access(self) -> None:
        scope = self.scope
        client = scope.get("client")
        client_s = f"{client[0]}:{client[1]}" if client else "-"
        if client is not self.protocol.client:
            client_s = escape_for_log(client_s)  # from X-Forwarded-For: any visible bytes
        path = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            path += "?" + scope["query_string"].decode("latin-1")
        # perf_counter, not loop.time(): uvloop's clock has millisecond steps, which made
        # every fast request "0.0ms" or "1.0ms".
        duration = (time.perf_counter() - self.start_time) * 1000.0
        self.protocol.state.log_access(
            '%s - "%s %s HTTP/%s" %s %d %s',
            client_s,
            scope["method"],
            escape_for_log(path),
            scope["http_version"],
            # "-": cancelled or cut off before any response (shutdown, a client that left)
            status_text(self.status) if self.status else "-",
            self.bytes_sent,
            format_duration(duration),
        )


_STATUS_TEXT: dict[int, str] = {}


def status_text(status: int) -> str:
    """``200 OK``, as the access log shows a status (uvicorn users read the phrase there)."""
    text = _STATUS_TEXT.get(status)
    if text is None:
        text = _STATUS_TEXT[status] = status_line(status)[9:-2].decode("latin-1").rstrip()
    return text


def format_duration(ms: float) -> str:
    """Three significant digits or more: ``0.183ms``, ``4.27ms``, ``52.1ms``, ``1503ms``."""
    if ms < 1.0:
        return f"{ms:.3f}ms"
    if ms < 10.0:
        return f"{ms:.2f}ms"
    if ms < 100.0:
        return f"{ms:.1f}ms"
    return f"{ms:.0f}ms"


def _unexpected(kind: object) -> str:
    """The error text for a message ``send`` refuses (the state is implied by the type)."""
    if kind == "http.response.body":
        return "Unexpected ASGI message 'http.response.body' before 'http.response.start'."
    if kind == "http.response.start":
        return "Unexpected ASGI message 'http.response.start' sent twice."
    return f"Unexpected ASGI message type {kind!r} in an HTTP connection."


async def _service_unavailable(scope: Scope, receive: Any, send: Any) -> None:
    body = b"Service Unavailable"
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
