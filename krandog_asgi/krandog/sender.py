"""``req.ws``: the per-connection WebSocket object a handler sends with, and the machinery that
keeps its sends ordered and bounded.

``send`` hands a message to the server's ``send`` at once when nothing is ahead of it. A send
that the server's flow control holds is finished by the connection's writer task, and whatever
is sent meanwhile waits in the connection's queue behind it; past ``send_queue_limit`` queued
bytes the client is closed with 1008. Sends from worker threads are handed to the loop.

The app's message loop (``app.py``) is the one other user of the underscored members: it sets
``_batch`` around a sync handler and hands that batch over itself, holding ``_drainer`` as
``FLUSHING`` meanwhile, and it ends the connection with ``_finish``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Generator
from typing import Any, ClassVar, Final

from krandog_asgi._abnf import close_code_is_sendable
from krandog_asgi.krandog.asgi import Message, Scope, Send
from krandog_asgi.krandog.channels import ListenerLike
from krandog_asgi.krandog.scope import ScopeFields

__all__ = [
    "CLOSED",
    "CLOSING",
    "CONNECTING",
    "FLUSHING",
    "OPEN",
    "SLOW_CONSUMER_CODE",
    "ReadyState",
    "WebSocket",
    "check_close",
]

logger = logging.getLogger("krandog_asgi.error")
_get_ident = threading.get_ident


class ReadyState(enum.IntEnum):
    """``WebSocket.readyState``, numbered as in the browser's WebSocket API."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


# readyState holds these plain ints, not the members: the public API promises an int (and str()
# of an IntEnum member differs between Python versions), and comparing exact ints is the fast
# case on the send path.
CONNECTING: Final = int(ReadyState.CONNECTING)
OPEN: Final = int(ReadyState.OPEN)
CLOSING: Final = int(ReadyState.CLOSING)
CLOSED: Final = int(ReadyState.CLOSED)

# Close code for a client whose outgoing queue overflowed (it does not read what we send).
SLOW_CONSUMER_CODE = 1008
# What one queued message costs besides its payload (deque slot, message dict, future, tuple).
_ENTRY_COST = 256


