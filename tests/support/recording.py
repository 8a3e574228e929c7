"""A ``websockets`` server that records what a client sent and how it closed, and can push a
message later: the peer of the ``krandog-asgi connect`` tests."""

from __future__ import annotations

import asyncio
import queue
import threading

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.support.peers import STEP

__all__ = ["RecordingServer"]


class RecordingServer:
    """A ``websockets`` server in a thread. It echoes, except ``push:SECONDS:TEXT`` (send
    TEXT that much later), ``bye:SECONDS`` (close with 1001 that much later) and ``stream``
    (send "tick" every 20 ms, forever); it records each message and how each connection was
    closed, by the path it connected to (each test has its own, so a connection a previous
    test left behind cannot be mistaken for one of its own)."""

    def __init__(self) -> None:
        self.messages: dict[str, queue.Queue[str | bytes]] = {}
        self.close_codes: dict[str, queue.Queue[tuple[int | None, str | None]]] = {}
        self.path = "/"
        self._tasks: set[asyncio.Future[None]] = set()
        self.port = 0
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self._ready = threading.Event()

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        assert self._ready.wait(STEP)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(STEP)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.path}"

    @property
    def received(self) -> queue.Queue[str | bytes]:
        return self.messages.setdefault(self.path, queue.Queue())

    @property
    def closes(self) -> queue.Queue[tuple[int | None, str | None]]:
        return self.close_codes.setdefault(self.path, queue.Queue())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", 0, ping_interval=None) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    async def _handler(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else "/"
        received = self.messages.setdefault(path, queue.Queue())
        try:
            async for message in ws:
                received.put(message)
                if isinstance(message, str) and message.startswith("push:"):
                    _, delay, text = message.split(":", 2)
                    asyncio.get_running_loop().call_later(
                        float(delay), lambda t=text: asyncio.ensure_future(ws.send(t))
                    )
                elif message == "stream":  # ticks every 20 ms until the connection ends
                    task = asyncio.ensure_future(self._ticks(ws))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                elif isinstance(message, str) and message.startswith("bye:"):
                    await asyncio.sleep(float(message[4:]))
                    await ws.close(1001, "later")
                else:
                    await ws.send(message)
        except ConnectionClosed:
            pass  # a close code other than 1000/1001, or a killed client: recorded below
        finally:
            self.close_codes.setdefault(path, queue.Queue()).put((ws.close_code, ws.close_reason))

    @staticmethod
    async def _ticks(ws: ServerConnection) -> None:
        try:
            while True:
                await ws.send("tick")
                await asyncio.sleep(0.02)
        except ConnectionClosed:
            pass

    def next_message(self) -> str | bytes:
        return self.received.get(timeout=STEP)
