"""The pub/sub broker as a krandog handler reaches it: from the ASGI scope, never by import.

krandog-asgi offers its per-worker broker as ``scope["extensions"]["krandog_asgi.pubsub"]
.broker`` (an empty dict with an attribute, so scopes stay JSON-serialisable); under another
ASGI server an app may put one in ``scope["state"]["krandog_asgi.broker"]`` from its lifespan
startup. This layer only needs the
broker's shape (``BrokerLike``), so it stays ASGI-only and imports nothing of ``pubsub``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from krandog_asgi.krandog.asgi import Scope

__all__ = ["EXTENSION", "SCOPE_KEY", "BrokerLike", "ListenerLike", "NoBroker", "broker_of"]

EXTENSION = "krandog_asgi.pubsub"
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
    broker = getattr((scope.get("extensions") or {}).get(EXTENSION), "broker", None)
    if broker is None:
        broker = (scope.get("state") or {}).get(SCOPE_KEY)
    if broker is None:
        raise NoBroker(
            f"No pub/sub broker in this scope: serve the app with krandog-asgi (it starts one "
            f"per worker, see --broadcast-url), or put a krandog_asgi.pubsub broker in "
            f"scope['state'][{SCOPE_KEY!r}] from your lifespan startup"
        )
    broker_like: BrokerLike = broker
    return broker_like
