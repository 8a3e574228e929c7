"""The backend-independent half of a broker: the per-channel table of local sinks, the public
publish/subscribe/attach calls, the presence rooms and their heartbeat.

A backend (``memory``, ``redis_backend``) only moves messages: ``publish_nowait`` hands one
over, and whatever the backend receives for a channel comes back through ``_deliver``, which
fans it out to this process's sinks. There is no local fast path beside the backend, so each
sink gets each message exactly once, from one place.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any

from krandog_asgi.pubsub.codec import Payload
from krandog_asgi.pubsub.presence import Presence, PresenceStore
from krandog_asgi.pubsub.subscription import Attachment, Listener, Overflow, Send, Subscription

__all__ = ["DEFAULT_HEARTBEAT", "DEFAULT_PRESENCE_TTL", "DEFAULT_QUEUE_SIZE", "Broker", "Sink"]

logger = logging.getLogger("krandog_asgi.error")

DEFAULT_QUEUE_SIZE = 1024
DEFAULT_PRESENCE_TTL = 15.0
DEFAULT_HEARTBEAT = 5.0
CLOSE_TIMEOUT = 5.0

Sink = Subscription | Listener


class Broker:
    """Publish to channels and receive from them, in this process and (with a shared backend)
    across processes and machines. Made by ``create_broker(url)``; one per worker process.

    Guarantees, per channel: each message reaches each current subscriber at most once and, while
    the backend is up, exactly once; messages from one publisher (one broker) arrive in the order
    they were published. A publish that cannot reach the backend raises ``PublishError``.
    """

    scheme = "memory"

    def __init__(
        self,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        presence_ttl: float = DEFAULT_PRESENCE_TTL,
        heartbeat: float = DEFAULT_HEARTBEAT,
    ) -> None:
        if heartbeat <= 0 or presence_ttl <= heartbeat:
            raise ValueError("the presence TTL must be longer than the heartbeat, both above 0")
        self.queue_size = queue_size
        self.presence_ttl = presence_ttl
        self.heartbeat = heartbeat
        # A random id for this broker: presence entries carry it, so only their owner refreshes
        # or releases them.
        self.token = secrets.token_hex(8)
        self._channels: dict[str, dict[Sink, None]] = {}
        self._rooms: dict[str, Presence] = {}
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._beat_now = asyncio.Event()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None  # set by start()
        self._thread = 0

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a publish can reach the backend (always, for the memory backend)."""
        return not self._closed

    async def start(self) -> None:
        """Start the backend's tasks; a backend that is down now is retried in the background."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        if self._store().needs_heartbeat:
            self._heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeat_loop())

    async def close(self) -> None:
        """Leave every presence room (a goodbye, so entries need not wait for their TTL), end
        every subscription, stop the tasks."""
        if self._closed:
            return
        try:  # bounded: a backend that does not answer must not hold up the shutdown
            await asyncio.wait_for(self._leave_rooms(), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            logger.warning("Presence goodbyes timed out; the entries will expire")
        self._closed = True
        for sinks in list(self._channels.values()):
            for sink in list(sinks):
                sink.close()
        task = self._heartbeat_task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _leave_rooms(self) -> None:
        for room in list(self._rooms.values()):
            await room._leave_all()

    async def __aenter__(self) -> Broker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- publishing ----------------------------------------------------------------------------

    def publish_nowait(
        self, channel: str, message: Payload
    ) -> asyncio.Future[None] | concurrent.futures.Future[None]:
        """Hand ``message`` (str or bytes) to the backend now, without awaiting: usable from
        sync code. Messages published this way keep their order.

        On the event loop it raises ``PublishError`` at once when the backend is known to be
        unreachable; otherwise the returned future completes when the backend took it, or fails
        with ``PublishError`` (also logged, so a failure no one awaits is still reported). From
        another thread (``--handler-threads``) it hands the call to the loop, in order, and
        returns a ``concurrent.futures.Future`` that carries any ``PublishError``.
        """
        if self._off_loop():
            assert self._loop is not None
            return asyncio.run_coroutine_threadsafe(self.publish(channel, message), self._loop)
        return self._publish(channel, message)

    def _publish(self, channel: str, message: Payload) -> asyncio.Future[None]:
        """``publish_nowait`` on the loop's thread: the backend's part."""
        raise NotImplementedError

    async def publish(self, channel: str, message: Payload) -> None:
        """Publish and wait until the backend took the message; ``PublishError`` if it did not."""
        await self._publish(channel, message)

    # -- receiving -----------------------------------------------------------------------------

    def subscribe(
        self, channel: str, *, maxsize: int | None = None, overflow: Overflow = "drop-oldest"
    ) -> Subscription:
        """``async for message in broker.subscribe(channel)``; see ``Subscription`` for the
        bounded queue. ``async with`` waits until the backend confirmed the subscription."""
        sub = Subscription(self, channel, maxsize or self.queue_size, overflow)
        self._add_sink(channel, sub)
        return sub

    def listen(self, channel: str, callback: Callable[[Payload], Any]) -> Listener:
        """Call ``callback(message)`` on the loop for each message; ``close()`` to stop."""
        listener = Listener(self, channel, callback)
        self._add_sink(channel, listener)
        return listener

    def attach(self, channel: str, send: Send, *, maxsize: int | None = None) -> Attachment:
        """Send everything published on ``channel`` to an ASGI WebSocket connection."""
        return Attachment(self.subscribe(channel, maxsize=maxsize), send)

    def subscriber_count(self, channel: str) -> int:
        return len(self._channels.get(channel, ()))

    def _off_loop(self) -> bool:
        """Called from another thread (a ``--handler-threads`` handler): the caller hands the
        change to the loop, where the channel table and the backend live."""
        return self._loop is not None and threading.get_ident() != self._thread

    def _add_sink(self, channel: str, sink: Sink) -> None:
        if self._off_loop():
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._add_sink, channel, sink)
            return
        if self._closed:
            sink.closed = True
            return
        sinks = self._channels.get(channel)
        if sinks is None:
            sinks = self._channels[channel] = {}
            self._channel_added(channel)
        sinks[sink] = None

    def _remove_sink(self, channel: str, sink: Sink) -> None:
        if self._off_loop():
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._remove_sink, channel, sink)
            return
        sinks = self._channels.get(channel)
        if sinks is None or sinks.pop(sink, 0) is not None:
            return
        if not sinks:
            del self._channels[channel]
            if not self._closed:
                self._channel_removed(channel)

    def _deliver(self, channel: str, message: Payload) -> None:
        """Fan a message the backend delivered out to this process's sinks, in order."""
        sinks = self._channels.get(channel)
        if sinks:
            for sink in tuple(sinks):
                sink.put(message)

    # Backend hooks: the first sink on a channel arrived / the last one left.
    def _channel_added(self, channel: str) -> None:
        pass

    def _channel_removed(self, channel: str) -> None:
        pass

    async def _wait_subscribed(self, channel: str) -> None:
        """Return once messages published to ``channel`` from now on reach this process."""

    # -- presence ------------------------------------------------------------------------------

    def presence(self, room: str) -> Presence:
        """The cluster-wide member registry of ``room`` (one object per room and broker)."""
        presence = self._rooms.get(room)
        if presence is None:
            presence = self._rooms[room] = Presence(room, self._store(), self.token)
        return presence

    def _store(self) -> PresenceStore:
        raise NotImplementedError

    def _may_reap(self) -> bool:
        """Whether expired entries may be reaped now (a backend just back may hold entries of
        holders that have not reconnected yet: they are not dead)."""
        return True

    def _kick_heartbeat(self) -> None:
        """Refresh presence now (after a reconnect: the backend may have come back empty)."""
        self._beat_now.set()

    async def _heartbeat_loop(self) -> None:
        # Ends on ``_closed`` as well as on close()'s cancel, which close() then waits for: a
        # cancellation can be lost on its way (asyncio.wait_for before 3.12 drops one that
        # meets the inner future's completion; a client library may swallow one too).
        while not self._closed:
            try:
                await asyncio.wait_for(self._beat_now.wait(), self.heartbeat)
            except asyncio.TimeoutError:
                pass
            self._beat_now.clear()
            reap = self._may_reap()
            for room in list(self._rooms.values()):
                try:
                    await room._heartbeat(reap)
                except Exception as exc:
                    logger.warning("Presence heartbeat for room %r failed: %s", room.room, exc)
