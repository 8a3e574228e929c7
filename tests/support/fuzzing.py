"""The properties the fuzzers check, one function per target, shared by the hypothesis tests
(tests/fuzz/), the atheris targets (fuzz/*.py) and the corpus replay (tests/fuzz/test_corpus.py).

- ``check_frame_stream``: any bytes fed to the sans-I/O core, whole or in any chunking, give
  the same events; the events are data, pings, pongs and at most one close or protocol failure
  (with a close code a server may send), nothing after it; the core never raises; whatever it
  wrote (pongs) is a well-formed frame stream for the peer.
- ``check_http_stream``: any bytes sent to ``HTTPProtocol`` (on a ``FakeTransport``) are either
  served or answered with one error status, after which the connection closes; the server
  never raises, logs no error, and leaves no task behind once the client is gone. Upgrade
  requests go through ``ws_protocol`` too: a 101 or a 4xx.

Inputs come with ``cuts``: offsets where the stream is split into reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import zlib
from collections.abc import Iterator
from typing import Any

from krandog_asgi import http_protocol as http_protocol_module
from krandog_asgi.config import Config
from krandog_asgi.http import request_head as request_head_module
from krandog_asgi.http_protocol import HTTPProtocol
from krandog_asgi.process.state import ServerState
from krandog_asgi.websocket import connection as connection_module
from krandog_asgi.websocket.connection import (
    CloseReceived,
    Connection,
    Event,
    Ping,
    Pong,
    ProtocolFailure,
    Side,
)
from krandog_asgi.websocket.deflate import PerMessageDeflate
from tests.support.fakes import FakeTransport

__all__ = [
    "FAILURE_CODES",
    "check_frame_stream",
    "check_http_stream",
    "deflate_payload",
    "split",
]

# What the core may fail a connection with (RFC 6455 §7.4.1): protocol error, invalid data
# (UTF-8, deflate), message too big.
FAILURE_CODES = frozenset({1002, 1007, 1009})
FUZZ_MAX_SIZE = 64 * 1024  # small, so that size limits and deflate bombs are reachable
FUZZ_MAX_FRAGMENTS = 64
_FIXED_MASK = b"\x5a\xa5\x0f\xf0"


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (taken modulo its length), as successive reads."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return [p for p in pieces if p]


def deflate_payload(data: bytes, window_bits: int = 15) -> bytes:
    """``data`` compressed as one permessage-deflate message (RFC 7692 §7.2.1)."""
    comp = zlib.compressobj(6, zlib.DEFLATED, -window_bits)
    out = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out


# -- the sans-I/O core ---------------------------------------------------------------------------


def _codec() -> PerMessageDeflate:
    return PerMessageDeflate(
        local_no_context_takeover=False,
        remote_no_context_takeover=False,
        local_max_window_bits=15,
        remote_max_window_bits=15,
    )


def _feed(
    data: bytes, cuts: list[int], side: Side, deflate: bool
) -> tuple[list[Event], list[bytes], Connection]:
    """Events and written frames (a list the connection keeps appending to), and the core."""
    written: list[bytes] = []
    conn = Connection(
        side,
        written.append,
        max_size=FUZZ_MAX_SIZE,
        max_fragments=FUZZ_MAX_FRAGMENTS,
        deflate=_codec() if deflate else None,
        mask_key=lambda: _FIXED_MASK,
    )
    events: list[Event] = []
    for piece in split(data, cuts):
        events += conn.receive_data(piece)
    events += conn.receive_data(b"")
    return events, written, conn


def _summary(event: Event) -> tuple[Any, ...]:
    if isinstance(event, str | bytes):
        return (type(event).__name__, event)
    if isinstance(event, Ping | Pong):
        return (type(event).__name__, event.data)
    if isinstance(event, CloseReceived):
        return ("close", event.code, event.reason)
    assert isinstance(event, ProtocolFailure), repr(event)
    return ("failure", event.code)  # the reason may name the byte where it was seen


def _exact(event: Event) -> tuple[Any, ...]:
    if isinstance(event, ProtocolFailure):
        return ("failure", event.code, event.reason)
    return _summary(event)


@contextlib.contextmanager
def _python_parser() -> Iterator[None]:
    """The core as it runs without the C accelerator's parser fast path."""
    scan = connection_module.scan_messages
    connection_module.scan_messages = None
    try:
        yield
    finally:
        connection_module.scan_messages = scan


