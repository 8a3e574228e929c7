"""The krandog-asgi WebSocket client: one import for both of its APIs.

* Browser API: ``WebSocket(url, protocols)`` with ``onopen``/``onmessage``/``onerror``/
  ``onclose`` (sync or async handlers), ``send``, ``close``, ``readyState``; in a plain script,
  end with ``run_until_closed()``.
* asyncio API: ``async with connect(url) as ws:`` then ``await ws.send()``, ``await ws.recv()``,
  ``async for message in ws``, ``await ws.ping()``, ``await ws.close()``.

Both run on the server's sans-I/O core (``websocket/``) and asyncio glue
(``transport.websocket_io``); nothing here depends on another WebSocket library.
"""

from __future__ import annotations

from krandog_asgi.websocket.connection import InvalidState
from krandog_asgi.wsclient.browser import (
    CloseEvent,
    ErrorEvent,
    Event,
    MessageEvent,
    WebSocket,
    run_until_closed,
)
from krandog_asgi.wsclient.connection import ClientConnection, Connect, connect
from krandog_asgi.wsclient.errors import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeRefused,
    InvalidHandshake,
    InvalidURL,
    OpenTimeout,
    WebSocketError,
    close_code_meaning,
)

__all__ = [
    "ClientConnection",
    "CloseEvent",
    "Connect",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "ErrorEvent",
    "Event",
    "HandshakeRefused",
    "InvalidHandshake",
    "InvalidState",
    "InvalidURL",
    "MessageEvent",
    "OpenTimeout",
    "WebSocket",
    "WebSocketError",
    "close_code_meaning",
    "connect",
    "run_until_closed",
]
