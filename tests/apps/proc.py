"""Apps for the process-level tests: they report their pid, env and scope scheme."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any


async def _respond(send: Any, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps({"scheme": scope["scheme"]})})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    path = scope["path"]
    if path.startswith("/sleep/"):
        await asyncio.sleep(float(path.rsplit("/", 1)[1]))
    if path.startswith("/block/"):  # a blocking call in async code: the whole loop stalls
        time.sleep(float(path.rsplit("/", 1)[1]))  # noqa: ASYNC251
    await _respond(
        send,
        {
            "pid": os.getpid(),
            "scheme": scope["scheme"],
            "env": os.environ.get("KRANDOG_TEST_VALUE"),
            "server": scope["server"],
            "client": scope["client"],
            "path": path,
        },
    )


def create_app() -> Any:
    """For --factory."""
    return app


def broken_factory() -> Any:
    raise RuntimeError("factory exploded")


async def failing_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        return
    await app(scope, receive, send)


async def ignores_shutdown(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A request that never finishes: graceful shutdown must give up on it."""
    if scope["type"] == "http":
        await asyncio.sleep(3600)
    await app(scope, receive, send)


async def hangs_at_shutdown(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A lifespan shutdown handler that never finishes: the graceful bound must end it."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await asyncio.sleep(3600)
        return
    await app(scope, receive, send)


async def slow_shutdown(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A lifespan shutdown handler that takes a second, then completes."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await asyncio.sleep(1.0)
        await send({"type": "lifespan.shutdown.complete"})
        return
    await app(scope, receive, send)