def _check_events(events: list[Event]) -> None:
    for i, event in enumerate(events):
        assert isinstance(event, str | bytes | Ping | Pong | CloseReceived | ProtocolFailure)
        if isinstance(event, CloseReceived | ProtocolFailure):
            assert i == len(events) - 1, f"events after the end: {events[i:]}"
        if isinstance(event, ProtocolFailure):
            assert event.code in FAILURE_CODES, event
        if isinstance(event, str | bytes):
            assert len(event) <= FUZZ_MAX_SIZE


def check_frame_stream(data: bytes, cuts: list[int], side: Side, deflate: bool) -> list[Event]:
    """Feed ``data`` to a core of ``side`` whole and cut at ``cuts``; check the properties."""
    whole, written, conn = _feed(data, [], side, deflate)
    pieces, pieces_written, _ = _feed(data, cuts, side, deflate)
    _check_events(whole)
    assert [_summary(e) for e in pieces] == [_summary(e) for e in whole]
    assert pieces_written == written
    if connection_module.scan_messages is not None:
        # The C fast path adds no rule of its own: the Python parser alone gives the same
        # events, down to a failure's reason, and writes the same frames.
        with _python_parser():
            python, python_written, _ = _feed(data, cuts, side, deflate)
        assert [_exact(e) for e in python] == [_exact(e) for e in pieces]
        assert python_written == pieces_written
    last = whole[-1] if whole else None
    if isinstance(last, CloseReceived | ProtocolFailure):
        assert conn.receive_data(data) == []  # nothing is read after the end
    if isinstance(last, ProtocolFailure):
        conn.fail(last.code, last.reason)
    else:
        conn.send_close(1000)
    # What the core wrote (pongs, then its close frame) is a clean stream for the peer.
    peer = Connection(
        Side.CLIENT if side is Side.SERVER else Side.SERVER,
        lambda _: None,
        max_size=None,
        mask_key=lambda: _FIXED_MASK,
    )
    out = peer.receive_data(b"".join(written))
    assert out, written
    assert all(isinstance(e, Pong) for e in out[:-1]), out
    assert isinstance(out[-1], CloseReceived), out
    return whole


# -- the HTTP request path -----------------------------------------------------------------------

_STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")
# What the server may answer a client with: served (200 from the app, 101 for an upgrade; 100
# Continue before a body the client announced), a 4xx for the client's mistake, 501 for an
# unknown method, 505 for an HTTP version. Never a 500: the fuzzing app cannot fail, so a 500
# would be the server's own fault.
_ALLOWED = frozenset({100, 101, 200, 501, 505, *range(400, 500)})


# The HTTP scopes fuzz_app was given, as (key, value) lists, while a check records them.
_recorded_scopes: list[list[tuple[str, Any]]] | None = None


@contextlib.contextmanager
def _recording_scopes() -> Iterator[list[list[tuple[str, Any]]]]:
    """The HTTP scopes fuzz_app is given meanwhile."""
    global _recorded_scopes
    _recorded_scopes = recorded = []
    try:
        yield recorded
    finally:
        _recorded_scopes = None


@contextlib.contextmanager
def _python_head_rules() -> Iterator[None]:
    """Requests as they are read without the C accelerator: every head through llhttp and
    the Python rules."""
    fast, plain = request_head_module.fast_scope, http_protocol_module.plain_request
    request_head_module.fast_scope = http_protocol_module.plain_request = None
    try:
        yield
    finally:
        request_head_module.fast_scope, http_protocol_module.plain_request = fast, plain


