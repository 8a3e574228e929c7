"""The two apps the compat benchmark compares, on the same server: a krandog echo handler and
the raw ASGI echo app it replaces (plus an ``async def`` handler for reference)."""

from __future__ import annotations

from typing import Any


def krandog_echo(req: Any) -> Any:
    """What a krandog user writes (auto-detected and wrapped by the server)."""
    if req.type == "websocket":
        req.ws.send(req.data)
        return None
    return "echo\n"


async def krandog_async_echo(req: Any) -> Any:
    if req.type == "websocket":
        await req.ws.send(req.data)
        return None
    return "echo\n"


async def asgi_echo(scope: Any, receive: Any, send: Any) -> None:
    """The same echo written against ASGI directly: the baseline."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"echo\n"})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
