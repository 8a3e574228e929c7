"""The seed's broadcast server, verbatim in Python: the list is never pruned.

GET / reports the readyState of every client in the list, so a test can see that a closed
client stays in it (krandog's behaviour) and is skipped by its readyState.
"""

from __future__ import annotations

from typing import Any

from krandog_asgi import krandog_app

clients: list[Any] = []


def handler(req: Any) -> Any:
    if req.type == "websocket":
        # Store new connections
        if req.ws not in clients:
            clients.append(req.ws)

        # Broadcast to all connected clients
        for client in clients:
            if client.readyState == 1:  # 1 = OPEN
                client.send("Broadcast: " + req.data)
        return None

    return {"status": 200, "body": {"states": [c.readyState for c in clients]}}


app = krandog_app(handler)
