"""krandog's echo server, unchanged in spirit.

Run:  krandog-asgi examples.echo:handler     (from the repository root)
Try:  krandog-asgi connect ws://127.0.0.1:8000/     or     curl http://127.0.0.1:8000/

The handler is a plain function: it runs on the event loop, so it must not block.
"""

from __future__ import annotations

from typing import Any


def handler(req: Any) -> Any:
    if req.type == "websocket":
        req.ws.send(req.data)  # str for text frames, bytes for binary ones
        return None
    return {
        "status": 200,
        "headers": {"Content-Type": "text/plain"},
        "body": "HTTP Server with WebSocket support\n",
    }
