"""The Redis backend against a real redis-server: delivery between brokers (as between
processes), ordering, exactly-once, failures reported to the publisher, reconnection after a
restart, and presence (unique names, expiry without goodbye, rebuild after an empty restart)."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Awaitable, Callable

import pytest

from krandog_asgi.pubsub import PublishError, Subscription, create_broker
from krandog_asgi.pubsub.presence import Presence
from krandog_asgi.pubsub.redis_backend import SETTLE
from tests.pubsub.conftest import HEARTBEAT, TTL, started
from tests.pubsub.redis_server import RedisServer
from tests.support.certs import Certificates
from tests.support.fakes import run


async def drain(sub: Subscription, count: int, timeout: float = 5.0) -> list[object]:
    async def take() -> list[object]:
        return [await sub.__anext__() for _ in range(count)]

    return await asyncio.wait_for(take(), timeout)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return await check()


async def settle() -> None:
    """Give Redis a moment to deliver whatever is in flight (for 'nothing more arrives')."""
    await asyncio.sleep(0.2)


def test_messages_cross_brokers_exactly_once_and_in_order(redis: RedisServer) -> None:
    async def main() -> None:
        a, b = await started(redis.url), await started(redis.url)
        async with a.subscribe("room") as on_a, b.subscribe("room") as on_b:
            for i in range(300):
                a.publish_nowait("room", f"a{i}")
            await b.publish("room", b"from b")
            expected = [f"a{i}" for i in range(300)]
            for sub in (on_a, on_b):
                got = await drain(sub, 301)
                assert [m for m in got if isinstance(m, str)] == expected
                assert got.count(b"from b") == 1
            await settle()
            assert on_a.qsize() == on_b.qsize() == 0  # no echo, no second copy
        await a.close()
        await b.close()

    run(main())


def test_two_publishers_each_keep_their_order(redis: RedisServer) -> None:
    async def main() -> None:
        a, b, c = [await started(redis.url) for _ in range(3)]
        async with c.subscribe("room") as sub:
            for i in range(100):
                a.publish_nowait("room", f"a{i}")
                b.publish_nowait("room", f"b{i}")
            got = await drain(sub, 200)
        assert [m for m in got if str(m).startswith("a")] == [f"a{i}" for i in range(100)]
        assert [m for m in got if str(m).startswith("b")] == [f"b{i}" for i in range(100)]
        for broker in (a, b, c):
            await broker.close()

    run(main())


def test_a_broker_sees_its_own_publish_right_after_subscribing(redis: RedisServer) -> None:
    async def main() -> None:
        broker = await started(redis.url)
        sub = broker.subscribe("fresh")  # no await: the SUBSCRIBE is not confirmed yet
        broker.publish_nowait("fresh", "first")
        assert await drain(sub, 1) == ["first"]
        await broker.close()

    run(main())


def test_unsubscribed_channels_stop_arriving(redis: RedisServer) -> None:
    async def main() -> None:
        a, b = await started(redis.url), await started(redis.url)
        async with b.subscribe("room") as sub:
            await a.publish("room", "one")
            assert await drain(sub, 1) == ["one"]
        late = b.subscribe("other")
        await late.ready()
        await a.publish("room", "two")
        await settle()
        assert b.subscriber_count("room") == 0
        assert late.qsize() == 0
        await a.close()
        await b.close()

    run(main())


def test_publish_while_redis_is_down_raises_publish_error(redis: RedisServer) -> None:
    async def main() -> None:
        broker = await started(redis.url)
        redis.stop()
        deadline = time.monotonic() + 5
        while broker.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert not broker.connected
        with pytest.raises(PublishError, match="unreachable"):
            broker.publish_nowait("room", "lost")
        with pytest.raises(PublishError):
            await broker.publish("room", "lost")
        await broker.close()

    run(main())


def test_a_publish_in_flight_when_redis_dies_fails_its_future(redis: RedisServer) -> None:
    async def main() -> None:
        broker = await started(redis.url)
        # Stop Redis, then publish before the reader noticed: the write itself fails.
        redis.stop()
        futures = []
        while broker.connected:
            try:
                futures.append(broker.publish_nowait("room", "x"))
            except PublishError:
                break
            await asyncio.sleep(0.001)
        assert futures  # the loop had not seen the close yet: these were queued
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert all(isinstance(r, PublishError) for r in results), results
        await broker.close()

    run(main())


def test_after_a_restart_brokers_reconnect_and_resubscribe(redis: RedisServer) -> None:
    async def main() -> None:
        a, b = await started(redis.url), await started(redis.url)
        sub = b.subscribe("room")
        await sub.ready()
        redis.restart(down_for=0.5)
        started_at = time.monotonic()

        async def flows() -> bool:
            try:
                await a.publish("room", "back")
            except PublishError:
                return False
            await asyncio.sleep(0.05)
            return sub.qsize() > 0

        assert await eventually(flows, 30)
        assert time.monotonic() - started_at < 30
        got = {sub.get_nowait() for _ in range(sub.qsize())}
        assert got == {"back"}
        await a.close()
        await b.close()

    run(main(), timeout=60)


def test_presence_names_are_unique_across_brokers(redis: RedisServer) -> None:
    async def main() -> None:
        a, b = await started(redis.url), await started(redis.url)
        room_a, room_b = a.presence("chat"), b.presence("chat")
        assert await room_a.join("alice")
        assert not await room_b.join("alice")
        assert not await room_a.join("alice")
        assert await room_b.join("bob")
        assert await room_a.members() == await room_b.members() == ["alice", "bob"]
        await room_a.leave("alice")
        assert await room_b.members() == ["bob"]
        assert await room_b.join("alice")
        await a.close()
        await b.close()

    run(main())


def test_entries_of_a_broker_that_died_expire_and_are_reaped_once(redis: RedisServer) -> None:
    async def main() -> None:
        dead, a, b = [await started(redis.url) for _ in range(3)]
        await dead.presence("chat").join("ghost")
        reaped: list[list[str]] = []
        for broker in (a, b):
            room = broker.presence("chat")
            room.on_expire(reaped.append)
            assert await room.join(f"live-{id(broker)}")
        # Die without goodbye: stop its tasks, release nothing.
        assert dead._heartbeat_task is not None
        dead._heartbeat_task.cancel()
        assert "ghost" in await a.presence("chat").members()  # until its TTL runs out

        async def gone() -> bool:
            return "ghost" not in await a.presence("chat").members()

        assert await eventually(gone, TTL + 5)

        async def announced() -> bool:
            return bool(reaped)

        assert await eventually(announced, SETTLE + TTL + 5)
        await asyncio.sleep(HEARTBEAT * 3)
        assert reaped == [["ghost"]]  # one broker reaped it, once
        assert len(await a.presence("chat").members()) == 2  # the living were refreshed
        for broker in (a, b):
            await broker.close()
        dead._closed = True  # it is dead: no goodbye
        await dead._client.aclose()
        for task in dead._tasks:  # type: ignore[attr-defined]
            task.cancel()

    run(main(), timeout=60)


def test_close_ends_the_heartbeat_even_when_its_cancellation_is_lost(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A heartbeat step that swallows close()'s cancel (as asyncio.wait_for can on 3.11, or
    a client library) must not leave close() waiting for the heartbeat task forever (this
    hung the died-broker test above once in CI)."""
    steps = 0

    async def swallowing_heartbeat(self: Presence, reap: bool = True) -> None:
        nonlocal steps
        steps += 1
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            if steps > 1:
                raise  # (only the first one is lost: a broken close fails, it does not hang)
            return  # the cancel is lost here

    async def main() -> None:
        broker = await started(redis.url)
        assert await broker.presence("chat").join("alice")
        monkeypatch.setattr(Presence, "_heartbeat", swallowing_heartbeat)
        broker._kick_heartbeat()
        while not steps:
            await asyncio.sleep(0.01)
        await asyncio.wait_for(broker.close(), 5)
        assert steps == 1

    run(main())


