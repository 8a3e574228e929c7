"""``memory://``: the embedded backend. One process: a publish is delivered to the local
subscribers at once, inside the call, so a sync handler's publish has reached every local
``req.ws`` when it returns."""

from __future__ import annotations

import asyncio

from krandog_asgi.pubsub.broker import (
    DEFAULT_HEARTBEAT,
    DEFAULT_PRESENCE_TTL,
    DEFAULT_QUEUE_SIZE,
    Broker,
)
from krandog_asgi.pubsub.codec import Payload
from krandog_asgi.pubsub.errors import PublishError
from krandog_asgi.pubsub.presence import MemoryPresenceStore, PresenceStore

__all__ = ["MemoryBroker"]


class MemoryBroker(Broker):
    """Rooms per process: with ``--workers N`` each worker has its own (the server warns)."""

    scheme = "memory"

    def __init__(
        self,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        presence_ttl: float = DEFAULT_PRESENCE_TTL,
        heartbeat: float = DEFAULT_HEARTBEAT,
    ) -> None:
        super().__init__(queue_size=queue_size, presence_ttl=presence_ttl, heartbeat=heartbeat)
        self._presence_store = MemoryPresenceStore()

    def _publish(self, channel: str, message: Payload) -> asyncio.Future[None]:
        if not isinstance(message, str | bytes | bytearray | memoryview):
            raise TypeError(f"publish() takes str or bytes, not {type(message).__name__}")
        if self._closed:
            raise PublishError("the broker is closed")
        if not isinstance(message, str | bytes):
            message = bytes(message)
        self._deliver(channel, message)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def _store(self) -> PresenceStore:
        return self._presence_store

    def __repr__(self) -> str:
        return f"<MemoryBroker {len(self._channels)} channels>"
