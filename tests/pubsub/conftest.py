"""Fixtures of the pub/sub tests: one real Redis for the session (flushed before each test that
uses it, restarted if a test left it down), and ``started()``, a broker with short presence
timings so that expiry tests take about a second."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from krandog_asgi.pubsub import Broker, create_broker
from tests.pubsub.redis_server import REDIS_SERVER, RedisServer, available

TTL = 2.0
HEARTBEAT = 0.3


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    if not available():
        pytest.skip(f"{REDIS_SERVER} is not installed (apt-get install redis-server)")
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def redis(redis_session: RedisServer) -> RedisServer:
    if not redis_session.ping():
        redis_session.start()
    redis_session.flush()
    return redis_session


async def started(url: str, *, queue_size: int = 1024) -> Broker:
    """A running broker on ``url``, connected (for Redis) before it is returned."""
    broker = create_broker(url, queue_size=queue_size, presence_ttl=TTL, heartbeat=HEARTBEAT)
    await broker.start()
    wait = getattr(broker, "wait_connected", None)
    if wait is not None:
        assert await wait(5.0), f"no connection to {url}"
    return broker
