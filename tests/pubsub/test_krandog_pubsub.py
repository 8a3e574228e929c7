"""Pub/sub from krandog handlers (``req.ws.subscribe``, ``req.publish``) and plain ASGI apps
(``scope["extensions"]["krandog_asgi.pubsub"]``, ``broker.attach``): in memory through the ASGI
interface, then on real servers over real sockets, across workers with Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from websockets.asyncio.client import connect

from krandog_asgi import krandog_app
from krandog_asgi.krandog.channels import NoBroker
from krandog_asgi.pubsub import EXTENSION, SCOPE_KEY, ScopeExtension, broker_from_scope
from tests.pubsub.conftest import started
from tests.pubsub.redis_server import RedisServer
from tests.support.asgi import AsgiPeer, websocket_scope
from tests.support.fakes import run
from tests.support.servers import RunningServer

# -- in memory: the krandog layer finds the broker in the scope ---------------------------------


def test_the_broker_is_found_in_the_server_extension_or_in_state() -> None:
    seen: list[object] = []

    def handler(req: object) -> None:
        seen.append(req.broker)  # type: ignore[attr-defined]

    async def main() -> None:
        broker = await started("memory://")
        app = krandog_app(handler)
        for scope in (
            websocket_scope("/", extensions={EXTENSION: ScopeExtension(broker)}),
            websocket_scope("/", state={SCOPE_KEY: broker}),
        ):
            peer = AsgiPeer(
                {"type": "websocket.connect"},
                {"type": "websocket.receive", "text": "x"},
                {"type": "websocket.disconnect", "code": 1000},
            )
            await app(scope, peer.receive, peer.send)
            assert broker_from_scope(scope) is broker
            assert json.dumps(scope.get("extensions")) in ('{"krandog_asgi.pubsub": {}}', "null")
        await broker.close()

    run(main())
    assert seen == [seen[0], seen[0]]
    assert seen[0] is not None


def test_ws_subscribe_sends_published_messages_and_close_unsubscribes() -> None:
    def handler(req: object) -> None:
        ws = req.ws  # type: ignore[attr-defined]
        if req.data == "join":  # type: ignore[attr-defined]
            ws.subscribe("room")
            ws.subscribe("room")  # twice is once
        else:
            req.publish("room", req.data)  # type: ignore[attr-defined]

    async def main() -> None:
        broker = await started("memory://")
        app = krandog_app(handler)
        scope = websocket_scope("/", state={SCOPE_KEY: broker})
        peer = AsgiPeer({"type": "websocket.connect"})
        task = asyncio.ensure_future(app(scope, peer.receive, peer.send))
        peer.push({"type": "websocket.receive", "text": "join"})
        peer.push({"type": "websocket.receive", "text": "hello"})
        await asyncio.sleep(0.05)
        assert broker.subscriber_count("room") == 1
        broker.publish_nowait("room", b"from elsewhere")
        await asyncio.sleep(0.05)
        sent = [m.get("text", m.get("bytes")) for m in peer.sent if m["type"] == "websocket.send"]
        assert sent == ["hello", b"from elsewhere"]
        peer.push({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(task, 2)
        assert broker.subscriber_count("room") == 0  # detached on close
        await broker.close()

    run(main())


def test_a_threaded_sync_handler_publishes_in_order() -> None:
    def handler(req: object) -> None:
        req.publish("room", req.data)  # type: ignore[attr-defined]

    async def main() -> None:
        broker = await started("memory://")
        sub = broker.subscribe("room")
        app = krandog_app(handler, threads=True)
        texts = [f"t{i}" for i in range(20)]
        peer = AsgiPeer(
            {"type": "websocket.connect"},
            *({"type": "websocket.receive", "text": t} for t in texts),
            {"type": "websocket.disconnect", "code": 1000},
        )
        scope = websocket_scope("/", state={SCOPE_KEY: broker})
        await app(scope, peer.receive, peer.send)
        got = [await asyncio.wait_for(sub.__anext__(), 2) for _ in texts]
        assert got == texts
        await broker.close()

    run(main())


def test_a_threaded_handler_subscribes_and_publishes_through_redis(redis: RedisServer) -> None:
    def handler(req: object) -> None:
        if req.data == "join":  # type: ignore[attr-defined]
            req.ws.subscribe("room")  # type: ignore[attr-defined]
        else:
            req.publish("room", req.data).result(5)  # type: ignore[attr-defined]

    async def main() -> None:
        broker = await started(redis.url)
        app = krandog_app(handler, threads=True)
        peer = AsgiPeer({"type": "websocket.connect"})
        scope = websocket_scope("/", extensions={EXTENSION: ScopeExtension(broker)})
        task = asyncio.ensure_future(app(scope, peer.receive, peer.send))
        peer.push({"type": "websocket.receive", "text": "join"})
        deadline = asyncio.get_running_loop().time() + 5
        while broker.subscriber_count("room") == 0:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        peer.push(*({"type": "websocket.receive", "text": f"m{i}"} for i in range(5)))
        while len([m for m in peer.sent if m["type"] == "websocket.send"]) < 5:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        texts = [m["text"] for m in peer.sent if m["type"] == "websocket.send"]
        assert texts == [f"m{i}" for i in range(5)]
        peer.push({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(task, 5)
        await asyncio.sleep(0.05)
        assert broker.subscriber_count("room") == 0
        await broker.close()

    run(main())


def test_without_a_broker_in_the_scope_subscribe_says_what_to_do() -> None:
    errors: list[BaseException] = []

    def handler(req: object) -> None:
        try:
            req.ws.subscribe("room")  # type: ignore[attr-defined]
        except NoBroker as exc:
            errors.append(exc)

    async def main() -> None:
        app = krandog_app(handler)
        peer = AsgiPeer(
            {"type": "websocket.connect"},
            {"type": "websocket.receive", "text": "x"},
            {"type": "websocket.disconnect", "code": 1000},
        )
        await app(websocket_scope("/"), peer.receive, peer.send)

    run(main())
    assert len(errors) == 1
    assert "krandog_asgi.broker" in str(errors[0])
    assert "lifespan" in str(errors[0])


# -- real servers -------------------------------------------------------------------------------


async def recv_until(ws: object, want: Callable[[object], bool], timeout: float = 5.0) -> object:
    async def loop() -> object:
        while True:
            message = await ws.recv()  # type: ignore[attr-defined]
            if want(message):
                return message

    return await asyncio.wait_for(loop(), timeout)


def test_krandog_sync_handler_subscribes_and_publishes_on_one_process(
    serve: Callable[..., RunningServer],
) -> None:
    server = serve("pubsub_apps:handler")

    async def main() -> None:
        async with connect(server.ws_url + "/") as a, connect(server.ws_url + "/") as b:
            for ws in (a, b):
                await ws.send("sub lobby")
                assert await ws.recv() == "subscribed lobby"
            await a.send("pub lobby hi there")
            for ws in (a, b):
                assert await ws.recv() == "hi there"
            async with httpx.AsyncClient() as http:
                response = await http.post(server.url + "/publish/lobby", content="from http")
            assert response.status_code == 202
            for ws in (a, b):
                assert await ws.recv() == "from http"
            await b.send("unsub lobby")
            assert await b.recv() == "unsubscribed lobby"
            await a.send("pub lobby only a")
            assert await a.recv() == "only a"
            await b.send("pub other ping")  # b gets nothing more from lobby
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(b.recv(), 0.3)

    run(main())


def test_publish_reaches_clients_of_every_worker_with_redis(
    serve: Callable[..., RunningServer], redis: RedisServer
) -> None:
    server = serve("pubsub_apps:handler", "--workers", "2", "--broadcast-url", redis.url)
    assert server.wait_for_log(r"Connected to Redis", 10)

    async def main() -> None:
        clients = [await connect(server.ws_url + "/") for _ in range(8)]
        for ws in clients:
            await ws.send("sub news")
            assert await ws.recv() == "subscribed news"
        async with httpx.AsyncClient() as http:
            for i in range(3):
                response = await http.post(server.url + "/publish/news", content=f"n{i}")
                assert response.status_code == 202
        for ws in clients:
            assert [await asyncio.wait_for(ws.recv(), 5) for _ in range(3)] == ["n0", "n1", "n2"]
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.2)  # exactly once
            await ws.close()

    run(main(), timeout=60)
    pids = {line for line in server.lines if "Started server process" in line}
    assert len(pids) == 2


def test_http_publish_while_redis_is_down_answers_503(
    serve: Callable[..., RunningServer], redis: RedisServer
) -> None:
    server = serve("pubsub_apps:handler", "--broadcast-url", redis.url)
    assert server.wait_for_log(r"Connected to Redis", 10)
    redis.stop()
    assert server.wait_for_log(r"Lost Redis", 10)
    response = httpx.post(server.url + "/publish/news", content="lost")
    assert response.status_code == 503
    assert "unreachable" in response.text
    redis.start()
    assert server.wait_for_log(r"Reconnected to Redis", 15)
    assert httpx.post(server.url + "/publish/news", content="back").status_code == 202


def test_asgi_app_gets_the_broker_from_its_scope_and_attaches_websockets(
    serve: Callable[..., RunningServer],
) -> None:
    server = serve("pubsub_apps:asgi_app")
    assert httpx.get(server.url + "/broker").text == "memory MemoryBroker"

    async def main() -> None:
        async with connect(server.ws_url + "/room") as a, connect(server.ws_url + "/room") as b:
            for ws in (a, b):
                assert await ws.recv() == "attached room"
            await a.send("to everyone")
            await b.send(b"\x01\x02")
            for ws in (a, b):
                got = [await ws.recv(), await ws.recv()]
                assert sorted(got, key=repr) == sorted(["to everyone", b"\x01\x02"], key=repr)

    run(main())


def test_bad_broadcast_url_fails_startup_with_one_line(serve: Callable[..., RunningServer]) -> None:
    with pytest.raises(RuntimeError, match="Unsupported broadcast URL"):
        serve("pubsub_apps:handler", "--broadcast-url", "kafka://x")


def test_broadcast_url_is_read_from_the_environment(
    serve: Callable[..., RunningServer], redis: RedisServer
) -> None:
    server = serve("pubsub_apps:asgi_app", env={"KRANDOG_BROADCAST_URL": redis.url})
    assert httpx.get(server.url + "/broker").text == "redis RedisBroker"


def test_presence_heartbeat_must_be_below_the_ttl(serve: Callable[..., RunningServer]) -> None:
    with pytest.raises(RuntimeError, match="--presence-heartbeat"):
        serve("pubsub_apps:handler", "--presence-ttl", "2", "--presence-heartbeat", "3")
