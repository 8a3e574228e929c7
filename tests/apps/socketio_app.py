"""A python-socketio server as an ASGI app, for ``tests/frameworks/test_socketio.py``.

Events: ``echo`` answers through the ack, ``shout`` broadcasts to everyone else, ``join`` /
``say`` use rooms, ``stats`` reports connects and disconnects the server has seen. The HTTP
routes nobody else claims go to a tiny fallback app.
"""

from __future__ import annotations

from typing import Any

import socketio

# Short pings: engine.io answers a long-poll GET still pending when its client said goodbye only
# after ping_interval + ping_timeout (under any server), and a graceful shutdown waits for it.
# They also put engine.io's pings to work in every test.
sio = socketio.AsyncServer(
    async_mode="asgi", cors_allowed_origins="*", ping_interval=1, ping_timeout=1
)
SEEN: dict[str, list[str]] = {"connect": [], "disconnect": []}


async def fallback(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"not socket.io"})


@sio.event
async def connect(sid: str, environ: dict[str, Any], auth: Any) -> bool:
    if isinstance(auth, dict) and auth.get("token") == "bad":
        return False
    name = auth.get("name", sid) if isinstance(auth, dict) else sid
    await sio.save_session(sid, {"name": name})
    SEEN["connect"].append(name)
    await sio.emit("welcome", {"name": name, "transport": sio.transport(sid)}, to=sid)
    return True


@sio.event
async def disconnect(sid: str, reason: Any = None) -> None:
    session = await sio.get_session(sid)
    SEEN["disconnect"].append(session["name"])


@sio.event
async def echo(sid: str, data: Any) -> Any:
    return data  # the return value is the ack


@sio.event
async def shout(sid: str, data: Any) -> str:
    session = await sio.get_session(sid)
    await sio.emit("shouted", {"from": session["name"], "data": data}, skip_sid=sid)
    return "sent"


@sio.event
async def join(sid: str, room: str) -> str:
    await sio.enter_room(sid, room)
    return room


@sio.event
async def say(sid: str, data: dict[str, str]) -> None:
    await sio.emit("said", data["text"], room=data["room"])


@sio.event
async def stats(sid: str) -> dict[str, list[str]]:
    return SEEN


app = socketio.ASGIApp(sio, other_asgi_app=fallback)
