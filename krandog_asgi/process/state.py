"""Per-process state shared by every connection, and the one timer that drives them all.

A single periodic tick refreshes the cached ``Date`` header and fires connection deadlines
(keep-alive, header read, WebSocket ping/close timers). That keeps per-connection memory
small: no ``TimerHandle`` per connection, only a float.
"""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, Protocol

from krandog_asgi.config import Config

if TYPE_CHECKING:
    from krandog_asgi.asgi_types import ASGIApp

__all__ = ["Connection", "ServerState"]

logger = logging.getLogger("krandog_asgi.error")
access_logger = logging.getLogger("krandog_asgi.access")


class Connection(Protocol):
    """What the tick and graceful shutdown need from a connection protocol."""

    deadline: float

    def on_deadline(self, now: float) -> None: ...

    def shutdown(self) -> None: ...

    def is_idle(self) -> bool: ...


class ServerState:
    """Everything a protocol instance reads from its server; one per worker process."""

    __slots__ = (
        "access_log",
        "app",
        "config",
        "connections",
        "cycles",
        "date_second",
        "default_headers",
        "keep_alive",
        "keep_alive_timeout",
        "lifespan_state",
        "loop",
        "on_limit_reached",
        "pending_heads",
        "shutting_down",
        "static_headers",
        "tick_handle",
        "tick_interval",
        "total_requests",
    )

    def __init__(self, config: Config, app: ASGIApp, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.app = app
        self.loop = loop
        self.connections: set[Connection] = set()
        # Running ASGI tasks (HTTP cycles and WebSocket sessions), for graceful shutdown.
        self.cycles: set[Any] = set()
        self.total_requests = 0
        self.lifespan_state: dict[str, Any] = {}
        self.shutting_down = False
        self.access_log = config.access_log and access_logger.isEnabledFor(logging.INFO)
        self.keep_alive = config.timeout_keep_alive > 0
        # How long an idle connection lives: with keep-alive off, a connection that has not
        # sent its first request yet gets the header deadline instead.
        self.keep_alive_timeout = config.timeout_keep_alive or config.timeout_request_header
        self.on_limit_reached: Any = None
        # Responses whose head waits for their first body chunk; flushed once per loop iteration
        # so that an app which awaits between start and body still shows its status promptly.
        self.pending_heads: list[Any] = []
        static = b""
        if config.server_header:
            static += b"server: krandog-asgi\r\n"
        self.static_headers = static + config.header_bytes
        self.date_second = -1
        self.default_headers = b""
        self.refresh_date()
        timeouts = [
            t
            for t in (
                config.timeout_keep_alive,
                config.timeout_request_header,
                config.ws_ping_interval,
                config.ws_ping_timeout,
                config.ws_close_timeout,
            )
            if t
        ]
        self.tick_interval = min([1.0, *(t / 4 for t in timeouts)])
        self.tick_interval = max(self.tick_interval, 0.05)
        self.tick_handle: asyncio.TimerHandle | None = None

    def refresh_date(self) -> None:
        now = int(time.time())
        if now != self.date_second:
            self.date_second = now
            date = b""
            if self.config.date_header:
                date = b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
            self.default_headers = self.static_headers + date

    def start_ticking(self) -> None:
        self.tick_handle = self.loop.call_later(self.tick_interval, self.tick)

    def stop_ticking(self) -> None:
        if self.tick_handle is not None:
            self.tick_handle.cancel()
            self.tick_handle = None

    def tick(self) -> None:
        self.refresh_date()
        now = self.loop.time()
        for conn in list(self.connections):
            deadline = conn.deadline
            if deadline and deadline <= now:
                try:
                    conn.on_deadline(now)
                except Exception:
                    logger.exception("Error in connection timer")
        self.tick_handle = self.loop.call_later(self.tick_interval, self.tick)

    def flush_heads(self) -> None:
        pending, self.pending_heads = self.pending_heads, []
        for cycle in pending:
            if cycle.pending_head:
                cycle.flush_head()

    def count_request(self) -> None:
        """Called after ``total_requests`` grew, only while a request limit is being watched."""
        limit = self.config.limit_max_requests
        if limit is not None and self.total_requests >= limit and self.on_limit_reached:
            callback, self.on_limit_reached = self.on_limit_reached, None
            callback()
