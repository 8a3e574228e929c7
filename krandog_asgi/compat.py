"""krandog-style handlers served as an ASGI 3 app.

krandog called one function for every HTTP request and for every WebSocket message::

    def handler(req):
        if req.type == "websocket":
            req.ws.send("Echo: " + req.data)
            return
        return {"status": 200, "headers": {"Content-Type": "text/plain"}, "body": "hello"}

``krandog_app(handler)`` turns such a function (plain or ``async def``) into an ASGI 3 app that
runs under any ASGI server; ``krandog-asgi module:handler`` wraps one automatically.

Sync handlers run **on the event loop**, as they did in krandog: they must not block (no
``time.sleep``, no blocking I/O), or every connection of the worker stalls. Pass
``threads=True`` (CLI: ``--handler-threads``) to run them in a thread pool instead; then
``ws.send`` is thread-safe and returns a ``concurrent.futures.Future``-like handle.

Beyond krandog (all opt-in, the defaults keep krandog's behaviour):

* ``lifecycle=True``: the handler also gets ``req.type == "websocket.open"`` after the accept
  and ``"websocket.close"`` (with ``req.code`` and ``req.reason``) once the connection is over,
  so a broadcast list can drop its closed clients.
* ``upgrade=True``: the handler sees the upgrade request first (``"websocket.upgrade"``);
  returning a response denies it with that response, returning ``None`` accepts it.

This module is the public face of ``krandog_asgi.krandog``, where the pieces live: ``scope``
and ``request`` (what ``req`` is), ``response`` (return values and errors to responses),
``sender`` (``req.ws``) and ``app`` (the ASGI app and its message loop). They speak ASGI only
and import no transport code of krandog-asgi, so a wrapped handler runs under any ASGI server.
"""

from __future__ import annotations

from krandog_asgi.krandog.app import KrandogApp, is_krandog_app, krandog_app
from krandog_asgi.krandog.request import HTTPRequest, Request, WebSocketEvent, WebSocketMessage
from krandog_asgi.krandog.response import BadRequest, HTTPError
from krandog_asgi.krandog.scope import Headers, Query
from krandog_asgi.krandog.sender import CLOSED, CLOSING, CONNECTING, OPEN, WebSocket

__all__ = [
    "CLOSED",
    "CLOSING",
    "CONNECTING",
    "OPEN",
    "BadRequest",
    "HTTPError",
    "HTTPRequest",
    "Headers",
    "KrandogApp",
    "Query",
    "Request",
    "WebSocket",
    "WebSocketEvent",
    "WebSocketMessage",
    "is_krandog_app",
    "krandog_app",
]
