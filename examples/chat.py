"""A chat server: user names, broadcast, join/leave notices, and a web page at ``/``.

Run:  krandog-asgi examples.chat:handler     (from the repository root)
Then open http://127.0.0.1:8000/ in two browser windows, pick a name in each, and chat.
Or join from a terminal:  krandog-asgi connect ws://127.0.0.1:8000/ws  and type
{"type": "join", "name": "carol"}  then  {"type": "message", "text": "hi"}.

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

The room lives in the server's pub/sub broker (``krandog_asgi.pubsub``), so one process needs
nothing more and several share it through Redis:

    krandog-asgi examples.chat:handler --workers 2 --broadcast-url redis://127.0.0.1:6379/0

* Names are claimed in a presence room: unique across every process sharing the broker.
* Messages: a joined client is subscribed to the ``chat`` channel (``req.ws.subscribe``) and
  every message is published there (``req.ws.publish``), so each client gets each once.
* Joins and leaves go through ``chat.members``; each process keeps the set of names from them
  and sends its clients the event with that set as ``users``. Join and leave commute, so every
  process ends with the same list however two processes' events interleave.
* The users of a process that dies without a goodbye leave once their presence entry expires
  (``--presence-ttl``): one surviving process announces it.

The handler is ``async`` only because claiming a name may ask Redis; it never blocks.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from pathlib import Path
from typing import Any

from krandog_asgi import krandog_app
from krandog_asgi.pubsub import BrokerError

MAX_NAME = 32
MAX_TEXT = 2000
ROOM = "chat"  # the presence room, and the channel of messages
MEMBERS = "chat.members"  # the channel of joins and leaves

logger = logging.getLogger("examples.chat")
users: dict[Any, str] = {}  # req.ws -> name, for the clients of this process that joined


def send_json(ws: Any, message: dict[str, Any]) -> None:
    ws.send(json.dumps(message))


class Room:
    """This process's view of the room: the names in it, kept from the join/leave events."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.presence = broker.presence(ROOM)
        self.names: set[str] | None = None  # None until synced with the presence room
        self.early: list[dict[str, Any]] = []  # events that arrived while syncing
        broker.listen(MEMBERS, self.on_event)
        self.presence.on_expire(self.expired)

    async def sync(self) -> None:
        """Start from the presence room, then apply what arrived meanwhile (once)."""
        if self.names is None:
            names = set(await self.presence.members())
            if self.names is None:
                self.names = names
                for event in self.early:
                    self.apply(event)
                self.early.clear()

    def apply(self, event: dict[str, Any]) -> None:
        assert self.names is not None
        if event["type"] == "join":
            self.names.add(event["name"])
        else:
            self.names.discard(event["name"])

    def on_event(self, data: str | bytes) -> None:
        event = json.loads(data)
        if self.names is None:
            self.early.append(event)
            return
        self.apply(event)
        text = json.dumps({**event, "users": sorted(self.names)})
        for ws in users:
            ws.send(text)

    async def announce(self, kind: str, name: str) -> None:
        """Publish a join or leave; ``users`` is filled in by each receiving process."""
        everyone = await self.presence.members()
        await self.broker.publish(
            MEMBERS, json.dumps({"type": kind, "name": name, "users": everyone})
        )

    async def expired(self, names: list[str]) -> None:
        for name in names:  # their process died: this one was picked to say so
            await self.announce("leave", name)


rooms: dict[int, Room] = {}  # one per broker (per worker process), by id


def room_of(ws: Any) -> Room:
    broker = ws.broker
    room = rooms.get(id(broker))
    if room is None:
        room = rooms[id(broker)] = Room(broker)
    return room


def clean_name(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    name = "".join(c for c in value if unicodedata.category(c)[0] != "C").strip()
    return name if 0 < len(name) <= MAX_NAME else None


async def join(ws: Any, name: str) -> None:
    room = room_of(ws)
    try:
        await room.sync()
        claimed = await room.presence.join(name)
        everyone = await room.presence.members() if claimed else []
    except BrokerError:
        send_json(ws, {"type": "error", "error": "the chat is reconnecting, try again"})
        return
    if not claimed:
        send_json(ws, {"type": "error", "error": "that name is taken"})
        return
    users[ws] = name
    ws.subscribe(ROOM)
    send_json(ws, {"type": "welcome", "name": name, "users": everyone})
    try:
        await room.announce("join", name)
    except BrokerError:
        send_json(ws, {"type": "error", "error": "not sent: the chat is reconnecting, try again"})


async def on_message(ws: Any, data: str | bytes) -> None:
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
        else:
            await join(ws, name)
    elif kind == "message":
        text = message.get("text")
        if ws not in users:
            send_json(ws, {"type": "error", "error": "join first"})
        elif not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT:
            send_json(ws, {"type": "error", "error": f"a message is 1 to {MAX_TEXT} characters"})
        else:
            try:
                await ws.publish(
                    ROOM, json.dumps({"type": "message", "name": users[ws], "text": text})
                )
            except BrokerError:
                error = "not sent: the chat is reconnecting, try again"
                send_json(ws, {"type": "error", "error": error})
    else:
        send_json(ws, {"type": "error", "error": f"unknown message type {kind!r}"})


async def on_close(ws: Any) -> None:
    name = users.pop(ws, None)
    if name is None:
        return
    room = room_of(ws)
    try:
        await room.presence.leave(name)
        await room.announce("leave", name)
    except BrokerError as exc:  # the entry expires and another process announces the leave
        logger.warning("chat: the leave of %r is not announced now: %s", name, exc)


@krandog_app(lifecycle=True)
async def handler(req: Any) -> Any:
    if req.type == "websocket":
        await on_message(req.ws, req.data)
        return None
    if req.type == "websocket.close":
        await on_close(req.ws)
        return None
    if req.type == "websocket.open":
        return None
    if req.pathname == "/":
        return {"headers": {"Content-Type": "text/html; charset=utf-8"}, "body": PAGE}
    return {"status": 404, "body": "Not found\n"}


PAGE = Path(__file__).with_name("chat.html").read_text(encoding="utf-8")  # read once, at import
