"""Exceptions of the WebSocket client: each one says what happened and carries the details.

They share ``WebSocketError`` so that one ``except`` catches every client failure, and each also
derives from the built-in type a caller would already catch (``ValueError`` for a bad URL,
``TimeoutError`` for a timeout).
"""

from __future__ import annotations

from krandog_asgi.websocket.frames import CloseCode

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HandshakeRefused",
    "InvalidHandshake",
    "InvalidURL",
    "OpenTimeout",
    "WebSocketError",
    "close_code_meaning",
]

# Close codes after which ``async for`` ends quietly: a normal close, a peer going away, and an
# empty close frame (a completed closing handshake that gave no status).
NORMAL_CLOSE_CODES = frozenset(
    {CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY, CloseCode.NO_STATUS_RCVD}
)

_MEANINGS = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status code",
    1006: "connection lost without a closing handshake",
    1007: "invalid message data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension missing",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure",
}


def close_code_meaning(code: int) -> str:
    """A few words for a close code (RFC 6455 §7.4 and the IANA registry)."""
    meaning = _MEANINGS.get(code)
    if meaning is not None:
        return meaning
    if 3000 <= code <= 3999:
        return "registered library/framework code"
    if 4000 <= code <= 4999:
        return "application-defined code"
    return "unknown code"


class WebSocketError(Exception):
    """Base class of every error the client raises."""


class InvalidURL(WebSocketError, ValueError):
    """The URL cannot be used for a WebSocket connection."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"Invalid WebSocket URL {url!r}: {problem}")
        self.url = url


class OpenTimeout(WebSocketError, TimeoutError):
    """Connecting, the TLS handshake and the opening handshake took longer than ``open_timeout``."""


class InvalidHandshake(WebSocketError):
    """The server answered the upgrade with 101 but broke RFC 6455 §4.1 (or not HTTP at all)."""


class HandshakeRefused(WebSocketError):
    """The server answered the upgrade request with an HTTP status other than 101."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        excerpt = body[:200].decode("utf-8", "replace").strip()
        message = f"Server refused the WebSocket handshake: HTTP {status}"
        if excerpt:
            message += f": {excerpt}"
        super().__init__(message)
        self.status = status
        self.headers = headers
        self.body = body


class ConnectionClosed(WebSocketError):
    """The connection is closed; ``code`` and ``reason`` come from the closing handshake (1006:
    no handshake)."""

    def __init__(self, code: int, reason: str) -> None:
        text = f"WebSocket connection closed: {code} ({close_code_meaning(code)})"
        if reason:
            text += f" {reason!r}"
        super().__init__(text)
        self.code = code
        self.reason = reason

    @staticmethod
    def for_code(code: int, reason: str) -> ConnectionClosed:
        """The OK or Error subclass that fits ``code``."""
        if code in NORMAL_CLOSE_CODES:
            return ConnectionClosedOK(code, reason)
        return ConnectionClosedError(code, reason)


class ConnectionClosedOK(ConnectionClosed):
    """Closed by a normal closing handshake (1000, 1001 or an empty close frame)."""


class ConnectionClosedError(ConnectionClosed):
    """Closed with an error code, or the connection was lost."""
