"""The app of the soak test (tests/soak/test_soak.py).

GET  /stats       JSON: the server's asyncio task count (this request's own task excluded),
                  after a gc.collect() and glibc's malloc_trim(0), so that the RSS the test
                  reads next is live memory rather than what the allocator kept cached
GET  /p/<n>       the body "p/<n>" (pipelining order is checked against it)
POST /echo        the request body back
GET  /big?<n>     <n> bytes (a slow reader makes our writes back up)
WS   /ws          echo every message
WS   /flood       send 2000 x 16 KiB messages without reading (a slow WebSocket reader)
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import json
import sys
from typing import Any

_libc_name = ctypes.util.find_library("c")
_LIBC = ctypes.CDLL(_libc_name) if _libc_name else None


def _trim() -> None:
    gc.collect()
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "websocket":
        await websocket(scope, receive, send)
        return
    path = scope["path"]
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if path == "/stats":
        _trim()
        tasks = len(asyncio.all_tasks()) - 1
        out = json.dumps({"tasks": tasks, "blocks": sys.getallocatedblocks()}).encode()
    elif path == "/echo":
        out = body
    elif path == "/big":
        out = b"x" * int(scope["query_string"] or b"1048576")
    else:
        out = path[1:].encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"%d" % len(out))],
        }
    )
    await send({"type": "http.response.body", "body": out})


async def websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    if scope["path"] == "/flood":
        chunk = b"f" * 16384
        try:
            for _ in range(2000):
                await send({"type": "websocket.send", "bytes": chunk})
        except OSError:
            return  # the client went away: ClientDisconnected
        await send({"type": "websocket.close"})
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
