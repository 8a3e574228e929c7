"""The server side of an ASGI call, in memory, for tests that drive an ASGI app without sockets
and assert the exact events it sends.

``AsgiPeer(*events)`` is one call's ``receive`` and ``send``: ``receive`` hands out the events
in order (and, once they run out, waits until ``push`` adds more), ``send`` records every
message in ``sent``. ``hold()`` makes its sends suspend until ``release()``, the way a server's
flow control does when the client reads slowly; ``fail_sends(exc)`` makes them raise, the way
a server's send does once the client is gone. ``call_app(app, scope, *events)`` runs one call to
its end and returns its peer; ``websocket_scope``, ``http_scope`` and ``websocket_events`` build
the usual inputs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

__all__ = ["AsgiPeer", "call_app", "http_scope", "websocket_events", "websocket_scope"]

Message = dict[str, Any]


class AsgiPeer:
    __slots__ = (
        "_arrived",
        "_failure",
        "_held_types",
        "_released",
        "events",
        "holding",
        "receives",
        "sent",
    )

    def __init__(self, *events: Message) -> None:
        self.events: deque[Message] = deque(events)
        self.sent: list[Message] = []
        self.receives = 0  # how often the app asked for the next event
        self.holding = 0  # sends currently suspended by hold()
        self._arrived = asyncio.Event()
        self._released: asyncio.Event | None = None
        self._held_types: tuple[str, ...] = ()
        self._failure: BaseException | None = None

    async def receive(self) -> Message:
        self.receives += 1
        await asyncio.sleep(0)  # on a real server messages arrive over time: others run between
        while not self.events:
            self._arrived.clear()
            await self._arrived.wait()
        return self.events.popleft()

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if self._failure is not None:
            raise self._failure
        released = self._released
        if released is not None and message["type"] in self._held_types:
            self.holding += 1
            try:
                await released.wait()
            finally:
                self.holding -= 1
            if self._failure is not None:
                raise self._failure

    def push(self, *events: Message) -> None:
        self.events.extend(events)
        self._arrived.set()

    def hold(self, *types: str) -> None:
        """From now on every send of these types (``websocket.send`` unless told) suspends
        until ``release``."""
        self._held_types = types or ("websocket.send",)
        if self._released is None:
            self._released = asyncio.Event()

    def release(self) -> None:
        released, self._released = self._released, None
        if released is not None:
            released.set()

    def fail_sends(self, exc: BaseException) -> None:
        """Every send from now on (and every held one, once released) raises ``exc``."""
        self._failure = exc

    def types(self) -> list[str]:
        return [message["type"] for message in self.sent]


def websocket_scope(path: str = "/", **fields: Any) -> dict[str, Any]:
    return {"type": "websocket", "path": path, "headers": [], "query_string": b"", **fields}


def http_scope(
    method: str = "GET", path: str = "/", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers or [],
        "query_string": b"",
    }


def websocket_events(*data: str | bytes, code: int | None = 1000) -> list[Message]:
    """connect, one ``websocket.receive`` per item, then a disconnect (``code=None``: none)."""
    events: list[Message] = [{"type": "websocket.connect"}]
    for item in data:
        key = "text" if isinstance(item, str) else "bytes"
        events.append({"type": "websocket.receive", key: item})
    if code is not None:
        events.append({"type": "websocket.disconnect", "code": code, "reason": ""})
    return events


async def call_app(app: Any, scope: dict[str, Any], *events: Message) -> AsgiPeer:
    """Run one ASGI call of ``app`` to its end against a fresh peer holding ``events``."""
    peer = AsgiPeer(*events)
    await app(scope, peer.receive, peer.send)
    return peer
