"""``redis://host:port/db`` and ``rediss://`` (TLS): Redis pub/sub between processes and
machines, via redis-py's asyncio client (the optional extra ``krandog-asgi[redis]``).

Two connections per process. The *reader* holds one SUBSCRIBE connection: every channel with a
local sink is subscribed once, and each message Redis delivers is fanned out locally (there is
no local fast path, so nothing arrives twice). The *writer* is one task that PUBLISHes queued
messages over one pooled connection in pipelines, in call order: Redis keeps the order of one
connection's commands, so messages from one broker arrive in order everywhere.

The reader reconnects with exponential backoff (100 ms doubling to 2 s, with jitter) after a
restart or an outage, resubscribes every channel, and kicks the presence heartbeat so that
rooms are rebuilt at once. While it is down, ``publish_nowait`` raises ``PublishError``;
messages published during an outage are not delivered later (Redis pub/sub keeps no backlog).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from krandog_asgi.pubsub.broker import (
    DEFAULT_HEARTBEAT,
    DEFAULT_PRESENCE_TTL,
    DEFAULT_QUEUE_SIZE,
    Broker,
)
from krandog_asgi.pubsub.codec import Payload, decode, encode
from krandog_asgi.pubsub.errors import BrokerError, PublishError
from krandog_asgi.pubsub.presence import PresenceStore
from krandog_asgi.pubsub.redis_presence import RedisPresenceStore

__all__ = ["BACKOFF_MAX", "BACKOFF_MIN", "RedisBroker"]

logger = logging.getLogger("krandog_asgi.error")

BACKOFF_MIN = 0.1
BACKOFF_MAX = 2.0
# After an empty restart, new presence names wait this long (every holder has reconnected
# within its longest backoff, 1.5 x BACKOFF_MAX with jitter, and re-claimed its names).
SETTLE = BACKOFF_MAX * 1.5 + 2.0
PIPELINE_BATCH = 512
# How long the writer waits for a just-added channel's SUBSCRIBE to be confirmed before it
# publishes anyway (so a process sees its own first message on a channel it just joined).
CONFIRM_WAIT = 1.0
PREFIX = "krandog:"


def _redis_module() -> Any:
    try:
        import redis.asyncio as redis_asyncio
    except ImportError as exc:
        raise BrokerError(
            "--broadcast-url redis:// needs redis-py: pip install 'krandog-asgi[redis]'"
        ) from exc
    return redis_asyncio


def shown_url(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisBroker(Broker):
    """Channels shared by every process connected to the same Redis."""

    scheme = "redis"

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        presence_ttl: float = DEFAULT_PRESENCE_TTL,
        heartbeat: float = DEFAULT_HEARTBEAT,
    ) -> None:
        super().__init__(queue_size=queue_size, presence_ttl=presence_ttl, heartbeat=heartbeat)
        self.url = url
        self.shown_url = shown_url(url)
        redis_asyncio = _redis_module()
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No retries inside redis-py: a PUBLISH retried after a broken connection may be
        # delivered twice, and a failure must reach the publisher as an error.
        self._client: Any = redis_asyncio.from_url(
            url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2.0, socket_timeout=5.0
        )
        self._pubsub_client: Any = redis_asyncio.from_url(
            url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2.0
        )
        self._presence_store = RedisPresenceStore(self._client, PREFIX, presence_ttl, SETTLE)
        self._connected = False
        self._ever_connected = False
        self._connected_at = 0.0
        self._last_error = "not connected yet"
        self._outbox: deque[tuple[str, bytes, asyncio.Future[None]]] = deque()
        self._outbox_ready = asyncio.Event()
        self._pubsub: Any = None
        # Channels with local sinks whose SUBSCRIBE Redis has not confirmed on this connection.
        self._unconfirmed: set[str] = set()
        self._confirm_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._commands: asyncio.Lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected and not self._closed

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read_loop()), loop.create_task(self._write_loop())]
        await super().start()

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the first connection; True once connected."""
        deadline = time.monotonic() + timeout
        while not self.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.connected

    async def close(self) -> None:
        if self._closed:
            return
        await self._flush_outbox(1.0)
        await super().close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_outbox(PublishError("the broker is closed"))
        for client in (self._client, self._pubsub_client):
            try:
                await client.aclose()
            except Exception as exc:  # closing what may already be broken
                logger.debug("closing a Redis client: %s", exc)

    async def _flush_outbox(self, timeout: float) -> None:
        """Give messages already published a moment to go out before shutting down."""
        deadline = time.monotonic() + timeout
        while self._outbox and self._connected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    # -- publishing ----------------------------------------------------------------------------

    def _publish(self, channel: str, message: Payload) -> asyncio.Future[None]:
        payload = encode(message)
        if self._closed:
            raise PublishError("the broker is closed")
        if not self._connected:
            raise PublishError(f"Redis at {self.shown_url} is unreachable: {self._last_error}")
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)
        self._outbox.append((PREFIX + channel, payload, future))
        self._outbox_ready.set()
        return future

    async def _write_loop(self) -> None:
        outbox = self._outbox
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while outbox:
                await self._wait_pending_confirms()
                batch = [outbox.popleft() for _ in range(min(len(outbox), PIPELINE_BATCH))]
                try:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for key, payload, _ in batch:
                            pipe.publish(key, payload)
                        await pipe.execute()
                except Exception as exc:  # redis-py's errors, OSError, a timeout
                    error = PublishError(f"publishing to Redis at {self.shown_url} failed: {exc}")
                    # One line per failed batch, so that a failure nobody awaits is reported.
                    logger.warning("pub/sub: %d message(s) not published: %s", len(batch), exc)
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for _, _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def _wait_pending_confirms(self) -> None:
        if self._unconfirmed and self._connected:
            waits = [self._wait_subscribed(c) for c in list(self._unconfirmed)]
            try:
                await asyncio.wait_for(asyncio.gather(*waits), CONFIRM_WAIT)
            except asyncio.TimeoutError:
                pass

    def _fail_outbox(self, error: PublishError) -> None:
        while self._outbox:
            _, _, future = self._outbox.popleft()
            if not future.done():
                future.set_exception(error)

    # -- receiving -----------------------------------------------------------------------------

    def _channel_added(self, channel: str) -> None:
        self._unconfirmed.add(channel)
        if self._pubsub is not None:
            asyncio.get_running_loop().create_task(self._command("subscribe", channel))

    def _channel_removed(self, channel: str) -> None:
        self._unconfirmed.discard(channel)
        for future in self._confirm_waiters.pop(channel, ()):  # nobody to wait for any more
            if not future.done():
                future.set_result(None)
        if self._pubsub is not None:
            asyncio.get_running_loop().create_task(self._command("unsubscribe", channel))

    async def _command(self, command: str, channel: str) -> None:
        """SUBSCRIBE / UNSUBSCRIBE on the reader's connection, one at a time, in call order."""
        async with self._commands:
            pubsub = self._pubsub
            wanted = (channel in self._channels) == (command == "subscribe")
            if pubsub is None or not wanted:
                return  # the reader resubscribes what is current when it reconnects
            try:
                await getattr(pubsub, command)(PREFIX + channel)
            except Exception as exc:  # the reader sees the broken connection too
                logger.debug("Redis %s %r failed: %s", command, channel, exc)

    async def _wait_subscribed(self, channel: str) -> None:
        if channel not in self._unconfirmed or channel not in self._channels:
            return
        future = asyncio.get_running_loop().create_future()
        self._confirm_waiters.setdefault(channel, []).append(future)
        await future

    def _confirm(self, channel: str) -> None:
        self._unconfirmed.discard(channel)
        for future in self._confirm_waiters.pop(channel, ()):
            if not future.done():
                future.set_result(None)

    async def _read_loop(self) -> None:
        """Connect, subscribe, read; on any failure wait (backoff) and start again."""
        delay = BACKOFF_MIN
        while True:
            pubsub = self._pubsub_client.pubsub()
            try:
                await self._subscribe_all(pubsub)
                delay = BACKOFF_MIN
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._went_down(exc)
            finally:
                self._pubsub = None
                self._unconfirmed = set(self._channels)
                try:
                    await pubsub.aclose()
                except Exception as exc:
                    logger.debug("closing a Redis pubsub connection: %s", exc)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, BACKOFF_MAX)

    async def _subscribe_all(self, pubsub: Any) -> None:
        """Subscribe every channel with a local sink, including those added while it ran."""
        async with self._commands:
            done = set(self._channels)
            await pubsub.subscribe(PREFIX + "__control__", *(PREFIX + c for c in done))
            self._pubsub = pubsub
            late = [PREFIX + c for c in self._channels if c not in done]
            if late:
                await pubsub.subscribe(*late)

    def _went_down(self, exc: BaseException) -> None:
        self._last_error = str(exc) or type(exc).__name__
        if self._connected:
            logger.warning("Lost Redis at %s (%s); reconnecting with backoff", self.shown_url, exc)
        else:
            logger.debug("Redis at %s unreachable: %s", self.shown_url, exc)
        self._connected = False

    async def _read(self, pubsub: Any) -> None:
        """Deliver messages; ping when idle, so a silently dead connection is noticed."""
        idle = 0
        skip = len(PREFIX)
        while True:
            message = await pubsub.get_message(timeout=self.heartbeat)
            if message is None:
                idle += 1
                if idle > 2:
                    raise BrokerError("no answer to PING from Redis")
                await pubsub.ping()
                continue
            idle = 0
            kind = message["type"]
            if kind == "message":
                self._deliver(message["channel"][skip:].decode("utf-8"), decode(message["data"]))
            elif kind == "subscribe":
                channel = message["channel"][skip:].decode("utf-8")
                if channel == "__control__":
                    self._up()
                elif channel in self._channels:
                    self._confirm(channel)

    def _up(self) -> None:
        again, self._ever_connected = self._ever_connected, True
        self._connected = True
        self._connected_at = time.monotonic()
        verb = "Reconnected to" if again else "Connected to"
        logger.info("%s Redis at %s for broadcast", verb, self.shown_url)
        self._kick_heartbeat()

    # -- presence ------------------------------------------------------------------------------

    def _store(self) -> PresenceStore:
        return self._presence_store

    def _may_reap(self) -> bool:
        """Not within SETTLE of a reconnect: after an outage longer than the TTL every entry
        looks expired until its holder has reconnected and refreshed it."""
        return self._connected and time.monotonic() - self._connected_at >= SETTLE

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<RedisBroker {self.shown_url} {state}, {len(self._channels)} channels>"


def _retrieved(future: asyncio.Future[None]) -> None:
    """Mark a failure retrieved: the writer logged it once per batch, and the publisher who
    awaits the future gets it as ``PublishError``."""
    if not future.cancelled():
        future.exception()
