"""Bytes every HTTP/1.1 response needs, built once: status lines, header checks, error pages,
and ``ResponseWriter``, which frames an app's response (Content-Length, chunked or
close-delimited).

Status lines, header checks and error pages are shared by the HTTP protocol and the WebSocket
handshake so both answer with the same framing rules.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from krandog_asgi._abnf import FIELD_VALUE_FORBIDDEN, TOKEN_BYTES

if TYPE_CHECKING:
    from krandog_asgi.asgi_types import Message

__all__ = [
    "FINAL_STATUS_LINES",
    "ClientDisconnected",
    "ContentTooLong",
    "ResponseTransport",
    "ResponseWriter",
    "check_header",
    "error_response",
    "escape_for_log",
    "final_status_line",
    "status_line",
]


class ResponseTransport(Protocol):
    """What a response is written to: the connection's transport, or the ``GatheredWrites``
    of a batch of pipelined requests (``http.gather``)."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class ClientDisconnected(OSError):
    """Raised by ``send`` once the peer has gone away (ASGI: an OSError subclass)."""


def check_header(name: bytes, value: bytes) -> None:
    """Reject a header an app wants to send if it could corrupt the framing of the response."""
    if not (isinstance(name, bytes | bytearray) and isinstance(value, bytes | bytearray)):
        raise TypeError(f"Response header names and values must be bytes, got {name!r}: {value!r}")
    if TOKEN_BYTES.fullmatch(name) is None:
        raise ValueError(f"Invalid response header name {name!r}")
    if FIELD_VALUE_FORBIDDEN.search(value) is not None:
        raise ValueError(f"Invalid response header value {value!r}")


_STATUS_LINES: dict[int, bytes] = {}
# Status lines of final responses (200-599) an app may send, keyed by code: one dict lookup on
# the hot path, validation only the first time a code is seen.
FINAL_STATUS_LINES: dict[int, bytes] = {}


def final_status_line(status: object) -> bytes:
    """The status line for an app's final response; 1xx, 101 and non-codes are refused.

    An ``int`` subclass such as ``HTTPStatus`` is an int to ASGI; ``bool`` is not a code.
    """
    if type(status) is not int:
        if not isinstance(status, int) or isinstance(status, bool):
            raise ValueError(f"Invalid HTTP status code {status!r} for a response")
        status = int(status)
    if not 200 <= status <= 599:
        raise ValueError(f"Invalid HTTP status code {status!r} for a response")
    line = FINAL_STATUS_LINES[status] = status_line(status)
    return line


