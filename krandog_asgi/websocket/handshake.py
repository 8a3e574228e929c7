"""The WebSocket opening handshake (RFC 6455 §4) for both sides, without I/O.

The server validates the request it already parsed (never re-parsing raw bytes) and builds the
101 response; the client builds its request and validates the server's answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from krandog_asgi._abnf import FIELD_VALUE_FORBIDDEN_TEXT, TOKEN_TEXT
from krandog_asgi.websocket.deflate import (
    ExtensionHeaderError,
    PerMessageDeflate,
    negotiate_client,
    parse_extensions,
)

__all__ = [
    "ClientHandshake",
    "HandshakeError",
    "ServerHandshake",
    "accept_key",
    "build_client_request",
    "check_request",
    "check_request_headers",
    "check_response",
    "check_subprotocols",
    "generate_key",
    "parse_subprotocols",
]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


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


_HANDSHAKE_FIELDS = (
    b"connection",
    b"upgrade",
    b"sec-websocket-key",
    b"sec-websocket-version",
    b"sec-websocket-accept",
    b"sec-websocket-protocol",
    b"sec-websocket-extensions",
)


def _collect(headers: Iterable[tuple[bytes, bytes]]) -> dict[bytes, list[bytes]]:
    """The values of every handshake header (lower-case names), repeated headers kept."""
    fields: dict[bytes, list[bytes]] = {name: [] for name in _HANDSHAKE_FIELDS}
    for name, value in headers:
        values = fields.get(name)
        if values is not None:
            values.append(value)
    return fields


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
            if TOKEN_TEXT.fullmatch(token) is None:
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
    fields = _collect(headers)
    connection, upgrade = fields[b"connection"], fields[b"upgrade"]
    keys, versions = fields[b"sec-websocket-key"], fields[b"sec-websocket-version"]
    protocols, extensions = fields[b"sec-websocket-protocol"], fields[b"sec-websocket-extensions"]
    if b"upgrade" not in _tokens(connection):
        raise HandshakeError("Connection header must include 'upgrade'", 400)
    if b"websocket" not in _tokens(upgrade):
        raise HandshakeError("Upgrade header must include 'websocket'", 400)
    if not versions:
        raise HandshakeError("Missing Sec-WebSocket-Version header", 400)
    if len(versions) != 1 or versions[0].strip() != b"13":
        raise HandshakeError("Unsupported WebSocket version", 426, b"sec-websocket-version: 13\r\n")
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
    return ServerHandshake(key=key, subprotocols=subprotocols, extensions=parse_offers(extensions))


def parse_offers(values: list[bytes]) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """The extension offers of a request; none when the header cannot be parsed.

    One policy whatever the malformation: an offer we cannot accept is declined (RFC 7692 §5),
    and the connection opens without the extension. A bad parameter is declined by
    ``negotiate_server``; a header that does not even parse declines every offer in it, since
    which of its parts the client meant cannot be known. Never a 400: declining is what the RFC
    asks of a server, and a client that insists on the extension can fail the connection.
    """
    try:
        return parse_extensions(v.decode("ascii") for v in values)
    except (UnicodeDecodeError, ExtensionHeaderError):
        return []


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


# -- client side ---------------------------------------------------------------------------------

# Request headers the handshake owns: a caller setting them would break or fake the negotiation.
_CLIENT_RESERVED = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "sec-websocket-accept",
        "content-length",
        "transfer-encoding",
    }
)


def check_subprotocols(protocols: Iterable[str]) -> list[str]:
    """Validate the subprotocols a client offers: tokens, no duplicates (WHATWG throws too)."""
    offered: list[str] = []
    for protocol in protocols:
        if not isinstance(protocol, str) or TOKEN_TEXT.fullmatch(protocol) is None:
            raise ValueError(f"Invalid subprotocol {protocol!r}: it must be an HTTP token")
        if protocol in offered:
            raise ValueError(f"Subprotocol {protocol!r} is offered twice")
        offered.append(protocol)
    return offered


def check_request_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Validate extra request headers; ValueError names the offending one."""
    checked = []
    for name, value in headers:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"Header names and values must be str, got {name!r}: {value!r}")
        if TOKEN_TEXT.fullmatch(name) is None:
            raise ValueError(f"Invalid request header name {name!r}")
        if FIELD_VALUE_FORBIDDEN_TEXT.search(value) is not None:
            raise ValueError(f"Invalid value for request header {name!r}: {value!r}")
        if name.lower() in _CLIENT_RESERVED:
            raise ValueError(f"Header {name!r} is set by the WebSocket handshake")
        checked.append((name, value))
    return checked


