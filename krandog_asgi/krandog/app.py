"""The ASGI 3 app around a krandog handler: it reads each HTTP request in full before the
handler runs, and runs each WebSocket connection's message loop, one handler call per message.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any, cast, overload

from krandog_asgi.krandog.asgi import Message, Receive, Scope, Send
from krandog_asgi.krandog.request import HTTPRequest, WebSocketEvent, WebSocketMessage
from krandog_asgi.krandog.response import (
    HTTPError,
    InvalidResponse,
    NoResponse,
    Response,
    build_response,
    error_response,
    internal_error,
)
from krandog_asgi.krandog.sender import CLOSING, CONNECTING, FLUSHING, OPEN, WebSocket

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_SEND_QUEUE_LIMIT",
    "Handler",
    "KrandogApp",
    "is_krandog_app",
    "krandog_app",
]

logger = logging.getLogger("krandog_asgi.error")
_new_object = object.__new__

MiB = 1024 * 1024
DEFAULT_MAX_BODY_SIZE = 16 * MiB
DEFAULT_SEND_QUEUE_LIMIT = 16 * MiB

Handler = Callable[[Any], Any]


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
        ws = WebSocket(scope, send, self.send_queue_limit)
        try:
            if not await self._open(ws, scope, send):
                return
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
                            # Handed over here, not in a helper (one frame less per message);
                            # FLUSHING makes other connections' sends queue behind the batch.
                            ws._drainer = FLUSHING
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
                response = error_response(exc.status, exc.message + "\n")
            except InvalidResponse as exc:
                logger.error("krandog handler, %s %s: %s", req.method, req.pathname, exc)
                response = internal_error(
                    "the handler returned nothing for an HTTP request"
                    if isinstance(exc, NoResponse)
                    else "the handler returned an invalid response (see the server log)"
                )
            except Exception as exc:
                logger.error(
                    "Exception in krandog handler for %s %s", req.method, req.pathname, exc_info=exc
                )
                response = internal_error()
        status, headers, payload = response
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | Response | None:
        """The whole body, a 413 response if it is over ``max_body_size``, or None on disconnect."""
        limit = self.max_body_size
        for name, value in scope["headers"]:
            if name.lower() == b"content-length" and value.isdigit() and int(value) > limit:
                return error_response(413, "Request body too large\n")
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
                    return error_response(413, "Request body too large\n")
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # -- WebSocket -----------------------------------------------------------------------------

    async def _open(self, ws: WebSocket, scope: Scope, send: Send) -> bool:
        """The upgrade event (opt-in), the accept, the open event (opt-in); False if refused.
        Once per connection, so it may cost a frame: the message loop may not."""
        if self.upgrade and not await self._upgrade(ws, scope, send):
            return False
        accept: Message = {"type": "websocket.accept"}
        if ws.protocol:
            accept["subprotocol"] = ws.protocol
        await send(accept)
        ws.readyState = OPEN
        ws._start_drainer()  # messages sent while CONNECTING
        if self.lifecycle:
            await self._event(ws, WebSocketEvent("websocket.open", ws))
        return True

    async def _upgrade(self, ws: WebSocket, scope: Scope, send: Send) -> bool:
        """Let the handler see the upgrade request; True to accept, False once refused."""
        response = None
        try:
            result = await self._call(WebSocketEvent("websocket.upgrade", ws))
            if result is not None:
                response = build_response(result)
            elif ws.protocol and ws.protocol not in (scope.get("subprotocols") or ()):
                raise InvalidResponse(f"ws.protocol {ws.protocol!r} was not offered by the client")
        except HTTPError as exc:
            response = error_response(exc.status, exc.message + "\n")
        except InvalidResponse as exc:
            logger.error("krandog handler, WebSocket upgrade %s: %s", scope["path"], exc)
            response = internal_error()
        except Exception as exc:
            logger.error(
                "Exception in krandog handler for WebSocket upgrade %s", scope["path"], exc_info=exc
            )
            response = internal_error()
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
