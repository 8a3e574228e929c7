"""The ASGI 3 callable types, kept loose on purpose: messages are plain dicts on the hot path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ASGIApp", "ASGIReceive", "ASGISend", "Message", "Scope", "UnexpectedMessage"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[Message]]
ASGISend = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, ASGIReceive, ASGISend], Awaitable[object]]


class UnexpectedMessage(RuntimeError):
    """An ASGI app sent a message that its connection's state does not allow."""
