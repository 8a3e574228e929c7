"""Apps for the pub/sub server tests.

``handler`` (krandog, sync, no asyncio): a WebSocket text ``sub ROOM`` subscribes the
connection, ``unsub ROOM`` unsubscribes it, ``pub ROOM TEXT`` publishes; an HTTP
``POST /publish/ROOM`` publishes its body (a sync HTTP handler). ``asgi_app``: a plain ASGI
app that finds the broker in its scope, attaches each WebSocket to the channel named by its
path and publishes what it receives; its ``GET /broker`` says which backend it got.
"""

from __future__ import annotations

from typing import Any

from krandog_asgi.pubsub import PublishError, broker_from_scope


def handler(req: Any) -> Any:
    if req.type == "websocket":
        verb, _, rest = req.data.partition(" ")
        if verb == "sub":
            req.ws.subscribe(rest)
            req.ws.send(f"subscribed {rest}")
        elif verb == "unsub":
            req.ws.unsubscribe(rest)
            req.ws.send(f"unsubscribed {rest}")
        elif verb == "pub":
            room, _, text = rest.partition(" ")
            try:
                req.publish(room, text)
            except PublishError as exc:
                req.ws.send(f"error {exc}")
        return None
    if req.method == "POST" and req.pathname.startswith("/publish/"):
        try:
            req.publish(req.pathname.removeprefix("/publish/"), req.text)
        except PublishError as exc:
            return {"status": 503, "body": f"{exc}\n"}
        return {"status": 202, "body": "published\n"}
    return {"status": 404, "body": "Not found\n"}


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    broker = broker_from_scope(scope)  # the server's scope extension
    assert "krandog_asgi.broker" not in scope["state"]  # the app's namespace stays its own
    if scope["type"] == "http":
        await receive()
        body = f"{broker.scheme} {type(broker).__name__}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    channel = scope["path"].strip("/") or "root"
    async with broker.attach(channel, send):
        await send({"type": "websocket.send", "text": f"attached {channel}"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await broker.publish(channel, message.get("text") or message.get("bytes"))