# RFC 9110 §15 renamed these; older Pythons' http.HTTPStatus still has the RFC 7231 phrases.
_RFC9110_PHRASES = {
    413: b"Content Too Large",
    414: b"URI Too Long",
    416: b"Range Not Satisfiable",
    422: b"Unprocessable Content",
}


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <code> <phrase>\\r\\n``, cached per code."""
    line = _STATUS_LINES.get(status) if type(status) is int else None
    if line is None:
        if type(status) is not int or not 100 <= status <= 999:
            raise ValueError(f"Invalid HTTP status code {status!r}")
        phrase = _RFC9110_PHRASES.get(status)
        if phrase is None:
            try:
                phrase = http.HTTPStatus(status).phrase.encode("ascii")
            except ValueError:
                phrase = b""
        line = b"HTTP/1.1 %d %s\r\n" % (status, phrase)
        _STATUS_LINES[status] = line
    return line


def error_response(
    status: int, message: str, extra_headers: bytes = b"", *, head: bool = False
) -> bytes:
    """A complete ``Connection: close`` response with a short text body, for errors we answer;
    ``head``: the same headers without the body (RFC 9110 §9.3.2).

    The body never echoes request data, so a hostile Host or path cannot be reflected.
    """
    body = message.encode("utf-8")
    return b"".join(
        [
            status_line(status),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
            extra_headers,
            b"\r\n",
            b"" if head else body,
        ]
    )


_LOG_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7F]}
_LOG_ESCAPES[ord("\\")] = "\\\\"
_LOG_ESCAPES[ord('"')] = '\\"'


def escape_for_log(text: str) -> str:
    """Make request data safe for a log line: no control characters, no ANSI, no fake new lines."""
    if text.isprintable() and "\\" not in text and '"' not in text:
        return text
    out = text.translate(_LOG_ESCAPES)
    # Non-ASCII control and format characters (e.g. U+2028, U+202E) are escaped too.
    return "".join(c if c.isprintable() or c in "\\" else f"\\u{ord(c):04x}" for c in out)


logger = logging.getLogger("krandog_asgi.error")

CHUNKED = b"transfer-encoding: chunked\r\n"
CLOSE = b"connection: close\r\n"
KEEP_ALIVE = b"connection: keep-alive\r\n"
LAST_CHUNK = b"0\r\n\r\n"
CRLF = b"\r\n"

# Response header names the server interprets; everything else passes through untouched.
_CONTENT_LENGTH, _CONNECTION, _TRANSFER_ENCODING, _SERVER, _DATE = 1, 2, 3, 4, 5
_SPECIAL_HEADERS = {
    b"content-length": _CONTENT_LENGTH,
    b"connection": _CONNECTION,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"server": _SERVER,
    b"date": _DATE,
}


class ContentTooLong(RuntimeError):
    """The app sent more body than its own Content-Length: raised before a byte of it is written."""


class ResponseWriter:
    """Frames one response on a transport: renders the head of ``http.response.start``, picks
    the framing (Content-Length, chunked, or close-delimited for HTTP/1.0) and writes body
    chunks in it. The head waits in ``pending_head`` and goes out with the first body chunk:
    one write, one packet.

    A base class rather than a member, so a request costs no second object: the owner (the
    request cycle) sets ``transport``, ``keep_alive``, ``bytes_sent`` and ``pending_head``.
    """

    __slots__ = (
        "bytes_sent",
        "chunked",
        "content_length",
        "keep_alive",
        "no_body",
        "pending_head",
        "status",
        "transport",
    )

    transport: ResponseTransport
    keep_alive: bool  # in: the request allows it; out: whether the connection stays open
    bytes_sent: int
    pending_head: bytes  # b"" once written (or never started)
    status: int
    chunked: bool
    no_body: bool
    content_length: int | None

    def frame_head(
        self, message: Message, defaults: bytes, head_request: bool, http10: bool, body_unread: bool
    ) -> None:
        """Render ``message``'s head into ``pending_head``; ``body_unread``: the request body
        may still follow (we never answered its ``Expect: 100-continue``).

        The C accelerator does the same from this method's caches for a head seen before."""
        if cached_head is not None and cached_head(
            self, message, defaults, head_request, http10, body_unread, HEAD_CACHES
        ):
            return
        self.frame_head_py(message, defaults, head_request, http10, body_unread)

    def frame_head_py(
        self, message: Message, defaults: bytes, head_request: bool, http10: bool, body_unread: bool
    ) -> None:
        """``frame_head`` in Python alone (the tests hold the accelerator to it)."""
        status = message["status"]
        # Only an exact int may hit the cache: 200.0 and True hash like 200 and 1.
        status_text = FINAL_STATUS_LINES.get(status) if type(status) is int else None
        if status_text is None:
            status_text = final_status_line(status)
            status = int(status)  # an IntEnum member: logged and compared as a plain code
        headers = message.get("headers", ())
        if type(headers) is not list and type(headers) is not tuple:
            headers = list(headers)  # any iterable: read once, here
        try:
            block, content_length, app_close, own_defaults = _HEADS[tuple(headers)]
        except (KeyError, TypeError):  # not seen yet, or not hashable (bytearray, lists)
            block, content_length, app_close, own_defaults = _render_headers(headers)
        if own_defaults:
            defaults = _merge_defaults(defaults, block.split(b"\r\n"))
        keep_alive = self.keep_alive and not app_close
        no_body = status == 204 or status == 304 or head_request
        if content_length is not None and status == 204:
            # RFC 9110 §8.6: a server MUST NOT send Content-Length in a 204 response.
            lines = block.split(b"\r\n")
            block = b"".join(
                x + b"\r\n" for x in lines if x and x[:15].lower() != b"content-length:"
            )
            content_length = None
        parts = [status_text, defaults, block]
        if body_unread:
            # We never asked for the body, so the client may or may not send it: the bytes
            # that follow cannot be framed with certainty.
            keep_alive = False
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
        self.pending_head = b"".join(parts)

    def write_body(self, body: bytes, more_body: bool) -> None:
        """Write one body chunk in the response's framing, the head first if still pending.

        Raises ``ContentTooLong``, writing nothing, when the chunk overruns Content-Length.
        """
        transport = self.transport
        size = len(body)
        if self.no_body:
            size = 0
        else:
            self.bytes_sent += size
            if self.content_length is not None and self.bytes_sent > self.content_length:
                raise ContentTooLong("Response content longer than Content-Length")
        head = self.pending_head
        if head:
            self.pending_head = b""
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
        try:
            _HEADER_CACHE[header] = result
        except TypeError:  # a bytearray inside: not a key (and it may change), so not kept
            pass
    return result


# Rendered app header lists, by value: (the lines, Content-Length, whether the app asked to
# close, whether it sent its own Server/Date). Apps send the same few lists over and over, so a
# response head costs one lookup instead of a loop over its headers.
_HEADS: dict[tuple[Any, ...], tuple[bytes, int | None, bool, bool]] = {}
_HEADS_SIZE = 256
# What the C accelerator frames a head seen before from.
HEAD_CACHES = (_HEADS, FINAL_STATUS_LINES)

CachedHead = Callable[[Any, "Message", bytes, bool, bool, bool, tuple[Any, ...]], bool]
cached_head: CachedHead | None
try:  # optional (setup.py): frame_head_py frames every head without it
    from krandog_asgi.http._speedups import cached_head
except ImportError:  # pragma: no cover - exercised by tests/test_runtime_compat.py
    cached_head = None


def _render_headers(headers: Any) -> tuple[bytes, int | None, bool, bool]:
    """Validate and render an app's response headers (see ``_HEADS``); raises ValueError."""
    lines = []
    content_length: int | None = None
    close = own_defaults = False
    cache = _HEADER_CACHE
    for header in headers:
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
                if content_length is not None:
                    continue  # the same length again: one field on the wire (RFC 9110 §8.6)
                content_length = int(value)
            elif kind == _CONNECTION:
                if b"close" in value.lower():
                    close = True
                continue  # the server decides and writes the connection header itself
            elif kind == _TRANSFER_ENCODING:
                continue  # framing is the server's job
            else:
                own_defaults = True
        lines.append(line)
    rendered = (b"".join(lines), content_length, close, own_defaults)
    try:
        key = tuple(headers)
        if len(_HEADS) >= _HEADS_SIZE:
            _HEADS.clear()
        _HEADS[key] = rendered
    except TypeError:  # items that cannot be keys (bytearray, lists): rendered every time
        pass
    return rendered


def _merge_defaults(defaults: bytes, app_headers: list[bytes]) -> bytes:
    """Drop our Server/Date defaults when the app sent its own."""
    own = {line.split(b":", 1)[0].lower() for line in app_headers}
    kept = [
        line + b"\r\n"
        for line in defaults.split(b"\r\n")
        if line and line.split(b":", 1)[0] not in own
    ]
    return b"".join(kept)
