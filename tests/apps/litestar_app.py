"""A Litestar app for ``tests/frameworks/test_litestar.py``: lifespan state, typed path and
query parameters, a validated JSON body, a streamed response and WebSocket routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from litestar import Litestar, Request, WebSocket, get, post, websocket
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, WebSocketDisconnect
from litestar.response import Stream


@dataclass
class Item:
    name: str
    price: float


async def startup(app: Litestar) -> None:
    app.state.greeting = "hello from startup"


@get("/")
async def home(state: State) -> dict[str, str]:
    return {"greeting": state.greeting}


@get("/items/{item_id:int}")
async def read_item(item_id: int, q: str | None = None) -> dict[str, object]:
    if item_id == 404:
        raise NotFoundException("no such item")
    return {"item_id": item_id, "q": q}


@post("/items")
async def create_item(data: Item) -> dict[str, object]:
    return {"name": data.name, "total": data.price * 2}


@get("/stream")
async def stream() -> Stream:
    async def parts() -> AsyncIterator[bytes]:
        for i in range(4):
            yield f"chunk{i}\n".encode()
            await asyncio.sleep(0.01)

    return Stream(parts(), media_type="text/plain")


@get("/client")
async def client(request: Request) -> dict[str, object]:
    return {"client": list(request.client or ()), "scheme": request.url.scheme}


@websocket("/ws")
async def echo(socket: WebSocket) -> None:
    await socket.accept(subprotocols="chat" if "chat" in socket.scope["subprotocols"] else None)
    try:
        while True:
            message = await socket.receive_data(mode="text")
            if message == "bye":
                await socket.close(code=4000, reason="bye to you")
                return
            await socket.send_json({"echo": message, "path": socket.url.path})
    except WebSocketDisconnect:
        return


@websocket("/ws-bytes")
async def echo_bytes(socket: WebSocket) -> None:
    await socket.accept()
    try:
        while True:
            await socket.send_bytes((await socket.receive_bytes())[::-1])
    except WebSocketDisconnect:
        return


app = Litestar(
    route_handlers=[home, read_item, create_item, stream, client, echo, echo_bytes],
    on_startup=[startup],
)
