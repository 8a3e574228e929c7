"""The broadcast server from krandog's documentation: every message goes to every client.

Run:  krandog-asgi examples.broadcast:handler     (from the repository root)
Try:  open two terminals with  krandog-asgi connect ws://127.0.0.1:8000/  and type in one.

This is krandog's pattern as it was: ``req.ws`` is the same object for every message of a
connection, so ``if req.ws not in clients`` finds it again, and closed clients are skipped by
``readyState``. One line more than krandog drops them from the list (krandog kept them
forever); ``examples/chat.py`` shows the lifecycle events that do it without any scanning.
"""

from __future__ import annotations

from typing import Any

from krandog_asgi import CLOSED, OPEN

clients: list[Any] = []


def handler(req: Any) -> Any:
    if req.type == "websocket":
        # Store new connections
        if req.ws not in clients:
            clients.append(req.ws)
            print("Client connected, total:", len(clients))

        # Broadcast to all connected clients (binary messages are passed on as they are)
        message = "Broadcast: " + req.data if isinstance(req.data, str) else req.data
        for client in clients:
            if client.readyState == OPEN:
                client.send(message)

        # krandog-asgi: forget the clients that have gone
        clients[:] = [c for c in clients if c.readyState != CLOSED]
        return None

    return {"status": 200, "body": "Broadcast Server\n"}
