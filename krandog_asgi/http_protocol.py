"""HTTP/1.1 over an asyncio transport: the connection, one ``HTTPProtocol`` per socket.

It owns what spans requests: the httptools parser and its callbacks, the order of pipelined
requests, keep-alive, the deadlines (through ``ServerState.tick``), read flow control and the
hand-off of a WebSocket upgrade to ``ws_protocol`` without re-parsing. What a single request
needs lives in ``http/``: the head rules and scope (``request_head``), the ASGI exchange
(``cycle.RequestCycle``) and the response framing (``response``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from typing import TYPE_CHECKING, NoReturn, cast

import httptools

from krandog_asgi.http.cycle import RequestCycle, RequestState, ResponseState
from krandog_asgi.http.gather import GatheredWrites
from krandog_asgi.http.request_head import (
    FAST_CONSTANTS,
    RequestError,
    check_head_size,
    is_unknown_method,
    plain_request,
    read_request_head,
)
from krandog_asgi.http.response import error_response
from krandog_asgi.transport.eager import EAGER
from krandog_asgi.transport.flow import WriteFlowControl, abort_dropping_unsent

if TYPE_CHECKING:
    from krandog_asgi.asgi_types import Scope
    from krandog_asgi.process.state import ServerState

__all__ = ["HTTPProtocol", "RequestCycle", "Timer"]

logger = logging.getLogger("krandog_asgi.error")

LINGER = 2.0  # seconds we keep draining input after an error answer before closing
# Pipelined requests parsed ahead of the one in flight before parsing stops for a while.
PIPELINE_LIMIT = 32
# Bytes of one large read parsed at a time while it may still hold request heads.
FEED_SLICE = 4096


class Timer(enum.Enum):
    """What the connection's one ``deadline`` counts, and so what its expiry does."""

    NONE = 0
    IDLE = 1  # keep-alive (or the first request's wait): close if still idle
    HEADER = 2  # a request head, from its first byte: 408
    BODY = 3  # a request body, from the end of its head: 408, or close once answered
    LINGER = 4  # draining input after an error answer: close


_NO_TIMER, _IDLE, _HEADER, _BODY, _LINGER = Timer


class HeadState(enum.IntEnum):
    """Where reading stands between requests; false while a body is read or input dropped."""

    NONE = 0  # a body (or nothing: an error answer went out)
    NEXT = 1  # the parser is at a message boundary: the next byte starts a head (CRLFs aside)
    BEGUN = 2  # the parser holds part of a head


_NO_HEAD, _NEXT_HEAD, _HEAD_BEGUN = HeadState
_COMPLETE = RequestState.COMPLETE


