"""``ws://`` and ``wss://`` URLs (RFC 6455 §3) parsed into what the client connects to and sends.

Parsing happens before any I/O so that a bad URL fails at once, with ``InvalidURL`` saying what is
wrong, as the browser's ``new WebSocket(url)`` throws synchronously.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from krandog_asgi.wsclient.errors import InvalidURL

__all__ = ["WebSocketURL", "parse_url"]

_SCHEMES = {"ws": False, "wss": True, "http": False, "https": True}
# What may stand in a host after IDNA encoding: a DNS name, an IPv4 address or an IPv6 literal
# (with an optional zone id).
_HOST = re.compile(r"[A-Za-z0-9._~\-]+|[0-9A-Fa-f:.]+(%[A-Za-z0-9._~\-]+)?")
# RFC 3986 pchar plus "/" (path) and "?" (query); everything else is percent-encoded.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


@dataclass(frozen=True)
class WebSocketURL:
    """A validated WebSocket URL: where to connect and what goes into the request line."""

    secure: bool
    host: str  # for connecting: no brackets around IPv6 literals
    port: int
    resource: str  # path and query, percent-encoded
    username: str | None = None
    password: str | None = None

    @property
    def host_header(self) -> str:
        """``Host`` value (RFC 9110 §7.2): the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        """Scheme, host and port: ``MessageEvent.origin``."""
        return f"{'wss' if self.secure else 'ws'}://{self.host_header}"

    @property
    def url(self) -> str:
        """The normalized URL (credentials left out, so it is safe to log)."""
        return self.origin + self.resource


def parse_url(url: str) -> WebSocketURL:
    """Validate ``url``; ``http(s)://`` is accepted as the WHATWG WebSocket constructor does."""
    if not isinstance(url, str):
        raise TypeError(f"A WebSocket URL must be a str, not {type(url).__name__}")
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(url, str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        problem = f"scheme {parts.scheme!r} is not ws or wss" if scheme else "no ws:// or wss://"
        raise InvalidURL(url, problem)
    if "#" in text:
        raise InvalidURL(url, "WebSocket URLs cannot have a fragment (#...)")
    hostname = parts.hostname
    if not hostname:
        raise InvalidURL(url, "no host")
    try:
        host = hostname.encode("idna").decode("ascii") if not hostname.isascii() else hostname
    except UnicodeError:
        raise InvalidURL(url, f"invalid host {hostname!r}") from None
    if _HOST.fullmatch(host) is None:
        raise InvalidURL(url, f"invalid host {hostname!r}")
    secure = _SCHEMES[scheme]
    if port is None:
        port = 443 if secure else 80
    elif port == 0:
        raise InvalidURL(url, "port 0 cannot be connected to")
    resource = quote(parts.path, safe=_PATH_SAFE) or "/"
    if parts.query:
        resource += "?" + quote(parts.query, safe=_QUERY_SAFE)
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return WebSocketURL(secure, host, port, resource, username, password)
