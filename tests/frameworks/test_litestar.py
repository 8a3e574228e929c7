"""Litestar over a real socket: HTTP routes with typed parameters and bodies, streaming, and
WebSocket routes driven by the ``websockets`` client."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.frameworks.conftest import run
from tests.support.servers import RunningServer, module_server


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with module_server("litestar_app:app") as srv:
        yield srv


def test_litestar_startup_state(server: RunningServer) -> None:
    assert httpx.get(server.url + "/").json() == {"greeting": "hello from startup"}


def test_litestar_typed_path_and_query(server: RunningServer) -> None:
    assert httpx.get(server.url + "/items/5?q=x").json() == {"item_id": 5, "q": "x"}
    assert httpx.get(server.url + "/items/five").status_code == 404
    r = httpx.get(server.url + "/items/404")
    assert r.status_code == 404
    assert r.json()["detail"] == "no such item"


def test_litestar_json_body_validated(server: RunningServer) -> None:
    r = httpx.post(server.url + "/items", json={"name": "pen", "price": 2.5})
    assert r.status_code == 201
    assert r.json() == {"name": "pen", "total": 5.0}
    r = httpx.post(server.url + "/items", json={"name": "pen"})
    assert r.status_code == 400
    r = httpx.post(
        server.url + "/items", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400


def test_litestar_stream(server: RunningServer) -> None:
    with httpx.stream("GET", server.url + "/stream") as r:
        assert r.headers.get("transfer-encoding") == "chunked"
        assert b"".join(r.iter_bytes()) == b"chunk0\nchunk1\nchunk2\nchunk3\n"


def test_litestar_sees_client_address(server: RunningServer) -> None:
    data = httpx.get(server.url + "/client").json()
    assert data["client"][0] == "127.0.0.1"
    assert data["scheme"] == "http"


def test_litestar_websocket_echo_and_close_reason(server: RunningServer) -> None:
    async def scenario() -> None:
        async with connect(server.ws_url + "/ws", subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            for text in ("one", "twö", "x" * 70_000):
                await ws.send(text)
                assert json.loads(await ws.recv()) == {"echo": text, "path": "/ws"}
            await ws.send("bye")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "bye to you")

    run(scenario())


def test_litestar_websocket_bytes(server: RunningServer) -> None:
    async def scenario() -> None:
        async with connect(server.ws_url + "/ws-bytes") as ws:
            await ws.send(b"\x01\x02\x03")
            assert await ws.recv() == b"\x03\x02\x01"

    run(scenario())


def test_litestar_unknown_websocket_route_refused(server: RunningServer) -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as info:
            async with connect(server.ws_url + "/nowhere"):
                pass
        assert info.value.response.status_code == 403

    run(scenario())
    assert httpx.get(server.url + "/").status_code == 200
