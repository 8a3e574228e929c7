"""krandog-style handlers served as an ASGI 3 app.

krandog called one function for every HTTP request and for every WebSocket message::

    def handler(req):
        if req.type == "websocket":
            req.ws.send("Echo: " + req.data)
            return
        return {"status": 200, "headers": {"Content-Type": "text/plain"}, "body": "hello"}

``krandog_app(handler)`` turns such a function (plain or ``async def``) into an ASGI 3 app that
runs under any ASGI server; ``krandog-asgi module:handler`` wraps one automatically.

Sync handlers run **on the event loop**, as they did in krandog: they must not block (no
``time.sleep``, no blocking I/O), or every connection of the worker stalls. Pass
``threads=True`` (CLI: ``--handler-threads``) to run them in a thread pool instead; then
``ws.send`` is thread-safe and returns a ``concurrent.futures.Future``-like handle.

Beyond krandog (all opt-in, the defaults keep krandog's behaviour):

* ``lifecycle=True``: the handler also gets ``req.type == "websocket.open"`` after the accept
  and ``"websocket.close"`` (with ``req.code`` and ``req.reason``) once the connection is over,
  so a broadcast list can drop its closed clients.
* ``upgrade=True``: the handler sees the upgrade request first (``"websocket.upgrade"``);
  returning a response denies it with that response, returning ``None`` accepts it.

This module is a plain ASGI app: it imports no transport code of krandog-asgi.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import http
import inspect
import json
import logging
import re
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Final, Literal, cast, overload
from urllib.parse import parse_qsl, quote

from krandog_asgi._abnf import FIELD_VALUE_FORBIDDEN_TEXT, TOKEN_TEXT, close_code_is_sendable

__all__ = [
    "CLOSED",
    "CLOSING",
    "CONNECTING",
    "OPEN",
    "BadRequest",
    "HTTPError",
    "HTTPRequest",
    "Headers",
    "KrandogApp",
    "Query",
    "Request",
    "WebSocket",
    "WebSocketEvent",
    "WebSocketMessage",
    "is_krandog_app",
    "krandog_app",
]

logger = logging.getLogger("krandog_asgi.error")
_get_ident = threading.get_ident
_new_object = object.__new__

# WebSocket.readyState values, as in the browser API.
CONNECTING: Final = 0
OPEN: Final = 1
CLOSING: Final = 2
CLOSED: Final = 3

MiB = 1024 * 1024
DEFAULT_MAX_BODY_SIZE = 16 * MiB
DEFAULT_SEND_QUEUE_LIMIT = 16 * MiB
# Close code for a client whose outgoing queue overflowed (it does not read what we send).
SLOW_CONSUMER_CODE = 1008
# What one queued message costs besides its payload (deque slot, message dict, future, tuple).
_ENTRY_COST = 256

Scope = Any  # kept loose like krandog_asgi.asgi_types, without importing the server package
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Any], Any]

_RESPONSE_KEYS = frozenset({"status", "headers", "body"})
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)
_NO_BODY_STATUS = frozenset({204, 304})
_SKIPPED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
_TEXT = b"text/plain; charset=utf-8"
_BINARY = b"application/octet-stream"
_JSON = b"application/json"


# -- errors -------------------------------------------------------------------------------------


class HTTPError(Exception):
    """Raise from a handler to answer an HTTP request with ``status`` and a short text body."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message or _phrase(status)