class _Done:
    """The awaitable ``ws.send`` returns when the message went out at once: nothing to wait for."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover - makes this a generator

    def __repr__(self) -> str:
        return "<sent>"


_DONE: Final = _Done()


class _Flushing:
    """What ``_drainer`` holds while the app's message loop hands a sync handler's batch over."""

    __slots__ = ()


FLUSHING: Final = _Flushing()


class _ThreadSend(concurrent.futures.Future[None]):
    """``ws.send`` from a worker thread: ``.result()`` there, or ``await`` it on the loop."""

    def __await__(self) -> Generator[Any, None, None]:
        return asyncio.wrap_future(self).__await__()


def _resume(coro: Any, yielded: Any) -> Generator[Any, Any, None]:
    """Continue a server send that ``ws.send`` stepped once from sync code and that suspended
    on ``yielded``.

    It hands the yielded future to the enclosing task exactly as the coroutine would have, and
    forwards results, exceptions and cancellation, like ``yield from`` on a fresh coroutine.
    """
    while True:
        try:
            value = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                yielded = coro.send(value)
            except StopIteration:
                return


async def _finish_send(coro: Any, yielded: Any) -> None:
    """Finish a server send that suspended, where nothing waits for it."""
    try:
        await _Resumed(coro, yielded)
    except Exception as exc:
        logger.debug("WebSocket close after a send-queue overflow failed: %s", exc)


class _Resumed:
    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Any, yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, None]:
        return _resume(self.coro, self.yielded)


class WebSocket(ScopeFields):
    """``req.ws``: one object per connection, the same for every message of that connection.

    ``send`` never blocks and keeps the order of messages per connection: a message goes to the
    server at once when nothing is queued ahead of it, otherwise it waits in a per-connection
    queue that one writer task drains. The returned awaitable completes once the message was
    handed to the server (after its flow control), for callers who want backpressure.
    """

    __slots__ = (
        "__weakref__",
        "_batch",
        "_drainer",
        "_inflight",
        "_limit",
        "_listeners",
        "_loop",
        "_queue",
        "_queued_bytes",
        "_send",
        "_thread",
        "protocol",
        "readyState",
    )

    _default_scheme: ClassVar[str] = "ws"
    CONNECTING: ClassVar[int] = CONNECTING
    OPEN: ClassVar[int] = OPEN
    CLOSING: ClassVar[int] = CLOSING
    CLOSED: ClassVar[int] = CLOSED

    def __init__(self, scope: Scope, send: Send, send_queue_limit: int) -> None:
        self.readyState = CONNECTING
        self.protocol = ""  # set it in a "websocket.upgrade" event to pick an offered subprotocol
        self._limit = send_queue_limit
        ScopeFields.__init__(self, scope)
        self._send: Send | None = send
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._queue: deque[tuple[Message, asyncio.Future[None] | None, int]] | None = None
        self._queued_bytes = 0
        # The writer task while a send is blocked by flow control, or FLUSHING while the
        # message loop hands over a batch; any send meanwhile waits in the queue behind it.
        self._drainer: asyncio.Task[None] | _Flushing | None = None
        self._inflight: tuple[Any, asyncio.Future[None]] | None = None
        # While a sync handler of this connection runs on the loop, its own sends collect here
        # and the message loop awaits them right after it returns (cheaper than one by one).
        self._batch: list[Message] | None = None
        self._listeners: dict[str, ListenerLike] | None = None  # channels: subscribe()

    @property
    def bufferedAmount(self) -> int:  # the browser's name
        """Bytes of messages queued behind one the server has not taken yet."""
        return self._queued_bytes

    # -- sending -----------------------------------------------------------------------------

    def send(self, data: str | bytes | bytearray | memoryview) -> Awaitable[None]:
        """Send a text (``str``) or binary (``bytes``) message.

        Callable from any handler and from sync code. Messages sent while the connection is
        still CONNECTING go out right after the accept; once it is CLOSING or CLOSED they are
        dropped, as in the browser.
        """
        if isinstance(data, str):
            message: Message = {"type": "websocket.send", "text": data}
        elif isinstance(data, bytes | bytearray | memoryview):
            data = bytes(data)
            message = {"type": "websocket.send", "bytes": data}
        else:
            raise TypeError(f"ws.send() takes str or bytes, not {type(data).__name__}")
        if self.readyState == OPEN and self._drainer is None and _get_ident() == self._thread:
            batch = self._batch
            if batch is not None:
                batch.append(message)
                return _DONE
            # The hot path, inlined: run the server's send now. It usually completes without
            # suspending, which costs no task and no loop iteration.
            coro: Any = self._send(message)  # type: ignore[misc]  # never None while OPEN
            try:
                yielded = coro.send(None)
            except StopIteration:
                return _DONE
            except Exception as exc:
                self._send_failed(exc)
                return _DONE
            return self._suspended(coro, yielded)
        return self._send_slow(message, len(data.encode()) if isinstance(data, str) else len(data))

    def close(self, code: int = 1000, reason: str = "") -> Awaitable[None]:
        """Start the closing handshake after the messages already sent; idempotent.

        Before the accept (in a ``"websocket.upgrade"`` event) it refuses the connection (403).
        """
        check_close(code, reason)
        message: Message = {"type": "websocket.close", "code": code, "reason": reason}
        if _get_ident() != self._thread:
            return self._from_thread(message, 0)
        state = self.readyState
        if state >= CLOSING:
            return _DONE
        self.readyState = CLOSING
        if state == CONNECTING:
            return _DONE  # the upgrade is refused once the handler returns
        return self._submit(message, 0)

    # -- pub/sub -----------------------------------------------------------------------------

    def subscribe(self, channel: str) -> None:
        """Send this client everything published to ``channel`` (from any worker sharing the
        broker) until ``unsubscribe`` or the connection ends; subscribing twice is one."""
        listeners = self._listeners
        if listeners is None:
            listeners = self._listeners = {}
        if channel not in listeners and self.readyState < CLOSING:
            listeners[channel] = self.broker.listen(channel, self.send)

    def unsubscribe(self, channel: str | None = None) -> None:
        """Stop receiving ``channel`` (every channel when None)."""
        listeners = self._listeners
        if not listeners:
            return
        for name in list(listeners) if channel is None else [channel]:
            listener = listeners.pop(name, None)
            if listener is not None:
                listener.close()

    @property
    def channels(self) -> list[str]:
        """The channels this connection is subscribed to."""
        return list(self._listeners or ())

    def _send_slow(self, message: Message, size: int) -> Awaitable[None]:
        if _get_ident() != self._thread:
            return self._from_thread(message, size)
        state = self.readyState
        if state == OPEN:
            return self._submit(message, size)
        if state == CONNECTING:
            return self._enqueue(message, size)
        return _DONE

    def _submit(self, message: Message, size: int) -> Awaitable[None]:
        """Hand ``message`` to the server now, or queue it behind the ones still in flight."""
        if self._drainer is not None:
            return self._enqueue(message, size)
        batch = self._batch
        if batch is not None:
            batch.append(message)
            return _DONE
        send = self._send
        if send is None:
            return _DONE
        coro: Any = send(message)
        try:
            yielded = coro.send(None)
        except StopIteration:
            return _DONE
        except Exception as exc:
            self._send_failed(exc)
            return _DONE
        return self._suspended(coro, yielded)

    def _suspended(self, coro: Any, yielded: Any) -> Awaitable[None]:
        """The server's send suspended (flow control): a writer task finishes it, then drains
        whatever is queued behind it, in order."""
        done = self._loop.create_future()
        self._inflight = (coro, done)  # until the writer task first runs (see _finish)
        self._drainer = self._loop.create_task(self._drain(coro, yielded, done))
        return done

    def _enqueue(self, message: Message, size: int) -> Awaitable[None]:
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        # Each entry costs about a queue slot, a dict and a future besides its payload: charge it,
        # so that a flood of tiny (or empty) messages to a client that never reads is bounded too.
        if queue and self._queued_bytes + (len(queue) + 1) * _ENTRY_COST + size > self._limit:
            self._overflow()
            return _DONE
        future = self._loop.create_future()
        queue.append((message, future, size))
        self._queued_bytes += size
        return future

    def _overflow(self) -> None:
        """The client does not read what we send: drop its backlog and close it."""
        logger.warning(
            "Closing WebSocket %s: its send queue exceeded %d bytes (the client is not reading)",
            self.pathname,
            self._limit,
        )
        self._drop_queue()
        self.readyState = CLOSING
        # Not behind the send that is stuck in flow control (it may never finish): the close
        # goes to the server now, so its closing-handshake timeout applies.
        send = self._send
        if send is None:
            return
        coro: Any = send({"type": "websocket.close", "code": SLOW_CONSUMER_CODE, "reason": ""})
        try:
            yielded = coro.send(None)
        except StopIteration:
            return
        except Exception as exc:
            self._send_failed(exc)
            return
        self._loop.create_task(_finish_send(coro, yielded))

    def _from_thread(self, message: Message, size: int) -> Awaitable[None]:
        handle = _ThreadSend()
        self._loop.call_soon_threadsafe(self._submit_from_thread, message, size, handle)
        return handle

    def _submit_from_thread(self, message: Message, size: int, handle: _ThreadSend) -> None:
        if message["type"] == "websocket.close":
            result = self.close(message["code"], message["reason"])
        elif self.readyState == OPEN:
            result = self._submit(message, size)
        elif self.readyState == CONNECTING:
            result = self._enqueue(message, size)
        else:
            result = _DONE
        if isinstance(result, asyncio.Future):
            result.add_done_callback(lambda _: handle.set_result(None))
        else:
            handle.set_result(None)

    async def _drain(self, coro: Any, yielded: Any, done: asyncio.Future[None] | None) -> None:
        """The writer task: finish a send that suspended, then send the queue in order."""
        self._inflight = None
        current = done
        try:
            if coro is not None:
                try:
                    await _Resumed(coro, yielded)
                except Exception as exc:
                    self._send_failed(exc)
            while self._queue:
                _resolve(current)
                message, current, size = self._queue.popleft()
                self._queued_bytes -= size
                send = self._send
                if send is not None:
                    try:
                        await send(message)
                    except Exception as exc:
                        self._send_failed(exc)
        finally:
            _resolve(current)  # also when cancelled: nobody may wait forever
            self._drainer = None

    def _start_drainer(self) -> None:
        if self._queue and self._drainer is None:
            self._drainer = self._loop.create_task(self._drain(None, None, None))

    def _send_failed(self, exc: Exception) -> None:
        if isinstance(exc, OSError):  # the client went away (ASGI: send raises an OSError)
            logger.debug("WebSocket send on a closed connection: %s", exc)
        else:
            logger.error("WebSocket send failed", exc_info=exc)
        if self.readyState == OPEN:
            self.readyState = CLOSING
        self._drop_queue()

    def _drop_queue(self) -> None:
        queue = self._queue
        if queue:
            for _, future, _ in queue:
                _resolve(future)
            queue.clear()
        self._queued_bytes = 0

    def _finish(self) -> None:
        """The connection is over: CLOSED, and let go of the server's objects and the queue."""
        self.readyState = CLOSED
        self.unsubscribe()
        self._send = None
        self._drop_queue()
        self._queue = None
        inflight = self._inflight
        if inflight is not None:
            # The writer task never ran: cancelling it skips its cleanup, so do it here.
            self._inflight = None
            coro, done = inflight
            coro.close()
            _resolve(done)
        drainer = self._drainer
        if isinstance(drainer, asyncio.Task) and not drainer.done():
            drainer.cancel()

    def __repr__(self) -> str:
        return f"<WebSocket {self.pathname!r} {ReadyState(self.readyState).name}>"


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def check_close(code: int, reason: str) -> None:
    """Refuse, at the call, a code or reason that no close frame may carry (RFC 6455 §7.4)."""
    if type(code) is not int or not close_code_is_sendable(code):
        raise ValueError(
            f"Invalid WebSocket close code {code!r} (use 1000-1003, 1007-1014 or 3000-4999)"
        )
    if not isinstance(reason, str) or len(reason.encode("utf-8")) > 123:
        raise ValueError("The close reason must be a str of at most 123 bytes in UTF-8")
