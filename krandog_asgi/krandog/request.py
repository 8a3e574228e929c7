"""What a handler gets as ``req``: an HTTP request, a WebSocket message, or (opt-in) a
WebSocket lifecycle event; ``req.type`` tells them apart."""

from __future__ import annotations

import codecs
import json
import re
from typing import Any, ClassVar, Literal

from krandog_asgi.krandog.asgi import Scope
from krandog_asgi.krandog.channels import BrokerLike
from krandog_asgi.krandog.response import BadRequest
from krandog_asgi.krandog.scope import Headers, Query, ScopeFields
from krandog_asgi.krandog.sender import WebSocket

__all__ = ["EventType", "HTTPRequest", "Request", "WebSocketEvent", "WebSocketMessage"]

_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)


class HTTPRequest(ScopeFields):
    """What an HTTP handler gets: ``req.type == "http"``. The body is read in full beforehand."""

    __slots__ = ("body",)
    type: ClassVar[Literal["http"]] = "http"

    def __init__(self, scope: Scope, body: bytes) -> None:
        ScopeFields.__init__(self, scope)
        self.body = body

    @property
    def method(self) -> str:
        method: str = self.scope["method"]
        return method

    @property
    def text(self) -> str:
        """The body decoded with its Content-Type charset (default UTF-8); bad bytes -> U+FFFD."""
        charset = "utf-8"
        match = _CHARSET.search(self.headers.get("content-type", ""))
        if match:
            try:
                charset = codecs.lookup(match.group(1)).name
            except LookupError:
                pass
        return self.body.decode(charset, "replace")

    def json(self) -> Any:
        """The body parsed as JSON; a body that is not JSON raises ``BadRequest`` (a 400)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"The request body is not valid JSON: {exc}") from None

    def __repr__(self) -> str:
        return f"<HTTPRequest {self.method} {self.pathname!r}>"


class _WebSocketFields:
    """Fields every WebSocket request shares; they come from the connection."""

    __slots__ = ()
    ws: WebSocket

    @property
    def pathname(self) -> str:
        return self.ws.pathname

    @property
    def url(self) -> str:
        return self.ws.url

    @property
    def headers(self) -> Headers:
        return self.ws.headers

    @property
    def query(self) -> Query:
        return self.ws.query

    @property
    def client(self) -> tuple[str, int] | None:
        return self.ws.client

    @property
    def broker(self) -> BrokerLike:
        return self.ws.broker

    def publish(self, channel: str, data: str | bytes) -> Any:
        """``req.publish(channel, data)``: as ``req.ws.publish``; see ``ScopeFields.publish``."""
        return self.ws.publish(channel, data)


class WebSocketMessage(_WebSocketFields):
    """A message: ``req.type == "websocket"``, ``req.data`` is str (text) or bytes (binary)."""

    __slots__ = ("data", "ws")
    type: ClassVar[Literal["websocket"]] = "websocket"

    def __init__(self, ws: WebSocket, data: str | bytes) -> None:
        self.ws = ws
        self.data = data

    def __repr__(self) -> str:
        return f"<WebSocketMessage {self.pathname!r} {self.data[:40]!r}>"


EventType = Literal["websocket.upgrade", "websocket.open", "websocket.close"]


class WebSocketEvent(_WebSocketFields):
    """An opt-in lifecycle event: ``"websocket.upgrade"``, ``"websocket.open"`` or
    ``"websocket.close"`` (then ``code`` and ``reason`` say how it ended)."""

    __slots__ = ("code", "reason", "type", "ws")
    data: ClassVar[None] = None
    method: ClassVar[str] = "GET"

    def __init__(
        self, type: EventType, ws: WebSocket, code: int | None = None, reason: str = ""
    ) -> None:
        self.type = type
        self.ws = ws
        self.code = code
        self.reason = reason

    @property
    def protocols(self) -> list[str]:
        """Subprotocols the client offered; set ``req.ws.protocol`` to one of them to pick it."""
        return list(self.ws.scope.get("subprotocols") or ())

    def __repr__(self) -> str:
        return f"<WebSocketEvent {self.type} {self.pathname!r}>"


Request = HTTPRequest | WebSocketMessage | WebSocketEvent
