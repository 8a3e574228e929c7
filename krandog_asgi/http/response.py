"""Bytes every HTTP/1.1 response needs, built once: status lines, header checks, error pages.

Shared by the HTTP protocol and the WebSocket handshake so both answer with the same framing rules.
"""

from __future__ import annotations

import http

from krandog_asgi._abnf import FIELD_VALUE_FORBIDDEN, TOKEN_BYTES

__all__ = [
    "FINAL_STATUS_LINES",
    "ClientDisconnected",
    "check_header",
    "error_response",
    "escape_for_log",
    "final_status_line",
    "status_line",
]


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
    """The status line for an app's final response; 1xx, 101 and non-codes are refused."""
    if type(status) is not int or not 200 <= status <= 599:
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
