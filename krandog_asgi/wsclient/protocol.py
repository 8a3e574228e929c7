"""The client's asyncio protocol: the opening handshake, then the shared ``WebSocketIO`` glue.

Both public APIs (``connect`` and the browser-style ``WebSocket``) run on ``ClientProtocol``; it
adds to ``WebSocketIO`` only what a client needs: writing the upgrade request and checking the
response, one ``TimerHandle`` for the deadlines the server polls from its tick, and user pings.
"""

from __future__ import annotations

import asyncio
import re
import ssl as ssl_module
import sys
from base64 import b64encode
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import httptools

from krandog_asgi.transport.flow import writev_of
from krandog_asgi.transport.websocket_io import WebSocketIO
from krandog_asgi.websocket.connection import (
    DEFAULT_MAX_FRAGMENTS,
    Closing,
    Connection,
    InvalidState,
    Side,
)
from krandog_asgi.websocket.deflate import client_offer
from krandog_asgi.websocket.frames import OP_BINARY, OP_TEXT, CloseCode, build_close_payload
from krandog_asgi.websocket.handshake import (
    ClientHandshake,
    HandshakeError,
    build_client_request,
    check_request_headers,
    check_response,
    check_subprotocols,
    generate_key,
)
from krandog_asgi.wsclient.errors import (
    ConnectionClosed,
    HandshakeRefused,
    InvalidHandshake,
    OpenTimeout,
)
from krandog_asgi.wsclient.url import WebSocketURL, parse_url

__all__ = ["ClientOptions", "ClientProtocol", "HeadersLike", "open_connection", "parse_target"]

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]

USER_AGENT = f"krandog-asgi/0.1.0 Python/{sys.version_info.major}.{sys.version_info.minor}"
# Frames per message: max_size bounds the bytes, but not a stream of empty frames.
MAX_FRAGMENTS = DEFAULT_MAX_FRAGMENTS
# Enough to read any sane response head, and a useful excerpt of a refusal's body.
MAX_RESPONSE_HEAD = 64 * 1024
MAX_REFUSAL_BODY = 64 * 1024


