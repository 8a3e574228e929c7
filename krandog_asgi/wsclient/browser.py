"""The browser's ``WebSocket`` (WHATWG HTML §9.3) in Python, on the same client protocol.

Events are dispatched one at a time by one task per socket, in the order the browser gives
them: ``open`` before any ``message``; at the end ``error`` (only when the connection did not
close cleanly) and then ``close``. An async handler is awaited before the next event is
dispatched, so events never overtake each other, and a slow handler slows reading instead of
growing a queue.

Created inside a running event loop, a socket connects at once. Created in a plain script,
it waits for ``run_until_closed()``, which runs an event loop until every socket (including
those that handlers open later) has closed: the script equivalent of a page that stays open
while its sockets do.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import logging
import ssl as ssl_module
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, overload

from krandog_asgi.transport.websocket_io import END
from krandog_asgi.websocket.connection import InvalidState
from krandog_asgi.websocket.frames import MAX_CLOSE_REASON, CloseCode
from krandog_asgi.wsclient.protocol import (
    ClientOptions,
    ClientProtocol,
    HeadersLike,
    open_connection,
    parse_target,
)

__all__ = [
    "CloseEvent",
    "ErrorEvent",
    "Event",
    "MessageEvent",
    "WebSocket",
    "run_until_closed",
]

logger = logging.getLogger("krandog_asgi.client")

Handler = Callable[..., Any]
_EVENT_TYPES = ("open", "message", "error", "close")
_CLOSED_WHILE_CONNECTING = "close() was called before the connection opened"
_BINARY_TYPES = ("blob", "arraybuffer")


class Event:
    """A plain event (``open``); ``target`` is the socket."""

    __slots__ = ("target", "type")

    def __init__(self, type: str, target: WebSocket) -> None:
        self.type = type
        self.target = target

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.type!r}>"


class MessageEvent(Event):
    """``data`` is ``str`` for text; for binary, ``bytes`` (binaryType "blob") or ``bytearray``
    ("arraybuffer")."""

    __slots__ = ("data", "origin")

    def __init__(self, target: WebSocket, data: str | bytes | bytearray, origin: str) -> None:
        super().__init__("message", target)
        self.data = data
        self.origin = origin

    def __repr__(self) -> str:
        return f"<MessageEvent data={self.data!r:.80}>"


class CloseEvent(Event):
    """``code`` is 1006 when no close frame was received; ``wasClean`` as in RFC 6455 §7.1.4."""

    __slots__ = ("code", "reason", "wasClean")

    def __init__(self, target: WebSocket, code: int, reason: str, was_clean: bool) -> None:
        super().__init__("close", target)
        self.code = code
        self.reason = reason
        self.wasClean = was_clean

    def __repr__(self) -> str:
        return f"<CloseEvent code={self.code} reason={self.reason!r} wasClean={self.wasClean}>"


class ErrorEvent(Event):
    """Browsers tell nothing about an error; here ``error`` is the exception that says what
    happened (handshake refused, connection refused, protocol error...), and ``message`` its
    text."""

    __slots__ = ("error", "message")

    def __init__(self, target: WebSocket, error: BaseException) -> None:
        super().__init__("error", target)
        self.error = error
        self.message = str(error) or type(error).__name__

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"<ErrorEvent {self.message!r}>"


class _SendLedger:
    """``bufferedAmount`` as the WHATWG standard defines it: bytes of application data given to
    ``send()`` (UTF-8 text, binary) not yet transmitted, without framing, compression or control
    frames; a message sent in the current task counts until the event loop moves on, and a
    connection lost with data still queued does not bring the count back to zero.

    Wire bytes are counted by wrapping the connection's writer; a message has left once every
    byte written up to its last frame has left the transport's buffer. The buffer is looked at
    on each read of ``bufferedAmount``, after each task that sent, and whenever it drains below
    its low-water mark; a connection lost in between keeps the count of that last look (up to
    ``write_limit`` bytes may have left since).
    """

    __slots__ = ("amount", "entries", "fresh", "loop", "on_wire", "protocol", "written")

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: ClientProtocol) -> None:
        self.loop = loop
        self.protocol = protocol
        self.amount = 0
        self.entries: deque[tuple[int, int]] = deque()  # (wire bytes written at its end, size)
        self.fresh = 0  # entries sent during the current task: they count whatever happens
        self.on_wire = 0  # the part of the oldest pending message that has already left
        transport = protocol.transport
        conn = protocol.conn
        assert conn is not None
        # Bytes already buffered (the handshake, a pong) are not ours: start the count there.
        self.written = transport.get_write_buffer_size()
        write = transport.write

        def counting_write(data: bytes) -> None:
            self.written += len(data)
            write(data)

        conn.write = counting_write
        writev = conn.writev  # large frames: header and payload as two buffers
        if writev is not None:

            def counting_writev(buffers: tuple[bytes, bytes]) -> None:
                self.written += len(buffers[0]) + len(buffers[1])
                writev(buffers)

            conn.writev = counting_writev
        # Look again whenever the buffer drains: if the connection is then lost (a reset),
        # the count kept is what was still unsent, not what was unsent at the last send.
        protocol.on_drained = self.update

    def record(self, size: int) -> None:
        self.entries.append((self.written, size))
        self.amount += size
        if self.fresh == 0:
            self.loop.call_soon(self.settle)
        self.fresh += 1

    def settle(self) -> None:
        self.fresh = 0
        self.update()

    def update(self) -> None:
        protocol = self.protocol
        if protocol.closed:
            return  # the transport forgot its buffer: keep what was unsent when last seen
        entries = self.entries
        sent = self.written - protocol.transport.get_write_buffer_size()
        while len(entries) > self.fresh and entries[0][0] <= sent:
            self.amount -= entries.popleft()[1]
        # A message that has partly left counts only its unsent bytes (at most its size; the
        # unsent wire bytes include framing, so this never under-counts application data).
        self.on_wire = 0
        if len(entries) > self.fresh:
            end, size = entries[0]
            self.on_wire = max(0, size - (end - sent))

    @property
    def unsent(self) -> int:
        return self.amount - self.on_wire

    def closed(self, clean: bool) -> None:
        """A clean closing handshake means the peer read everything we sent before it."""
        if clean:
            self.entries.clear()
            self.amount = self.on_wire = 0


class _Listener:
    """One entry of a socket's listener list; ``on<type>`` handlers are entries too, kept at the
    position where they were first set, as in the HTML spec. ``removed`` is the DOM's flag: a
    listener removed during a dispatch does not run in the rest of it."""

    __slots__ = ("callback", "is_handler", "once", "original", "pass_event", "removed")

    def __init__(self, original: Any, *, once: bool = False, is_handler: bool = False) -> None:
        self.once = once
        self.is_handler = is_handler
        self.removed = False
        self.original: Any = None
        self.callback: Handler | None = None
        self.pass_event = True
        self.set(original)

    def set(self, original: Any) -> None:
        """Raises TypeError for something that cannot be called, leaving the entry unchanged."""
        if original is None:
            callback = None
        else:
            callback = original if callable(original) else getattr(original, "handleEvent", None)
            if not callable(callback):
                raise TypeError(f"An event listener must be callable, not {original!r}")
        self.original = original
        self.callback = callback
        if callback is not None:
            self.pass_event = _takes_an_argument(callback)


def _takes_an_argument(callback: Handler) -> bool:
    """JavaScript handlers may ignore the event (``() => ...``); allow ``lambda: ...`` too."""
    try:
        parameters = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters
    )


class _HandlerProperty:
    """``ws.onopen`` and friends."""

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> _HandlerProperty: ...

    @overload
    def __get__(self, instance: WebSocket, owner: type[Any]) -> Handler | None: ...

    def __get__(
        self, instance: WebSocket | None, owner: type[Any]
    ) -> _HandlerProperty | Handler | None:
        if instance is None:
            return self
        entry = instance._handlers.get(self.event_type)
        return entry.original if entry is not None else None

    def __set__(self, instance: WebSocket, value: Handler | None) -> None:
        entry = instance._handlers.get(self.event_type)
        if entry is None:
            entry = instance._handlers[self.event_type] = _Listener(value, is_handler=True)
            instance._listeners[self.event_type].append(entry)
        else:
            entry.set(value)


class WebSocket:
    """``WebSocket(url, protocols)`` as in browsers, plus keyword options of ``connect()``."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3

    onopen = _HandlerProperty("open")
    onmessage = _HandlerProperty("message")
    onerror = _HandlerProperty("error")
    onclose = _HandlerProperty("close")

    __slots__ = (
        "_binary_type",
        "_close_requested",
        "_discarded",
        "_done",
        "_handlers",
        "_ledger",
        "_listeners",
        "_loop",
        "_opening",
        "_options",
        "_protocol",
        "_ready_state",
        "_target",
        "_task",
        "extensions",
        "protocol",
        "url",
    )

    def __init__(
        self,
        url: str,
        protocols: str | Sequence[str] | None = None,
        *,
        headers: HeadersLike | None = None,
        origin: str | None = None,
        compression: str | None = "deflate",
        ssl: ssl_module.SSLContext | None = None,
        open_timeout: float | None = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
        max_size: int | None = 16 * 1024 * 1024,
        fragment_size: int | None = None,
        write_limit: int = 64 * 1024,
    ) -> None:
        if isinstance(protocols, str):
            protocols = [protocols]
        self._options = ClientOptions(
            subprotocols=tuple(protocols or ()),
            headers=ClientOptions.normalize_headers(headers),
            origin=origin,
            compression=compression,
            ssl=ssl,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            max_size=max_size,
            fragment_size=fragment_size,
            write_limit=write_limit,
        )
        self._target = parse_target(url, self._options)
        self.url = self._target.url
        self.protocol = ""  # the subprotocol the server chose
        self.extensions = ""  # the server's Sec-WebSocket-Extensions
        self._binary_type = "blob"
        self._ready_state = self.CONNECTING
        self._close_requested = False
        self._discarded = 0
        self._ledger: _SendLedger | None = None
        self._protocol: ClientProtocol | None = None
        self._opening: asyncio.Task[ClientProtocol] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[None] | None = None
        self._handlers: dict[str, _Listener] = {}
        self._listeners: dict[str, list[_Listener]] = {t: [] for t in _EVENT_TYPES}
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            _defer_start(self)
        else:
            self._start(loop)

    # -- properties ---------------------------------------------------------------------------

    @property
    def readyState(self) -> int:
        """Changes in step with the events (HTML: a received close frame *queues* the change to
        CLOSING), so handlers of messages that came before it still see OPEN."""
        return self._ready_state

    @property
    def bufferedAmount(self) -> int:
        """Bytes of application data sent but not yet transmitted (no framing, no compression),
        plus those sent after closing began (which browsers discard but count)."""
        ledger = self._ledger
        if ledger is None:
            return self._discarded
        ledger.update()
        return ledger.unsent + self._discarded

    @property
    def binaryType(self) -> str:
        return self._binary_type

    @binaryType.setter
    def binaryType(self, value: str) -> None:
        if value not in _BINARY_TYPES:
            raise ValueError(f"binaryType must be 'blob' or 'arraybuffer', not {value!r}")
        self._binary_type = value

    # -- methods ------------------------------------------------------------------------------

    def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """Queue a message. InvalidState while CONNECTING; discarded (but counted in
        ``bufferedAmount``) once closing has begun, as browsers do."""
        if self._ready_state == self.CONNECTING:
            raise InvalidState("send() while the WebSocket is still CONNECTING")
        protocol = self._protocol
        if isinstance(data, str):
            size = len(data.encode("utf-8")) if not data.isascii() else len(data)
        elif isinstance(data, bytes | bytearray | memoryview):
            size = memoryview(data).nbytes
        else:
            raise TypeError(f"A message must be str or bytes-like, not {type(data).__name__}")
        if self._ready_state == self.OPEN and protocol is not None:
            try:
                protocol.send_data(data)
            except InvalidState:
                pass  # our close frame went out (a protocol error): discard, like after close()
            else:
                if self._ledger is not None:
                    self._ledger.record(size)
                return
        self._discarded += size

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start closing; ValueError for a code other than 1000 or 3000-4999, or a reason over
        123 UTF-8 bytes (the browser's InvalidAccessError and SyntaxError)."""
        if code != CloseCode.NORMAL_CLOSURE and not 3000 <= code <= 4999:
            raise ValueError(f"close() code must be 1000 or in 3000-4999, not {code}")
        if len(reason.encode("utf-8")) > MAX_CLOSE_REASON:
            raise ValueError(f"close() reason must be at most {MAX_CLOSE_REASON} bytes of UTF-8")
        state = self._ready_state
        if state == self.CONNECTING:
            # The HTML spec: fail the connection; error and close (1006) follow.
            self._ready_state = self.CLOSING
            self._close_requested = True
            if self._opening is not None:
                self._opening.cancel()
        elif state == self.OPEN and self._protocol is not None:
            self._ready_state = self.CLOSING
            self._protocol.close(code, reason)

    def addEventListener(
        self,
        type: str,
        listener: Any,
        options: bool | dict[str, Any] | None = None,
        *,
        once: bool = False,
    ) -> None:
        """``options`` may be ``{"once": True}`` as in browsers; adding one twice is a no-op."""
        if isinstance(options, dict):
            once = once or bool(options.get("once"))
        entries = self._listener_list(type)
        if listener is None or self._find(entries, listener) is not None:
            return
        entries.append(_Listener(listener, once=once))

    def removeEventListener(self, type: str, listener: Any) -> None:
        """Listeners are matched with ``==`` as in the DOM, so ``ws.removeEventListener("open",
        obj.method)`` finds the bound method added earlier; once removed, a listener does not
        run, even in a dispatch that has already started."""
        entries = self._listener_list(type)
        entry = self._find(entries, listener)
        if entry is not None:
            entry.removed = True
            entries.remove(entry)

    async def wait_closed(self) -> None:
        """Wait until the ``close`` event has run (for asyncio code; browsers lack it)."""
        if self._done is None:
            raise RuntimeError("This WebSocket has not started: call run_until_closed()")
        await asyncio.shield(self._done)

    def __repr__(self) -> str:
        return f"<WebSocket {self.url} readyState={self.readyState}>"

    # -- the connection's life ----------------------------------------------------------------

    @staticmethod
    def _find(entries: list[_Listener], listener: Any) -> _Listener | None:
        # ``==``, not ``is``: a bound method is a new object at each attribute access.
        return next((e for e in entries if not e.is_handler and e.original == listener), None)

    def _listener_list(self, type: str) -> list[_Listener]:
        if type not in self._listeners:
            raise ValueError(f"Unknown event type {type!r}; expected one of {_EVENT_TYPES}")
        return self._listeners[type]

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._done = loop.create_future()
        _live.add(self)
        self._task = loop.create_task(self._run())
        if loop in _expired:
            self.close()  # run_until_closed()'s timeout has passed: this never connects

    async def _run(self) -> None:
        try:
            await self._session()
        finally:
            if self._protocol is not None and not self._protocol.closed:
                self._protocol.abort(CloseCode.ABNORMAL_CLOSURE, "")  # cancelled: leave nothing
            _live.discard(self)
            assert self._done is not None
            if not self._done.done():
                self._done.set_result(None)

    async def _session(self) -> None:
        if self._close_requested:
            await self._fail(InvalidState(_CLOSED_WHILE_CONNECTING))
            return
        opening = self._opening = asyncio.ensure_future(
            open_connection(self._target, self._options)
        )
        try:
            protocol = await opening
        except asyncio.CancelledError:
            if not opening.cancelled() or self._cancelled_from_outside():
                raise  # our own task was cancelled (asyncio.run ending, a task group...)
            await self._fail(InvalidState(_CLOSED_WHILE_CONNECTING))  # close() cancelled it
            return
        except Exception as exc:
            await self._fail(exc)
            return
        finally:
            self._opening = None
        self._protocol = protocol
        if self._close_requested:
            protocol.abort(CloseCode.ABNORMAL_CLOSURE, "")
            await self._fail(InvalidState(_CLOSED_WHILE_CONNECTING))
            return
        handshake = protocol.handshake
        assert handshake is not None
        self.protocol = handshake.subprotocol or ""
        self.extensions = handshake.extensions or ""
        assert self._loop is not None
        self._ledger = _SendLedger(self._loop, protocol)
        self._ready_state = self.OPEN
        await self._dispatch(Event("open", self))
        origin = self._target.origin
        while True:
            item = await protocol.next_event()
            if item is END:
                break
            if self._ready_state != self.OPEN:  # HTML drops messages once close() was called
                continue
            if type(item) is bytes and self._binary_type == "arraybuffer":
                item = bytearray(item)
            await self._dispatch(MessageEvent(self, item, origin))
        self._ready_state = self.CLOSING  # the closing handshake (if any) has started
        await protocol.wait_closed()
        self._ready_state = self.CLOSED
        clean = protocol.closed_cleanly
        self._ledger.closed(clean)
        if not clean:
            await self._dispatch(ErrorEvent(self, protocol.closed_error()))
        conn = protocol.conn
        if conn is not None and conn.close_rcvd is not None:
            code, reason = conn.close_rcvd.code, conn.close_rcvd.reason
        else:
            code, reason = CloseCode.ABNORMAL_CLOSURE, ""
        await self._dispatch(CloseEvent(self, code, reason, clean))

    def _cancelled_from_outside(self) -> bool:
        """While connecting, both ``close()`` and a cancellation of our own task cancel the
        opening task; tell them apart."""
        task = asyncio.current_task()
        cancelling = getattr(task, "cancelling", None)  # Python 3.11+
        if cancelling is not None:
            return bool(cancelling())
        # Python 3.10 keeps no count: only close() sets _close_requested, so a cancellation
        # without it came from outside (one arriving together with close() is taken for it).
        return not self._close_requested

    async def _fail(self, error: BaseException) -> None:
        self._ready_state = self.CLOSED
        await self._dispatch(ErrorEvent(self, error))
        await self._dispatch(CloseEvent(self, CloseCode.ABNORMAL_CLOSURE, "", False))

    async def _dispatch(self, event: Event) -> None:
        entries = self._listeners[event.type]
        for entry in tuple(entries):
            callback = entry.callback
            if callback is None or entry.removed:
                continue
            if entry.once:
                entry.removed = True
                entries.remove(entry)
            try:
                result = callback(event) if entry.pass_event else callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                # As in browsers: report, and go on with the next listener.
                logger.exception("Exception in a WebSocket %r handler (%s)", event.type, self.url)


# Sockets started and not yet closed (an open socket stays alive without a reference, as in
# browsers), and sockets created outside an event loop, waiting for run_until_closed().
_live: set[WebSocket] = set()
_unstarted: list[WebSocket] = []
# Loops of run_until_closed() calls whose timeout has passed.
_expired: set[asyncio.AbstractEventLoop] = set()


def _defer_start(ws: WebSocket) -> None:
    if not _unstarted:
        atexit.register(_warn_unstarted)
    _unstarted.append(ws)


def _warn_unstarted() -> None:
    if _unstarted:
        urls = ", ".join(ws.url for ws in _unstarted)
        warnings.warn(
            f"WebSocket({urls}) was created outside an event loop and never connected: "
            "call krandog_asgi.client.run_until_closed() at the end of the script",
            RuntimeWarning,
            stacklevel=1,
        )


def run_until_closed(timeout: float | None = None) -> None:
    """Run an event loop until every WebSocket of the script has closed.

    Sockets created outside an event loop connect when this starts; sockets that handlers create
    meanwhile are waited for too. After ``timeout`` seconds, the sockets still open are closed
    (1000), and so is every socket created from then on (before it connects: ``error``, then
    ``close`` 1006), so that reconnecting in ``onclose`` does not keep it running; once the
    close events have run, this returns.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "run_until_closed() runs its own event loop; in async code, await ws.wait_closed()"
        )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        asyncio.run(_wait_all_closed(timeout))
    else:
        uvloop.run(_wait_all_closed(timeout))


async def _wait_all_closed(timeout: float | None) -> None:
    loop = asyncio.get_running_loop()
    pending = list(_unstarted)
    _unstarted.clear()
    for ws in pending:
        ws._start(loop)
    deadline = None if timeout is None else loop.time() + timeout
    try:
        while True:
            mine = [ws for ws in _live if ws._loop is loop and ws._done is not None]
            if not mine:
                return
            if deadline is not None and loop.time() >= deadline:
                _expired.add(loop)  # from now on, _start() closes new sockets at once
            if loop in _expired:
                # Every pass: sockets that went live since the last one (a handler's, or one
                # started before the deadline was seen) are closed too.
                for ws in mine:
                    ws.close()  # a no-op once closing
                remaining = None
            else:
                remaining = None if deadline is None else deadline - loop.time()
            waiting = [ws._done for ws in mine if ws._done is not None]
            await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
    finally:
        _expired.discard(loop)
