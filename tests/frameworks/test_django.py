"""Django over plain ASGI and with Channels (in-memory channel layer), on a real socket."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.frameworks.conftest import run
from tests.support.http_client import Conn, get
from tests.support.servers import RunningServer, module_server, wait_until

FILE_BYTES = bytes(range(256)) * 2048


@pytest.fixture(scope="module")
def django() -> Iterator[RunningServer]:
    with module_server("djsite.asgi:application") as srv:
        yield srv


@pytest.fixture(scope="module")
def channels() -> Iterator[RunningServer]:
    with module_server("djsite.channels_asgi:application") as srv:
        yield srv


# -- plain ASGI ---------------------------------------------------------------------------


def test_django_sync_view_and_query(django: RunningServer) -> None:
    r = httpx.get(django.url + "/hello", params={"name": "Ünïcode"})
    assert r.status_code == 200
    assert r.text == "hello Ünïcode"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"


def test_django_lifespan_unsupported_is_not_a_fault(django: RunningServer) -> None:
    assert django.wait_for_log("lifespan' protocol appears unsupported")
    assert "Traceback" not in django.log


def test_django_request_meta_from_scope(django: RunningServer) -> None:
    r = httpx.get(django.url + "/items/7?q=a&q=b", headers={"user-agent": "krandog-test"})
    assert r.json() == {
        "item_id": 7,
        "q": ["a", "b"],
        "scheme": "http",
        "host": f"127.0.0.1:{django.port}",
        "remote": "127.0.0.1",
        "agent": "krandog-test",
    }


def test_django_unknown_route_and_disallowed_host(django: RunningServer) -> None:
    assert httpx.get(django.url + "/nope").status_code == 404
    assert httpx.get(django.url + "/hello", headers={"host": "evil.example"}).status_code == 400
    assert django.wait_for_log("Invalid HTTP_HOST header")


def test_django_form_post(django: RunningServer) -> None:
    r = httpx.post(django.url + "/form", data={"a": ["1", "2"], "b": "ß"})
    assert r.json() == {"a": ["1", "2"], "b": ["ß"]}


def test_django_json_post(django: RunningServer) -> None:
    body = {"nested": {"list": list(range(1000))}, "text": "x" * 100_000}
    r = httpx.post(django.url + "/json", json=body)
    assert r.status_code == 200
    assert r.json()["received"] == body
    r = httpx.post(django.url + "/json", content=b"{broken")
    assert r.status_code == 400


def test_django_multipart_upload_to_temp_file(django: RunningServer) -> None:
    big = os.urandom(5 * 1024 * 1024)  # over FILE_UPLOAD_MAX_MEMORY_SIZE: a temporary file
    small = b"tiny file"
    r = httpx.post(
        django.url + "/upload",
        data={"title": "report"},
        files={
            "big": ("big.bin", big, "application/octet-stream"),
            "small": ("small.txt", small, "text/plain"),
        },
        timeout=30,
    )
    assert r.status_code == 200
    assert r.json() == {
        "fields": {"title": "report"},
        "files": {
            "big": {"name": "big.bin", "size": len(big), "sha256": hashlib.sha256(big).hexdigest()},
            "small": {
                "name": "small.txt",
                "size": len(small),
                "sha256": hashlib.sha256(small).hexdigest(),
            },
        },
    }


def test_django_async_streaming_response(django: RunningServer) -> None:
    with httpx.stream("GET", django.url + "/stream") as r:
        assert r.headers.get("transfer-encoding") == "chunked"
        body = b"".join(r.iter_bytes())
    assert body == b"".join(f"part{i};".encode() for i in range(5))


def test_django_file_response(django: RunningServer) -> None:
    r = httpx.get(django.url + "/file")
    assert r.status_code == 200
    assert r.content == FILE_BYTES
    assert r.headers["content-length"] == str(len(FILE_BYTES))
    assert r.headers["content-disposition"] == 'attachment; filename="data.bin"'
    head = httpx.head(django.url + "/file")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(FILE_BYTES))
    assert head.content == b""


def test_django_keep_alive_mixed_sync_async(django: RunningServer) -> None:
    with httpx.Client(base_url=django.url) as client:
        for i in range(30):
            path = f"/items/{i}" if i % 2 else f"/hello?name={i}"
            r = client.get(path)
            assert r.status_code == 200
            assert str(i) in r.text


def test_django_pipelined_sync_and_async_views_answer_in_order(django: RunningServer) -> None:
    """Sync views hop to a thread, async ones do not: answers still come in request order."""
    paths = ["/hello?name=a", "/items/2", "/hello?name=c", "/stream", "/items/5"]
    with Conn(django.port) as conn:
        conn.send(b"".join(get(p) for p in paths))
        bodies = [conn.read_response().body for _ in paths]
    assert bodies[0] == b"hello a"
    assert json.loads(bodies[1])["item_id"] == 2
    assert bodies[2] == b"hello c"
    assert bodies[3] == b"part0;part1;part2;part3;part4;"
    assert json.loads(bodies[4])["item_id"] == 5


def test_django_streaming_to_http_10_client_ends_with_close(django: RunningServer) -> None:
    with Conn(django.port) as conn:
        resp = conn.request(get("/stream", version="1.0"))
        assert resp.header("transfer-encoding") is None  # HTTP/1.0 has no chunked coding
        assert resp.body == b"part0;part1;part2;part3;part4;"
        assert conn.closed_by_server()


def test_django_async_view_cancelled_on_disconnect(django: RunningServer) -> None:
    def log() -> list[str]:
        return list(httpx.get(django.url + "/cancelled").json())

    sock = socket.create_connection(("127.0.0.1", django.port))
    sock.sendall(get("/slow?tag=dj1"))
    assert wait_until(lambda: "started:dj1" in log())
    sock.close()
    assert wait_until(lambda: "cancelled:dj1" in log())


def test_django_view_error_is_500_and_server_goes_on(django: RunningServer) -> None:
    r = httpx.get(django.url + "/error")
    assert r.status_code == 500
    assert django.wait_for_log("django view failed")
    assert httpx.get(django.url + "/hello").status_code == 200


def test_django_behind_a_proxy_sees_forwarded_scheme_and_client(django: RunningServer) -> None:
    r = httpx.get(
        django.url + "/items/1",
        headers={"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"},
    )
    data = r.json()
    assert (data["scheme"], data["remote"]) == ("https", "203.0.113.7")


def test_django_behind_a_path_prefix_with_root_path() -> None:
    with module_server("djsite.asgi:application", "--root-path", "/site") as srv:
        r = httpx.get(srv.url + "/where")
        assert r.json() == {
            "path": "/site/where",
            "path_info": "/where",
            "script_name": "/site",
            "absolute": f"http://127.0.0.1:{srv.port}/site/where",
        }


# -- Channels -----------------------------------------------------------------------------


def origin(server: RunningServer) -> dict[str, str]:
    return {"Origin": f"http://127.0.0.1:{server.port}"}


def test_channels_http_still_served_by_django(channels: RunningServer) -> None:
    assert httpx.get(channels.url + "/hello?name=ch").text == "hello ch"


def test_channels_echo_text_binary_and_subprotocol(channels: RunningServer) -> None:
    async def scenario() -> None:
        async with connect(
            channels.ws_url + "/ws/echo", origin=origin(channels)["Origin"], subprotocols=["chat"]
        ) as ws:
            assert ws.subprotocol == "chat"
            await ws.send("hi")
            assert await ws.recv() == "echo:hi"
            await ws.send(b"\x00\xff" * 1000)
            assert await ws.recv() == b"\x00\xff" * 1000
            await ws.send("close")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 4001

    run(scenario())


def test_channels_group_broadcast_between_two_clients(channels: RunningServer) -> None:
    async def scenario() -> None:
        url = channels.ws_url + "/ws/room/lobby"
        async with (
            connect(url, origin=origin(channels)["Origin"]) as alice,
            connect(url, origin=origin(channels)["Origin"]) as bob,
        ):
            await alice.send(json.dumps({"from": "alice", "n": 1}))
            assert json.loads(await alice.recv()) == {"from": "alice", "n": 1}
            assert json.loads(await bob.recv()) == {"from": "alice", "n": 1}
            await bob.send("from bob")
            assert await alice.recv() == "from bob"
            assert await bob.recv() == "from bob"
        # A member of another room hears nothing of this one.
        async with (
            connect(channels.ws_url + "/ws/room/other", origin=origin(channels)["Origin"]) as eve,
            connect(url, origin=origin(channels)["Origin"]) as carol,
        ):
            await carol.send("lobby only")
            assert await carol.recv() == "lobby only"
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(eve.recv(), 0.3)

    run(scenario())


def test_channels_foreign_origin_refused_with_403(channels: RunningServer) -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as info:
            async with connect(channels.ws_url + "/ws/echo", origin="http://evil.example"):
                pass
        assert info.value.response.status_code == 403

    run(scenario())
    assert httpx.get(channels.url + "/hello").status_code == 200


def test_channels_unknown_ws_route_is_500_before_accept(channels: RunningServer) -> None:
    """URLRouter raises for an unknown path before accepting: the handshake fails with 500."""

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as info:
            async with connect(channels.ws_url + "/ws/missing", origin=origin(channels)["Origin"]):
                pass
        assert info.value.response.status_code == 500

    run(scenario())
    assert channels.wait_for_log("No route found for path")


def test_channels_consumer_sees_close_code_and_dropped_connection(channels: RunningServer) -> None:
    async def scenario() -> None:
        async with connect(
            channels.ws_url + "/ws/echo?clean", origin=origin(channels)["Origin"]
        ) as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(code=4321)
        ws = await connect(channels.ws_url + "/ws/echo?dropped", origin=origin(channels)["Origin"])
        await ws.send("x")
        await ws.recv()
        ws.transport.abort()  # no closing handshake: the app sees 1006

    run(scenario())

    def ended() -> list[list[object]]:
        return list(httpx.get(channels.url + "/ws-disconnects").json())

    assert wait_until(lambda: ["clean", 4321] in ended() and ["dropped", 1006] in ended())
