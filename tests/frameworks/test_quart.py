"""Quart over a real socket: HTTP with JSON, forms and streaming, WebSockets including a
handshake refused with the app's own HTTP response (the Denial Response extension)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.frameworks.conftest import run
from tests.support.servers import RunningServer, module_server


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with module_server("quart_app:app") as srv:
        yield srv


def test_quart_before_serving_ran(server: RunningServer) -> None:
    assert httpx.get(server.url + "/").json() == {"greeting": "hello from before_serving"}


def test_quart_json_and_form(server: RunningServer) -> None:
    r = httpx.post(server.url + "/json", json={"k": [1, "ü"]})
    assert r.json() == {"received": {"k": [1, "ü"]}, "method": "POST"}
    r = httpx.post(
        server.url + "/form",
        data={"a": "1"},
        files={"f": ("f.bin", b"\xaa" * 100_000, "application/octet-stream")},
    )
    assert r.json() == {"fields": {"a": "1"}, "files": {"f": 100_000}}


def test_quart_streaming_and_abort(server: RunningServer) -> None:
    with httpx.stream("GET", server.url + "/stream") as r:
        assert r.headers.get("transfer-encoding") == "chunked"
        assert b"".join(r.iter_bytes()) == b"line0\nline1\nline2\nline3\n"
    assert httpx.get(server.url + "/teapot").status_code == 418
    assert httpx.get(server.url + "/missing").status_code == 404


def test_quart_websocket_echo(server: RunningServer) -> None:
    async def scenario() -> None:
        async with connect(server.ws_url + "/ws", subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            await ws.send("hi")
            assert await ws.recv() == "quart:hi"
            await ws.send(b"\x00" * 100_000)
            assert await ws.recv() == b"\x00" * 100_000
            await ws.send("close")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (4002, "closing")

    run(scenario())


def test_quart_websocket_denied_with_app_response(server: RunningServer) -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as info:
            async with connect(server.ws_url + "/ws-denied"):
                pass
        assert info.value.response.status_code == 401
        async with connect(
            server.ws_url + "/ws-denied", additional_headers={"x-token": "secret"}
        ) as ws:
            assert await ws.recv() == "welcome"

    run(scenario())
