"""WebSocket apps for tests/test_ws_server.py, routed by path.

/echo           echo text and binary
/close/<code>   accept, then close with <code> and reason "bye"
/crash          accept, then raise
/noaccept       return without accepting
/deny           websocket.close before accept (403)
/teapot         denial response 418 with a body and a header
/badproto       accept with a subprotocol the client did not offer
/subproto       accept with the client's last offered subprotocol
/scope          send the scope as JSON, then echo
/sender         only sends, every 50 ms; records how it ended
/hoard          accepts and never receives (receive queue fills up)
/flood          sends 200 x 256 KiB without reading; records how many sends completed
/stream         sends 256 KiB messages until a send fails; records how it ended
/early          a task calls receive() before the accept; it must get the first message
/deny101        a denial response with status 101 (invalid: the server answers 500)
/report         HTTP: JSON of what the sender/flood apps recorded
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

RECORD: dict[str, Any] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        body = json.dumps(RECORD).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    path = scope["path"]
    message = await receive()
    assert message["type"] == "websocket.connect"
    if path == "/deny":
        await send({"type": "websocket.close"})
        return
    if path == "/noaccept":
        return
    if path == "/teapot":
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 418,
                "headers": [(b"x-reason", b"teapot"), (b"content-type", b"text/plain")],
            }
        )
        await send(
            {"type": "websocket.http.response.body", "body": b"short and ", "more_body": True}
        )
        await send({"type": "websocket.http.response.body", "body": b"stout"})
        return
    if path == "/deny101":
        await send({"type": "websocket.http.response.start", "status": 101, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"nope"})
        return
    if path == "/early":
        early = asyncio.ensure_future(receive())
        await asyncio.sleep(0.05)  # the receive above is waiting before the accept
        await send({"type": "websocket.accept"})
        message = await early
        await send({"type": "websocket.send", "text": f"early got {message.get('text')}"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    if path == "/badproto":
        await send({"type": "websocket.accept", "subprotocol": "not-offered"})
        return
    subprotocol = (
        scope["subprotocols"][-1] if path == "/subproto" and scope["subprotocols"] else None
    )
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": subprotocol,
            "headers": [(b"x-accepted", b"yes")],
        }
    )
    if path.startswith("/close/"):
        await send(
            {"type": "websocket.close", "code": int(path.rsplit("/", 1)[1]), "reason": "bye"}
        )
        return
    if path == "/close-long-reason":  # ASGI: the reason "can be any string"
        await send({"type": "websocket.close", "code": 4002, "reason": "\u00e9" * 100})
        return
    if path == "/crash":
        raise RuntimeError("boom")
    if path == "/both":
        try:
            await send({"type": "websocket.send", "text": "a", "bytes": b"b"})
        except ValueError as exc:
            RECORD["both"] = str(exc)
        await send({"type": "websocket.send", "text": "a", "bytes": None})  # None is allowed
        return
    if path == "/scope":
        out = {
            k: v
            for k, v in scope.items()
            if k not in ("headers", "state", "raw_path", "query_string")
        }
        out["headers"] = [[n.decode(), v.decode()] for n, v in scope["headers"]]
        out["raw_path"] = scope["raw_path"].decode()
        out["query_string"] = scope["query_string"].decode()
        await send({"type": "websocket.send", "text": json.dumps(out)})
    if path == "/sender":
        RECORD["sender"] = "running"
        try:
            for i in range(2000):
                await send({"type": "websocket.send", "text": f"tick {i}"})
                await asyncio.sleep(0.05)
        except OSError as exc:
            RECORD["sender"] = f"send raised {type(exc).__name__}"
        return
    if path == "/hoard":
        await asyncio.sleep(3600)
    if path == "/stream":
        RECORD["stream"] = "running"
        chunk = b"s" * 262144
        try:
            for _ in range(100_000):
                await send({"type": "websocket.send", "bytes": chunk})
        except OSError as exc:
            RECORD["stream"] = f"send raised {type(exc).__name__}"
        return
    if path == "/flood":
        RECORD["flood"] = 0
        chunk = b"x" * 262144
        for _ in range(200):
            await send({"type": "websocket.send", "bytes": chunk})
            RECORD["flood"] += 1
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            RECORD["disconnect"] = [message["code"], message.get("reason", "")]
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
