"""``create_broker(url)``: the backend named by a URL's scheme, and the process's default broker
(the one the server made at startup) for ``krandog_asgi.pubsub.publish``."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from krandog_asgi.pubsub.broker import (
    DEFAULT_HEARTBEAT,
    DEFAULT_PRESENCE_TTL,
    DEFAULT_QUEUE_SIZE,
    Broker,
)
from krandog_asgi.pubsub.codec import Payload
from krandog_asgi.pubsub.errors import BrokerError

__all__ = [
    "EXTENSION",
    "SCHEMES",
    "SCOPE_KEY",
    "ScopeExtension",
    "broker_from_scope",
    "create_broker",
    "get_broker",
    "is_memory_url",
    "publish",
    "set_broker",
]

SCHEMES = ("memory", "redis", "rediss", "unix")
EXTENSION = "krandog_asgi.pubsub"
"""The scope extension the server offers: ``scope["extensions"][EXTENSION].broker``."""
SCOPE_KEY = "krandog_asgi.broker"
"""Where an app under another server may put a broker: ``scope["state"][SCOPE_KEY]``."""

_default: Broker | None = None


class ScopeExtension(dict[str, Any]):
    """The value of ``scope["extensions"]["krandog_asgi.pubsub"]``: an empty dict (ASGI
    extensions are dicts, and apps print or JSON-dump scopes) whose ``broker`` attribute is
    the worker's broker."""

    __slots__ = ("broker",)

    def __init__(self, broker: Broker) -> None:
        super().__init__()
        self.broker = broker

    def __repr__(self) -> str:
        return f"ScopeExtension({self.broker!r})"


def check_url(url: str) -> str:
    """The scheme of a broadcast URL; ``BrokerError`` for one no backend serves."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        raise BrokerError(
            f"Unsupported broadcast URL {url!r}: use memory://, redis://host:port/db, "
            "rediss:// (TLS) or unix:///path/redis.sock"
        )
    if scheme != "memory":
        from krandog_asgi.pubsub.redis_backend import _redis_module

        _redis_module()  # a clear error now if the extra is not installed
    return scheme


def is_memory_url(url: str | None) -> bool:
    return url is None or urlsplit(url).scheme.lower() in ("", "memory")


def create_broker(
    url: str | None = None,
    *,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    presence_ttl: float = DEFAULT_PRESENCE_TTL,
    heartbeat: float = DEFAULT_HEARTBEAT,
) -> Broker:
    """A broker for ``url`` (default ``memory://``); ``await broker.start()`` before use."""
    url = url or "memory://"
    if check_url(url) == "memory":
        from krandog_asgi.pubsub.memory import MemoryBroker

        return MemoryBroker(queue_size=queue_size, presence_ttl=presence_ttl, heartbeat=heartbeat)
    from krandog_asgi.pubsub.redis_backend import RedisBroker

    return RedisBroker(url, queue_size=queue_size, presence_ttl=presence_ttl, heartbeat=heartbeat)


def set_broker(broker: Broker | None) -> None:
    """Make ``broker`` the process default (the server does this for the one it starts)."""
    global _default
    _default = broker


def broker_from_scope(scope: Mapping[str, Any]) -> Broker:
    """The broker an ASGI scope carries: the server's extension, else ``state[SCOPE_KEY]``."""
    found = getattr((scope.get("extensions") or {}).get(EXTENSION), "broker", None)
    if found is None:
        found = (scope.get("state") or {}).get(SCOPE_KEY)
    if found is None:
        raise BrokerError(
            f"No broker in this scope: not served by krandog-asgi (scope['extensions']"
            f"[{EXTENSION!r}]), and none in scope['state'][{SCOPE_KEY!r}]"
        )
    broker: Broker = found
    return broker


def get_broker() -> Broker:
    """The process default broker; ``BrokerError`` outside a server that made one."""
    if _default is None:
        raise BrokerError("no broker: run under krandog-asgi, or call set_broker() first")
    return _default


def publish(
    channel: str, message: Payload
) -> asyncio.Future[None] | concurrent.futures.Future[None]:
    """Publish through the default broker, from sync or async code (or a handler thread)."""
    return get_broker().publish_nowait(channel, message)
