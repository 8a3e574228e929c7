"""The asyncio client API: ``async with connect(url) as ws`` with ``send``/``recv``/``async for``.

Modelled on the ``websockets`` client so code moves between the two with few edits; the work
is done by ``ClientProtocol`` on the shared core, and this layer only turns its states into
awaitables and exceptions.
"""

from __future__ import annotations

import ssl as ssl_module
from collections.abc import Generator, Sequence
from types import TracebackType
from typing import Any

from krandog_asgi.transport.websocket_io import END
from krandog_asgi.websocket.connection import InvalidState
from krandog_asgi.websocket.frames import CloseCode
from krandog_asgi.wsclient.errors import ConnectionClosedOK
from krandog_asgi.wsclient.protocol import (
    MAX_FRAGMENTS,
    USER_AGENT,
    ClientOptions,
    ClientProtocol,
    HeadersLike,
    open_connection,
    parse_target,
)
from krandog_asgi.wsclient.url import WebSocketURL

__all__ = ["ClientConnection", "Connect", "connect"]

Data = str | bytes


class ClientConnection:
    """An open client connection. Messages are ``str`` (text) or ``bytes`` (binary)."""

    __slots__ = ("protocol", "url")

    def __init__(self, protocol: ClientProtocol) -> None:
        self.protocol = protocol
        self.url = protocol.target.url

    # -- what the handshake agreed on ---------------------------------------------------------

    @property
    def subprotocol(self) -> str | None:
        assert self.protocol.handshake is not None
        return self.protocol.handshake.subprotocol

    @property
    def extensions(self) -> str:
        """The server's ``Sec-WebSocket-Extensions`` value ("" when none was negotiated)."""
        assert self.protocol.handshake is not None
        return self.protocol.handshake.extensions or ""

    @property
    def response_headers(self) -> list[tuple[str, str]]:
        """The 101 response's headers, names in lower case."""
        return [
            (n.decode("latin-1"), v.decode("latin-1")) for n, v in self.protocol.response_headers
        ]

    @property
    def local_address(self) -> Any:
        return self.protocol.transport.get_extra_info("sockname")

    @property
    def remote_address(self) -> Any:
        return self.protocol.transport.get_extra_info("peername")

    # -- closing state ------------------------------------------------------------------------

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is over (1006 when it was lost), else None."""
        return self.protocol.end_code if self.protocol.ended else None

    @property
    def close_reason(self) -> str | None:
        return self.protocol.end_reason if self.protocol.ended else None

    @property
    def closed(self) -> bool:
        """True once the TCP connection is gone."""
        return self.protocol.closed

    # -- messages -----------------------------------------------------------------------------

    async def send(self, message: Data | bytearray | memoryview) -> None:
        """Send a message; waits while more than ``write_limit`` bytes are buffered.

        Raises ConnectionClosed once the connection is closing or closed.
        """
        protocol = self.protocol
        try:
            protocol.send_data(message)
        except InvalidState:
            raise protocol.closed_error() from None
        if protocol.write_paused:
            await protocol.drain()
            if protocol.closed:
                raise protocol.closed_error()

    async def recv(self) -> Data:
        """The next message; ConnectionClosed (OK or Error, with code and reason) at the end."""
        item = await self.protocol.next_event()
        if item is END:
            raise self.protocol.closed_error()
        message: Data = item
        return message

    def __aiter__(self) -> ClientConnection:
        return self

    async def __anext__(self) -> Data:
        """Ends quietly after a normal close (1000, 1001, or no status); raises otherwise."""
        item = await self.protocol.next_event()
        if item is END:
            error = self.protocol.closed_error()
            if isinstance(error, ConnectionClosedOK):
                raise StopAsyncIteration
            raise error
        message: Data = item
        return message

    async def ping(self, data: bytes | str | None = None) -> float:
        """Send a ping and wait for its pong; returns the round-trip time in seconds."""
        payload = data.encode("utf-8") if isinstance(data, str) else data
        try:
            waiter = self.protocol.ping(payload)
        except InvalidState:
            raise self.protocol.closed_error() from None
        return await waiter

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Run the closing handshake and wait until the connection is closed (at most about
        two ``close_timeout``s when the server does not answer)."""
        self.protocol.close(code, reason)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        await self.protocol.wait_closed()

    def __repr__(self) -> str:
        return f"<ClientConnection {self.url} closed={self.closed}>"


class Connect:
    """What ``connect()`` returns: ``await`` it, or use it as an async context manager."""

    __slots__ = ("connection", "options", "target")

    def __init__(self, target: WebSocketURL, options: ClientOptions) -> None:
        self.target = target
        self.options = options
        self.connection: ClientConnection | None = None

    async def open(self) -> ClientConnection:
        return ClientConnection(await open_connection(self.target, self.options))

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self.open().__await__()

    async def __aenter__(self) -> ClientConnection:
        self.connection = await self.open()
        return self.connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.connection is not None
        if exc_type is None:
            code = CloseCode.NORMAL_CLOSURE
        elif issubclass(exc_type, Exception):
            code = CloseCode.INTERNAL_ERROR
        else:  # cancelled or interrupted
            code = CloseCode.GOING_AWAY
        await self.connection.close(code)


def connect(
    url: str,
    *,
    subprotocols: Sequence[str] | None = None,
    extra_headers: HeadersLike | None = None,
    origin: str | None = None,
    user_agent: str | None = USER_AGENT,
    compression: str | None = "deflate",
    open_timeout: float | None = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    close_timeout: float = 10.0,
    max_size: int | None = 16 * 1024 * 1024,
    max_fragments: int | None = MAX_FRAGMENTS,
    max_queue: int = 16,
    write_limit: int = 64 * 1024,
    fragment_size: int | None = None,
    ssl: ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
) -> Connect:
    """Open a WebSocket connection to ``url`` (``ws://`` or ``wss://``).

    ``compression=None`` turns permessage-deflate off; ``max_size`` bounds incoming messages
    (after inflation) and ``max_fragments`` their frame count; ``fragment_size`` splits
    outgoing messages into frames of at most that many bytes; ``ping_interval`` and
    ``ping_timeout`` drive keepalive (None disables); ``ssl`` replaces the default verifying
    context for ``wss://``. The URL and options are checked
    here, before any I/O: InvalidURL or ValueError at once.
    """
    options = ClientOptions(
        subprotocols=tuple(subprotocols or ()),
        headers=ClientOptions.normalize_headers(extra_headers),
        origin=origin,
        user_agent=user_agent,
        compression=compression,
        open_timeout=open_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
        max_size=max_size,
        max_fragments=max_fragments,
        max_queue=max_queue,
        write_limit=write_limit,
        fragment_size=fragment_size,
        ssl=ssl,
        server_hostname=server_hostname,
    )
    return Connect(parse_target(url, options), options)
