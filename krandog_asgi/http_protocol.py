"""HTTP/1.1 over an asyncio transport: httptools parses, ``RequestCycle`` speaks ASGI ``http``.

One ``HTTPProtocol`` per connection owns the parser, the timers (through ``ServerState.tick``),
flow control and the order of pipelined requests. Each request gets a ``RequestCycle``: the
scope, the ``receive``/``send`` callables and the response framing. A WebSocket upgrade hands
the parsed request and any bytes after it to ``ws_protocol`` without re-parsing.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote_to_bytes

import httptools

from krandog_asgi._abnf import HOST, TOKEN_PATTERN
from krandog_asgi.http.proxy import apply_proxy_headers
from krandog_asgi.http.response import (
    FINAL_STATUS_LINES,
    ClientDisconnected,
    check_header,
    error_response,
    escape_for_log,
    final_status_line,
)
from krandog_asgi.transport.flow import WriteFlowControl

if TYPE_CHECKING:
    from krandog_asgi.asgi_types import ASGIApp, Message, Scope
    from krandog_asgi.process.state import ServerState

__all__ = ["HTTPProtocol", "RequestCycle"]

logger = logging.getLogger("krandog_asgi.error")
access_logger = logging.getLogger("krandog_asgi.access")

HIGH_WATER = 64 * 1024  # request body bytes buffered before we stop reading the socket
LINGER = 2.0
# Pipelined requests parsed ahead of the one in flight before parsing stops for a while.
PIPELINE_LIMIT = 32
FEED_SLICE = 4096  # seconds we keep draining input after an error answer before closing
ASGI_VERSION = {"version": "3.0", "spec_version": "2.5"}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
CHUNKED = b"transfer-encoding: chunked\r\n"
CLOSE = b"connection: close\r\n"
KEEP_ALIVE = b"connection: keep-alive\r\n"
LAST_CHUNK = b"0\r\n\r\n"
CRLF = b"\r\n"
METHODS: dict[bytes, str] = {}

# Request header names the server looks at while building the scope.
_HOST, _EXPECT, _TE, _CL, _UPGRADE, _FORWARDED = 1, 2, 3, 4, 5, 6
_REQUEST_HEADERS = {
    b"host": _HOST,
    b"expect": _EXPECT,
    b"transfer-encoding": _TE,
    b"content-length": _CL,
    b"upgrade": _UPGRADE,
    b"x-forwarded-for": _FORWARDED,
    b"x-forwarded-proto": _FORWARDED,
}

# Response header names the server interprets; everything else passes through untouched.
_CONTENT_LENGTH, _CONNECTION, _TRANSFER_ENCODING, _SERVER, _DATE = 1, 2, 3, 4, 5
_SPECIAL_HEADERS = {
    b"content-length": _CONTENT_LENGTH,
    b"connection": _CONNECTION,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"server": _SERVER,
    b"date": _DATE,
}


class _Reject(Exception):
    """Raised from a parser callback to stop parsing and answer with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# Host values already validated (clients repeat them); None stands for "no Host" (HTTP/1.0).
_GOOD_HOSTS: set[bytes | None] = {None}
_ABSOLUTE_SCHEMES = {b"http", b"https", b"ws", b"wss"}


_METHOD_TOKEN_RE = re.compile(rb"[\r\n]*(%s) " % TOKEN_PATTERN.encode("ascii"))


def _unknown_method(head: bytes) -> bool:
    """Whether the request line at the start of ``head`` has a method that is a valid token
    the parser does not know (501), as opposed to garbage (400). Only runs on the error path."""
    match = _METHOD_TOKEN_RE.match(head)
    if match is None:
        return False
    probe = httptools.HttpRequestParser(_Ignore())
    try:
        probe.feed_data(match.group(1) + b" / HTTP/1.1\r\n")
    except httptools.HttpParserInvalidMethodError:
        return True
    except httptools.HttpParserError:
        pass
    return False


class _Ignore:
    """A parser callback object that wants no callbacks."""


def _check_host(host: bytes | None) -> None:
    if host is None or HOST.fullmatch(host) is None:
        raise _Reject(400, "Invalid Host header.")
    if len(_GOOD_HOSTS) >= 256:
        _GOOD_HOSTS.clear()
        _GOOD_HOSTS.add(None)
    _GOOD_HOSTS.add(host)


