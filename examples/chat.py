"""A chat server: user names, broadcast, join/leave notices, and a web page at ``/``.

Run:  krandog-asgi examples.chat:handler     (from the repository root)
Then open http://127.0.0.1:8000/ in two browser windows, pick a name in each, and chat.

The page (``chat.html``, next to this file) uses the browser's own ``WebSocket`` on ``/ws``
(and reconnects when it goes away). The protocol is JSON text frames:

    client -> server   {"type": "join", "name": "alice"}
                       {"type": "message", "text": "hello"}
    server -> client   {"type": "welcome", "name": "alice", "users": ["alice", "bob"]}
                       {"type": "join" | "leave", "name": "bob", "users": [...]}
                       {"type": "message", "name": "alice", "text": "hello"}
                       {"type": "error", "error": "that name is taken"}

It is one krandog handler with ``lifecycle=True``: the ``"websocket.close"`` event removes a
user the moment the connection ends, so the room never keeps (or sends to) closed clients.
The handler is a plain function and runs on the event loop: it must not block.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

from krandog_asgi import krandog_app

MAX_NAME = 32
MAX_TEXT = 2000

users: dict[Any, str] = {}  # req.ws -> name, for the clients that joined


def send_json(ws: Any, message: dict[str, Any]) -> None:
    ws.send(json.dumps(message))


def broadcast(message: dict[str, Any]) -> None:
    text = json.dumps(message)
    for ws in users:
        if ws.readyState == ws.OPEN:
            ws.send(text)


def clean_name(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    name = "".join(c for c in value if unicodedata.category(c)[0] != "C").strip()
    return name if 0 < len(name) <= MAX_NAME else None


def on_message(ws: Any, data: str | bytes) -> None:
    try:
        message = json.loads(data)
        kind = message["type"]
    except (ValueError, TypeError, KeyError):
        send_json(
            ws, {"type": "error", "error": 'send JSON like {"type": "message", "text": "hello"}'}
        )
        return
    if kind == "join":
        name = clean_name(message.get("name"))
        if ws in users:
            send_json(ws, {"type": "error", "error": "you have already joined"})
        elif name is None:
            send_json(ws, {"type": "error", "error": f"a name is 1 to {MAX_NAME} characters"})
        elif name in users.values():
            send_json(ws, {"type": "error", "error": "that name is taken"})
        else:
            users[ws] = name
            everyone = sorted(users.values())
            send_json(ws, {"type": "welcome", "name": name, "users": everyone})
            broadcast({"type": "join", "name": name, "users": everyone})
    elif kind == "message":
        text = message.get("text")
        if ws not in users:
            send_json(ws, {"type": "error", "error": "join first"})
        elif not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT:
            send_json(ws, {"type": "error", "error": f"a message is 1 to {MAX_TEXT} characters"})
        else:
            broadcast({"type": "message", "name": users[ws], "text": text})
    else:
        send_json(ws, {"type": "error", "error": f"unknown message type {kind!r}"})


@krandog_app(lifecycle=True)
def handler(req: Any) -> Any:
    if req.type == "websocket":
        on_message(req.ws, req.data)
        return None
    if req.type == "websocket.close":
        name = users.pop(req.ws, None)
        if name is not None:
            broadcast({"type": "leave", "name": name, "users": sorted(users.values())})
        return None
    if req.type == "websocket.open":
        return None
    if req.pathname == "/":
        return {"headers": {"Content-Type": "text/html; charset=utf-8"}, "body": PAGE}
    return {"status": 404, "body": "Not found\n"}


PAGE = Path(__file__).with_name("chat.html").read_text(encoding="utf-8")  # read once, at import
