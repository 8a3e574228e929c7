"""One object for equal values that many long-lived connections hold.

An idle WebSocket keeps its scope for as long as it stays open: the server address, the
client's host (often the one proxy in front of us), the path and most handshake header values
are the same on every connection, yet the parser makes fresh copies for each. Sharing them is
safe (``str``, ``bytes`` and tuples of them are immutable) and saves a few hundred bytes per
connection. The table is bounded (1,024 values of at most 512 bytes: under 1 MiB); when it is
full it starts over, so a stream of distinct values costs lookups, not memory.
"""

from __future__ import annotations

from collections.abc import Hashable, MutableMapping
from typing import Any, TypeVar

__all__ = ["SHARED_HEADER_VALUES", "Sharing"]

_T = TypeVar("_T", bound=Hashable)
_MAX_LENGTH = 512  # longer values are rare and not worth a table slot

# Handshake headers whose values repeat from connection to connection (never a key, a cookie
# or credentials: those are unique or secret, and would only churn the table).
SHARED_HEADER_VALUES = frozenset(
    {
        b"host",
        b"upgrade",
        b"connection",
        b"origin",
        b"user-agent",
        b"pragma",
        b"cache-control",
        b"accept-encoding",
        b"accept-language",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"x-forwarded-proto",
    }
)


class Sharing:
    """A bounded table of canonical values, one per worker process."""

    __slots__ = ("limit", "values")

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self.values: dict[object, object] = {}

    def share(self, value: _T) -> _T:
        values = self.values
        shared = values.get(value)
        if shared is None:
            if len(values) >= self.limit:
                values.clear()
            values[value] = shared = value
        return shared  # type: ignore[return-value]

    def share_scope(self, scope: MutableMapping[str, Any]) -> None:
        """Swap, in place, the parts of an upgrade request's scope that repeat across
        connections: the path and the values of the headers listed above."""
        share = self.share
        path = scope["path"]
        if len(path) <= _MAX_LENGTH:
            scope["path"] = share(path)
            scope["raw_path"] = share(scope["raw_path"])
        headers = scope["headers"]
        for i, (name, value) in enumerate(headers):
            if name in SHARED_HEADER_VALUES and len(value) <= _MAX_LENGTH:
                shared = share(value)
                if shared is not value:
                    headers[i] = (name, shared)