class BadRequest(HTTPError, ValueError):
    """The client sent something the request object cannot parse (e.g. a body that is not JSON)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class _InvalidResponse(Exception):
    """The handler returned something that is not a response; the message says what and why."""


class _NoResponse(_InvalidResponse):
    """The handler returned None for an HTTP request (a krandog habit for WebSocket messages)."""


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# -- request parts ------------------------------------------------------------------------------


class Headers(Mapping[str, str]):
    """Request headers: lowercase names, case-insensitive lookup; repeats joined with ``", "``
    (``"; "`` for cookies). ``getall(name)`` keeps them apart, ``raw`` is what the server gave."""

    __slots__ = ("_map", "raw")

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self.raw: list[tuple[bytes, bytes]] = list(raw)
        self._map: dict[str, str] | None = None

    def _dict(self) -> dict[str, str]:
        mapping = self._map
        if mapping is None:
            mapping = {}
            for raw_name, raw_value in self.raw:
                name = raw_name.decode("latin-1").lower()
                value = raw_value.decode("latin-1")
                if name in mapping:
                    mapping[name] += ("; " if name == "cookie" else ", ") + value
                else:
                    mapping[name] = value
            self._map = mapping
        return mapping

    def __getitem__(self, name: str) -> str:
        return self._dict()[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._dict()

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def getall(self, name: str) -> list[str]:
        """Every value of a repeated header, in order."""
        key = name.lower().encode("latin-1")
        return [v.decode("latin-1") for n, v in self.raw if n.lower() == key]

    def __repr__(self) -> str:
        return f"Headers({self._dict()!r})"


class Query(Mapping[str, str]):
    """The parsed query string. ``query["a"]`` is the first value (like ``URLSearchParams.get``);
    ``getall("a")`` and ``multi_items()`` keep repeated keys."""

    __slots__ = ("_map", "_pairs")

    def __init__(self, query_string: bytes | str) -> None:
        if isinstance(query_string, bytes):
            query_string = query_string.decode("utf-8", "replace")
        self._pairs = parse_qsl(query_string, keep_blank_values=True, errors="replace")
        mapping: dict[str, list[str]] = {}
        for key, value in self._pairs:
            mapping.setdefault(key, []).append(value)
        self._map = mapping

    def __getitem__(self, key: str) -> str:
        return self._map[key][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def getall(self, key: str) -> list[str]:
        return list(self._map.get(key, ()))

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __repr__(self) -> str:
        return f"Query({self._pairs!r})"


def _host(scope: Scope, headers: Headers) -> str:
    host = headers.get("host")
    if host:
        return host
    server = scope.get("server")
    if server and server[1] is not None:
        return f"{server[0]}:{server[1]}"
    return server[0] if server else "localhost"


def _url(scope: Scope, headers: Headers, scheme: str) -> str:
    raw_path = scope.get("raw_path")
    path = (
        raw_path.decode("latin-1")
        if raw_path
        else quote(scope.get("root_path", "") + scope["path"], safe="/:@!$&'()*+,;=-._~%")
    )
    query = scope.get("query_string", b"")
    url = f"{scheme}://{_host(scope, headers)}{path}"
    return f"{url}?{query.decode('latin-1')}" if query else url


class _ScopeFields:
    """What HTTP requests and WebSocket connections read the same way from their scope."""

    __slots__ = ("_headers", "_query", "scope")
    _default_scheme: ClassVar[str] = "http"

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._headers: Headers | None = None
        self._query: Query | None = None

    @property
    def pathname(self) -> str:
        path: str = self.scope["path"]
        return path

    @property
    def url(self) -> str:
        """The absolute URL, e.g. ``http://127.0.0.1:8000/chat?room=1``."""
        return _url(self.scope, self.headers, self.scope.get("scheme", self._default_scheme))

    @property
    def headers(self) -> Headers:
        """The request headers (of the upgrade request, for a WebSocket)."""
        if self._headers is None:
            self._headers = Headers(self.scope["headers"])
        return self._headers

    @property
    def query(self) -> Query:
        if self._query is None:
            self._query = Query(self.scope.get("query_string", b""))
        return self._query

    @property
    def client(self) -> tuple[str, int] | None:
        client = self.scope.get("client")
        return (client[0], client[1]) if client else None


class HTTPRequest(_ScopeFields):
    """What an HTTP handler gets: ``req.type == "http"``. The body is read in full beforehand."""

    __slots__ = ("body",)
    type: ClassVar[Literal["http"]] = "http"

    def __init__(self, scope: Scope, body: bytes) -> None:
        _ScopeFields.__init__(self, scope)
        self.body = body

    @property
    def method(self) -> str:
        method: str = self.scope["method"]
        return method

    @property
    def text(self) -> str:
        """The body decoded with its Content-Type charset (default UTF-8); bad bytes -> U+FFFD."""
        charset = "utf-8"
        match = _CHARSET.search(self.headers.get("content-type", ""))
        if match:
            try:
                charset = codecs.lookup(match.group(1)).name
            except LookupError:
                pass
        return self.body.decode(charset, "replace")

    def json(self) -> Any:
        """The body parsed as JSON; a body that is not JSON raises ``BadRequest`` (a 400)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"The request body is not valid JSON: {exc}") from None

    def __repr__(self) -> str:
        return f"<HTTPRequest {self.method} {self.pathname!r}>"


# -- WebSocket ----------------------------------------------------------------------------------


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
    __slots__ = ()


_FLUSHING: Final = _Flushing()


class _ThreadSend(concurrent.futures.Future[None]):
    """``ws.send`` from a worker thread: ``.result()`` there, or ``await`` it on the loop."""

    def __await__(self) -> Generator[Any, None, None]:
        return asyncio.wrap_future(self).__await__()


def _resume(coro: Any, yielded: Any) -> Generator[Any, Any, None]:
    """Continue a coroutine that ``WebSocket._submit`` started and that suspended on ``yielded``.

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


