"""The ASGI app our server runs for the client tests; the path picks the behaviour.

/echo (and any other path)  accept (choosing the first offered subprotocol), echo everything
/welcome                    send "welcome" right after accepting, then echo
/headers                    send the request headers as JSON, then echo
/close/<code>               close with <code> and reason "bye" right after accepting
/big/<n>                    send <n> zero bytes as one binary message, then echo
/no-read                    accept, then never read (the client's writes back up)
/deny                       refuse the handshake (403)
/relay?to=<url>             relay to <url> through a browser-style WebSocket created inside
                            this handler: upstream messages come back as "upstream: <data>"
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

from krandog_asgi.client import WebSocket


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"websocket only"})
        return
    assert (await receive())["type"] == "websocket.connect"
    path: str = scope["path"]
    if path == "/deny":
        await send({"type": "websocket.close"})
        return
    subprotocol = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    if path.startswith("/close/"):
        await send({"type": "websocket.close", "code": int(path[7:]), "reason": "bye"})
        return
    if path == "/relay":
        await relay(scope, receive, send)
        return
    if path == "/no-read":
        await asyncio.Event().wait()  # cancelled when the server shuts down
    if path == "/welcome":
        await send({"type": "websocket.send", "text": "welcome"})
    elif path == "/headers":
        headers = {n.decode("latin-1"): v.decode("latin-1") for n, v in scope["headers"]}
        await send({"type": "websocket.send", "text": json.dumps(headers)})
    elif path.startswith("/big/"):
        await send({"type": "websocket.send", "bytes": bytes(int(path[5:]))})
    await echo(receive, send)


async def echo(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def relay(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Browser API inside a running server: the case of a handler relaying to another server."""
    url = parse_qs(scope["query_string"].decode())["to"][0]
    upstream = WebSocket(url)
    opened = asyncio.get_running_loop().create_future()

    async def on_message(event: Any) -> None:
        await send({"type": "websocket.send", "text": f"upstream: {event.data}"})

    upstream.onopen = lambda: opened.done() or opened.set_result(True)
    upstream.onclose = lambda event: opened.done() or opened.set_result(False)
    upstream.onmessage = on_message
    if not await opened:
        await send({"type": "websocket.close", "code": 1014, "reason": "upstream failed"})
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            upstream.close()
            await upstream.wait_closed()
            return
        upstream.send(message.get("text") or message.get("bytes") or "")
