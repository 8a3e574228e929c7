"""The worker's pub/sub broker: made from ``--broadcast-url`` at startup, handed to apps as
the scope extension ``scope["extensions"]["krandog_asgi.pubsub"].broker`` of every HTTP and
WebSocket scope (``krandog_asgi.pubsub.get_broker()`` elsewhere, e.g. in lifespan), closed
last. Not in ``scope["state"]``: that namespace is the app's own."""

from __future__ import annotations

import logging
from typing import Any

from krandog_asgi.config import Config
from krandog_asgi.pubsub import (
    EXTENSION,
    Broker,
    ScopeExtension,
    create_broker,
    is_memory_url,
    set_broker,
)

__all__ = ["start_broker", "stop_broker", "warn_per_process_rooms"]

logger = logging.getLogger("krandog_asgi.error")


async def start_broker(config: Config, extensions: dict[str, Any]) -> Broker:
    """Start the broker and offer it in the scope ``extensions``. A Redis that is down now is
    not fatal: the broker keeps reconnecting and publishes raise ``PublishError`` meanwhile."""
    broker = create_broker(
        config.broadcast_url or None,
        queue_size=config.broadcast_queue,
        presence_ttl=config.presence_ttl,
        heartbeat=config.presence_heartbeat,
    )
    await broker.start()
    extensions[EXTENSION] = ScopeExtension(broker)
    set_broker(broker)
    return broker


async def stop_broker(broker: Broker) -> None:
    """After the connections and the app's shutdown: presence goodbyes, then disconnect."""
    try:
        await broker.close()
    finally:
        set_broker(None)


def warn_per_process_rooms(config: Config) -> None:
    if config.workers > 1 and is_memory_url(config.broadcast_url):
        logger.warning(
            "--workers %d with the memory:// broadcast backend: pub/sub channels and presence "
            "rooms are per worker process (clients of different workers do not see each "
            "other). Use --broadcast-url redis://host:port/0 to share them.",
            config.workers,
        )
