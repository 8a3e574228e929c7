"""Who may open a connection: ``--limit-max-connections`` and ``--limit-connections-per-ip``.

At the connection limit a new connection takes the place of the oldest idle keep-alive one
(closed at once: its client reconnects when it has a request), and is refused (closed before
reading a byte) only when every open connection is busy. A refusal answers nothing: no request
has been read to answer, and reading one would hold the very resource the limit protects. The
default limit leaves a tenth of the process's open-file limit to the app, so that the server
refuses connections in order instead of failing ``accept()`` with EMFILE.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from krandog_asgi.config import Config

__all__ = ["REFUSAL_LOG_INTERVAL", "Admission", "default_connection_limit"]

logger = logging.getLogger("krandog_asgi.error")

REFUSAL_LOG_INTERVAL = 10.0  # seconds between two warnings about refused connections


def default_connection_limit() -> int:
    """90% of the soft ``RLIMIT_NOFILE`` (keeping at least 32 descriptors); 0: no limit."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 0
    return max(soft - max(soft // 10, 32), 1)


class Admission:
    """Counts connections per client IP and keeps the idle ones in the order they went idle."""

    __slots__ = (
        "connections",
        "idle",
        "limit",
        "next_log",
        "per_ip",
        "per_ip_limit",
        "refused",
    )

    def __init__(self, config: Config, connections: set[Any]) -> None:
        self.connections = connections  # ServerState's registry of open connections
        limit = config.limit_max_connections
        self.limit = default_connection_limit() if limit is None else limit  # 0: no limit
        self.per_ip_limit = config.limit_connections_per_ip or 0
        self.per_ip: dict[str, int] = {}
        # HTTP connections waiting for a request, oldest first (dicts keep insertion order).
        # The protocol adds itself when its keep-alive timer starts and leaves when a request
        # head begins or the connection ends.
        self.idle: dict[Any, None] = {}
        self.refused = 0
        self.next_log = 0.0

    def admit(self, conn: Any, ip: str | None, now: float) -> bool:
        """Whether ``conn`` (just accepted, from ``ip``) may stay; registers it if so. The
        caller closes a refused connection and calls ``release`` only for an admitted one."""
        if self.per_ip_limit and ip is not None:
            count = self.per_ip.get(ip, 0)
            if count >= self.per_ip_limit:
                self.refuse(now, f"--limit-connections-per-ip {self.per_ip_limit} reached by {ip}")
                return False
        if self.limit and len(self.connections) >= self.limit and not self.evict_idle():
            self.refuse(now, f"--limit-max-connections {self.limit} reached, none idle")
            return False
        if self.per_ip_limit and ip is not None:
            self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        self.connections.add(conn)
        return True

    def release(self, ip: str | None) -> None:
        """An admitted connection from ``ip`` ended."""
        if self.per_ip_limit and ip is not None:
            count = self.per_ip.get(ip, 0) - 1
            if count > 0:
                self.per_ip[ip] = count
            else:
                self.per_ip.pop(ip, None)

    def evict_idle(self) -> bool:
        """Close the connection idle the longest; False if none is idle."""
        idle = self.idle
        while idle:
            conn = next(iter(idle))
            del idle[conn]
            if conn in self.connections and conn.is_idle():
                logger.debug("Connection limit reached: closing the oldest idle connection")
                conn.transport.close()
                self.connections.discard(conn)  # its slot is free now, not on the next turn
                return True
        return False

    def refuse(self, now: float, why: str) -> None:
        self.refused += 1
        if now >= self.next_log:
            logger.warning("Refusing connections: %s (%d refused so far)", why, self.refused)
            self.next_log = now + REFUSAL_LOG_INTERVAL