def _absolute_target(url: bytes) -> tuple[bytes, bytes]:
    """``http://host:port/path?q`` -> (``/path?q``, ``host:port``); anything else is a 400."""
    scheme, sep, rest = url.partition(b"://")
    if not sep or scheme.lower() not in _ABSOLUTE_SCHEMES:
        raise _Reject(400, "Invalid request target.")
    end = len(rest)
    for delim in b"/?#":
        pos = rest.find(delim)
        if 0 <= pos < end:
            end = pos
    authority, target = rest[:end], rest[end:]
    if not authority or b"@" in authority or HOST.fullmatch(authority) is None:
        raise _Reject(400, "Invalid request target.")
    if target[:1] != b"/":
        target = b"/" + target
    return target, authority


class HTTPProtocol(WriteFlowControl, asyncio.Protocol):
    __slots__ = (
        "app",
        "backlog",
        "body_seen",
        "client",
        "closed",
        "config",
        "cycle",
        "deadline",
        "deadline_is_header",
        "discarding",
        "eof",
        "failed",
        "feed_len",
        "gap",
        "head_bytes",
        "head_slack",
        "headers",
        "loop",
        "parser",
        "parsing",
        "pipeline",
        "read_paused",
        "reading_head",
        "scheme",
        "server",
        "server_addr",
        "state",
        "transport",
        "trusted_peer",
        "upgrade",
        "url",
    )

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.config = state.config
        self.app = state.app
        self.loop = state.loop
        self.cycle: RequestCycle | None = None  # the cycle whose response is being produced
        self.parsing: RequestCycle | None = None  # the cycle whose body is being parsed
        self.pipeline: deque[RequestCycle] = deque()
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.reading_head = True
        # Bytes of the head being read: counted per read, so an upper bound. ``head_slack``
        # bounds the part of it that came in the read which also ended the previous request.
        self.head_bytes = 0
        self.head_slack = 0
        self.feed_len = 0
        # Bytes of consecutive reads inside a body that carried no content (chunk framing,
        # extensions, trailers): bounded like a header block.
        self.gap = 0
        self.body_seen = False
        self.deadline = 0.0
        self.deadline_is_header = False
        self.read_paused = False
        WriteFlowControl.__init__(self)
        self.upgrade: tuple[Scope, bytes] | None = None
        self.closed = False
        self.discarding = False  # input after a refused request is read and dropped
        self.eof = False  # the client half-closed: answer what is complete, then close
        self.failed: bytes | None = None  # an error answer waiting for the responses before it
        self.backlog = b""  # unparsed input held back while the pipeline is full

    # -- connection lifecycle ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast("asyncio.Transport", transport)
        self.state.connections.add(self)
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        if isinstance(sock, tuple):
            self.server_addr: tuple[str, int | None] | None = (str(sock[0]), int(sock[1]))
        elif isinstance(sock, str) and sock:
            self.server_addr = (sock, None)
        else:
            self.server_addr = None
        self.scheme = "https" if transport.get_extra_info("sslcontext") is not None else "http"
        config = self.config
        self.trusted_peer = config.proxy_headers and config.is_trusted_proxy(
            self.client[0] if self.client else (sock if isinstance(sock, str) else None)
        )
        self.parser = httptools.HttpRequestParser(self)
        # Version digits are checked by us (1.x served as 1.1, 2+ gets 505); data after a
        # `Connection: close` request is ignored instead of being an error.
        self.parser.set_dangerous_leniencies(lenient_version=True, lenient_data_after_close=True)
        self.set_keep_alive_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connections.discard(self)
        for cycle in (self.cycle, self.parsing, *self.pipeline):
            if cycle is not None:
                cycle.on_disconnect()
        self.pipeline.clear()
        self.deadline = 0.0
        self.release_drain()

    def eof_received(self) -> bool | None:
        """The client shut down its sending side.

        Requests received in full are still answered (a half-close often just means "that was
        my last request"); a partial head is dropped; a request whose body can now never
        complete means the client is gone. An app that waits in ``receive`` for more than the
        client sent gets ``http.disconnect``.
        """
        cycle = self.cycle
        if cycle is None or self.parsing is not None or self.scheme == "https":
            # (TLS transports cannot stay half-open: uvloop shuts them down regardless.)
            self.transport.close()
            return None
        self.eof = True
        if self.failed is None:  # else the connection closes after that error answer anyway
            (self.pipeline[-1] if self.pipeline else cycle).keep_alive = False
        if cycle.waiter is not None:
            cycle.wake()
        return True

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.closed:
            self.read_paused = False
            self.transport.resume_reading()

    # -- timers (driven by ServerState.tick) ------------------------------------------------

    def set_keep_alive_deadline(self) -> None:
        self.deadline_is_header = False
        timeout = self.state.keep_alive_timeout
        self.deadline = self.loop.time() + timeout if timeout else 0.0

    def on_deadline(self, now: float) -> None:
        self.deadline = 0.0
        if self.closed:
            return
        if self.discarding:
            self.transport.close()
        elif self.deadline_is_header:
            logger.debug("Request header read timed out")
            self.send_error(408, "Request header read timeout")
        elif self.is_idle():
            self.transport.close()

    def start_header_deadline(self) -> None:
        """Counted from the first byte of a request head, never reset until it is complete."""
        timeout = self.config.timeout_request_header
        self.deadline = self.loop.time() + timeout if timeout else 0.0
        self.deadline_is_header = True

    def is_idle(self) -> bool:
        return self.cycle is None and not self.pipeline and self.head_bytes == 0

    def shutdown(self) -> None:
        """Graceful shutdown: close now if idle, else after the response in flight."""
        if self.is_idle():
            self.transport.close()
            return
        for cycle in (self.cycle, *self.pipeline):
            if cycle is not None:
                cycle.keep_alive = False

    # -- parsing ----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.backlog:
            self.backlog += data  # parsing is suspended until the pipeline drains
            return
        if len(data) <= FEED_SLICE:
            self.feed(data, b"")
            return
        # A large read is parsed in slices while it may hold request heads, and parsing stops
        # once enough requests are queued: one read full of tiny pipelined requests must not
        # become thousands of request objects at once. Inside a single request's body (an
        # upload) the rest goes in one piece.
        start, n = 0, len(data)
        while start < n:
            if len(self.pipeline) >= PIPELINE_LIMIT:
                self.backlog = data[start:]
                self.pause_reading()
                return
            end = start + FEED_SLICE if self.reading_head or self.pipeline else n
            if not self.feed(data[start:end], data[end:]):
                return
            start = end

    def feed(self, data: bytes, rest: bytes) -> bool:
        """Parse ``data`` (``rest`` follows it in the same read); False once parsing stopped."""
        if self.discarding:
            return False
        self.feed_len = size = len(data)
        reading_head = self.reading_head
        if reading_head:
            if self.head_bytes == 0 and not self.deadline_is_header:
                self.start_header_deadline()
            self.head_bytes += size
        else:
            self.body_seen = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.on_upgrade(data[exc.args[0] :] + rest)
            return False
        except httptools.HttpParserError as exc:
            self.on_parse_error(exc, data)
            return False
        if self.reading_head:
            if self.head_bytes > self.config.limit_request_headers:
                self.send_error(431, "Request header fields too large.")
                return False
        elif not reading_head:
            if self.body_seen:
                self.gap = 0
            else:
                # A whole read inside a body without one byte of content: only chunk framing,
                # chunk extensions or a trailer section, which must not grow without bound.
                self.gap += size
                if self.gap > self.config.limit_request_headers:
                    self.send_error(431, "Request trailer fields too large.")
                    return False
        return True

    def on_parse_error(self, exc: httptools.HttpParserError, data: bytes) -> None:
        reject = exc.__context__
        if isinstance(reject, _Reject):
            # Raised by our callbacks, which all run after the request line: the method is
            # this request's, and a HEAD request gets no body even in an error answer.
            head = self.parser.get_method() == b"HEAD"
            self.send_error(reject.status, reject.message, head=head)
        elif data.startswith(b"PRI * HTTP/2.0\r\n"):
            self.send_error(505, "HTTP version not supported.")
        elif (
            isinstance(exc, httptools.HttpParserInvalidMethodError)
            and self.head_bytes == len(data)  # the failing head starts with this read
            and _unknown_method(data)
        ):
            # RFC 9110 §9.1: a method is any token; one we do not implement is a 501.
            self.send_error(501, "Method not implemented.")
        else:
            logger.debug("Invalid HTTP request: %s", exc)
            self.send_error(400, "Invalid HTTP request received.")

    def on_url(self, url: bytes) -> None:
        if not self.deadline_is_header and not self.pipeline and not self.read_paused:
            # A request that began in the read which ended the previous one: its header
            # deadline starts now, not at the next read. (Not while queued requests hold
            # reading back: the rest of this head waits on us, not on the client.)
            self.start_header_deadline()
        self.url += url
        if len(self.url) > self.config.limit_request_line:
            raise _Reject(414, "Request-URI too long.")

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self.headers
        if len(headers) >= self.config.limit_request_fields:
            raise _Reject(431, "Too many request header fields.")
        # llhttp drops leading whitespace; RFC 9110 §5.5 excludes trailing whitespace too.
        headers.append((name.lower(), value.rstrip()))

    def on_headers_complete(self) -> None:
        parser = self.parser
        headers = self.headers
        self.headers = []
        url = self.url
        self.url = b""
        self.reading_head = False
        self.deadline = 0.0
        self.deadline_is_header = False
        config = self.config
        if self.head_bytes + self.head_slack > config.limit_request_headers:
            size = len(url) + sum(len(n) + len(v) + 4 for n, v in headers)
            if size > config.limit_request_headers:
                raise _Reject(431, "Request header fields too large.")

        version = parser.get_http_version()
        if version != "1.1":
            if version[0] != "1" or version[1] != ".":
                raise _Reject(505, "HTTP version not supported.")
            if version != "1.0":
                version = "1.1"  # RFC 9110 §6.2: answer a higher minor version as 1.1
        hosts = 0
        host = expect = content_length = None
        framing = has_te = bad_te = proxied = False
        upgrade = b""
        interesting = _REQUEST_HEADERS
        for name, value in headers:
            kind = interesting.get(name)
            if kind is None:
                continue
            if kind == _HOST:
                hosts += 1
                host = value
            elif kind == _CL:
                content_length = value
                framing = True
            elif kind == _TE:
                has_te = framing = True
                if value.lower() != b"chunked":
                    bad_te = True
            elif kind == _EXPECT:
                expect = value if expect is None else expect + b"," + value  # one list
                framing = True
            elif kind == _UPGRADE:
                upgrade += value + b","
            else:
                proxied = True
        # RFC 9112 §3.2: exactly one Host in 1.1, and never an invalid one.
        if hosts != 1 and (version == "1.1" or hosts > 1):
            raise _Reject(400, "A request must carry exactly one Host header.")
        if host not in _GOOD_HOSTS:
            _check_host(host)
        expect_continue = False
        if framing:
            expect_continue = self.check_framing(
                headers, version, has_te, bad_te, expect, content_length
            )

        method_b = parser.get_method()
        method = METHODS.get(method_b)
        if method is None:
            method = method_b.decode("ascii")
            if method == "CONNECT":
                # A tunnel cannot be expressed in ASGI http, and the parser would treat what
                # follows the head as tunnel data: refuse before anything is skipped.
                raise _Reject(501, "CONNECT is not supported.")
            METHODS[method_b] = method

        raw = url
        if raw[:1] != b"/" and (raw != b"*" or method != "OPTIONS"):
            # RFC 9112 §3.2.2: absolute-form; its authority replaces the Host header.
            raw, authority = _absolute_target(raw)
            headers = [(n, authority if n == b"host" else v) for n, v in headers]
            if not hosts:
                headers.insert(0, (b"host", authority))  # HTTP/1.0 may omit Host
        # Integer membership: ``b"#" in raw`` raises and clears a TypeError inside CPython first.
        if 0x23 in raw:  # "#"
            raw = raw.partition(b"#")[0]
        raw_path, _, query = raw.partition(b"?")
        if 0x25 in raw_path:  # "%"
            path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
        else:
            path = raw_path.decode("utf-8", "replace")
        root_path = config.root_path

        scope: Scope = {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": version,
            "server": self.server_addr,
            "client": self.client,
            "scheme": self.scheme,
            "method": method,
            "root_path": root_path,
            "path": root_path + path if root_path else path,
            "raw_path": root_path.encode("utf-8") + raw_path if root_path else raw_path,
            "query_string": query,
            "headers": headers,
            "state": self.state.lifespan_state.copy(),
            "extensions": self.state.scope_extensions.copy(),
        }
        if proxied and self.trusted_peer:
            apply_proxy_headers(scope, config)

        if upgrade and parser.should_upgrade():
            if has_te or (content_length is not None and content_length != b"0"):
                # The parser does not frame the body of an upgrade request; refusing it is the
                # only way to be sure no byte of it is read as a second request.
                raise _Reject(400, "Upgrade requests with a body are not supported.")
            # RFC 9110 §7.8: Upgrade in an HTTP/1.0 request is ignored.
            if config.ws and version == "1.1" and b"websocket" in upgrade.lower():
                self.upgrade = (scope, b"")
                return

        state = self.state
        cycle = RequestCycle(
            self,
            scope,
            # --timeout-keep-alive 0 means no keep-alive: every response closes.
            parser.should_keep_alive() and not state.shutting_down and state.keep_alive,
            expect_continue,
        )
        self.parsing = cycle
        if self.cycle is None:
            self.cycle = cycle
            if state.access_log:
                cycle.start_time = self.loop.time()
            cycle.task = self.loop.create_task(cycle.run_asgi(self.app))
        else:
            # A pipelined request: answered strictly after the one in flight.
            self.pipeline.append(cycle)
            self.pause_reading()

    def check_framing(
        self,
        headers: list[tuple[bytes, bytes]],
        version: str,
        has_te: bool,
        bad_te: bool,
        expect: bytes | None,
        content_length: bytes | None,
    ) -> bool:
        """Rules for requests that carry a body or an expectation; returns ``expect_continue``."""
        if has_te:
            if version == "1.0":
                # RFC 9112 §6.1: chunked framing from an HTTP/1.0 client cannot be trusted.
                raise _Reject(400, "Transfer-Encoding is not allowed in HTTP/1.0 requests.")
            if bad_te:
                # RFC 9110 §5.6.1: empty list elements are ignored (`, chunked` is chunked;
                # the parser itself refuses a trailing empty element).
                codings = [
                    c.strip().lower()
                    for n, v in headers
                    if n == b"transfer-encoding"
                    for c in v.split(b",")
                ]
                codings = [c for c in codings if c]
                if codings == [b"chunked"]:
                    codings = []
                elif not codings or codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
                    # RFC 9112 §6.3: chunked not final (or applied twice): no reliable length.
                    raise _Reject(400, "Invalid Transfer-Encoding.")
                if codings:
                    # RFC 9112 §6.1: a transfer coding we do not implement.
                    raise _Reject(501, "Only the chunked transfer coding is supported.")
        limit = self.config.limit_request_body
        if content_length is not None and limit is not None and int(content_length) > limit:
            raise _Reject(413, "Request body too large.")
        if expect is None or version == "1.0":
            return False  # RFC 9110 §10.1.1: an HTTP/1.0 expectation MUST be ignored
        if expect.lower() == b"100-continue":
            return True
        # Expect is a list (RFC 9110 §10.1.1); empty elements are ignored (§5.6.1), and only
        # a member other than 100-continue is a 417.
        members = [m.strip().lower() for m in expect.split(b",")]
        members = [m for m in members if m]
        if any(m != b"100-continue" for m in members):
            raise _Reject(417, "Expectation Failed.")
        return bool(members)

    def on_body(self, body: bytes) -> None:
        self.body_seen = True
        cycle = self.parsing
        if cycle is not None:
            cycle.on_body(body)

    def on_message_complete(self) -> None:
        self.reading_head = True
        self.head_bytes = 0
        self.head_slack = self.feed_len
        if self.headers:
            self.headers = []  # a trailer section: never part of the next request
        cycle = self.parsing
        if cycle is not None:
            self.parsing = None
            cycle.on_body_complete()

    def on_upgrade(self, rest: bytes) -> None:
        """The parser stopped at an upgrade; ``rest`` is everything after the request head."""
        if self.upgrade is None:
            # Not a WebSocket upgrade (h2c, or --ws none): served as plain HTTP above; go on
            # parsing what follows.
            if rest:
                self.data_received(rest)
            return
        scope, _ = self.upgrade
        self.upgrade = (scope, rest)
        if self.cycle is None:
            self.switch_to_websocket()
        else:
            self.pause_reading()  # switched once the response in flight is done

    def switch_to_websocket(self) -> None:
        from krandog_asgi.ws_protocol import WebSocketProtocol

        assert self.upgrade is not None
        scope, rest = self.upgrade
        self.upgrade = None
        self.state.connections.discard(self)
        protocol = WebSocketProtocol(self.state, scope, self.transport, self.client)
        self.transport.set_protocol(protocol)
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        protocol.start(rest)

    # -- responses --------------------------------------------------------------------------

    def send_error(self, status: int, message: str, *, head: bool = False) -> None:
        """Refuse the request being read. No byte after it can be trusted, so input is dropped
        from here on and the connection closes once the answer is out; responses to the valid
        requests before it (pipelined) are still sent first, in order."""
        self.reading_head = False
        self.deadline = 0.0
        self.deadline_is_header = False
        self.discarding = True
        if self.closed or self.transport.is_closing():
            return
        data = error_response(status, message, self.state.default_headers, head=head)
        failing = self.parsing
        self.parsing = None
        if failing is not None:
            # The head was fine but the body is not: the app (if already running) sees a
            # disconnect instead of a truncated body.
            failing.on_disconnect()
            if failing.response_started:
                # Its answer already went out, or is going out: nothing more can be said.
                self.transport.close()
                return
            if failing is not self.cycle:
                self.pipeline.pop()  # it was queued behind the one in flight (the last one)
        if self.cycle is None or self.cycle is failing:
            self.cycle = None
            self.transport.write(data)
            self.close_lingering()
        else:
            self.failed = data  # written by on_cycle_done once the earlier responses are out

    def close_lingering(self) -> None:
        """Close after an error answer, but keep draining input for a moment.

        Closing a socket with unread input makes the kernel send a reset, and a client that is
        still uploading may then lose our answer before reading it.
        """
        transport = self.transport
        self.discarding = True
        if transport.can_write_eof():
            transport.write_eof()
            self.deadline = self.loop.time() + LINGER
            self.deadline_is_header = False
        else:
            transport.close()
            self.closed = True

    def on_cycle_done(self, cycle: RequestCycle) -> None:
        """The response of ``cycle`` is complete: start the next request or wait for one."""
        if self.cycle is not cycle:
            return
        self.cycle = None
        if not cycle.keep_alive or self.closed:
            if self.closed or self.transport.is_closing():
                return
            if self.parsing is not None:
                self.close_lingering()  # the client may still be sending the request body
            else:
                self.transport.close()
                self.closed = True
            return
        if self.pipeline:
            nxt = self.pipeline.popleft()
            self.cycle = nxt
            if self.backlog and len(self.pipeline) < PIPELINE_LIMIT // 2:
                data, self.backlog = self.backlog, b""
                self.data_received(data)
            if not self.pipeline and self.upgrade is None and not self.backlog:
                self.resume_reading()
            nxt.start(self.app)
            return
        if self.failed is not None:
            self.transport.write(self.failed)
            self.failed = None
            self.close_lingering()
            return
        if self.upgrade is not None:
            self.switch_to_websocket()
            return
        if (
            self.parsing is None
            and self.reading_head
            and self.head_bytes == 0
            and not self.deadline_is_header  # a next request's head has begun
        ):
            # Idle again: the keep-alive timer runs (set_keep_alive_deadline, inlined).
            self.deadline_is_header = False
            timeout = self.state.keep_alive_timeout
            self.deadline = self.loop.time() + timeout if timeout else 0.0
        if self.read_paused:
            self.resume_reading()


