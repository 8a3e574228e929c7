"""The memory backend and the backend-independent broker, in one process, no sockets."""

from __future__ import annotations

import asyncio

import pytest

from krandog_asgi.pubsub import (
    BrokerError,
    PublishError,
    SubscriberOverflow,
    create_broker,
    get_broker,
    publish,
    set_broker,
)
from tests.pubsub.conftest import started
from tests.support.fakes import run


def test_publish_reaches_every_subscriber_once_in_order() -> None:
    async def main() -> None:
        broker = await started("memory://")
        a, b = broker.subscribe("room"), broker.subscribe("room")
        other = broker.subscribe("elsewhere")
        for i in range(5):
            await broker.publish("room", f"m{i}")
        await broker.publish("room", b"\x00bin")
        for sub in (a, b):
            got = [await sub.__anext__() for _ in range(6)]
            assert got == ["m0", "m1", "m2", "m3", "m4", b"\x00bin"]
            assert sub.qsize() == 0
        assert other.qsize() == 0
        await broker.close()

    run(main())


def test_drop_oldest_overflow_keeps_the_newest_and_counts_the_dropped() -> None:
    async def main() -> None:
        broker = await started("memory://")
        sub = broker.subscribe("feed", maxsize=3)
        for i in range(10):
            broker.publish_nowait("feed", str(i))
        assert sub.qsize() == 3
        assert sub.dropped == 7
        assert [sub.get_nowait() for _ in range(3)] == ["7", "8", "9"]
        await broker.close()

    run(main())


def test_close_overflow_ends_the_subscription_with_an_error() -> None:
    async def main() -> None:
        broker = await started("memory://")
        sub = broker.subscribe("feed", maxsize=2, overflow="close")
        for i in range(3):
            broker.publish_nowait("feed", str(i))
        assert sub.closed
        assert broker.subscriber_count("feed") == 0
        assert [await sub.__anext__(), await sub.__anext__()] == ["0", "1"]
        with pytest.raises(SubscriberOverflow):
            await sub.__anext__()
        await broker.close()

    run(main())


def test_async_for_ends_when_the_subscription_is_closed() -> None:
    async def main() -> None:
        broker = await started("memory://")
        sub = broker.subscribe("room")
        received: list[object] = []

        async def consume() -> None:
            received.extend([message async for message in sub])

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0)
        broker.publish_nowait("room", "one")
        await asyncio.sleep(0)
        sub.close()
        await asyncio.wait_for(task, 1)
        assert received == ["one"]
        assert broker.subscriber_count("room") == 0
        await broker.close()

    run(main())


def test_listener_is_called_in_the_publish_call_and_can_be_removed() -> None:
    async def main() -> None:
        broker = await started("memory://")
        got: list[object] = []
        listener = broker.listen("room", got.append)
        broker.publish_nowait("room", "now")
        assert got == ["now"]  # memory delivers inside the call
        listener.close()
        broker.publish_nowait("room", "later")
        assert got == ["now"]
        await broker.close()

    run(main())


def test_a_failing_listener_is_removed_and_others_still_get_the_message() -> None:
    async def main() -> None:
        broker = await started("memory://")
        got: list[object] = []

        def broken(message: object) -> None:
            raise RuntimeError("boom")

        broker.listen("room", broken)
        broker.listen("room", got.append)
        broker.publish_nowait("room", "x")
        broker.publish_nowait("room", "y")
        assert got == ["x", "y"]
        assert broker.subscriber_count("room") == 1
        await broker.close()

    run(main())


def test_attach_sends_each_message_to_an_asgi_websocket_and_detaches_on_a_failed_send() -> None:
    async def main() -> None:
        broker = await started("memory://")
        sent: list[dict[str, object]] = []
        gone = False

        async def send(message: dict[str, object]) -> None:
            if gone:
                raise OSError("connection closed")
            sent.append(message)

        attachment = broker.attach("room", send)
        await attachment.ready()
        await broker.publish("room", "hi")
        await broker.publish("room", b"raw")
        for _ in range(5):
            await asyncio.sleep(0)
        assert sent == [
            {"type": "websocket.send", "text": "hi"},
            {"type": "websocket.send", "bytes": b"raw"},
        ]
        gone = True
        await broker.publish("room", "after close")
        for _ in range(5):
            await asyncio.sleep(0)
        assert attachment.detached
        assert broker.subscriber_count("room") == 0
        await broker.close()

    run(main())


def test_publish_refuses_what_is_not_str_or_bytes_and_a_closed_broker() -> None:
    async def main() -> None:
        broker = await started("memory://")
        with pytest.raises(TypeError):
            broker.publish_nowait("room", {"not": "text"})  # type: ignore[arg-type]
        await broker.close()
        with pytest.raises(PublishError):
            await broker.publish("room", "x")

    run(main())


def test_memory_presence_names_are_unique_and_leave_frees_them() -> None:
    async def main() -> None:
        broker = await started("memory://")
        room = broker.presence("chat")
        assert await room.join("alice")
        assert not await room.join("alice")
        assert await room.join("bob")
        assert await room.members() == ["alice", "bob"]
        await room.leave("alice")
        assert await room.members() == ["bob"]
        assert await room.join("alice")
        await broker.close()

    run(main())


def test_default_broker_and_module_level_publish() -> None:
    async def main() -> None:
        set_broker(None)
        with pytest.raises(BrokerError):
            get_broker()
        broker = await started("memory://")
        set_broker(broker)
        try:
            sub = broker.subscribe("news")
            publish("news", "extra")
            assert sub.get_nowait() == "extra"
        finally:
            set_broker(None)
            await broker.close()

    run(main())


def test_unknown_url_scheme_is_a_clear_error() -> None:
    with pytest.raises(BrokerError, match="Unsupported broadcast URL"):
        create_broker("kafka://localhost")


def test_presence_ttl_must_exceed_the_heartbeat() -> None:
    with pytest.raises(ValueError, match="TTL"):
        create_broker("memory://", presence_ttl=1.0, heartbeat=2.0)
