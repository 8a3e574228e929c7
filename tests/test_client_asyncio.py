"""The asyncio client API against our server and the ``websockets`` server, over ws:// and wss://."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from krandog_asgi.client import (
    ClientConnection,
    Connect,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    connect,
)
from tests.support.certs import Certificates
from tests.support.fakes import run
from tests.support.peers import WebsocketsPeer, krandog_server

PEERS = ["krandog-ws", "krandog-wss", "websockets-ws", "websockets-wss"]


@dataclass
class Peer:
    kind: str
    url: str
    ssl: ssl.SSLContext | None
    websockets: WebsocketsPeer | None = None

    def connect(self, path: str = "/echo", **options: Any) -> Connect:
        return connect(self.url + path, ssl=self.ssl, **options)


@pytest.fixture(scope="module", params=PEERS)
def peer(request: pytest.FixtureRequest, certs: Certificates) -> Iterator[Peer]:
    server, scheme = request.param.split("-")
    tls = scheme == "wss"
    client_ssl = certs.client_context() if tls else None
    if server == "krandog":
        with krandog_server(certs if tls else None) as ours:
            yield Peer(request.param, ours.ws_url, client_ssl)
    else:
        with WebsocketsPeer(certs.server_context() if tls else None) as theirs:
            yield Peer(request.param, theirs.url, client_ssl, theirs)


@pytest.fixture(scope="module")
def websockets_peer() -> Iterator[WebsocketsPeer]:
    with WebsocketsPeer() as theirs:
        yield theirs


# -- messages ---------------------------------------------------------------------------------


def test_echo_text_and_binary(peer: Peer) -> None:
    async def main() -> None:
        async with peer.connect() as ws:
            assert isinstance(ws, ClientConnection)
            await ws.send("héllo ✓")
            assert await ws.recv() == "héllo ✓"
            await ws.send(b"\x00\xff\x10")
            assert await ws.recv() == b"\x00\xff\x10"
            await ws.send(bytearray(b"ba"))
            assert await ws.recv() == b"ba"
            await ws.send(memoryview(b"mv"))
            assert await ws.recv() == b"mv"
            await ws.send("")
            assert await ws.recv() == ""
            with pytest.raises(TypeError, match="str or bytes-like"):
                await ws.send(42)  # type: ignore[arg-type]
        assert ws.closed
        assert ws.close_code == 1000

    run(main())


def test_large_messages_both_ways(peer: Peer) -> None:
    async def main() -> None:
        async with peer.connect() as ws:
            binary = os.urandom(4 * 1024 * 1024)
            await ws.send(binary)
            assert await ws.recv() == binary
            text = "ünïcode " * 200_000  # 1.8 MB of UTF-8
            await ws.send(text)
            assert await ws.recv() == text

    run(main())


def test_subprotocol_negotiation(peer: Peer) -> None:
    async def main() -> None:
        async with peer.connect(subprotocols=["superchat", "chat"]) as ws:
            assert ws.subprotocol == "superchat"
        async with peer.connect() as ws:
            assert ws.subprotocol is None

    run(main())


def test_permessage_deflate_negotiated_by_default(peer: Peer) -> None:
    async def main() -> None:
        async with peer.connect() as ws:
            assert ws.extensions.startswith("permessage-deflate")
            assert ws.protocol.conn is not None
            assert ws.protocol.conn.deflate is not None
            text = "compressible " * 50_000
            await ws.send(text)
            assert await ws.recv() == text
        async with peer.connect(compression=None) as ws:
            assert ws.extensions == ""
            assert ws.protocol.conn is not None
            assert ws.protocol.conn.deflate is None
            await ws.send("plain")
            assert await ws.recv() == "plain"

    run(main())


def test_custom_headers_origin_and_user_agent(peer: Peer) -> None:
    async def main() -> None:
        async with peer.connect(
            "/headers", extra_headers={"X-Token": "abc 123"}, origin="https://example.org"
        ) as ws:
            headers = json.loads(await ws.recv())
        assert headers["x-token"] == "abc 123"
        assert headers["origin"] == "https://example.org"
        assert headers["user-agent"].startswith("krandog-asgi/")
        assert headers["sec-websocket-version"] == "13"
        async with peer.connect("/headers", extra_headers=[("User-Agent", "mine")]) as ws:
            headers = json.loads(await ws.recv())
        assert headers["user-agent"] == "mine"
        assert "origin" not in headers

    run(main())


def test_message_arriving_with_the_handshake_response(peer: Peer) -> None:
    async def main() -> None:
        async with peer.connect("/welcome") as ws:
            assert await ws.recv() == "welcome"

    run(main())


def test_max_size_closes_with_1009(peer: Peer) -> None:
    async def main() -> None:
        async with peer.connect("/big/200000", max_size=100_000, compression=None) as ws:
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.code == 1009
        assert ws.close_code == 1009

    run(main())


def test_deflate_inflation_is_bounded_by_max_size(peer: Peer) -> None:
    """2 MB of zeros compress to a few KiB: only a bounded inflate can catch it."""

    async def main() -> None:
        async with peer.connect("/big/2000000", max_size=1_000_000) as ws:
            assert ws.extensions.startswith("permessage-deflate")
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.code == 1009

    run(main())


def test_ping_returns_the_round_trip_time(peer: Peer) -> None:
    async def main() -> None:
        async with peer.connect() as ws:
            latency = await ws.ping()
            assert 0 <= latency < 5
            first, second = await asyncio.gather(ws.ping(b"one"), ws.ping("two"))
            assert 0 <= first < 5
            assert 0 <= second < 5
            assert not ws.protocol.pings

    run(main())


# -- closing ----------------------------------------------------------------------------------


def test_async_for_ends_quietly_on_normal_close(peer: Peer) -> None:
    async def main() -> None:
        for code in (1000, 1001):
            async with peer.connect(f"/close/{code}") as ws:
                received = [message async for message in ws]
            assert received == []
            assert (ws.close_code, ws.close_reason) == (code, "bye")

    run(main())


def test_async_for_raises_on_other_close_codes(peer: Peer) -> None:
    async def main() -> None:
        async with peer.connect("/close/4000") as ws:
            with pytest.raises(ConnectionClosedError) as info:
                async for _ in ws:
                    pass
        assert (info.value.code, info.value.reason) == (4000, "bye")
        assert "4000 (application-defined code) 'bye'" in str(info.value)

    run(main())


def test_recv_and_send_after_close_raise_connection_closed_ok(peer: Peer) -> None:
    async def main() -> None:
        ws = await peer.connect()
        await ws.close()
        await ws.close()  # idempotent
        assert ws.closed
        assert ws.close_code == 1000
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        with pytest.raises(ConnectionClosedOK):
            await ws.send("late")
        with pytest.raises(ConnectionClosedOK):
            await ws.ping()

    run(main())


def test_close_with_code_and_reason_is_seen_by_the_peer(websockets_peer: WebsocketsPeer) -> None:
    async def main() -> None:
        ws = await connect(websockets_peer.url + "/report-close")
        await ws.close(4321, "done here")
        assert (ws.close_code, ws.close_reason) == (4321, "done here")

    run(main())
    assert websockets_peer.close_reports.get(timeout=10) == (4321, "done here")


def test_async_with_closes_1011_when_the_body_raises(websockets_peer: WebsocketsPeer) -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match="boom"):
            async with connect(websockets_peer.url + "/report-close"):
                raise RuntimeError("boom")

    run(main())
    assert websockets_peer.close_reports.get(timeout=10) == (1011, "")


def test_close_rejects_codes_that_cannot_be_sent(peer: Peer) -> None:
    async def main() -> None:
        async with peer.connect() as ws:
            for code in (999, 1004, 1006, 1015, 2999, 5000):
                with pytest.raises(ValueError, match="Invalid close code"):
                    await ws.close(code)
            with pytest.raises(ValueError, match="reason"):
                await ws.close(1000, "x" * 124)
            await ws.send("still open")
            assert await ws.recv() == "still open"

    run(main())


def test_a_rejected_close_leaves_no_trace(websockets_peer: WebsocketsPeer) -> None:
    """close() with a code or reason that cannot be sent raises before changing anything: the
    rejected code is not what a later ConnectionClosed reports."""

    async def main() -> None:
        ws = await connect(websockets_peer.url + "/report-close")
        with pytest.raises(ValueError, match="Invalid close code"):
            await ws.close(1004)
        with pytest.raises(ValueError, match="reason"):
            await ws.close(4000, "x" * 124)
        assert ws.protocol.sent_close is None
        assert ws.protocol.closed_error().code == 1006  # nothing sent, nothing received yet
        ws.protocol.close(4001, "valid")
        with pytest.raises(ConnectionClosedError) as info:
            await ws.send("after close")  # our close frame is out, no answer yet
        assert (info.value.code, info.value.reason) == (4001, "valid")
        await ws.wait_closed()
        assert (ws.close_code, ws.close_reason) == (4001, "valid")

    run(main())
    assert websockets_peer.close_reports.get(timeout=10) == (4001, "valid")


def test_close_while_recv_is_waiting_wakes_it(peer: Peer) -> None:
    async def main() -> None:
        async with peer.connect() as ws:
            receiver = asyncio.ensure_future(ws.recv())
            await asyncio.sleep(0)
            await ws.close()
            with pytest.raises(ConnectionClosedOK):
                await receiver

    run(main())


def test_connection_lost_without_close_frame_is_1006(websockets_peer: WebsocketsPeer) -> None:
    async def main() -> None:
        async with connect(websockets_peer.url + "/abort") as ws:
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.code == 1006
        assert ws.close_code == 1006

    run(main())


# -- fragmentation ----------------------------------------------------------------------------


def test_outgoing_fragmentation_when_asked(websockets_peer: WebsocketsPeer) -> None:
    async def main() -> None:
        async with connect(
            websockets_peer.url + "/fragments", fragment_size=1000, compression=None
        ) as ws:
            await ws.send(b"x" * 10_500)
            assert json.loads(await ws.recv()) == [1000] * 10 + [500]
            await ws.send("y" * 999)
            assert json.loads(await ws.recv()) == [999]
        async with connect(websockets_peer.url + "/fragments", compression=None) as ws:
            await ws.send(b"x" * 100_000)
            assert json.loads(await ws.recv()) == [100_000]

    run(main())


def test_incoming_fragmented_message(websockets_peer: WebsocketsPeer) -> None:
    async def main() -> None:
        async with connect(websockets_peer.url + "/send-fragmented") as ws:
            assert await ws.recv() == "abcdef"

    run(main())


def test_connection_properties(peer: Peer) -> None:
    async def main() -> None:
        async with peer.connect("/echo?x=1") as ws:
            assert ws.url == peer.url + "/echo?x=1"
            assert ws.remote_address[1] == int(peer.url.rsplit(":", 1)[1])
            assert ws.local_address[0] == "127.0.0.1"
            headers = dict(ws.response_headers)
            assert headers["upgrade"].lower() == "websocket"
            assert "sec-websocket-accept" in headers
            assert (ws.close_code, ws.close_reason, ws.closed) == (None, None, False)
            assert "ClientConnection" in repr(ws)

    run(main())


def test_closed_exception_hierarchy() -> None:
    assert isinstance(ConnectionClosed.for_code(1000, ""), ConnectionClosedOK)
    assert isinstance(ConnectionClosed.for_code(1005, ""), ConnectionClosedOK)
    assert isinstance(ConnectionClosed.for_code(1006, ""), ConnectionClosedError)
    assert isinstance(ConnectionClosed.for_code(3000, ""), ConnectionClosedError)