def build_client_request(
    resource: str,
    host: str,
    key: str,
    *,
    subprotocols: Sequence[str] = (),
    extensions: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The upgrade request (RFC 6455 §4.1); ``check_request_headers`` validated ``headers``."""
    lines = [
        f"GET {resource} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocols:
        lines.append("Sec-WebSocket-Protocol: " + ", ".join(subprotocols))
    if extensions:
        lines.append("Sec-WebSocket-Extensions: " + extensions)
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


@dataclass
class ClientHandshake:
    """What the server's 101 response agreed to."""

    subprotocol: str | None
    extensions: str | None  # the server's Sec-WebSocket-Extensions value, as sent
    deflate: PerMessageDeflate | None


def check_response(
    headers: Sequence[tuple[bytes, bytes]],
    key: str,
    *,
    subprotocols: Sequence[str],
    deflate_offered: bool,
) -> ClientHandshake:
    """Validate a 101 response (RFC 6455 §4.1, steps 2-6 after the status line).

    ``headers`` have lower-case names. HandshakeError says which rule the server broke.
    """
    fields = _collect(headers)
    connection, upgrade, accepts = (
        fields[b"connection"],
        fields[b"upgrade"],
        fields[b"sec-websocket-accept"],
    )
    protocols, extensions = fields[b"sec-websocket-protocol"], fields[b"sec-websocket-extensions"]
    if b"websocket" not in _tokens(upgrade):
        raise HandshakeError("the response has no 'Upgrade: websocket' header")
    if b"upgrade" not in _tokens(connection):
        raise HandshakeError("the response has no 'Connection: Upgrade' header")
    if len(accepts) != 1:
        raise HandshakeError("the response needs exactly one Sec-WebSocket-Accept header")
    if accepts[0].strip() != accept_key(key).encode("ascii"):
        raise HandshakeError("Sec-WebSocket-Accept does not match the Sec-WebSocket-Key sent")

    subprotocol: str | None = None
    if protocols:
        try:
            chosen = parse_subprotocols(v.decode("ascii") for v in protocols)
        except (UnicodeDecodeError, ValueError):
            raise HandshakeError("invalid Sec-WebSocket-Protocol header") from None
        if len(chosen) != 1:
            raise HandshakeError(f"the server chose several subprotocols: {chosen}")
        if chosen[0] not in subprotocols:
            offered = ", ".join(subprotocols) if subprotocols else "none"
            raise HandshakeError(
                f"the server chose subprotocol {chosen[0]!r}, which was not offered "
                f"(offered: {offered})"
            )
        subprotocol = chosen[0]

    deflate: PerMessageDeflate | None = None
    extension_value: str | None = None
    if extensions:
        try:
            extension_value = ", ".join(v.decode("ascii") for v in extensions)
            offers = parse_extensions([extension_value])
        except (UnicodeDecodeError, ExtensionHeaderError) as exc:
            raise HandshakeError(f"invalid Sec-WebSocket-Extensions header: {exc}") from None
        if offers:
            if not deflate_offered:
                names = ", ".join(name for name, _ in offers)
                raise HandshakeError(f"the server enabled extension {names}, which was not offered")
            try:
                deflate = negotiate_client(offers, window_bits=None)
            except ValueError as exc:
                raise HandshakeError(f"unacceptable Sec-WebSocket-Extensions: {exc}") from None
    return ClientHandshake(subprotocol, extension_value, deflate)
