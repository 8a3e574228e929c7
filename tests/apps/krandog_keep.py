"""Keeps some request objects: each must keep its own data, whatever the messages after it."""

from __future__ import annotations

import json
from typing import Any

kept: list[Any] = []


def handler(req: Any) -> Any:
    if req.type != "websocket":
        return "keep"
    if req.data == "report":
        req.ws.send(json.dumps([[r.data, r.type, r.ws is req.ws] for r in kept]))
    elif isinstance(req.data, str) and req.data.startswith("keep"):
        kept.append(req)
    return None