# Header names most requests carry, by their usual spellings, to one shared lower-case bytes:
# no ``lower()`` per header, and a scope kept by a long-lived connection (a WebSocket) holds no
# copy of its own.
_COMMON_NAMES = {
    spelling: name.encode()
    for name in (
        "host",
        "user-agent",
        "accept",
        "accept-encoding",
        "accept-language",
        "connection",
        "content-length",
        "content-type",
        "cookie",
        "origin",
        "referer",
        "cache-control",
        "pragma",
        "upgrade",
        "authorization",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-request-id",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    )
    for spelling in {
        name.encode(),
        name.title().encode(),
        name.title().replace("Websocket", "WebSocket").encode(),
        name.upper().encode(),
    }
}


# What the C accelerator reads a plain request against (request_head.FAST_CONSTANTS and the
# names above).
_PLAIN_CONSTANTS = (*FAST_CONSTANTS, _COMMON_NAMES)


class HTTPProtocol(WriteFlowControl, asyncio.Protocol):
    # Mind the count: one more slot moved this object up an allocator size class, and the
    # freed objects of upgraded connections then cost 80 B of RSS per idle WebSocket (ws-idle).
    __slots__ = (
        "backlog",
        "body_paused_at",
        "body_seen",
        "body_start",
        "client",
        "closed",
        "config",
        "counted_ip",
        "cycle",
        "deadline",
        "discarding",
        "eof",
        "failed",
        "feed_len",
        "gap",
        "gathered",
        "head_bytes",
        "head_slack",
        "head_state",
        "headers",
        "idle",
        "loop",
        "parser",
        "parsing",
        "pipeline",
        "read_paused",
        "scheme",
        "server",
        "server_addr",
        "starting",
        "state",
        "timer",
        "transport",
        "trusted_peer",
        "upgrade",
        "url",
    )

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.config = state.config
        self.loop = state.loop
        self.idle = state.admission.idle  # where this connection waits to be evicted, if idle
        self.cycle: RequestCycle | None = None  # the cycle whose response is being produced
        self.parsing: RequestCycle | None = None  # the cycle whose body is being parsed
        self.pipeline: deque[RequestCycle] = deque()
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_state = _NEXT_HEAD
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
        self.timer = _NO_TIMER
        # The body clock: when it started (moved on by the time reading was paused by us, which
        # is not the client's doing), and since when it is paused (0.0: running).
        self.body_start = 0.0
        self.body_paused_at = 0.0
        self.read_paused = False
        WriteFlowControl.__init__(self)
        self.upgrade: tuple[Scope, bytes] | None = None
        self.closed = False
        self.discarding = False  # input after a refused request is read and dropped
        self.eof = False  # the client half-closed: answer what is complete, then close
        self.failed: bytes | None = None  # an error answer waiting for the responses before it
        self.backlog = b""  # unparsed input held back while the pipeline is full
        self.counted_ip: str | None = None  # the peer IP our admission counted, if any
        # A request whose head was parsed in this feed: its app starts once the parser has
        # returned (never inside a parser callback, where it could re-enter the parser).
        self.starting: RequestCycle | None = None
        # The answers to pipelined requests, gathered into one write; made on the first batch.
        self.gathered: GatheredWrites | None = None

    # -- connection lifecycle ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast("asyncio.Transport", transport)
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        share = self.state.sharing.share
        self.client = (share(str(peer[0])), int(peer[1])) if isinstance(peer, tuple) else None
        ip = self.client[0] if self.client else None
        if not self.state.admission.admit(self, ip, self.loop.time()):
            self.discarding = True  # refused: not one byte of it is read
            transport.close()
            return
        self.counted_ip = ip
        if isinstance(sock, tuple):
            self.server_addr: tuple[str, int | None] | None = share((str(sock[0]), int(sock[1])))
        elif isinstance(sock, str) and sock:
            self.server_addr = share((sock, None))
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
        state = self.state
        state.connections.discard(self)
        state.admission.idle.pop(self, None)
        state.write_stalls.discard(self)
        state.admission.release(self.counted_ip)
        self.counted_ip = None
        for cycle in (self.cycle, self.parsing, *self.pipeline):
            if cycle is not None:
                cycle.on_disconnect()
        self.pipeline.clear()
        if self.gathered is not None:
            self.gathered.discard()
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
        if cycle is None or self.parsing is not None:
            self.flush_gathered()
            self.transport.close()
            return None
        if self.scheme == "https":
            # A TLS transport cannot stay half-open: once this returns it shuts down and drops
            # every later write. An app not started yet gets its first step now (3.12+), so
            # an answer it gives without waiting still goes out. (3.11 has no eager Tasks:
            # the app's Task is already scheduled, and its answer is lost.)
            self.state.start_now(cycle)
            self.flush_gathered()
            self.transport.close()
            return None
        self.eof = True
        if self.failed is None:  # else the connection closes after that error answer anyway
            (self.pipeline[-1] if self.pipeline else cycle).keep_alive = False
        if cycle.waiter is not None:
            cycle.wake()
        return True

    def pause_writing(self) -> None:
        WriteFlowControl.pause_writing(self)
        if self.state.write_stall_timeout:
            self.state.write_stalls.add(self)  # the tick watches it until writes flow again

    def resume_writing(self) -> None:
        self.state.write_stalls.discard(self)
        WriteFlowControl.resume_writing(self)

    def on_write_stall(self, stalled: float) -> None:
        """The client took none of our bytes for ``--timeout-write-stall``: it is not reading,
        and waiting for it would hold the connection and the app's task in ``drain`` forever."""
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        logger.info("Closing the connection of %s: it took no data for %.1fs", client, stalled)
        abort_dropping_unsent(self.transport)

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()
            if self.timer is _BODY and not self.body_paused_at:
                self.body_paused_at = self.loop.time()  # the client cannot send: not its time
                self.deadline = 0.0

    def resume_reading(self) -> None:
        if self.read_paused and not self.closed:
            self.read_paused = False
            self.transport.resume_reading()
            if self.body_paused_at:
                now = self.loop.time()
                self.body_start += now - self.body_paused_at
                self.body_paused_at = 0.0
                self.deadline = self.body_start + (self.config.timeout_request_body or 0.0)

    # -- timers (driven by ServerState.tick) ------------------------------------------------

    def set_keep_alive_deadline(self) -> None:
        self.timer = _IDLE
        timeout = self.state.keep_alive_timeout
        self.deadline = self.loop.time() + timeout if timeout else 0.0
        self.idle[self] = None  # evictable at the connection limit

    def on_deadline(self, now: float) -> None:
        self.deadline = 0.0
        if self.closed:
            return
        self.flush_gathered()
        timer = self.timer
        if self.discarding:
            self.transport.close()
        elif timer is _HEADER:
            logger.debug("Request header read timed out")
            self.send_error(408, "Request header read timeout")
        elif timer is _BODY:
            self.on_body_deadline(now)
        elif self.is_idle():
            self.transport.close()

    def start_header_deadline(self) -> None:
        """Counted from the first byte of a request head, never reset until it is complete."""
        timeout = self.config.timeout_request_header
        self.deadline = self.loop.time() + timeout if timeout else 0.0
        self.timer = _HEADER
        self.idle.pop(self, None)

    def start_body_deadline(self, cycle: RequestCycle) -> None:
        """The body of ``cycle`` is due from now: the read that ended its head left it
        incomplete, or we just sent its 100 Continue.

        A per-read idle timer would be defeated by one byte a second: this is a deadline for
        the whole body, ``--timeout-request-body`` from now, which each
        ``--limit-request-body-rate`` bytes received extend by a second (a minimum rate once
        the first timeout has passed). It stands still while we hold reading back."""
        if (
            self.parsing is not cycle
            or cycle.expect_continue
            or not self.config.timeout_request_body
        ):
            return
        now = self.loop.time()
        self.timer = _BODY
        self.body_start = now
        if self.read_paused:
            self.body_paused_at = now
            self.deadline = 0.0
        else:
            self.body_paused_at = 0.0
            self.deadline = now + self.config.timeout_request_body

    def on_body_deadline(self, now: float) -> None:
        cycle = self.parsing
        config = self.config
        if cycle is None or not config.timeout_request_body:
            return
        due = self.body_start + config.timeout_request_body
        if config.limit_request_body_rate:
            due += cycle.received / config.limit_request_body_rate
        if now < due:
            self.deadline = due  # the bytes received so far bought this much more time
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        logger.info(
            "Request body read timed out after %.1fs (%d bytes) from %s",
            now - self.body_start,
            cycle.received,
            client,
        )
        self.send_error(408, "Request body read timeout")

    def is_idle(self) -> bool:
        return self.cycle is None and not self.pipeline and self.head_bytes == 0

    def shutdown(self) -> None:
        """Graceful shutdown: close now if idle, else after the response in flight."""
        if self.is_idle():
            self.flush_gathered()
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
        if self.head_state is _NEXT_HEAD and plain_request is not None:
            taken = self.take_plain(data)
            if taken:
                if taken < len(data):
                    self.feed_read(memoryview(data)[taken:], True)  # feed() starts the apps
                else:
                    self.start_app()
                return
        self.feed_read(data, False)

    def feed_read(self, data: bytes | memoryview, continued: bool) -> None:
        """Give a read (or what ``take_plain`` left of it: ``continued``) to the parser.

        A large read is parsed in slices while it may hold request heads, and parsing stops
        once enough requests are queued: one read full of tiny pipelined requests must not
        become thousands of request objects at once. Inside a single request's body (an
        upload) the rest goes in one piece. The slices are views: no copy of the read."""
        if len(data) <= FEED_SLICE and len(self.pipeline) < PIPELINE_LIMIT:
            self.feed(data, b"", continued)
            return
        view = memoryview(data)
        start, n = 0, len(data)
        while start < n:
            if len(self.pipeline) >= PIPELINE_LIMIT:
                self.start_app()  # (what take_plain queued first)
                self.backlog = bytes(view[start:])
                self.pause_reading()
                return
            end = start + FEED_SLICE if self.head_state or self.pipeline else n
            if not self.feed(view[start:end], view[end:], continued):
                return
            start, continued = end, False

    def take_plain(self, data: bytes) -> int:
        """Take the requests at the start of a read that need no parser; how many bytes.

        The parser is at a message boundary (``_NEXT_HEAD``), so a complete request that the C
        accelerator reads (``plain_request``: a head llhttp and the head rules would pass
        unchanged, with no body or all of its Content-Length body in this read) gets exactly
        what the parser would have given; from the first one it does not take, the caller
        gives the rest of this read to the parser. The apps are left for ``start_app``."""
        if self.discarding or self.closed or self.upgrade is not None or self.eof:
            return 0
        last = self.pipeline[-1] if self.pipeline else self.cycle
        if last is not None and not last.keep_alive:
            return 0  # the parser ignores what follows a closing request
        state = self.state
        keep_alive = state.keep_alive and not state.shutting_down
        pos, size = 0, len(data)
        pipeline = self.pipeline
        while pos < size:
            taken = plain_request(data, pos, self, _PLAIN_CONSTANTS)  # type: ignore[misc]
            if taken is None:
                break
            scope, pos, body = taken
            scope["extensions"] = state.scope_extensions.copy()
            cycle = RequestCycle(self, scope, keep_alive, False)
            cycle.request_state = _COMPLETE
            if body:
                cycle.on_body(body)  # (its limit check passes: plain_request checked it)
            if self.cycle is None:
                self.cycle = self.starting = cycle
            else:
                pipeline.append(cycle)
                self.pause_reading()
                if len(pipeline) >= PIPELINE_LIMIT:
                    break  # the rest waits in the backlog (feed_read)
        if pos:
            # As on_headers_complete and on_message_complete leave them, for every request.
            self.timer = _NO_TIMER
            self.deadline = 0.0
            self.idle.pop(self, None)
            self.head_bytes = self.head_slack = 0
        return pos

    def feed(
        self, data: bytes | memoryview, rest: bytes | memoryview, continued: bool = False
    ) -> bool:
        """Parse ``data`` (``rest`` follows it in the same read); False once parsing stopped.

        ``continued``: ``data`` is the rest of a read whose first requests ``take_plain`` took;
        a head it begins is counted as one begun after a request in the same read is (in
        ``head_slack``, its deadline from ``on_url``)."""
        if self.discarding or self.closed:
            # (closed: we closed after a response; bytes a transport still delivers are late)
            return False
        self.feed_len = size = len(data)
        reading_head = self.head_state
        if continued:
            self.head_slack = size
        elif reading_head:
            if self.head_bytes == 0 and self.timer is not _HEADER:
                self.start_header_deadline()
            self.head_bytes += size
        else:
            self.body_seen = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.on_upgrade(bytes(data[exc.args[0] :]) + rest)
            self.start_app()  # after on_upgrade: a switch waits for this response
            return False
        except httptools.HttpParserError as exc:
            if not self.discarding:  # else a callback refused the request and answered
                self.on_parse_error(exc, bytes(data))
            self.start_app()  # its response goes out before the error answer
            return False
        if self.starting is not None:
            self.start_app()
        if self.head_state:
            if self.head_bytes > self.config.limit_request_headers:
                self.send_error(431, "Request header fields too large.")
                return False
        else:
            if self.timer is not _BODY and self.parsing is not None:
                # A head ended in this read and its body did not: the body is due from now
                # (with 100-continue, from our 100). Bodyless requests never get here.
                self.start_body_deadline(self.parsing)
            if reading_head:
                return True
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

    def start_app(self) -> None:
        """Start the app of the request parsed in this feed, now that the parser returned.

        Its first step runs in the loop's next pass, as a Task's first step does. On 3.12+ the
        apps of all the connections read in one pass start together from one callback, each
        as an eager Task (``ServerState.defer_start``): one scheduled callback instead of one
        per request, and no Task is ever scheduled for an app that does not wait. Started
        inline instead, inside each read, they measured ~30 % slower (bench/PROFILE.md)."""
        cycle = self.starting
        if cycle is not None:
            self.starting = None
            if self.pipeline:
                self.start_gathered(cycle)  # requests queued behind it in this read
            elif EAGER:
                self.state.defer_start(cycle)
            else:
                cycle.start(self.state.app)

    def start_gathered(self, cycle: RequestCycle) -> None:
        """Start a request whose answer may share one write with the next ones' (pipelined):
        its writes are gathered until its first step has run (``http.gather``)."""
        gathered = self.gathered
        if gathered is None:
            gathered = self.gathered = GatheredWrites(self.transport, self.loop)
        cycle.transport = gathered
        if EAGER:
            self.state.defer_start(cycle)  # its callback is queued before the release below
        else:
            cycle.start(self.state.app)
        gathered.hold()  # released behind the first step

    def flush_gathered(self) -> None:
        """Before the connection writes or closes on its own: gathered answers go first."""
        if self.gathered is not None:
            self.gathered.flush()

    def on_parse_error(self, exc: httptools.HttpParserError, data: bytes) -> None:
        """The parser refused the input itself (a refusal by our rules is answered in
        ``reject``, before the parser unwinds)."""
        if data.startswith(b"PRI * HTTP/2.0\r\n"):
            self.send_error(505, "HTTP version not supported.")
        elif (
            isinstance(exc, httptools.HttpParserInvalidMethodError)
            and self.head_bytes == len(data)  # the failing head starts with this read
            and is_unknown_method(data)
        ):
            # RFC 9110 §9.1: a method is any token; one we do not implement is a 501.
            self.send_error(501, "Method not implemented.")
        else:
            logger.debug("Invalid HTTP request: %s", exc)
            self.send_error(400, "Invalid HTTP request received.")

    def reject(self, error: RequestError) -> NoReturn:
        """Answer a request our rules refused, then stop the parser: ``error`` unwinds through
        httptools, whose ``feed_data`` then fails, and ``feed`` sees the answer is already out."""
        # Raised from callbacks, which all run after the request line: the method is this
        # request's, and a HEAD request gets no body even in an error answer.
        self.send_error(error.status, error.message, head=self.parser.get_method() == b"HEAD")
        raise error

    def on_url(self, url: bytes) -> None:
        if self.timer is not _HEADER and not self.pipeline and not self.read_paused:
            # A request that began in the read which ended the previous one: its header
            # deadline starts now, not at the next read. (Not while queued requests hold
            # reading back: the rest of this head waits on us, not on the client.)
            self.start_header_deadline()
        self.url += url
        if len(self.url) > self.config.limit_request_line:
            self.reject(RequestError(414, "Request-URI too long."))

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self.headers
        if len(headers) >= self.config.limit_request_fields:
            self.reject(RequestError(431, "Too many request header fields."))
        # llhttp drops leading whitespace; RFC 9110 §5.5 excludes trailing whitespace too.
        headers.append((_COMMON_NAMES.get(name) or name.lower(), value.rstrip()))

    def on_headers_complete(self) -> None:
        headers = self.headers
        self.headers = []
        url = self.url
        self.url = b""
        self.head_state = _NO_HEAD
        self.deadline = 0.0
        self.timer = _NO_TIMER
        config = self.config
        state = self.state
        parser = self.parser
        try:
            if self.head_bytes + self.head_slack > config.limit_request_headers:
                check_head_size(url, headers, config.limit_request_headers)
            scope, expect_continue, websocket = read_request_head(parser, url, headers, self)
            scope["extensions"] = state.scope_extensions.copy()  # the pub/sub broker
        except RequestError as error:
            self.reject(error)
        if websocket:
            self.upgrade = (scope, b"")
            return
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
            self.starting = cycle  # started by feed() once the parser returns
        else:
            # A pipelined request: answered strictly after the one in flight.
            self.pipeline.append(cycle)
            self.pause_reading()

    def on_body(self, body: bytes) -> None:
        self.body_seen = True
        cycle = self.parsing
        if cycle is not None:
            try:
                cycle.on_body(body)
            except RequestError as error:  # over --limit-request-body
                self.reject(error)

    def on_message_begin(self) -> None:
        self.head_state = _HEAD_BEGUN

    def on_message_complete(self) -> None:
        self.head_state = _NEXT_HEAD
        self.head_bytes = 0
        self.head_slack = self.feed_len
        if self.headers:
            self.headers = []  # a trailer section: never part of the next request
        if self.timer is _BODY:
            self.timer = _NO_TIMER
            self.deadline = 0.0
            self.body_paused_at = 0.0
        cycle = self.parsing
        if cycle is not None:
            self.parsing = None
            cycle.on_body_complete()

    def on_upgrade(self, rest: bytes) -> None:
        """The parser stopped at an upgrade; ``rest`` is everything after the request head."""
        if self.upgrade is None:
            # Not a WebSocket upgrade (h2c, or --ws none): served as plain HTTP above; go on
            # parsing what follows, the request's own body first.
            cycle = self.pipeline[-1] if self.pipeline else self.cycle
            if cycle is not None and cycle.request_state is RequestState.COMPLETE:
                framing = _body_framing(cycle.scope["headers"])
                if framing:
                    self.frame_ignored_upgrade_body(cycle, framing)
            if rest:
                self.data_received(rest)
            return
        scope, _ = self.upgrade
        self.upgrade = (scope, rest)
        if self.cycle is None:
            self.switch_to_websocket()
        else:
            self.pause_reading()  # switched once the response in flight is done

    def frame_ignored_upgrade_body(self, cycle: RequestCycle, framing: bytes) -> None:
        """Parse the body of a request whose Upgrade we ignored (RFC 9110 §7.8 allows it).

        llhttp skips such a body: it ended the message at the head and would treat the rest
        as the new protocol. A fresh parser is primed with a head holding only the body's
        framing, so the body goes through the usual callbacks (limits, deadlines, chunking)
        and the requests after it are parsed as ever. ``cycle`` has not run yet (all of this
        happens in the read that completed its head), so reopening its body is safe.
        """
        cycle.request_state = RequestState.BODY
        self.parsing = cycle
        self.head_state = _NO_HEAD
        parser = httptools.HttpRequestParser(_PrimedCallbacks(self))
        parser.set_dangerous_leniencies(lenient_version=True, lenient_data_after_close=True)
        close = b"" if cycle.keep_alive else b"connection: close\r\n"
        method = cycle.scope["method"].encode("ascii")
        parser.feed_data(b"%s / HTTP/1.1\r\n%s\r\n%s\r\n" % (method, framing, close))
        self.parser = parser
        self.start_body_deadline(cycle)  # the body is due now, even if no byte of it came yet

    def switch_to_websocket(self) -> None:
        from krandog_asgi.ws_protocol import WebSocketProtocol

        assert self.upgrade is not None
        scope, rest = self.upgrade
        self.upgrade = None
        state = self.state
        state.connections.discard(self)
        state.admission.idle.pop(self, None)
        state.write_stalls.discard(self)
        state.sharing.share_scope(scope)  # held for as long as the connection stays open
        protocol = WebSocketProtocol(state, scope, self.transport)
        protocol.counted_ip, self.counted_ip = self.counted_ip, None
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
        self.head_state = _NO_HEAD
        self.deadline = 0.0
        self.timer = _NO_TIMER
        self.body_paused_at = 0.0
        self.discarding = True
        if self.closed or self.transport.is_closing():
            return
        self.flush_gathered()
        data = error_response(status, message, self.state.default_headers, head=head)
        failing = self.parsing
        self.parsing = None
        if failing is not None:
            # The head was fine but the body is not: the app (if already running) sees a
            # disconnect instead of a truncated body.
            failing.on_disconnect()
            if failing.response_state is not ResponseState.START:
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
        self.flush_gathered()
        if transport.can_write_eof():
            transport.write_eof()
            self.deadline = self.loop.time() + LINGER
            self.timer = _LINGER
        else:
            transport.close()
            self.closed = True

    def on_cycle_done(self, cycle: RequestCycle) -> None:
        """The response of ``cycle`` is complete: start the next request or wait for one."""
        if self.cycle is not cycle:
            return
        self.cycle = None
        if self.gathered is not None and not (self.pipeline and cycle.keep_alive):
            self.gathered.flush()  # no next request to share a write with
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
            self.start_gathered(nxt)
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
            and self.head_state
            and self.head_bytes == 0
            and self.timer is not _HEADER  # a next request's head has begun
        ):
            # Idle again: the keep-alive timer runs (set_keep_alive_deadline, inlined).
            self.timer = _IDLE
            timeout = self.state.keep_alive_timeout
            self.deadline = self.loop.time() + timeout if timeout else 0.0
            self.idle[self] = None
        if self.read_paused:
            self.resume_reading()


def _body_framing(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The framing field of a request's body (already validated), or b"" when it has none."""
    for name, value in headers:
        if name == b"transfer-encoding":
            return b"transfer-encoding: chunked"  # the only coding the head rules let through
        if name == b"content-length" and value.strip(b"0"):
            return b"content-length: " + value
    return b""


class _PrimedCallbacks:
    """Parser callbacks for ``HTTPProtocol.frame_ignored_upgrade_body``: the priming head is
    not a request, so its callbacks are dropped; everything after it goes to the connection."""

    __slots__ = ("conn", "on_body", "on_message_complete", "priming")

    def __init__(self, conn: HTTPProtocol) -> None:
        self.conn = conn
        self.priming = True
        self.on_body = conn.on_body
        self.on_message_complete = conn.on_message_complete

    def on_message_begin(self) -> None:
        if not self.priming:
            self.conn.on_message_begin()

    def on_url(self, url: bytes) -> None:
        if not self.priming:
            self.conn.on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.priming:
            self.conn.on_header(name, value)

    def on_headers_complete(self) -> None:
        if self.priming:
            self.priming = False
        else:
            self.conn.on_headers_complete()
