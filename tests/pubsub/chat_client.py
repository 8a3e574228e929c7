"""A chat client for the cluster tests: a real WebSocket (the ``websockets`` library, an
independent peer) that records every JSON message the server sends, in order."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


class ChatClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self.name: str | None = None
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, port: int) -> ChatClient:
        ws = await connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10)
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.received.append(json.loads(raw))
        except Exception:  # a killed server ends the connection abruptly
            pass
        finally:
            self.closed.set()

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def wait_for(
        self, check: Callable[[dict[str, Any]], bool], timeout: float = 10.0, start: int = 0
    ) -> dict[str, Any]:
        """The first message from index ``start`` on that passes ``check``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.received[start:]:
                if check(message):
                    return message
            if self.closed.is_set():
                break
            await asyncio.sleep(0.02)
        raise AssertionError(f"no such message within {timeout}s; got {self.received[start:]}")

    async def join(self, name: str, timeout: float = 20.0) -> dict[str, Any]:
        """Join and return the welcome (or the error)."""
        start = len(self.received)
        await self.send(type="join", name=name)
        reply = await self.wait_for(lambda m: m["type"] in ("welcome", "error"), timeout, start)
        if reply["type"] == "welcome":
            self.name = name
        return reply

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m["type"] == kind]

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.wait_for(self._reader, 5)