class WebSocket(_ScopeFields):
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

    def __init__(self, app: KrandogApp, scope: Scope, send: Send) -> None:
        self.readyState = CONNECTING
        self.protocol = ""  # set it in a "websocket.upgrade" event to pick an offered subprotocol
        self._limit = app.send_queue_limit
        _ScopeFields.__init__(self, scope)
        self._send: Send | None = send
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._queue: deque[tuple[Message, asyncio.Future[None] | None, int]] | None = None
        self._queued_bytes = 0
        # The writer task while a send is blocked by flow control, or _FLUSHING while the
        # message loop hands over a batch; any send meanwhile waits in the queue behind it.
        self._drainer: asyncio.Task[None] | _Flushing | None = None
        self._inflight: tuple[Any, asyncio.Future[None]] | None = None
        # While a sync handler of this connection runs on the loop, its own sends collect here
        # and the message loop awaits them right after it returns (cheaper than one by one).
        self._batch: list[Message] | None = None

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
        _check_close(code, reason)
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
        state = ("CONNECTING", "OPEN", "CLOSING", "CLOSED")[self.readyState]
        return f"<WebSocket {self.pathname!r} {state}>"


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def _check_close(code: int, reason: str) -> None:
    if type(code) is not int or not close_code_is_sendable(code):
        raise ValueError(
            f"Invalid WebSocket close code {code!r} (use 1000-1003, 1007-1014 or 3000-4999)"
        )
    if not isinstance(reason, str) or len(reason.encode("utf-8")) > 123:
        raise ValueError("The close reason must be a str of at most 123 bytes in UTF-8")


class _WebSocketFields:
    """Fields every WebSocket request shares; they come from the connection."""

    __slots__ = ()
    ws: WebSocket

    @property
    def pathname(self) -> str:
        return self.ws.pathname

    @property
    def url(self) -> str:
        return self.ws.url

    @property
    def headers(self) -> Headers:
        return self.ws.headers

    @property
    def query(self) -> Query:
        return self.ws.query

    @property
    def client(self) -> tuple[str, int] | None:
        return self.ws.client


class WebSocketMessage(_WebSocketFields):
    """A message: ``req.type == "websocket"``, ``req.data`` is str (text) or bytes (binary)."""

    __slots__ = ("data", "ws")
    type: ClassVar[Literal["websocket"]] = "websocket"

    def __init__(self, ws: WebSocket, data: str | bytes) -> None:
        self.ws = ws
        self.data = data

    def __repr__(self) -> str:
        return f"<WebSocketMessage {self.pathname!r} {self.data[:40]!r}>"


EventType = Literal["websocket.upgrade", "websocket.open", "websocket.close"]


class WebSocketEvent(_WebSocketFields):
    """An opt-in lifecycle event: ``"websocket.upgrade"``, ``"websocket.open"`` or
    ``"websocket.close"`` (then ``code`` and ``reason`` say how it ended)."""

    __slots__ = ("code", "reason", "type", "ws")
    data: ClassVar[None] = None
    method: ClassVar[str] = "GET"

    def __init__(
        self, type: EventType, ws: WebSocket, code: int | None = None, reason: str = ""
    ) -> None:
        self.type = type
        self.ws = ws
        self.code = code
        self.reason = reason

    @property
    def protocols(self) -> list[str]:
        """Subprotocols the client offered; set ``req.ws.protocol`` to one of them to pick it."""
        return list(self.ws.scope.get("subprotocols") or ())

    def __repr__(self) -> str:
        return f"<WebSocketEvent {self.type} {self.pathname!r}>"


Request = HTTPRequest | WebSocketMessage | WebSocketEvent


# -- responses ----------------------------------------------------------------------------------


def _json_body(value: Any) -> bytes:
    try:
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
    except (TypeError, ValueError) as exc:
        raise _InvalidResponse(f"the body could not be sent as JSON: {exc}") from None


