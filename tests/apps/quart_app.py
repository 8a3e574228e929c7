"""A Quart app for ``tests/frameworks/test_quart.py``: serving hooks, JSON and form bodies, a
streamed response, WebSocket echo with subprotocols and a WebSocket refused with an HTTP
response (ASGI's WebSocket Denial Response extension)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from quart import Quart, abort, jsonify, request, websocket
from quart.typing import ResponseReturnValue

app = Quart(__name__)
STATE: dict[str, str] = {}


@app.before_serving
async def startup() -> None:
    STATE["greeting"] = "hello from before_serving"


@app.route("/")
async def home() -> ResponseReturnValue:
    return jsonify(greeting=STATE["greeting"])


@app.route("/json", methods=["POST"])
async def json_echo() -> ResponseReturnValue:
    data = await request.get_json()
    return jsonify(received=data, method=request.method)


@app.route("/form", methods=["POST"])
async def form() -> ResponseReturnValue:
    fields = await request.form
    files = await request.files
    return jsonify(
        fields=fields.to_dict(),
        files={name: len(f.read()) for name, f in files.items()},
    )


@app.route("/stream")
async def stream() -> ResponseReturnValue:
    async def parts() -> AsyncIterator[bytes]:
        for i in range(4):
            yield f"line{i}\n".encode()
            await asyncio.sleep(0.01)

    return parts(), 200, {"content-type": "text/plain"}


@app.route("/teapot")
async def teapot() -> ResponseReturnValue:
    abort(418)


@app.websocket("/ws")
async def ws_echo() -> None:
    await websocket.accept(
        subprotocol="chat" if "chat" in websocket.requested_subprotocols else None
    )
    while True:
        data = await websocket.receive()
        if data == "close":
            await websocket.close(4002, "closing")
            return
        await websocket.send(data if isinstance(data, bytes) else f"quart:{data}")


@app.websocket("/ws-denied")
async def ws_denied() -> None:
    if websocket.headers.get("x-token") != "secret":
        abort(401)
    await websocket.accept()
    await websocket.send("welcome")
