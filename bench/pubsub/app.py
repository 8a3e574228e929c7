"""The fan-out bench's server app: a sync krandog handler. A WebSocket that sends ``sub`` is
subscribed to the ``fan`` channel; anything else it sends is published there."""

from __future__ import annotations

from typing import Any


def handler(req: Any) -> Any:
    if req.type == "websocket":
        if req.data == "sub":
            req.ws.subscribe("fan")
            req.ws.send("ok")
        else:
            req.publish("fan", req.data)
        return None
    return {"body": "pub/sub fan-out bench\n"}
