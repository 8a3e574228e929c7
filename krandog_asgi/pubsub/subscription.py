"""The three ways a process receives what a channel carries: an async iterator with a bounded
queue (``Subscription``), a sync callback (``Listener``, what ``req.ws.subscribe`` uses), and an
ASGI WebSocket ``send`` fed by a task (``Attachment``).

Each is a *sink* in the broker's per-channel table; the broker calls ``put`` once per message
received for that channel, in the order the backend delivered them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from krandog_asgi.pubsub.codec import Payload
from krandog_asgi.pubsub.errors import SubscriberOverflow

__all__ = ["Attachment", "Listener", "Overflow", "Subscription"]

logger = logging.getLogger("krandog_asgi.error")


class Hub(Protocol):
    """What a sink needs of its broker (the broker builds on this module, not the reverse)."""

    def _remove_sink(self, channel: str, sink: Any) -> None: ...

    async def _wait_subscribed(self, channel: str) -> None: ...


Overflow = Literal["drop-oldest", "close"]
OVERFLOW_POLICIES: tuple[Overflow, ...] = ("drop-oldest", "close")


class Subscription:
    """``async for message in broker.subscribe(channel)``: messages in delivery order.

    The queue holds at most ``maxsize`` messages. When a consumer falls that far behind:

    * ``overflow="drop-oldest"`` (default): the oldest queued message is dropped and counted in
      ``dropped``; the consumer keeps going with the newest ones (a live feed).
    * ``overflow="close"``: the subscription is closed and iteration raises
      ``SubscriberOverflow`` (a consumer that must not miss anything learns that it did).

    Either way a slow consumer costs at most ``maxsize`` messages of memory.
    """

    __slots__ = (
        "_broker",
        "_queue",
        "_waiter",
        "channel",
        "closed",
        "dropped",
        "error",
        "maxsize",
        "overflow",
    )

    def __init__(self, broker: Hub, channel: str, maxsize: int, overflow: Overflow) -> None:
        if maxsize < 1:
            raise ValueError("a subscription's maxsize must be at least 1")
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, not {overflow!r}")
        self._broker = broker
        self.channel = channel
        self.maxsize = maxsize
        self.overflow = overflow
        self._queue: deque[Payload] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.dropped = 0
        self.closed = False
        self.error: BaseException | None = None

    # -- the broker's side ---------------------------------------------------------------------

    def put(self, message: Payload) -> None:
        if self.closed:
            return
        queue = self._queue
        if len(queue) >= self.maxsize:
            if self.overflow == "close":
                logger.warning(
                    "Closing a subscription to %r: %d messages behind", self.channel, self.maxsize
                )
                self._end(SubscriberOverflow(f"fell {self.maxsize} messages behind"))
                return
            queue.popleft()
            self.dropped += 1
        queue.append(message)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end(self, error: BaseException | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        self.error = error
        self._broker._remove_sink(self.channel, self)
        self._wake()

    # -- the consumer's side -------------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Payload:
        queue = self._queue
        while not queue:
            if self.closed:
                if self.error is not None:
                    raise self.error
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return queue.popleft()

    def get_nowait(self) -> Payload | None:
        """The next queued message, or None when none is queued."""
        return self._queue.popleft() if self._queue else None

    def qsize(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        """Stop receiving; an ``async for`` ends once it has read what was queued."""
        self._end()

    async def ready(self) -> None:
        """Wait until the backend confirmed the channel: from then on nothing published to it
        is missed (with Redis, SUBSCRIBE is acknowledged asynchronously)."""
        await self._broker._wait_subscribed(self.channel)

    async def __aenter__(self) -> Subscription:
        await self.ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._queue)} queued"
        return f"<Subscription {self.channel!r} {state}, {self.dropped} dropped>"


class Listener:
    """A sync callback called for each message, on the event loop; it must not block.

    ``req.ws.subscribe(channel)`` is one with ``ws.send`` as the callback, so the WebSocket's own
    bounded send queue (and its slow-consumer close) is what bounds memory there.
    """

    __slots__ = ("_broker", "callback", "channel", "closed")

    def __init__(self, broker: Hub, channel: str, callback: Callable[[Payload], Any]) -> None:
        self._broker = broker
        self.channel = channel
        self.callback = callback
        self.closed = False

    def put(self, message: Payload) -> None:
        if self.closed:
            return
        try:
            self.callback(message)
        except Exception:
            logger.exception("pub/sub listener on %r failed; it is removed", self.channel)
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._broker._remove_sink(self.channel, self)

    async def ready(self) -> None:
        await self._broker._wait_subscribed(self.channel)

    def __repr__(self) -> str:
        return f"<Listener {self.channel!r} {self.callback!r}>"


Send = Callable[[dict[str, Any]], Awaitable[None]]


class Attachment:
    """An ASGI WebSocket ``send`` attached to a channel: each message published there becomes a
    ``websocket.send`` (text for str, bytes for bytes), in order, from one task.

    It detaches itself when ``send`` raises (the connection closed); call ``detach()`` (or leave
    the ``async with``) on ``websocket.disconnect``. A connection that cannot keep up loses the
    oldest messages beyond the subscription's ``maxsize`` (counted in ``dropped``).
    """

    __slots__ = ("_task", "send", "subscription")

    def __init__(self, subscription: Subscription, send: Send) -> None:
        self.subscription = subscription
        self.send = send
        self._task = asyncio.get_running_loop().create_task(self._forward())

    async def _forward(self) -> None:
        send = self.send
        try:
            async for message in self.subscription:
                if isinstance(message, str):
                    await send({"type": "websocket.send", "text": message})
                else:
                    await send({"type": "websocket.send", "bytes": message})
        except Exception as exc:  # OSError / ClientDisconnected: the connection is gone
            logger.debug("pub/sub attachment on %r ends: %r", self.subscription.channel, exc)
        finally:
            self.subscription.close()

    @property
    def dropped(self) -> int:
        return self.subscription.dropped

    @property
    def detached(self) -> bool:
        return self.subscription.closed

    def detach(self) -> None:
        """Stop forwarding now; messages still queued are not sent."""
        self.subscription.close()
        if not self._task.done():
            self._task.cancel()

    async def ready(self) -> None:
        await self.subscription.ready()

    async def __aenter__(self) -> Attachment:
        await self.ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.detach()