def test_presence_is_rebuilt_after_redis_restarts_empty(redis: RedisServer) -> None:
    async def main() -> None:
        a, b = await started(redis.url), await started(redis.url)
        assert await a.presence("chat").join("alice")
        assert await b.presence("chat").join("bob")
        redis.restart(down_for=0.3)

        async def rebuilt() -> bool:
            try:
                return await a.presence("chat").members() == ["alice", "bob"]
            except Exception:
                return False

        assert await eventually(rebuilt, 30)
        newcomer = await started(redis.url)
        assert not await newcomer.presence("chat").join("alice")  # still unique
        assert await newcomer.presence("chat").join("carol")
        for broker in (a, b, newcomer):
            await broker.close()

    run(main(), timeout=90)


def test_close_says_goodbye_so_entries_go_at_once(redis: RedisServer) -> None:
    async def main() -> None:
        a, b = await started(redis.url), await started(redis.url)
        assert await a.presence("chat").join("alice")
        await a.close()
        assert await b.presence("chat").members() == []
        await b.close()

    run(main())


def test_rediss_carries_messages_and_presence_over_tls(certs: Certificates) -> None:
    server = RedisServer(tls=certs)
    try:
        server.start()
    except RuntimeError as exc:  # a redis-server built without TLS exits at once
        pytest.skip(f"this redis-server cannot serve TLS: {exc}")

    async def main() -> None:
        a, b = await started(server.url), await started(server.url)
        async with b.subscribe("secure") as sub:
            await a.publish("secure", "over tls")
            assert await drain(sub, 1) == ["over tls"]
        assert await a.presence("chat").join("tls-alice")
        assert not await b.presence("chat").join("tls-alice")
        await a.close()
        await b.close()

    try:
        run(main())
    finally:
        server.cleanup()


