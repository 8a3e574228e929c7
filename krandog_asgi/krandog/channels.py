"""The pub/sub broker as a krandog handler reaches it: from the ASGI scope, never by import.

krandog-asgi puts its per-worker broker in ``scope["state"]["krandog_asgi.broker"]``; under
another ASGI server an app may put one there in its lifespan startup. This layer only needs the
broker's shape (``BrokerLike``), so it stays ASGI-only and imports nothing of ``pubsub``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from krandog_asgi.krandog.asgi import Scope

__all__ = ["SCOPE_KEY", "BrokerLike", "ListenerLike", "NoBroker", "broker_of"]

SCOPE_KEY = "krandog_asgi.broker"


class ListenerLike(Protocol):
    def close(self) -> None: ...


class BrokerLike(Protocol):
    """What ``req.ws.subscribe`` and ``req.publish`` call (``krandog_asgi.pubsub.Broker``)."""

    def listen(self, channel: str, callback: Callable[[Any], Any]) -> ListenerLike: ...

    def publish_nowait(self, channel: str, message: str | bytes) -> Any: ...

    def presence(self, room: str) -> Any: ...


class NoBroker(RuntimeError):
    """The scope carries no broker: not served by krandog-asgi, and none set up by the app."""


def broker_of(scope: Scope) -> BrokerLike:
    state = scope.get("state")
    broker = state.get(SCOPE_KEY) if state is not None else None
    if broker is None:
        raise NoBroker(
            f"No pub/sub broker in scope['state'][{SCOPE_KEY!r}]: serve the app with "
            "krandog-asgi (it starts one per worker, see --broadcast-url), or put a "
            "krandog_asgi.pubsub broker there in your lifespan startup"
        )
    broker_like: BrokerLike = broker
    return broker_like
