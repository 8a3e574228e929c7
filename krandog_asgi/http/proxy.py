"""``X-Forwarded-For`` / ``X-Forwarded-Proto`` from trusted proxies, applied to a scope in place.

Only called when the immediate peer is in ``--forwarded-allow-ips``. The client address is found
by walking ``X-Forwarded-For`` from the right and skipping hops that are themselves trusted, so a
client cannot choose its own address by prepending entries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from krandog_asgi.asgi_types import Scope
    from krandog_asgi.config import Config

__all__ = ["apply_proxy_headers"]

_SCHEMES = {"http", "https", "ws", "wss"}


def apply_proxy_headers(scope: Scope, config: Config) -> None:
    forwarded_for: list[bytes] = []
    proto: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            forwarded_for.append(value)
        elif name == b"x-forwarded-proto":
            proto = value  # the last one was written by the proxy closest to us
    if proto is not None:
        scheme = proto.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
        if scheme in _SCHEMES:
            if scope["type"] == "websocket":
                scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
            else:
                scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
            scope["scheme"] = scheme
    if forwarded_for:
        hops = [
            h.strip() for h in b",".join(forwarded_for).decode("latin-1").split(",") if h.strip()
        ]
        client = None
        for hop in reversed(hops):
            client = hop
            if not config.is_trusted_proxy(_strip_port(hop)):
                break
        if client is not None:
            scope["client"] = (_strip_port(client), 0)


def _strip_port(hop: str) -> str:
    """``[::1]:80`` -> ``::1``; ``1.2.3.4:80`` -> ``1.2.3.4``; bare addresses are unchanged."""
    if hop.startswith("["):
        return hop[1 : hop.find("]")] if "]" in hop else hop
    if hop.count(":") == 1:
        return hop.split(":", 1)[0]
    return hop
