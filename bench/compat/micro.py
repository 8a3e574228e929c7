"""In-process cost of the compat layer per WebSocket message, without sockets.

A fake server feeds N ``websocket.receive`` messages through ``receive`` and counts what
``send`` gets, the way krandog-asgi's own ``send`` works (synchronous unless flow control
kicks in). It times a raw ASGI echo app and the krandog echo handler on the same fake, so
the difference is what the compat layer adds per message. Run:

    python bench/compat/micro.py [N]
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from krandog_asgi.compat import krandog_app


async def raw_echo(scope: Any, receive: Any, send: Any) -> None:
    message = await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            return


def krandog_echo(req: Any) -> None:
    if req.type == "websocket":
        req.ws.send(req.data)


class FakeServer:
    """receive() alternates between returning at once and suspending on a future, as a real
    server does when the app drains its inbox faster than messages arrive (the usual case in
    a request-response load: every receive waits)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.i = -1
        self.sent = 0
        self.loop = asyncio.get_running_loop()

    async def receive(self) -> dict[str, Any]:
        self.i += 1
        if self.i == 0:
            return {"type": "websocket.connect"}
        if self.i > self.n:
            return {"type": "websocket.disconnect", "code": 1000, "reason": ""}
        waiter = self.loop.create_future()
        self.loop.call_soon(waiter.set_result, None)
        await waiter
        return {"type": "websocket.receive", "text": "0123456789abcdef0123456789abcdef"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            self.sent += 1


async def timed(app: Any, n: int) -> float:
    fake = FakeServer(n)
    scope = {"type": "websocket", "path": "/echo", "headers": [], "query_string": b""}
    start = time.perf_counter()
    await app(scope, fake.receive, fake.send)
    elapsed = time.perf_counter() - start
    assert fake.sent == n, fake.sent
    return elapsed


async def main(n: int) -> None:
    apps = {"raw ASGI echo": raw_echo, "krandog echo": krandog_app(krandog_echo)}
    results: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(7):
        for name, app in apps.items():
            results[name].append(await timed(app, n))
    best = {name: min(times) / n * 1e6 for name, times in results.items()}
    for name, us in best.items():
        print(f"{name:15s} {us:6.2f} us/message (best of 7, {n} messages)")
    print(f"compat adds     {best['krandog echo'] - best['raw ASGI echo']:6.2f} us/message")


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
