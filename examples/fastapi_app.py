"""The ASGI side: a FastAPI app with a WebSocket route, served by the same server.

Run:  krandog-asgi examples.fastapi_app:app     (from the repository root; needs fastapi)
Try:  curl http://127.0.0.1:8000/     and     krandog-asgi connect ws://127.0.0.1:8000/ws

Compare with ``examples/echo.py``: the same echo written as a krandog handler.
"""

from __future__ import annotations

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.get("/")
async def index() -> dict[str, str]:
    return {"message": "FastAPI on krandog-asgi; WebSocket echo at /ws"}


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            elif message.get("bytes") is not None:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return
