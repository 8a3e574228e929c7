"""Lifespan variants for ``tests/test_http_lifespan.py``; each writes what happened to a file
named by ``$LIFESPAN_LOG`` (one line per event) so the test can check it after shutdown."""

from __future__ import annotations

import asyncio
import os
from typing import Any


def note(line: str) -> None:
    path = os.environ.get("LIFESPAN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


async def http_reply(scope: dict[str, Any], send: Any) -> None:
    body = repr(sorted((scope.get("state") or {}).items())).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def full(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Startup sets state; shutdown is reported; HTTP shows the state it got."""
    if scope["type"] == "lifespan":
        note(f"spec_version={scope['asgi'].get('spec_version')}")
        while True:
            message = await receive()
            note(message["type"])
            if message["type"] == "lifespan.startup":
                scope["state"]["db"] = "connected"
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.sleep(0.1)
                note("cleanup done")
                await send({"type": "lifespan.shutdown.complete"})
                return
    await http_reply(scope, send)


async def startup_failed(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
        return
    await http_reply(scope, send)


async def startup_raises(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        raise RuntimeError("startup exploded")
    await http_reply(scope, send)


async def no_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app that does not know lifespan: it raises for any non-http scope."""
    if scope["type"] != "http":
        raise ValueError(f"unsupported scope type {scope['type']}")
    await http_reply(scope, send)


async def returns_early(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Returns at once for lifespan without sending anything."""
    if scope["type"] == "lifespan":
        return
    await http_reply(scope, send)


async def shutdown_failed(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.failed", "message": "flush failed"})
                return
    await http_reply(scope, send)


async def shutdown_raises(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        raise RuntimeError("shutdown exploded")
    await http_reply(scope, send)


async def bad_transition(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Sends startup.complete twice: the second send must raise."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        try:
            await send({"type": "lifespan.startup.complete"})
        except RuntimeError as exc:
            note(f"second complete raised: {exc}")
        message = await receive()
        note(message["type"])
        await send({"type": "lifespan.shutdown.complete"})
        return
    await http_reply(scope, send)


async def slow_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """No request is served before startup completes."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.sleep(1.0)
                scope["state"]["ready"] = True
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    await http_reply(scope, send)
