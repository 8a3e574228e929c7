"""The WebSocket opening handshake (RFC 6455 §4) for both sides, without I/O.

The server validates the request it already parsed (never re-parsing raw bytes) and builds the
101 response; the client builds its request and validates the server's answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from krandog_asgi.deflate import ExtensionHeaderError, parse_extensions

__all__ = [
    "HandshakeError",
    "ServerHandshake",
    "accept_key",
    "check_request",
    "generate_key",
    "parse_subprotocols",
]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class HandshakeError(Exception):
    """The handshake cannot go on; ``status`` is the HTTP answer a server gives."""

    def __init__(self, message: str, status: int = 400, headers: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


def accept_key(key: str | bytes) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2 step 5.4)."""
    raw = key.encode("ascii") if isinstance(key, str) else key
    return base64.b64encode(hashlib.sha1(raw + GUID).digest()).decode("ascii")


def generate_key() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


def _tokens(values: Iterable[bytes]) -> list[bytes]:
    return [t.strip().lower() for v in values for t in v.split(b",") if t.strip()]


def parse_subprotocols(values: Iterable[str]) -> list[str]:
    """Split ``Sec-WebSocket-Protocol`` values into tokens; ValueError on anything else."""
    protocols: list[str] = []
    for value in values:
        for item in value.split(","):
            token = item.strip()
            if not token:
                continue
            if _TOKEN.fullmatch(token) is None:
                raise ValueError(f"invalid subprotocol {token!r}")
            protocols.append(token)
    return protocols


@dataclass
class ServerHandshake:
    """What a valid upgrade request asked for."""

    key: bytes
    subprotocols: list[str] = field(default_factory=list)
    extensions: list[tuple[str, list[tuple[str, str | None]]]] = field(default_factory=list)


def check_request(
    method: str, http_version: str, headers: list[tuple[bytes, bytes]]
) -> ServerHandshake:
    """Validate an upgrade request (RFC 6455 §4.2.1); HandshakeError says how to refuse it."""
    if method != "GET":
        raise HandshakeError("WebSocket upgrade requests must use GET", 400)
    if http_version != "1.1":
        raise HandshakeError("WebSocket upgrade requests need HTTP/1.1", 400)
    connection: list[bytes] = []
    upgrade: list[bytes] = []
    keys: list[bytes] = []
    versions: list[bytes] = []
    protocols: list[bytes] = []
    extensions: list[bytes] = []
    for name, value in headers:
        if name == b"connection":
            connection.append(value)
        elif name == b"upgrade":
            upgrade.append(value)
        elif name == b"sec-websocket-key":
            keys.append(value)
        elif name == b"sec-websocket-version":
            versions.append(value)
        elif name == b"sec-websocket-protocol":
            protocols.append(value)
        elif name == b"sec-websocket-extensions":
            extensions.append(value)
    if b"upgrade" not in _tokens(connection):
        raise HandshakeError("Connection header must include 'upgrade'", 400)
    if b"websocket" not in _tokens(upgrade):
        raise HandshakeError("Upgrade header must include 'websocket'", 400)
    if not versions:
        raise HandshakeError("Missing Sec-WebSocket-Version header", 400)
    if len(versions) != 1 or versions[0].strip() != b"13":
        raise HandshakeError(
            "Unsupported WebSocket version", 426, b"sec-websocket-version: 13\r\n"
        )
    if len(keys) != 1:
        raise HandshakeError("Exactly one Sec-WebSocket-Key header is required", 400)
    key = keys[0].strip()
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError
    except (binascii.Error, ValueError):
        raise HandshakeError("Invalid Sec-WebSocket-Key", 400) from None
    try:
        subprotocols = parse_subprotocols(v.decode("ascii") for v in protocols)
    except (UnicodeDecodeError, ValueError):
        raise HandshakeError("Invalid Sec-WebSocket-Protocol header", 400) from None
    try:
        offers = parse_extensions(v.decode("ascii") for v in extensions)
    except (UnicodeDecodeError, ExtensionHeaderError):
        raise HandshakeError("Invalid Sec-WebSocket-Extensions header", 400) from None
    return ServerHandshake(key=key, subprotocols=subprotocols, extensions=offers)


def build_accept_response(
    key: bytes,
    default_headers: bytes,
    subprotocol: str | None,
    extensions: str | None,
    extra_headers: bytes,
) -> bytes:
    """The 101 Switching Protocols response, headers validated by the caller."""
    parts = [
        b"HTTP/1.1 101 Switching Protocols\r\n",
        b"upgrade: websocket\r\nconnection: Upgrade\r\n",
        b"sec-websocket-accept: ",
        accept_key(key).encode("ascii"),
        b"\r\n",
    ]
    if subprotocol is not None:
        parts += [b"sec-websocket-protocol: ", subprotocol.encode("ascii"), b"\r\n"]
    if extensions is not None:
        parts += [b"sec-websocket-extensions: ", extensions.encode("ascii"), b"\r\n"]
    parts += [default_headers, extra_headers, b"\r\n"]
    return b"".join(parts)
