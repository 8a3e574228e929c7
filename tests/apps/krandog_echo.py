"""krandog echo handlers for the compat tests: sync, async, pre-wrapped, and a thread probe."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from krandog_asgi import krandog_app


def handler(req: Any) -> Any:
    """The seed's echo, prefix included; HTTP answers which thread ran the handler."""
    if req.type == "websocket":
        if isinstance(req.data, str):
            req.ws.send("Echo: " + req.data)
        else:
            req.ws.send(req.data)
        return None
    return {"status": 200, "body": threading.current_thread().name}


async def ahandler(req: Any) -> Any:
    """The same in ``async def``, awaiting the backpressure handle ``send`` returns."""
    await asyncio.sleep(0)
    if req.type == "websocket":
        if isinstance(req.data, str):
            await req.ws.send("Echo: " + req.data)
        else:
            await req.ws.send(req.data)
        return None
    return {"status": 200, "body": "async " + threading.current_thread().name}


def returns_coroutine(req: Any) -> Any:
    """A sync callable returning an awaitable: it is awaited, for messages too."""
    return ahandler(req)


def plain(req: Any) -> Any:
    """Pure echo (what the benchmark runs)."""
    if req.type == "websocket":
        req.ws.send(req.data)
        return None
    return "echo server\n"


# Pre-wrapped, for servers that only know ASGI (uvicorn).
app = krandog_app(handler)


class CallableHandler:
    """A callable object with one argument is a krandog handler too."""

    def __call__(self, req: Any) -> Any:
        return handler(req)


callable_handler = CallableHandler()
