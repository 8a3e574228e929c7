"""Falcon's ASGI app over a real socket: lifespan middleware, media bodies, streaming,
request body streaming and WebSockets."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from tests.frameworks.conftest import run
from tests.support.servers import RunningServer, module_server


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with module_server("falcon_app:app") as srv:
        yield srv


def test_falcon_lifespan_and_query(server: RunningServer) -> None:
    assert httpx.get(server.url + "/?q=z").json() == {
        "greeting": "hello from process_startup",
        "query": "z",
    }


def test_falcon_media_and_errors(server: RunningServer) -> None:
    r = httpx.post(server.url + "/items", json={"name": "lamp"})
    assert r.status_code == 201
    assert r.json() == {"created": "lamp"}
    r = httpx.post(server.url + "/items", json=[1])
    assert r.status_code == 400
    assert r.json()["title"] == "name is required"
    assert httpx.get(server.url + "/items/3").json() == {"item_id": 3}
    assert httpx.get(server.url + "/items/x").status_code == 404
    assert httpx.delete(server.url + "/items").status_code == 405


def test_falcon_stream(server: RunningServer) -> None:
    with httpx.stream("GET", server.url + "/stream") as r:
        assert b"".join(r.iter_bytes()) == b"falcon0;falcon1;falcon2;falcon3;"


def test_falcon_request_stream(server: RunningServer) -> None:
    def gen() -> Iterator[bytes]:
        for _ in range(40):
            yield b"f" * 50_000

    assert httpx.post(server.url + "/upload", content=gen()).json() == {"received": 2_000_000}


def test_falcon_websocket_media_echo(server: RunningServer) -> None:
    async def scenario() -> None:
        async with connect(server.ws_url + "/ws", subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            for message in ({"a": 1}, ["ü", None], "x" * 100_000):
                await ws.send(json.dumps(message))
                assert json.loads(await ws.recv()) == {"falcon": message}

    run(scenario())


def test_falcon_websocket_refused_before_accept(server: RunningServer) -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as info:
            async with connect(server.ws_url + "/ws", additional_headers={"x-refuse": "1"}):
                pass
        assert info.value.response.status_code == 403

    run(scenario())


def test_falcon_unoffered_subprotocol_closes_without_answer(server: RunningServer) -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidMessage) as info:
            async with connect(
                server.ws_url + "/ws",
                subprotocols=["chat"],
                additional_headers={"x-subprotocol": "xmpp"},
            ):
                pass
        assert isinstance(info.value.__cause__, EOFError)

    run(scenario())
    assert server.wait_for_log("'xmpp' was not offered by the client")
    assert httpx.get(server.url + "/").status_code == 200
