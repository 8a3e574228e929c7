"""Pub/sub broadcast across workers and machines, with presence (who is in a room).

``create_broker(url)`` picks a backend by URL: ``memory://`` (one process, the default) or
``redis://host:port/db`` / ``rediss://`` (redis-py, the ``[redis]`` extra). The server makes one
per worker from ``--broadcast-url`` and offers it in every HTTP and WebSocket scope::

    broker = broker_from_scope(scope)  # scope["extensions"]["krandog_asgi.pubsub"].broker
    await broker.publish("room", "hello")            # PublishError if Redis is unreachable
    async for message in broker.subscribe("room"):   # bounded queue, drop-oldest by default
        ...
    async with broker.attach("room", send):          # an ASGI WebSocket gets every message
        ...

krandog handlers use ``req.ws.subscribe("room")`` and ``req.ws.publish("room", data)``.
This layer imports nothing of the server or the HTTP stack. See docs/pubsub.md.
"""

from __future__ import annotations

from krandog_asgi.pubsub.broker import Broker
from krandog_asgi.pubsub.errors import (
    BrokerError,
    PresenceError,
    PublishError,
    SubscriberOverflow,
)
from krandog_asgi.pubsub.factory import (
    EXTENSION,
    SCOPE_KEY,
    ScopeExtension,
    broker_from_scope,
    create_broker,
    get_broker,
    is_memory_url,
    publish,
    set_broker,
)
from krandog_asgi.pubsub.presence import Presence
from krandog_asgi.pubsub.subscription import Attachment, Listener, Subscription

__all__ = [
    "EXTENSION",
    "SCOPE_KEY",
    "Attachment",
    "Broker",
    "BrokerError",
    "Listener",
    "Presence",
    "PresenceError",
    "PublishError",
    "ScopeExtension",
    "SubscriberOverflow",
    "Subscription",
    "broker_from_scope",
    "create_broker",
    "get_broker",
    "is_memory_url",
    "publish",
    "set_broker",
]
