"""Small ASGI apps used by the HTTP and WebSocket integration tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    body = b"Hello, world!"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _jsonable_scope(scope: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in scope.items():
        if key == "headers":
            out[key] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in value]
        elif isinstance(value, bytes):
            out[key] = value.decode("latin-1")
        elif key == "state":
            out[key] = {k: repr(v) for k, v in value.items()}
        else:
            out[key] = value
    return out


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """HTTP: /scope dumps the scope as JSON, anything else echoes the request body.

    WebSocket: echo every message; path /close/<code> closes with that code after accept.
    """
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started"] = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        message = await receive()
        assert message["type"] == "websocket.connect"
        if scope["path"].startswith("/deny"):
            await send({"type": "websocket.close"})
            return
        subprotocol = scope["subprotocols"][0] if scope["subprotocols"] else None
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
        if scope["path"] == "/scope":
            await send({"type": "websocket.send", "text": json.dumps(_jsonable_scope(scope))})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
    if scope["path"] == "/scope":
        body = json.dumps(_jsonable_scope(scope)).encode()
    elif scope["path"] == "/slow":
        await asyncio.sleep(0.5)
        body = b"slow"
    else:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/octet-stream")],
        }
    )
    await send({"type": "http.response.body", "body": body})
