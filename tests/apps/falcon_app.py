"""A Falcon ASGI app for ``tests/frameworks/test_falcon.py``: lifespan middleware, media (JSON)
bodies, a streamed response, a WebSocket echo and a refused WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import falcon
import falcon.asgi

STATE: dict[str, Any] = {}


class Lifespan:
    async def process_startup(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        STATE["greeting"] = "hello from process_startup"

    async def process_shutdown(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        STATE.clear()


class Home:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"greeting": STATE["greeting"], "query": req.get_param("q")}


class Items:
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        data = await req.get_media()
        if not isinstance(data, dict) or "name" not in data:
            raise falcon.HTTPBadRequest(title="name is required")
        resp.status = falcon.HTTP_201
        resp.media = {"created": data["name"]}

    async def on_get_item(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, item_id: int
    ) -> None:
        resp.media = {"item_id": item_id}


class Stream:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(4):
                yield f"falcon{i};".encode()
                await asyncio.sleep(0.01)

        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = parts()


class Upload:
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        total = 0
        async for chunk in req.stream:
            total += len(chunk)
        resp.media = {"received": total}


class Echo:
    async def on_websocket(self, req: falcon.asgi.Request, ws: falcon.asgi.WebSocket) -> None:
        if req.get_header("x-refuse"):
            await ws.close(4403)  # before accept: the handshake is refused with 403
            return
        forced = req.get_header("x-subprotocol")  # a bug on purpose: one the client never offered
        await ws.accept(subprotocol=forced or ("chat" if "chat" in ws.subprotocols else None))
        try:
            while True:
                message = await ws.receive_media()
                await ws.send_media({"falcon": message})
        except falcon.WebSocketDisconnected:
            return


app = falcon.asgi.App(middleware=[Lifespan()])
app.add_route("/", Home())
items = Items()
app.add_route("/items", items)
app.add_route("/items/{item_id:int}", items, suffix="item")
app.add_route("/stream", Stream())
app.add_route("/upload", Upload())
app.add_route("/ws", Echo())
