"""Order and flow control of ``ws.send`` from sync code.

``flood <n> <size>``: send n binary messages of ``size`` bytes, each starting with its 4-byte
sequence number, in one synchronous loop; then the text ``done``. ``handler`` keeps the default
send queue limit; ``limited`` closes a client with 1008 once 256 KiB are queued behind it.
``fanout <n> <size>`` sends to every other connection instead (one connection's handler
writing to another's socket).
"""

from __future__ import annotations

import asyncio
from typing import Any

from krandog_asgi import krandog_app

peers: list[Any] = []
last_buffered: list[int | None] = [None]  # ws.bufferedAmount right after the last flood loop


def _handler(req: Any) -> Any:
    if req.type != "websocket":
        return {
            "peers": [p.readyState for p in peers],
            "last_buffered": last_buffered[0],
            "tasks": len(asyncio.all_tasks()),  # writer tasks must not outlive their work
        }
    if req.ws not in peers:
        peers.append(req.ws)
    parts = req.data.split() if isinstance(req.data, str) else []
    if len(parts) == 3 and parts[0] in ("flood", "fanout"):
        count, size = int(parts[1]), int(parts[2])
        targets = [req.ws] if parts[0] == "flood" else [p for p in peers if p is not req.ws]
        filler = b"x" * (size - 4)
        for i in range(count):
            payload = i.to_bytes(4, "big") + filler
            for ws in targets:
                ws.send(payload)
        for ws in targets:
            ws.send("done")
        last_buffered[0] = max(ws.bufferedAmount for ws in targets)
    elif req.data == "hello":
        req.ws.send("hello")
    return None


handler = krandog_app(_handler)
limited = krandog_app(_handler, send_queue_limit=256 * 1024)