async def fuzz_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body and answers with its length and CRC; accepts WebSockets and echoes."""
    if _recorded_scopes is not None and scope["type"] == "http":
        _recorded_scopes.append(list(scope.items()))
    if scope["type"] == "websocket":
        await receive()
        offered = scope["subprotocols"]
        await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({**message, "type": "websocket.send"})
    size = crc = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        size, crc = size + len(chunk), zlib.crc32(chunk, crc)
        if not message.get("more_body"):
            break
    body = b"got %d %08x" % (size, crc)  # the same bytes in any chunking
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def _settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def serve_bytes(chunks: list[bytes], **options: Any) -> tuple[bytes, FakeTransport]:
    """Send ``chunks`` to one HTTPProtocol, then leave; what it wrote, and its transport."""
    config = Config(
        app=fuzz_app, access_log=False, lifespan="off", ws_ping_interval=None, **options
    )
    config.load()
    loop = asyncio.get_running_loop()
    state = ServerState(config, fuzz_app, loop)
    transport = FakeTransport(loop)
    protocol = HTTPProtocol(state)
    transport.protocol = protocol
    protocol.connection_made(transport)
    for chunk in chunks:
        for _ in range(50):  # a paused transport delivers nothing until it resumes
            if transport.reading or transport.closing:
                break
            await asyncio.sleep(0)
        if transport.closing:
            break
        transport.get_protocol().data_received(chunk)  # type: ignore[attr-defined]
        await asyncio.sleep(0)
    await _settle()
    if not transport.closing:
        current = transport.get_protocol()
        if not current.eof_received():  # type: ignore[attr-defined]
            transport.close()
    await _settle()
    if not transport.closing:
        transport.close()  # the client is gone for good
    await _settle()
    return transport.data, transport


def _statuses(data: bytes) -> Iterator[int]:
    pos = 0
    while True:
        match = _STATUS.match(data, pos)
        if match is None:
            return
        status = int(match.group(1))
        yield status
        if status == 101:
            return  # frames follow
        end = data.find(b"\r\n\r\n", pos)
        head = data[pos:end]
        length = re.search(rb"\r\ncontent-length: (\d+)", head, re.IGNORECASE)
        pos = end + 4 + (int(length.group(1)) if length else 0)


_DATE = re.compile(rb"\r\ndate: [^\r]*", re.IGNORECASE)


async def _check_http(chunks: list[bytes]) -> bytes:
    errors = _Errors()
    logging.getLogger("krandog_asgi").addHandler(errors)
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    try:
        with _recording_scopes() as scopes:
            data, transport = await serve_bytes(chunks)
        if request_head_module.fast_scope is not None:
            # The C fast path adds no rule of its own: by the Python rules alone the app gets
            # the same scopes, key order included, and the client the same bytes.
            with _python_head_rules(), _recording_scopes() as python_scopes:
                python_data, _ = await serve_bytes(chunks)
            assert python_scopes == scopes
            assert _DATE.sub(b"", python_data) == _DATE.sub(b"", data)
    finally:
        logging.getLogger("krandog_asgi").removeHandler(errors)
        loop.set_exception_handler(None)
    assert not loop_errors, loop_errors
    assert not errors.records, [r.getMessage() for r in errors.records]
    statuses = list(_statuses(data))
    assert all(s in _ALLOWED for s in statuses), (statuses, data[:500])
    if data:
        assert statuses, data[:500]  # every byte written belongs to a response
    failed = [i for i, s in enumerate(statuses) if s >= 400]
    if failed:
        assert failed == [len(statuses) - 1], statuses  # one error answer, then nothing
        assert transport.closing
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftover, leftover
    return data


def check_http_stream(data: bytes, cuts: list[int]) -> bytes:
    """Serve ``data`` cut at ``cuts`` in memory; check the properties; what the server wrote."""
    return asyncio.run(_check_http(split(data, cuts)))


def check_http_stream_on(loop: asyncio.AbstractEventLoop, data: bytes, cuts: list[int]) -> bytes:
    """``check_http_stream`` on a loop the caller keeps (a fuzzer runs millions of inputs)."""
    return loop.run_until_complete(_check_http(split(data, cuts)))


# -- fuzzer inputs -------------------------------------------------------------------------------
# A fuzzer gives one byte string; its first bytes choose how it is fed. The same decoding is used
# by fuzz/*.py and by the corpus replay, so that every kept input means the same thing to both.


def _decode(data: bytes) -> tuple[int, list[int], bytes]:
    """(flags, cuts, stream): byte 0 holds flags and the number of cut bytes that follow (bits
    4-7, up to 15); each cut byte is scaled by 7 so that cuts can land deep in the stream."""
    if not data:
        return 0, [], b""
    flags = data[0]
    count = flags >> 4
    cuts = [b * 7 for b in data[1 : 1 + count]]
    return flags, cuts, data[1 + count :]


def frame_input(data: bytes) -> None:
    """One atheris input for the frame parser: flags bit 0 picks the server side (masked input),
    bit 1 deflate."""
    flags, cuts, stream = _decode(data)
    side = Side.SERVER if flags & 1 else Side.CLIENT
    check_frame_stream(stream, cuts, side, bool(flags & 2))


def http_input(data: bytes, loop: asyncio.AbstractEventLoop | None = None) -> None:
    """One atheris input for the HTTP request path (flags are only the cut count)."""
    _, cuts, stream = _decode(data)
    if loop is None:
        check_http_stream(stream, cuts)
    else:
        check_http_stream_on(loop, stream, cuts)
