"""What HTTP requests and WebSocket connections read from their ASGI scope: headers, query,
URL, client.

Its own module because ``req.ws`` (``sender``) reads these fields too, and a WebSocket message
(``request``) refers to its ``req.ws``: sender builds on this, request on both, with no cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote

from krandog_asgi.krandog.asgi import Scope
from krandog_asgi.krandog.channels import BrokerLike, broker_of

__all__ = ["Headers", "Query", "ScopeFields"]


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


class ScopeFields:
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

    @property
    def broker(self) -> BrokerLike:
        """The worker's pub/sub broker (``krandog_asgi.pubsub``), from the scope."""
        return broker_of(self.scope)

    def publish(self, channel: str, data: str | bytes) -> Any:
        """Publish ``data`` to every subscriber of ``channel``, in every worker sharing the
        broker. A plain call from a sync handler (no await needed; order is kept) that raises
        ``PublishError`` when the backend is unreachable; the returned future may be awaited
        to learn that the backend took it (from a handler thread: a concurrent future)."""
        return broker_of(self.scope).publish_nowait(channel, data)
