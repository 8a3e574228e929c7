"""krandog-asgi: an ASGI server (uvloop + httptools, its own RFC 6455 WebSocket stack),
krandog-style single handlers, and a browser-style WebSocket client."""

from __future__ import annotations

from krandog_asgi.config import Config
from krandog_asgi.http_common import ClientDisconnected
from krandog_asgi.server import Server, run

__version__ = "0.1.0"

__all__ = ["ClientDisconnected", "Config", "Server", "__version__", "run"]