def _header_list(headers: Any) -> list[tuple[str, Any]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        pairs: list[tuple[str, Any]] = []
        for name, value in headers.items():
            if isinstance(value, list | tuple):
                pairs.extend((name, v) for v in value)
            else:
                pairs.append((name, value))
        return pairs
    if isinstance(headers, list | tuple):
        pairs = []
        for item in headers:
            if not (isinstance(item, list | tuple) and len(item) == 2):
                raise _InvalidResponse(
                    f"headers must be a dict or (name, value) pairs, got {item!r}"
                )
            pairs.append((item[0], item[1]))
        return pairs
    raise _InvalidResponse(
        f"headers must be a dict or a list of pairs, not {type(headers).__name__}"
    )


def _encode_header(name: Any, value: Any) -> tuple[bytes, bytes]:
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    if not isinstance(name, str) or TOKEN_TEXT.fullmatch(name) is None:
        raise _InvalidResponse(f"invalid header name {name!r}")
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _InvalidResponse(f"header {name!r} must be a str, not {type(value).__name__}")
    if FIELD_VALUE_FORBIDDEN_TEXT.search(value):
        raise _InvalidResponse(f"header {name!r} contains a control character (CR/LF/NUL)")
    try:
        return name.lower().encode("latin-1"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise _InvalidResponse(f"header {name!r} is not latin-1 text") from None


def build_response(result: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Turn a handler's return value into (status, headers, body), or raise ``_InvalidResponse``.

    Accepted: ``{"status", "headers", "body"}`` (any subset, status 200 by default), or a bare
    str (text/plain), bytes (application/octet-stream), dict or list (application/json). A dict
    is a response object only if its keys are all among status/headers/body; else it is JSON.
    """
    if result is None:
        raise _NoResponse(
            "the handler returned nothing (None) for an HTTP request; return a str, bytes, "
            "a dict/list (sent as JSON) or {'status': ..., 'headers': ..., 'body': ...}"
        )
    status = 200
    headers: list[tuple[str, Any]] = []
    body: Any = result
    if isinstance(result, dict) and result and result.keys() <= _RESPONSE_KEYS:
        status = result.get("status", 200)
        if type(status) is not int or not 200 <= status <= 599:
            raise _InvalidResponse(f"status must be an int from 200 to 599, got {status!r}")
        headers = _header_list(result.get("headers"))
        body = result.get("body")
    if body is None:
        payload, content_type = b"", _TEXT
    elif isinstance(body, str):
        payload, content_type = body.encode("utf-8"), _TEXT
    elif isinstance(body, bytes | bytearray | memoryview):
        payload, content_type = bytes(body), _BINARY
    elif isinstance(body, dict | list):
        payload, content_type = _json_body(body), _JSON
    else:
        where = "the body" if body is not result else "the handler"
        raise _InvalidResponse(
            f"{where} returned/contained a {type(body).__name__}; expected str, bytes, dict, "
            "list or {'status', 'headers', 'body'}"
        )
    out: list[tuple[bytes, bytes]] = []
    has_type = False
    for name, value in headers:
        raw_name, raw_value = _encode_header(name, value)
        text_name = raw_name.decode("latin-1")
        if text_name in _SKIPPED_HEADERS:
            continue  # framing is ours: the body length is known
        has_type = has_type or text_name == "content-type"
        out.append((raw_name, raw_value))
    if status in _NO_BODY_STATUS:
        return status, out, b""
    if not has_type:
        out.append((b"content-type", content_type))
    out.append((b"content-length", b"%d" % len(payload)))
    return status, out, payload


def _error_response(status: int, text: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = text.encode("utf-8")
    return status, [(b"content-type", _TEXT), (b"content-length", b"%d" % len(body))], body


def _internal_error(detail: str = "") -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return _error_response(500, "Internal Server Error" + (f": {detail}" if detail else "") + "\n")


# -- the app ------------------------------------------------------------------------------------


class KrandogApp:
    """The ASGI 3 app around a krandog handler; build it with ``krandog_app``."""

    __slots__ = (
        "handler",
        "is_async",
        "lifecycle",
        "max_body_size",
        "send_queue_limit",
        "threads",
        "upgrade",
        "warned_return",
    )

    def __init__(
        self,
        handler: Handler,
        *,
        threads: bool = False,
        lifecycle: bool = False,
        upgrade: bool = False,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        send_queue_limit: int = DEFAULT_SEND_QUEUE_LIMIT,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"A krandog handler must be callable, got {handler!r}")
        if isinstance(handler, KrandogApp):
            raise TypeError("This handler is already wrapped by krandog_app()")
        self.handler = handler
        call = None if inspect.isroutine(handler) else type(handler).__call__
        self.is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)
        self.threads = threads and not self.is_async
        self.lifecycle = lifecycle
        self.upgrade = upgrade
        self.max_body_size = max_body_size
        self.send_queue_limit = send_queue_limit
        self.warned_return = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self._other(scope, receive, send)
            return
        # The WebSocket message loop lives right here, not in a helper coroutine: every message
        # resumes this task through each awaiting frame, so a flat chain is what makes the
        # compat layer cost as little as a hand-written ASGI app.
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        ws = WebSocket(self, scope, send)
        try:
            if self.upgrade and not await self._upgrade(ws, scope, send):
                return
            accept: Message = {"type": "websocket.accept"}
            if ws.protocol:
                accept["subprotocol"] = ws.protocol
            await send(accept)
            ws.readyState = OPEN
            ws._start_drainer()  # messages sent while CONNECTING
            if self.lifecycle:
                await self._event(ws, WebSocketEvent("websocket.open", ws))
            handler = self.handler
            direct = not self.is_async and not self.threads
            batch: list[Message] = []
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    if ws.readyState != OPEN:
                        continue  # as in the browser: nothing is delivered once closing
                    data = message.get("text")
                    if data is None:
                        data = message.get("bytes") or b""
                    req = _new_object(WebSocketMessage)  # skips an __init__ frame: hot path
                    req.ws = ws
                    req.data = data
                    if direct:
                        ws._batch = batch
                        try:
                            result = handler(req)
                        except Exception as exc:
                            result = None
                            self._message_failed(ws, exc)  # its close goes after the batch
                        ws._batch = None
                        if batch:
                            # Inlined ws._flush: one coroutine frame less per message.
                            ws._drainer = _FLUSHING
                            try:
                                for item in batch:
                                    await send(item)
                            except Exception as exc:
                                ws._send_failed(exc)
                            finally:
                                batch.clear()
                                ws._drainer = None
                            if ws._queue:
                                ws._start_drainer()  # what others sent to it meanwhile
                        if result is not None:
                            await self._returned(ws, result)
                    else:
                        try:
                            result = await self._call(req)
                        except Exception as exc:
                            result = None
                            self._message_failed(ws, exc)
                        if result is not None:
                            await self._returned(ws, result)
                    if ws._drainer is not None:
                        # Our messages are waiting on this client: read no more from it meanwhile.
                        await asyncio.wait((cast("asyncio.Task[None]", ws._drainer),))
                elif kind == "websocket.disconnect":
                    break
        finally:
            ws._finish()
        if self.lifecycle:
            code = message.get("code", 1005)
            event = WebSocketEvent("websocket.close", ws, code, message.get("reason") or "")
            await self._event(ws, event)

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        else:
            raise ValueError(f"Unsupported ASGI scope type {kind!r}")

    async def _call(self, req: Any) -> Any:
        """Run the handler the way it was declared: awaited, in a thread, or on the loop."""
        if self.is_async:
            return await self.handler(req)
        if self.threads:
            result = await asyncio.get_running_loop().run_in_executor(None, self.handler, req)
        else:
            result = self.handler(req)
        if result is not None and inspect.isawaitable(result):
            result = await result
        return result

    # -- HTTP ----------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await self._read_body(scope, receive)
        if body is None:
            return  # the client left before sending the whole body
        if isinstance(body, tuple):
            response = body
        else:
            req = HTTPRequest(scope, body)
            try:
                response = build_response(await self._call(req))
            except HTTPError as exc:
                response = _error_response(exc.status, exc.message + "\n")
            except _InvalidResponse as exc:
                logger.error("krandog handler, %s %s: %s", req.method, req.pathname, exc)
                response = _internal_error(
                    "the handler returned nothing for an HTTP request"
                    if isinstance(exc, _NoResponse)
                    else "the handler returned an invalid response (see the server log)"
                )
            except Exception as exc:
                logger.error(
                    "Exception in krandog handler for %s %s", req.method, req.pathname, exc_info=exc
                )
                response = _internal_error()
        status, headers, payload = response
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _read_body(
        self, scope: Scope, receive: Receive
    ) -> bytes | tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """The whole body, a 413 response if it is over ``max_body_size``, or None on disconnect."""
        limit = self.max_body_size
        for name, value in scope["headers"]:
            if name.lower() == b"content-length" and value.isdigit() and int(value) > limit:
                return _error_response(413, "Request body too large\n")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    return _error_response(413, "Request body too large\n")
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # -- WebSocket -----------------------------------------------------------------------------

    async def _upgrade(self, ws: WebSocket, scope: Scope, send: Send) -> bool:
        """Let the handler see the upgrade request; True to accept, False once refused."""
        response = None
        try:
            result = await self._call(WebSocketEvent("websocket.upgrade", ws))
            if result is not None:
                response = build_response(result)
            elif ws.protocol and ws.protocol not in (scope.get("subprotocols") or ()):
                raise _InvalidResponse(f"ws.protocol {ws.protocol!r} was not offered by the client")
        except HTTPError as exc:
            response = _error_response(exc.status, exc.message + "\n")
        except _InvalidResponse as exc:
            logger.error("krandog handler, WebSocket upgrade %s: %s", scope["path"], exc)
            response = _internal_error()
        except Exception as exc:
            logger.error(
                "Exception in krandog handler for WebSocket upgrade %s", scope["path"], exc_info=exc
            )
            response = _internal_error()
        if response is None and ws.readyState == CONNECTING:
            return True
        ws.readyState = CLOSING
        if response is None or "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close"})  # ASGI: closing before the accept is a 403
            return False
        status, headers, payload = response
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": payload})
        return False

    async def _event(self, ws: WebSocket, event: WebSocketEvent) -> None:
        try:
            await self._call(event)
        except Exception as exc:
            self._message_failed(ws, exc, event.type)

    def _message_failed(self, ws: WebSocket, exc: Exception, what: str = "message") -> None:
        logger.error(
            "Exception in krandog handler for a WebSocket %s on %s; closing with 1011",
            what,
            ws.pathname,
            exc_info=exc,
        )
        ws.close(1011)

    async def _returned(self, ws: WebSocket, result: object) -> None:
        """A handler returned something for a WebSocket message: await it if it is awaitable
        (a sync function may return a coroutine), then warn once about any value."""
        try:
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            self._message_failed(ws, exc)
            return
        if result is not None:
            self._warn_return(result)

    def _warn_return(self, result: object) -> None:
        if not self.warned_return:
            self.warned_return = True
            logger.warning(
                "krandog handler returned %s for a WebSocket message; the value is ignored "
                "(krandog closed the connection here, krandog-asgi does not). Return None. "
                "This warning is shown once.",
                type(result).__name__,
            )

    def __repr__(self) -> str:
        return f"<KrandogApp {getattr(self.handler, '__qualname__', self.handler)!r}>"


async def _lifespan(receive: Receive, send: Send) -> None:
    """krandog handlers have no startup or shutdown hooks: acknowledge both."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


# -- public constructors ------------------------------------------------------------------------


@overload
def krandog_app(
    handler: Handler,
    *,
    threads: bool = ...,
    lifecycle: bool = ...,
    upgrade: bool = ...,
    max_body_size: int = ...,
    send_queue_limit: int = ...,
) -> KrandogApp: ...


@overload
def krandog_app(
    handler: None = ...,
    *,
    threads: bool = ...,
    lifecycle: bool = ...,
    upgrade: bool = ...,
    max_body_size: int = ...,
    send_queue_limit: int = ...,
) -> Callable[[Handler], KrandogApp]: ...


def krandog_app(
    handler: Handler | None = None,
    *,
    threads: bool = False,
    lifecycle: bool = False,
    upgrade: bool = False,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    send_queue_limit: int = DEFAULT_SEND_QUEUE_LIMIT,
) -> KrandogApp | Callable[[Handler], KrandogApp]:
    """Wrap a krandog handler ``handler(req)`` as an ASGI 3 app; also usable as a decorator,
    bare or with options (``@krandog_app(lifecycle=True)``).

    threads: run a sync handler in the default thread pool instead of on the event loop.
    lifecycle: also call the handler with ``"websocket.open"`` and ``"websocket.close"`` events.
    upgrade: call the handler with ``"websocket.upgrade"`` first; a returned response denies it.
    max_body_size: HTTP bodies above this get 413 before the handler runs.
    send_queue_limit: bytes a WebSocket may have queued behind a blocked send before it is
        closed with 1008 (a client that does not read must not grow memory without bound).
    """

    def wrap(func: Handler) -> KrandogApp:
        return KrandogApp(
            func,
            threads=threads,
            lifecycle=lifecycle,
            upgrade=upgrade,
            max_body_size=max_body_size,
            send_queue_limit=send_queue_limit,
        )

    return wrap if handler is None else wrap(handler)


def is_krandog_app(app: Any) -> bool:
    """True for an app ``krandog_app`` built (the server must not wrap it again)."""
    return isinstance(app, KrandogApp)