@dataclass(frozen=True)
class ClientOptions:
    """Everything about a client connection except its URL; validated on creation."""

    subprotocols: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    origin: str | None = None
    user_agent: str | None = USER_AGENT
    compression: str | None = "deflate"
    open_timeout: float | None = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = 10.0
    max_size: int | None = 16 * 1024 * 1024
    max_fragments: int | None = MAX_FRAGMENTS
    max_queue: int = 16
    write_limit: int = 64 * 1024
    fragment_size: int | None = None
    ssl: ssl_module.SSLContext | None = None
    server_hostname: str | None = None
    request_headers: tuple[tuple[str, str], ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        if self.compression not in ("deflate", None):
            raise ValueError(f"compression must be 'deflate' or None, not {self.compression!r}")
        check_subprotocols(self.subprotocols)
        extra = []
        names = {name.lower() for name, _ in self.headers}
        if self.origin is not None and "origin" not in names:
            extra.append(("Origin", self.origin))
        if self.user_agent is not None and "user-agent" not in names:
            extra.append(("User-Agent", self.user_agent))
        object.__setattr__(
            self, "request_headers", tuple(check_request_headers([*extra, *self.headers]))
        )
        if self.close_timeout is None:
            # The closing handshake and the TCP close are always bounded (None would crash later).
            raise ValueError("close_timeout must be a number of seconds, not None")
        for name in ("open_timeout", "ping_interval", "ping_timeout", "close_timeout"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        for name in ("max_size", "max_fragments", "fragment_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or None), got {value}")
        if self.max_queue < 1 or self.write_limit < 1:
            raise ValueError("max_queue and write_limit must be at least 1")

    @staticmethod
    def normalize_headers(headers: HeadersLike | None) -> tuple[tuple[str, str], ...]:
        if headers is None:
            return ()
        items = headers.items() if isinstance(headers, Mapping) else headers
        return tuple((name, value) for name, value in items)


_default_ssl_context: ssl_module.SSLContext | None = None


def default_ssl_context() -> ssl_module.SSLContext:
    """Verification and hostname checking on; built once, as loading the CA store costs."""
    global _default_ssl_context
    if _default_ssl_context is None:
        _default_ssl_context = ssl_module.create_default_context()
    return _default_ssl_context


class ClientProtocol(WebSocketIO):
    """One client connection: the HTTP upgrade, then ``WebSocketIO`` on the same transport."""

    __slots__ = (
        "body",
        "closed_waiter",
        "handshake",
        "handshake_waiter",
        "head_size",
        "key",
        "on_drained",
        "options",
        "parser",
        "response_complete",
        "response_headers",
        "sent_close",
        "status",
        "target",
        "timer",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, target: WebSocketURL, options: ClientOptions
    ) -> None:
        super().__init__(
            loop,
            is_server=False,
            max_queue=options.max_queue,
            ping_interval=options.ping_interval,
            ping_timeout=options.ping_timeout,
            close_timeout=options.close_timeout,
        )
        self.target = target
        self.options = options
        self.on_drained: Callable[[], None] | None = None  # the browser API's bufferedAmount
        self.key = generate_key()
        self.parser: Any = httptools.HttpResponseParser(self)
        self.status = 0
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.response_complete = False
        self.head_size = 0
        self.body = bytearray()
        self.handshake: ClientHandshake | None = None
        self.handshake_waiter: asyncio.Future[None] = loop.create_future()
        self.closed_waiter: asyncio.Future[None] = loop.create_future()
        self.timer: asyncio.TimerHandle | None = None
        self.sent_close: tuple[int, str] | None = None

    def request_bytes(self) -> bytes:
        target, options = self.target, self.options
        headers = list(options.request_headers)
        if target.username is not None:
            credentials = f"{target.username}:{target.password or ''}".encode()
            headers.append(("Authorization", "Basic " + b64encode(credentials).decode("ascii")))
        return build_client_request(
            target.resource,
            target.host_header,
            self.key,
            subprotocols=options.subprotocols,
            extensions=client_offer(window_bits=None) if options.compression else None,
            headers=headers,
        )

    # -- the opening handshake ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport.write(self.request_bytes())

    def handshake_data(self, data: bytes) -> None:
        """Feed the server's answer to the upgrade request into the HTTP parser."""
        if self.parser is None:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.finish_handshake(data[exc.args[0] :])
            return
        except httptools.HttpParserError as exc:
            if self.status == 101:
                self.finish_handshake(b"")  # a 101 without "Upgrade": check_response says so
            else:
                self.fail_handshake(InvalidHandshake(f"invalid HTTP response: {exc}"))
            return
        if not self.status:
            self.head_size += len(data)
            if self.head_size > MAX_RESPONSE_HEAD:
                self.fail_handshake(InvalidHandshake("the response head is larger than 64 KiB"))
        elif self.status != 101:
            if self.response_complete or len(self.body) >= MAX_REFUSAL_BODY:
                self.fail_handshake(self.refusal())
        elif self.response_complete:
            self.finish_handshake(b"")

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.response_headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.body += body[: MAX_REFUSAL_BODY - len(self.body)]

    def on_message_complete(self) -> None:
        self.response_complete = True

    def refusal(self) -> HandshakeRefused:
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.response_headers]
        return HandshakeRefused(self.status, headers, bytes(self.body))

    def fail_handshake(self, exc: Exception) -> None:
        self.parser = None
        if not self.handshake_waiter.done():
            self.handshake_waiter.set_exception(exc)
        self.transport.abort()

    def finish_handshake(self, rest: bytes) -> None:
        self.parser = None
        if self.handshake_waiter.done():
            # The open was cancelled (open_timeout, close() while CONNECTING) and the 101 came
            # before the transport was aborted: nobody will use this connection.
            self.transport.abort()
            return
        options = self.options
        try:
            handshake = check_response(
                self.response_headers,
                self.key,
                subprotocols=options.subprotocols,
                deflate_offered=options.compression is not None,
            )
        except HandshakeError as exc:
            self.fail_handshake(InvalidHandshake(f"Invalid handshake response: {exc}"))
            return
        self.handshake = handshake
        transport = self.transport
        conn = Connection(
            Side.CLIENT,
            transport.write,
            writev=writev_of(transport),
            max_size=options.max_size,
            max_fragments=options.max_fragments,
            deflate=handshake.deflate,
        )
        self.attach(transport, conn, options.write_limit)
        self.handshake_waiter.set_result(None)
        if rest:
            self.data_received(rest)

    # -- connection state ---------------------------------------------------------------------

    def resume_writing(self) -> None:
        WebSocketIO.resume_writing(self)
        if self.on_drained is not None:
            self.on_drained()

    def connection_lost(self, exc: Exception | None) -> None:
        WebSocketIO.connection_lost(self, exc)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.handshake_waiter.done():
            if self.status and self.status != 101:
                self.handshake_waiter.set_exception(self.refusal())
            else:
                reason = f": {exc}" if exc else ""
                self.handshake_waiter.set_exception(
                    InvalidHandshake(
                        f"The server closed the connection during the handshake{reason}"
                    )
                )
        if not self.closed_waiter.done():
            self.closed_waiter.set_result(None)

    async def wait_closed(self) -> None:
        """Wait until the transport is gone (shielded: cancelling the waiter does not cancel it)."""
        await asyncio.shield(self.closed_waiter)

    @property
    def closed_cleanly(self) -> bool:
        """RFC 6455 §7.1.4: both close frames went through and we did not fail the connection."""
        conn = self.conn
        return conn is not None and conn.closing is Closing.CLOSED

    def ping_error(self) -> Exception:
        return self.closed_error()

    def closed_error(self) -> ConnectionClosed:
        """The exception for using a connection that is closed (or closing, by our side)."""
        if self.ended:
            return ConnectionClosed.for_code(self.end_code, self.end_reason)
        if self.sent_close is not None:
            return ConnectionClosed.for_code(*self.sent_close)
        return ConnectionClosed.for_code(CloseCode.ABNORMAL_CLOSURE, "")

    # -- sending ------------------------------------------------------------------------------

    def send_data(self, data: str | bytes | bytearray | memoryview) -> None:
        """Queue one message on the transport; InvalidState once our close frame has gone."""
        conn = self.conn
        assert conn is not None
        if isinstance(data, str):
            payload = data.encode("utf-8")
            opcode = OP_TEXT
        elif isinstance(data, bytes):
            payload = data
            opcode = OP_BINARY
        elif isinstance(data, bytearray | memoryview):
            payload = bytes(data)
            opcode = OP_BINARY
        else:
            raise TypeError(f"A message must be str or bytes-like, not {type(data).__name__}")
        if self.closed:
            raise InvalidState("the connection is closed")
        conn.send_message(opcode, payload, self.options.fragment_size)

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (idempotent); ValueError for a code or reason that cannot
        be sent."""
        conn = self.conn
        if conn is None or conn.closing.close_sent or self.closed:
            return
        build_close_payload(code, reason)  # ValueError before any state changes
        self.sent_close = (code, reason)
        self.start_close(code, reason)

    # -- timers -------------------------------------------------------------------------------

    def schedule_deadline(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_at(self.deadline, self.deadline_reached)

    def deadline_reached(self) -> None:
        self.timer = None
        if self.deadline:
            self.on_deadline(self.loop.time())


def parse_target(url: str, options: ClientOptions) -> WebSocketURL:
    """Check the URL and its fit with the options before any I/O (InvalidURL, ValueError)."""
    target = parse_url(url)
    if options.ssl is not None and not target.secure:
        raise ValueError(f"An SSL context was given for the unencrypted URL {target.url}")
    return target


async def open_connection(target: WebSocketURL, options: ClientOptions) -> ClientProtocol:
    """Connect, do the TLS and opening handshakes, and return the open protocol.

    Raises OpenTimeout, HandshakeRefused, InvalidHandshake, or an OSError naming the URL.
    """
    if options.open_timeout is None:
        return await _open(target, options)
    try:
        return await asyncio.wait_for(_open(target, options), options.open_timeout)
    except asyncio.TimeoutError:
        raise OpenTimeout(
            f"Opening {target.url} took longer than open_timeout={options.open_timeout} s"
        ) from None


async def _open(target: WebSocketURL, options: ClientOptions) -> ClientProtocol:
    loop = asyncio.get_running_loop()
    context = options.ssl
    if target.secure and context is None:
        context = default_ssl_context()
    protocol = ClientProtocol(loop, target, options)
    # Python 3.12+ can report every address's error (asyncio's loop; uvloop cannot).
    extra: dict[str, Any] = {"all_errors": True} if _reports_all_errors(loop) else {}
    try:
        transport, _ = await loop.create_connection(
            lambda: protocol,
            target.host,
            target.port,
            ssl=context,
            server_hostname=(options.server_hostname or target.host) if context else None,
            **extra,
        )
    except ssl_module.SSLError:
        raise  # its message already names the certificate problem
    except OSError as exc:
        raise connect_error(target, [exc]) from exc
    except Exception as exc:  # all_errors: an ExceptionGroup of the OSErrors of each address
        errors = getattr(exc, "exceptions", None)
        if not errors or not all(isinstance(e, OSError) for e in errors):
            raise
        raise connect_error(target, list(errors)) from exc
    try:
        await protocol.handshake_waiter
    except BaseException:
        transport.abort()
        raise
    return protocol


def _reports_all_errors(loop: asyncio.AbstractEventLoop) -> bool:
    return sys.version_info >= (3, 12) and isinstance(loop, asyncio.BaseEventLoop)


_ERRNO = re.compile(r"\[Errno (-?\d+)\]")


def connect_error(target: WebSocketURL, errors: list[OSError]) -> OSError:
    """One OSError naming the URL for the failure of every address tried, of the subclass
    of their common errno: a dual-stack "localhost" refused on ::1 and on 127.0.0.1 is still a
    ConnectionRefusedError (asyncio otherwise gives "Multiple exceptions" without an errno)."""
    first = errors[0]
    detail = "; ".join(str(e.strerror or e) for e in errors)
    message = f"Cannot connect to {target.url}: {detail}"
    numbers: set[int | None] = {e.errno for e in errors}
    if len(errors) == 1 and first.errno is None:
        # Before 3.12, and on uvloop: only the text of "Multiple exceptions: [Errno 111] ..."
        numbers = {int(n) for n in _ERRNO.findall(str(first))} or {None}
    if len(numbers) != 1 or None in numbers:
        return OSError(message)
    number = numbers.pop()
    if all(type(e) is type(first) for e in errors) and first.errno == number:
        return type(first)(number, message)  # keeps socket.gaierror and the like
    return OSError(number, message)  # OSError picks the subclass: ConnectionRefusedError...
