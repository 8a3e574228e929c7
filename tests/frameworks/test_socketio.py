"""python-socketio's ASGIApp on our server, driven by python-socketio's own AsyncClient over
the polling transport (plain HTTP long-polling) and the WebSocket transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import socketio

from tests.frameworks.conftest import run
from tests.support.servers import RunningServer, module_server

TRANSPORTS = [["polling"], ["websocket"]]


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with module_server("socketio_app:app") as srv:
        yield srv


@asynccontextmanager
async def client(
    server: RunningServer, transports: list[str] | None, name: str
) -> AsyncIterator[tuple[socketio.AsyncClient, asyncio.Queue[tuple[str, Any]]]]:
    """A connected client and the queue of every event the server sent it."""
    sio = socketio.AsyncClient(reconnection=False)
    events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    @sio.on("*")
    async def any_event(event: str, data: Any) -> None:
        await events.put((event, data))

    await sio.connect(server.url, transports=transports, auth={"name": name}, wait_timeout=5)
    try:
        yield sio, events
    finally:
        await hang_up(sio)


async def hang_up(sio: socketio.AsyncClient) -> None:
    """Disconnect without waiting out the last long-poll GET: once the client's queue has been
    flushed the goodbye packets have reached the server, which is all a test needs; the client
    then waits for its pending GET, which engine.io's server only answers after a ping period."""
    if sio.transport() == "websocket":
        await asyncio.wait_for(sio.disconnect(), 5)
        return
    goodbye = asyncio.ensure_future(sio.disconnect())
    await asyncio.wait_for(sio.eio.queue.join(), 5)
    await asyncio.wait([goodbye], timeout=0.2)


@pytest.mark.parametrize("transports", TRANSPORTS, ids=lambda t: t[0])
def test_socketio_connect_welcome_and_ack(server: RunningServer, transports: list[str]) -> None:
    async def scenario() -> None:
        async with client(server, transports, "ack-" + transports[0]) as (sio, events):
            assert sio.transport() == transports[0]
            event, data = await asyncio.wait_for(events.get(), 5)
            assert (event, data) == (
                "welcome",
                {"name": "ack-" + transports[0], "transport": transports[0]},
            )
            payload = {"text": "héllo", "n": [1, 2, 3], "nested": {"ok": True}}
            assert await sio.call("echo", payload, timeout=5) == payload
            big = "x" * 200_000
            assert await sio.call("echo", big, timeout=5) == big
            blob = bytes(range(256)) * 10
            assert await sio.call("echo", blob, timeout=5) == blob

    run(scenario())


@pytest.mark.parametrize("transports", TRANSPORTS, ids=lambda t: t[0])
def test_socketio_broadcast_reaches_other_clients(
    server: RunningServer, transports: list[str]
) -> None:
    async def scenario() -> None:
        kind = transports[0]
        async with (
            client(server, transports, f"a-{kind}") as (a, a_events),
            client(server, ["websocket" if kind == "polling" else "polling"], f"b-{kind}") as (
                b,
                b_events,
            ),
        ):
            assert (await asyncio.wait_for(a_events.get(), 5))[0] == "welcome"
            assert (await asyncio.wait_for(b_events.get(), 5))[0] == "welcome"
            assert await a.call("shout", "hey all", timeout=5) == "sent"
            assert await asyncio.wait_for(b_events.get(), 5) == (
                "shouted",
                {"from": f"a-{kind}", "data": "hey all"},
            )
            # The sender is skipped.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(a_events.get(), 0.3)
            # Rooms: only members hear what is said there.
            assert await b.call("join", "r1", timeout=5) == "r1"
            await a.emit("say", {"room": "r1", "text": "to r1"})
            assert await asyncio.wait_for(b_events.get(), 5) == ("said", "to r1")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(a_events.get(), 0.3)

    run(scenario())


def test_socketio_upgrade_from_polling_to_websocket(server: RunningServer) -> None:
    async def scenario() -> None:
        async with client(server, None, "upgrader") as (sio, events):
            await asyncio.wait_for(events.get(), 5)
            for _ in range(100):
                if sio.transport() == "websocket":
                    break
                await asyncio.sleep(0.05)
            assert sio.transport() == "websocket"
            assert await sio.call("echo", "after upgrade", timeout=5) == "after upgrade"

    run(scenario())


def test_socketio_disconnect_seen_by_server(server: RunningServer) -> None:
    async def scenario() -> None:
        for kind in ("polling", "websocket"):
            async with client(server, [kind], f"leaver-{kind}") as (sio, _):
                pass
        async with client(server, ["websocket"], "observer") as (sio, _):
            for _ in range(100):
                seen = await sio.call("stats", timeout=5)
                if {"leaver-polling", "leaver-websocket"} <= set(seen["disconnect"]):
                    break
                await asyncio.sleep(0.05)
            assert {"leaver-polling", "leaver-websocket"} <= set(seen["disconnect"])

    run(scenario())


@pytest.mark.parametrize("transports", TRANSPORTS, ids=lambda t: t[0])
def test_socketio_refused_connection(server: RunningServer, transports: list[str]) -> None:
    async def scenario() -> None:
        sio = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(
                server.url, transports=transports, auth={"token": "bad"}, wait_timeout=5
            )
        await sio.disconnect()

    run(scenario())


def test_socketio_other_paths_go_to_the_fallback_app(server: RunningServer) -> None:
    assert httpx.get(server.url + "/elsewhere").text == "not socket.io"
    r = httpx.get(server.url + "/socket.io/", params={"EIO": "4", "transport": "polling"})
    assert r.status_code == 200
    assert r.text.startswith("0{")  # an engine.io OPEN packet with the session id