def test_rediss_url_and_password_are_accepted_and_hidden_in_logs() -> None:
    from krandog_asgi.pubsub.redis_backend import shown_url

    assert shown_url("redis://user:secret@h:6380/2") == "redis://user:***@h:6380/2"
    assert shown_url("rediss://h/0") == "rediss://h/0"


def test_reconnect_attempts_back_off() -> None:
    """Against a port where every connection is dropped at once, attempts slow down (100 ms
    doubling, with jitter) instead of spinning."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    attempts: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def refuse() -> None:
            while True:
                conn, _ = await loop.sock_accept(listener)
                attempts.append(time.monotonic())
                conn.close()

        refuser = asyncio.ensure_future(refuse())
        broker = create_broker(f"redis://127.0.0.1:{port}/0", presence_ttl=TTL, heartbeat=HEARTBEAT)
        await broker.start()
        await asyncio.sleep(2.0)
        assert not broker.connected
        with pytest.raises(PublishError):
            broker.publish_nowait("room", "x")
        await broker.close()
        refuser.cancel()

    try:
        run(main())
    finally:
        listener.close()
    reconnects = list(attempts)
    assert 3 <= len(reconnects) <= 12, reconnects  # ~0.1, 0.2, 0.4, 0.8 s... not a spin
    gaps = [b - a for a, b in itertools.pairwise(reconnects)]
    assert max(gaps) > 3 * min(gaps)


def test_a_slow_redis_subscriber_keeps_only_its_newest_messages(redis: RedisServer) -> None:
    async def main() -> None:
        a, b = await started(redis.url), await started(redis.url)
        async with b.subscribe("feed", maxsize=10) as sub:
            for i in range(200):
                a.publish_nowait("feed", str(i))
            await a.publish("feed", "last")
            deadline = time.monotonic() + 5
            while sub.dropped + sub.qsize() < 201 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert sub.qsize() == 10
            assert sub.dropped == 191
            assert [sub.get_nowait() for _ in range(10)][-1] == "last"
        await a.close()
        await b.close()

    run(main())


def test_a_holder_that_lost_its_name_to_another_stops_refreshing_it(redis: RedisServer) -> None:
    async def main() -> None:
        a = create_broker(redis.url, presence_ttl=60, heartbeat=30)  # beats when kicked
        await a.start()
        assert await a.wait_connected(5)  # type: ignore[attr-defined]
        assert await a.presence("chat").join("x")
        redis.flush()  # the entry (and the epoch) vanish, as after an empty restart
        b = await started(redis.url)  # a fresh broker knows no epoch: no settling window
        assert await b.presence("chat").join("x")
        a._kick_heartbeat()

        async def dropped() -> bool:
            return a.presence("chat").local == []

        assert await eventually(dropped, HEARTBEAT * 10)
        assert b.presence("chat").local == ["x"]
        assert await a.presence("chat").members() == ["x"]
        await a.close()
        assert await b.presence("chat").members() == ["x"]  # a's goodbye does not touch b's
        await b.close()

    run(main())


def test_a_broker_just_connected_does_not_reap_entries_whose_holders_may_be_reconnecting(
    redis: RedisServer,
) -> None:
    """After an outage longer than the TTL every entry looks expired; the first broker back
    must not announce the leave of users whose process has not reconnected yet."""

    async def main() -> None:
        holder = create_broker(redis.url, presence_ttl=60, heartbeat=30)  # refreshes when kicked
        await holder.start()
        assert await holder.wait_connected(5)  # type: ignore[attr-defined]
        assert await holder.presence("chat").join("alice")
        redis.command("ZADD", "krandog:presence:chat", "0", "alice")  # expired long ago
        reaped: list[list[str]] = []
        fresh = await started(redis.url)
        fresh.presence("chat").on_expire(reaped.append)
        await asyncio.sleep(HEARTBEAT * 4)
        assert reaped == []  # within SETTLE of its connection: no reaping
        holder._kick_heartbeat()  # the holder is back and refreshes

        async def back() -> bool:
            return await fresh.presence("chat").members() == ["alice"]

        assert await eventually(back, 5)
        await asyncio.sleep(SETTLE)
        assert reaped == []  # refreshed in time: never announced
        await holder.close()
        await fresh.close()

    run(main(), timeout=60)
