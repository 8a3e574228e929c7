"""End-to-end smoke tests: the CLI serves HTTP and WebSocket on a real socket."""

from __future__ import annotations

import asyncio

import httpx
import websockets

from tests.support.servers import RunningServer


def test_http_hello(serve) -> None:
    server: RunningServer = serve("basic:hello")
    response = httpx.get(server.url + "/")
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    assert response.headers["server"] == "krandog-asgi"
    assert "date" in response.headers


def test_http_scope(serve) -> None:
    server = serve("basic:echo")
    scope = httpx.get(server.url + "/scope?a=1").json()
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["path"] == "/scope"
    assert scope["query_string"] == "a=1"
    assert scope["client"][0] == "127.0.0.1"
    assert isinstance(scope["client"][1], int)
    assert scope["state"] == {"started": "True"}


def test_websocket_echo(serve) -> None:
    server = serve("basic:echo")

    async def main() -> None:
        async with websockets.connect(server.ws_url + "/") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"

    asyncio.run(main())