class RequestCycle:
    """One request and its response: the ASGI ``receive``/``send`` pair for an ``http`` scope."""

    __slots__ = (
        "body",
        "body_complete",
        "body_size",
        "bytes_sent",
        "chunked",
        "content_length",
        "disconnected",
        "expect_continue",
        "head",
        "head_pending",
        "keep_alive",
        "more_body_delivered",
        "no_body",
        "protocol",
        "received",
        "response_complete",
        "response_started",
        "scope",
        "start_time",
        "status",
        "task",
        "transport",
        "waiter",
    )

    def __init__(
        self, protocol: HTTPProtocol, scope: Scope, keep_alive: bool, expect_continue: bool
    ) -> None:
        self.protocol = protocol
        self.transport = protocol.transport
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.body: list[bytes] = []
        self.body_size = 0  # buffered, for flow control
        self.received = 0  # in total, for --limit-request-body
        self.body_complete = False
        self.more_body_delivered = False
        self.disconnected = False
        self.waiter: asyncio.Future[None] | None = None
        self.response_started = False
        self.response_complete = False
        self.head_pending = False
        self.bytes_sent = 0
        self.task: asyncio.Task[None] | None = None
        # Set by start_response before any reader looks at them.
        self.head: bytes
        self.status: int
        self.chunked: bool
        self.no_body: bool
        self.content_length: int | None
        self.start_time: float

    def start(self, app: ASGIApp) -> None:
        protocol = self.protocol
        if protocol.state.access_log:
            self.start_time = protocol.loop.time()
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
            if not self.response_started:
                if not self.disconnected:
                    logger.error("ASGI callable returned without starting response.")
                    self.send_500()
            elif not self.response_complete and not self.disconnected:
                logger.error("ASGI callable returned without completing response.")
                if self.head_pending:
                    self.send_500()  # nothing was written yet: the client can still be told
                else:
                    self.abort()
        finally:
            cycles.discard(self)

    def on_app_error(self, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError):
            if not self.response_complete:
                self.abort()
            return
        if isinstance(exc, ClientDisconnected) and self.disconnected:
            return
        logger.error("Exception in ASGI application", exc_info=exc)
        if not self.response_started or self.head_pending:
            # Nothing on the wire yet (the head waits for the first body chunk), so the
            # response can still be replaced by an error (ASGI: "leeway to replace").
            self.send_500()
        elif not self.response_complete:
            self.abort()

    def send_500(self) -> None:
        if self.disconnected:
            return
        self.keep_alive = False
        self.head_pending = False
        self.response_started = self.response_complete = True
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
        self.head_pending = False
        self.response_complete = True
        if not self.disconnected:
            self.transport.close()
            self.disconnected = True  # the connection is gone: later sends raise
        self.finish()

    # -- request body (parser side) ---------------------------------------------------------

    def on_body(self, chunk: bytes) -> None:
        limit = self.protocol.config.limit_request_body
        if limit is not None:
            self.received += len(chunk)
            if self.received > limit:
                raise _Reject(413, "Request body too large.")
        if self.response_complete or self.disconnected:
            return  # nobody will read it; keep parsing to reach the next request
        self.body.append(chunk)
        self.body_size += len(chunk)
        if self.body_size > HIGH_WATER:
            self.protocol.pause_reading()
        self.wake()

    def on_body_complete(self) -> None:
        self.body_complete = True
        self.wake()

    def on_disconnect(self) -> None:
        self.disconnected = True
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- ASGI receive -----------------------------------------------------------------------

    async def receive(self) -> Message:
        if (
            self.expect_continue
            and not self.response_started
            and not self.body_complete
            and not self.disconnected
        ):
            self.expect_continue = False
            self.transport.write(CONTINUE)
        while not (self.disconnected or self.response_complete):
            if self.body or (self.body_complete and not self.more_body_delivered):
                return self.take_body()
            protocol = self.protocol
            if protocol.eof:
                # The client half-closed and all it sent has been read: waiting for more means
                # waiting for a client that is gone.
                self.disconnected = True
                protocol.transport.close()
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
        more = not self.body_complete
        if not more:
            self.more_body_delivered = True
        return {"type": "http.request", "body": data, "more_body": more}

    # -- ASGI send --------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.disconnected:
            raise ClientDisconnected("The client disconnected")
        if kind == "http.response.body":
            if not self.response_started or self.response_complete:
                if self.response_complete:
                    return  # ASGI: "any further messages on the channel will be ignored"
                raise RuntimeError(
                    "Unexpected ASGI message 'http.response.body' before 'http.response.start'."
                )
            self.write_body(message.get("body", b""), message.get("more_body", False))
            if self.protocol.write_paused:
                await self.protocol.drain()
                if self.disconnected:
                    raise ClientDisconnected("The client disconnected")
        elif kind == "http.response.start":
            if self.response_started:
                if self.response_complete:
                    return  # ignored, as above
                raise RuntimeError("Unexpected ASGI message 'http.response.start' sent twice.")
            self.start_response(message)
        else:
            raise RuntimeError(f"Unexpected ASGI message type {kind!r} in an HTTP connection.")

    def start_response(self, message: Message) -> None:
        status = message["status"]
        protocol = self.protocol
        parts = [
            FINAL_STATUS_LINES.get(status) or final_status_line(status),
            protocol.state.default_headers,
        ]
        content_length: int | None = None
        keep_alive = self.keep_alive
        replace_defaults = False
        cache = _HEADER_CACHE
        for header in message.get("headers", ()):
            try:
                line, kind = cache[header]
            except (KeyError, TypeError):
                line, kind = _render_header(header)
            if kind:
                value = header[1]
                if kind == _CONTENT_LENGTH:
                    if not value.isdigit() or (
                        content_length is not None and int(value) != content_length
                    ):
                        raise ValueError(f"Invalid content-length header {value!r}")
                    content_length = int(value)
                elif kind == _CONNECTION:
                    if b"close" in value.lower():
                        keep_alive = False
                    continue  # the server decides and writes the connection header itself
                elif kind == _TRANSFER_ENCODING:
                    continue  # framing is the server's job
                else:
                    replace_defaults = True
            parts.append(line)
        if replace_defaults:
            parts[1] = _merge_defaults(protocol.state.default_headers, parts[2:])
        scope = self.scope
        no_body = status == 204 or status == 304 or scope["method"] == "HEAD"
        if content_length is not None and status == 204:
            # RFC 9110 §8.6: a server MUST NOT send Content-Length in a 204 response.
            parts = [p for p in parts if p[:15].lower() != b"content-length:"]
            content_length = None
        if self.expect_continue and not self.body_complete:
            # We never asked for the body, so the client may or may not send it: the bytes
            # that follow cannot be framed with certainty.
            keep_alive = False
        http10 = scope["http_version"] == "1.0"
        chunked = False
        if content_length is None and not no_body:
            if http10:
                keep_alive = False  # close-delimited body
            else:
                chunked = True
                parts.append(CHUNKED)
        self.chunked = chunked
        if not keep_alive:
            parts.append(CLOSE)
        elif http10:
            parts.append(KEEP_ALIVE)
        parts.append(CRLF)
        self.keep_alive = keep_alive
        self.content_length = content_length
        self.no_body = no_body
        self.status = status
        self.head = b"".join(parts)
        self.response_started = True
        self.head_pending = True
        # Written with the first body chunk (one write, one packet), or on the next loop
        # iteration if the app awaits something else first.
        pending = protocol.state.pending_heads
        pending.append(self)
        if len(pending) == 1:
            protocol.loop.call_soon(protocol.state.flush_heads)

    def flush_head(self) -> None:
        if self.head_pending and not self.disconnected:
            self.head_pending = False
            self.transport.write(self.head)

    def write_body(self, body: bytes, more_body: bool) -> None:
        transport = self.transport
        size = len(body)
        if self.no_body:
            size = 0
        else:
            self.bytes_sent += size
            if self.content_length is not None and self.bytes_sent > self.content_length:
                if self.head_pending:
                    self.send_500()  # nothing written yet: say so instead of a bare close
                else:
                    self.abort()
                raise RuntimeError("Response content longer than Content-Length")
        head = b""
        if self.head_pending:
            self.head_pending = False
            head = self.head
        if self.chunked:
            if size:
                frame = b"%x\r\n" % size
                # One buffer, one write: copying the chunk here is cheaper than uvloop's
                # writelines (measured: 1 MiB responses 1.4x faster).
                if more_body:
                    transport.write(b"".join((head, frame, body, CRLF)))
                else:
                    transport.write(b"".join((head, frame, body, CRLF, LAST_CHUNK)))
            elif not more_body:
                transport.write(head + LAST_CHUNK if head else LAST_CHUNK)
            elif head:
                transport.write(head)
        elif size:
            transport.write(head + body if head else body)
        elif head:
            transport.write(head)
        if not more_body:
            length = self.content_length
            if length is not None and not self.no_body and self.bytes_sent != length:
                logger.error("Response content shorter than Content-Length")
                self.keep_alive = False
            self.response_complete = True
            self.finish()

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
        duration = (self.protocol.loop.time() - self.start_time) * 1000.0
        access_logger.info(
            '%s - "%s %s HTTP/%s" %s %d %.1fms',
            client_s,
            scope["method"],
            escape_for_log(path),
            scope["http_version"],
            # "-": cancelled or cut off before any response (shutdown, a client that left)
            self.status if self.response_started else "-",
            self.bytes_sent,
            duration,
        )


_HEADER_CACHE: dict[tuple[bytes, bytes], tuple[bytes, int]] = {}
_HEADER_CACHE_SIZE = 512


def _render_header(header: Any) -> tuple[bytes, int]:
    """Validate one app header and render its wire line; remembered, as apps repeat headers."""
    name, value = header
    check_header(name, value)
    name, value = bytes(name), bytes(value)
    result = (b"%s: %s\r\n" % (name, value), _SPECIAL_HEADERS.get(name.lower(), 0))
    if type(header) is tuple:
        if len(_HEADER_CACHE) >= _HEADER_CACHE_SIZE:
            _HEADER_CACHE.clear()
        _HEADER_CACHE[header] = result
    return result


def _merge_defaults(defaults: bytes, app_headers: list[bytes]) -> bytes:
    """Drop our Server/Date defaults when the app sent its own."""
    own = {line.split(b":", 1)[0].lower() for line in app_headers}
    kept = [
        line + b"\r\n"
        for line in defaults.split(b"\r\n")
        if line and line.split(b":", 1)[0] not in own
    ]
    return b"".join(kept)


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
