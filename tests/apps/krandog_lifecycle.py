"""Lifecycle events and WebSocket error handling.

Messages: ``raise`` (handler error -> 1011), ``close <code> <reason>`` (ws.close), ``return``
(a non-None return value -> one-time warning, connection stays open), ``count`` (number of
clients the room holds), anything else is broadcast to the room. GET / returns the event log.
"""

from __future__ import annotations

from typing import Any

from krandog_asgi import krandog_app

room: set[Any] = set()
events: list[dict[str, Any]] = []


def _handler(req: Any) -> Any:
    if req.type == "http":
        return {"events": events, "room": len(room)}
    if req.type == "websocket.open":
        assert req.ws.readyState == req.ws.OPEN
        room.add(req.ws)
        events.append({"type": req.type, "pathname": req.pathname})
        req.ws.send("welcome")
        return None
    if req.type == "websocket.close":
        room.discard(req.ws)
        events.append(
            {
                "type": req.type,
                "pathname": req.pathname,
                "code": req.code,
                "reason": req.reason,
                "ready_state": req.ws.readyState,
            }
        )
        return None
    data = req.data
    if data == "raise":
        raise ValueError("handler failed on purpose")
    if isinstance(data, str) and data.startswith("close "):
        _, code, reason = data.split(" ", 2)
        req.ws.close(int(code), reason)
        req.ws.send("dropped: sent after close")
        return None
    if data == "return":
        return {"status": 200, "body": "krandog would close here"}
    if data == "count":
        req.ws.send(str(len(room)))
        return None
    if data == "bad-close":
        try:
            req.ws.close(1005)
        except ValueError as exc:
            req.ws.send("ValueError: " + str(exc))
        return None
    if data == "bad-send":
        try:
            req.ws.send(123)
        except TypeError as exc:
            req.ws.send("TypeError: " + str(exc))
        return None
    for ws in room:
        ws.send(data)
    return None


handler = krandog_app(_handler, lifecycle=True)


async def _ahandler(req: Any) -> Any:
    return _handler(req)


ahandler = krandog_app(_ahandler, lifecycle=True)
