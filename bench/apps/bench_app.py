"""The one ASGI application every server under test runs (bench/run.py).

Plain ASGI 3 with no framework, so the figures measure the servers, not a framework.

HTTP: ``GET /`` 13-byte text; ``GET /json`` a small JSON object (stdlib json, encoded per
request); ``POST /echo`` the body back; ``GET /stream`` 1 MiB as 16 chunks of 64 KiB with
``more_body`` (no content-length: chunked on HTTP/1.1); anything else 404.
WebSocket: ``/echo`` sends every message back; ``/broadcast`` sends every message to every
connected ``/broadcast`` client, one ``await send`` after the other (the naive chat room);
any other path is accepted and left idle (the memory workload).
"""

from __future__ import annotations

import json
from typing import Any

HELLO = b"Hello, world!"
TEXT_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
STREAM_CHUNK = b"s" * 65536
STREAM_CHUNKS = 16

room: set[Any] = set()


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(send: Any, status: int, headers: list[Any], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _http(scope: Any, receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/":
        await _respond(send, 200, TEXT_HEADERS, HELLO)
    elif path == "/json":
        body = json.dumps({"message": "Hello, world!"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await _respond(send, 200, headers, body)
    elif path == "/echo":
        chunks = []
        while True:
            event = await receive()
            chunks.append(event.get("body", b""))
            if not event.get("more_body"):
                break
        body = b"".join(chunks)
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", b"%d" % len(body)),
        ]
        await _respond(send, 200, headers, body)
    elif path == "/stream":
        start = {"type": "http.response.start", "status": 200}
        await send({**start, "headers": [(b"content-type", b"application/octet-stream")]})
        for _ in range(STREAM_CHUNKS):
            await send({"type": "http.response.body", "body": STREAM_CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await _respond(send, 404, [(b"content-length", b"0")], b"")


def _reply(event: Any) -> dict[str, Any]:
    if event.get("bytes") is not None:
        return {"type": "websocket.send", "bytes": event["bytes"]}
    return {"type": "websocket.send", "text": event["text"]}


async def _websocket(scope: Any, receive: Any, send: Any) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    path = scope["path"]
    if path == "/broadcast":
        room.add(send)
    try:
        while True:
            event = await receive()
            if event["type"] != "websocket.receive":
                return
            if path == "/echo":
                await send(_reply(event))
            elif path == "/broadcast":
                out = _reply(event)
                for member in list(room):
                    try:
                        await member(out)
                    except Exception:  # a member that went away leaves the room
                        room.discard(member)
    finally:
        room.discard(send)


async def app(scope: Any, receive: Any, send: Any) -> None:
    kind = scope["type"]
    if kind == "http":
        await _http(scope, receive, send)
    elif kind == "websocket":
        await _websocket(scope, receive, send)
    elif kind == "lifespan":
        await _lifespan(receive, send)
