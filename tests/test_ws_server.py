"""Our WebSocket server against the ``websockets`` client library (an independent peer) and raw
sockets for what no well-behaved client would send."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import time
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from tests.support.servers import RunningServer, raw_request

MASK = b"\x01\x02\x03\x04"


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def masked(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


UPGRADE = (
    b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def raw_ws(server: RunningServer, path: bytes = b"/echo") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(UPGRADE.replace(b"/echo", path))
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    def exact(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    b0, b1 = exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exact(8))[0]
    return b0 & 0x0F, exact(n)


def read_close(sock: socket.socket) -> int:
    """Skip data frames until the close frame; return its code."""
    for _ in range(10000):
        opcode, payload = read_frame(sock)
        if opcode == 8:
            return struct.unpack("!H", payload[:2])[0]
    raise AssertionError("no close frame")


@pytest.fixture
def ws_server(serve) -> RunningServer:
    return serve("ws_apps:app", "--ws-max-size", str(20 * 1024 * 1024))


# -- messages -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 1024 * 1024, 16 * 1024 * 1024])
def test_echo_sizes(ws_server: RunningServer, size: int) -> None:
    async def main() -> None:
        async with connect(ws_server.ws_url + "/echo", max_size=None, compression=None) as ws:
            payload = os.urandom(size)
            await ws.send(payload)
            assert await ws.recv() == payload
            text = "é" * (size // 2)
            await ws.send(text)
            assert await ws.recv() == text

    run(main())


def test_many_messages_in_order(ws_server: RunningServer) -> None:
    async def main() -> None:
        async with connect(ws_server.ws_url + "/echo") as ws:
            for i in range(500):
                await ws.send(f"m{i}")
            for i in range(500):
                assert await ws.recv() == f"m{i}"

    run(main())


def test_fragmented_input(ws_server: RunningServer) -> None:
    async def main() -> None:
        async with connect(ws_server.ws_url + "/echo") as ws:
            await ws.send(["frag", "men", "ted"])
            assert await ws.recv() == "fragmented"
            await ws.send([b"\x00" * 70000, b"\x01" * 10])
            assert await ws.recv() == b"\x00" * 70000 + b"\x01" * 10

    run(main())


def test_ping_pong(ws_server: RunningServer) -> None:
    async def main() -> None:
        async with connect(ws_server.ws_url + "/echo") as ws:
            waiter = await ws.ping(b"are you there")
            latency = await asyncio.wait_for(waiter, 5)
            assert latency >= 0

    run(main())


# -- deflate -------------------------------------------------------------------------------


def test_deflate_negotiated_by_default(ws_server: RunningServer) -> None:
    async def main() -> None:
        async with connect(ws_server.ws_url + "/echo", compression="deflate") as ws:
            assert ws.response is not None
            header = ws.response.headers["Sec-WebSocket-Extensions"]
            assert header.startswith("permessage-deflate")
            assert "server_max_window_bits=12" in header
            text = "squeeze " * 10000
            for _ in range(3):
                await ws.send(text)
                assert await ws.recv() == text

    run(main())


def test_deflate_can_be_turned_off(serve) -> None:
    server = serve("ws_apps:app", "--ws-per-message-deflate", "false")

    async def main() -> None:
        async with connect(server.ws_url + "/echo", compression="deflate") as ws:
            assert ws.response is not None
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            await ws.send("plain")
            assert await ws.recv() == "plain"

    run(main())


# -- closing -------------------------------------------------------------------------------


def test_app_close_code_and_reason_reach_the_client(ws_server: RunningServer) -> None:
    async def main() -> tuple[int | None, str | None]:
        async with connect(ws_server.ws_url + "/close/4001") as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason

    assert run(main()) == (4001, "bye")


def test_app_close_with_a_long_reason_keeps_its_code(ws_server: RunningServer) -> None:
    """ASGI lets the reason be any string; RFC 6455 §5.5 caps it at 123 bytes. The reason is cut
    on a character boundary rather than failing the app's close into a 1011."""

    async def main() -> tuple[int | None, str | None]:
        async with connect(ws_server.ws_url + "/close-long-reason") as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason

    code, reason = run(main())
    assert code == 4002
    assert reason == "\u00e9" * 61  # 122 bytes: the 62nd character would make 124


def test_client_close_code_and_reason_reach_the_app(ws_server: RunningServer) -> None:
    async def main() -> None:
        async with connect(ws_server.ws_url + "/echo") as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(4321, "client says bye")

    run(main())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        record = httpx.get(ws_server.url + "/report").json()
        if "disconnect" in record:
            break
        time.sleep(0.05)
    assert record["disconnect"] == [4321, "client says bye"]


def test_app_crash_after_accept_closes_1011(ws_server: RunningServer) -> None:
    async def main() -> int | None:
        async with connect(ws_server.ws_url + "/crash") as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert run(main()) == 1011
    assert ws_server.wait_for_log("RuntimeError: boom")


def test_abrupt_disconnect_is_1006_for_the_app(ws_server: RunningServer) -> None:
    sock = raw_ws(ws_server, b"/echo")
    sock.sendall(masked(1, b"hi"))
    assert read_frame(sock) == (1, b"hi")
    sock.close()
    deadline = time.monotonic() + 5
    record: dict[str, Any] = {}
    while time.monotonic() < deadline and "disconnect" not in record:
        record = httpx.get(ws_server.url + "/report").json()
        time.sleep(0.05)
    assert record["disconnect"][0] == 1006


def test_close_handshake_timeout(serve) -> None:
    server = serve("ws_apps:app", "--ws-close-timeout", "0.5")
    sock = raw_ws(server, b"/close/1000")
    assert read_close(sock) == 1000
    # We never answer the close frame: the server must not wait forever.
    started = time.monotonic()
    sock.settimeout(5)
    assert sock.recv(10) == b""
    assert time.monotonic() - started < 3


# -- handshake -----------------------------------------------------------------------------


def test_subprotocol_negotiation(ws_server: RunningServer) -> None:
    async def main() -> str | None:
        async with connect(
            ws_server.ws_url + "/subproto", subprotocols=["chat", "superchat"]
        ) as ws:
            return ws.subprotocol

    assert run(main()) == "superchat"


def test_subprotocol_not_offered_closes_without_an_answer(ws_server: RunningServer) -> None:
    """No client can take an upgrade to a subprotocol it did not offer (RFC 6455 §4.2.2): the
    connection closes before any response, the app's error is logged, the server goes on."""

    async def main() -> None:
        async with connect(ws_server.ws_url + "/badproto", subprotocols=["chat"]):
            pass

    with pytest.raises(websockets.InvalidMessage) as info:
        run(main())
    assert isinstance(info.value.__cause__, EOFError)
    assert ws_server.wait_for_log("'not-offered' was not offered by the client")
    assert httpx.get(ws_server.url + "/report").status_code == 200


def test_send_with_both_text_and_bytes_is_refused(ws_server: RunningServer) -> None:
    """ASGI: "Exactly one of bytes or text must be non-None" (a key set to None is fine)."""

    async def main() -> str | bytes:
        async with connect(ws_server.ws_url + "/both") as ws:
            return await ws.recv()

    assert run(main()) == "a"
    assert "both" in httpx.get(ws_server.url + "/report").json()["both"]


def test_accept_headers_are_sent(ws_server: RunningServer) -> None:
    async def main() -> str:
        async with connect(ws_server.ws_url + "/echo") as ws:
            assert ws.response is not None
            return ws.response.headers["x-accepted"]

    assert run(main()) == "yes"


def test_close_before_accept_is_403(ws_server: RunningServer) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        run(connect(ws_server.ws_url + "/deny").__aenter__())
    assert info.value.response.status_code == 403


def test_return_without_accept_is_500(ws_server: RunningServer) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        run(connect(ws_server.ws_url + "/noaccept").__aenter__())
    assert info.value.response.status_code == 500


def test_denial_response(ws_server: RunningServer) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        run(connect(ws_server.ws_url + "/teapot").__aenter__())
    response = info.value.response
    assert response.status_code == 418
    assert response.headers["x-reason"] == "teapot"
    assert response.body == b"short and stout"


def test_scope(ws_server: RunningServer) -> None:
    async def main() -> dict[str, Any]:
        async with connect(ws_server.ws_url + "/scope?x=1", subprotocols=["a", "b"]) as ws:
            return json.loads(await ws.recv())

    scope = run(main())
    assert scope["type"] == "websocket"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/scope"
    assert scope["query_string"] == "x=1"
    assert scope["subprotocols"] == ["a", "b"]
    assert "websocket.http.response" in scope["extensions"]
    assert scope["http_version"] == "1.1"
    assert "method" not in scope
    assert ["sec-websocket-version", "13"] in scope["headers"]


@pytest.mark.parametrize(
    ("replace", "status"),
    [
        ((b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"), 426),
        ((b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", b"Sec-WebSocket-Key: bad"), 400),
        ((b"Connection: Upgrade", b"Connection: Upgrade\r\nSec-WebSocket-Protocol: \x80\xff"), 400),
        ((b"Connection: Upgrade", b"Connection: Upgrade\r\nSec-WebSocket-Protocol: a b"), 400),
    ],
)
def test_invalid_handshakes(
    ws_server: RunningServer, replace: tuple[bytes, bytes], status: int
) -> None:
    response = raw_request(ws_server.port, UPGRADE.replace(*replace))
    assert response.startswith(b"HTTP/1.1 %d " % status), response[:80]
    if status == 426:
        assert b"sec-websocket-version: 13\r\n" in response.lower()
    # and the server keeps serving
    assert httpx.get(ws_server.url + "/report").status_code == 200


def test_upgrade_with_a_body_is_refused(ws_server: RunningServer) -> None:
    request = UPGRADE.replace(b"\r\n\r\n", b"\r\nContent-Length: 5\r\n\r\nhello")
    assert raw_request(ws_server.port, request).startswith(b"HTTP/1.1 400 ")


def test_frames_in_the_same_packet_as_the_handshake(ws_server: RunningServer) -> None:
    sock = socket.create_connection(("127.0.0.1", ws_server.port), timeout=5)
    sock.sendall(UPGRADE + masked(1, b"early") + masked(2, b"bird"))
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert b" 101 " in head
    assert read_frame(sock) == (1, b"early")
    assert read_frame(sock) == (2, b"bird")


# -- protocol errors over the wire -------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (bytes([0x81, 0x02]) + b"hi", 1002),  # unmasked client frame
        (masked(1, b"\xff\xfe"), 1007),  # invalid UTF-8
        (masked(3, b""), 1002),  # reserved opcode
        (masked(1, b"x", rsv=0x20), 1002),  # RSV2 without extension
        (masked(9, b"x" * 126), 1002),  # oversized control frame
        (masked(0, b"x"), 1002),  # continuation without message
    ],
)
def test_protocol_errors_close_with_the_right_code(
    ws_server: RunningServer, frames: bytes, code: int
) -> None:
    sock = raw_ws(ws_server)
    sock.sendall(frames)
    assert read_close(sock) == code
    sock.settimeout(5)
    assert sock.recv(10) == b""  # and the server closes the TCP connection


def test_message_too_big_is_1009(serve) -> None:
    server = serve("ws_apps:app", "--ws-max-size", "1000")
    sock = raw_ws(server)
    sock.sendall(masked(2, b"x" * 1001))
    assert read_close(sock) == 1009


def test_huge_length_is_refused_before_the_payload(serve) -> None:
    server = serve("ws_apps:app", "--ws-max-size", "1000")
    sock = raw_ws(server)
    sock.sendall(bytes([0x82, 0xFF]) + struct.pack("!Q", 2**62) + MASK)
    assert read_close(sock) == 1009


def test_fragment_cap(serve) -> None:
    server = serve("ws_apps:app", "--ws-max-fragments", "100")
    sock = raw_ws(server)
    sock.sendall(masked(2, b"a", fin=False) + masked(0, b"b", fin=False) * 100)
    assert read_close(sock) == 1009


def test_valid_message_before_an_error_is_echoed_first(ws_server: RunningServer) -> None:
    sock = raw_ws(ws_server)
    sock.sendall(masked(1, b"first") + masked(5, b""))
    assert read_frame(sock) == (1, b"first")
    assert read_close(sock) == 1002


def test_unsolicited_pong_is_ignored_and_ping_answered(ws_server: RunningServer) -> None:
    sock = raw_ws(ws_server)
    sock.sendall(masked(10, b"unsolicited") + masked(9, b"p1") + masked(1, b"after"))
    assert read_frame(sock) == (10, b"p1")
    assert read_frame(sock) == (1, b"after")


# -- keepalive --------------------------------------------------------------------------------


def test_keepalive_timeout_closes_1011_and_a_send_only_app_learns_it(serve) -> None:
    server = serve("ws_apps:app", "--ws-ping-interval", "0.3", "--ws-ping-timeout", "0.3")
    sock = raw_ws(server, b"/sender")
    pings = 0
    code = None
    sock.settimeout(5)
    while code is None:  # read, never answer pings
        opcode, payload = read_frame(sock)
        if opcode == 9:
            pings += 1
        elif opcode == 8:
            code = struct.unpack("!H", payload[:2])[0]
    assert pings == 1
    assert code == 1011
    deadline = time.monotonic() + 5
    record: dict[str, Any] = {}
    while time.monotonic() < deadline and record.get("sender") in (None, "running"):
        record = httpx.get(server.url + "/report").json()
        time.sleep(0.05)
    assert record["sender"] == "send raised ClientDisconnected"


def test_keepalive_pings_are_answered_by_a_good_client(serve) -> None:
    server = serve("ws_apps:app", "--ws-ping-interval", "0.2", "--ws-ping-timeout", "0.2")

    async def main() -> None:
        async with connect(server.ws_url + "/echo", ping_interval=None) as ws:
            await asyncio.sleep(1.0)  # several server pings, answered by the library
            await ws.send("still here")
            assert await ws.recv() == "still here"

    run(main())


def test_ping_interval_zero_disables_pings(serve) -> None:
    server = serve("ws_apps:app", "--ws-ping-interval", "0")
    sock = raw_ws(server)
    sock.settimeout(1.5)
    with pytest.raises(TimeoutError):
        read_frame(sock)


# -- backpressure --------------------------------------------------------------------------------


def test_slow_reader_makes_send_wait(serve) -> None:
    server = serve("ws_apps:app", "--ws-write-limit", "65536")
    sock = raw_ws(server, b"/flood")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    time.sleep(1.0)  # we read nothing
    sent = httpx.get(server.url + "/report").json()["flood"]
    assert sent < 100, f"{sent} x 256 KiB sends completed while the client read nothing"
    total = 0
    sock.settimeout(5)
    while total < 200 * 262144:
        opcode, payload = read_frame(sock)
        assert opcode == 2
        total += len(payload)
    assert httpx.get(server.url + "/report").json()["flood"] == 200


# The /hoard app never returns, so graceful shutdown would wait its full 30 s for it (and the
# fixture kills the server after 10 s): the servers it runs on get a short shutdown bound.
HOARD_SHUTDOWN = ("--timeout-graceful-shutdown", "0.5")


def test_app_that_does_not_receive_pauses_reading(serve) -> None:
    server = serve("ws_apps:app", "--ws-max-queue", "4", *HOARD_SHUTDOWN)
    sock = raw_ws(server, b"/hoard")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    sock.settimeout(2)
    message = masked(2, b"y" * 65536)
    sent = 0

    def flood() -> None:
        nonlocal sent
        for _ in range(2000):  # 128 MiB if nobody stopped us
            sock.sendall(message)
            sent += 1

    with pytest.raises(TimeoutError):
        flood()
    assert sent < 500, f"the server kept reading: {sent} x 64 KiB accepted"
    sock.close()


def test_server_keeps_serving_after_bad_clients(ws_server: RunningServer) -> None:
    for junk in (b"\x00" * 100, masked(1, b"\xff"), b"GET / HTTP/1.1\r\n\r\n"):
        sock = raw_ws(ws_server)
        sock.sendall(junk)
        sock.close()
    test_echo_sizes(ws_server, 10)


# -- review findings: each of these failed before its fix ----------------------------------------


def test_ping_flood_from_a_client_that_never_reads_is_bounded(serve) -> None:
    """Every ping is answered with a pong; a client that never reads them must not make the
    server buffer pongs without bound: reading stops once our writes back up."""
    server = serve("ws_apps:app", *HOARD_SHUTDOWN)
    sock = raw_ws(server, b"/hoard")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(3)
    pings = masked(9, b"p" * 125) * 512  # 67 KiB per sendall
    sent = 0

    def flood() -> None:
        nonlocal sent
        for _ in range(3000):  # 200 MB if nobody stopped us
            sock.sendall(pings)
            sent += len(pings)

    with pytest.raises(TimeoutError):
        flood()
    assert sent < 40 * 1024 * 1024, f"the server kept reading pings: {sent} bytes"
    sock.close()


def test_keepalive_does_not_kill_a_client_whose_pongs_wait_behind_a_full_queue(serve) -> None:
    server = serve(
        "ws_apps:app",
        "--ws-max-queue",
        "1",
        "--ws-ping-interval",
        "0.3",
        "--ws-ping-timeout",
        "0.3",
        *HOARD_SHUTDOWN,
    )

    async def main() -> None:
        # The server cannot read our close frame behind its full queue: do not wait 10 s for
        # its answer when leaving.
        async with connect(server.ws_url + "/hoard", ping_interval=None, close_timeout=0.2) as ws:
            for i in range(20):
                await ws.send(f"m{i}")  # the app never receives: the queue fills, reading pauses
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 2.0)  # not closed with 1011 meanwhile

    run(main())


def test_send_only_app_answers_a_client_close_at_once(ws_server: RunningServer) -> None:
    async def main() -> float:
        async with connect(ws_server.ws_url + "/sender") as ws:
            await ws.recv()
            started = time.monotonic()
            await ws.close(1000)
            return time.monotonic() - started

    assert run(main()) < 0.5


def test_receive_waiting_before_accept_gets_the_first_message(ws_server: RunningServer) -> None:
    async def main() -> str:
        async with connect(ws_server.ws_url + "/early") as ws:
            await ws.send("first")
            return await asyncio.wait_for(ws.recv(), 5)

    assert run(main()) == "early got first"


def test_denial_response_with_status_101_is_refused(ws_server: RunningServer) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        run(connect(ws_server.ws_url + "/deny101").__aenter__())
    assert info.value.response.status_code == 500


def test_shutdown_does_not_log_client_disconnected_as_an_app_error(serve) -> None:
    server = serve("ws_apps:app")

    async def main() -> None:
        async with connect(server.ws_url + "/sender") as ws:
            await ws.recv()
            server.proc.send_signal(__import__("signal").SIGTERM)

            async def read_until_closed() -> None:
                for _ in range(1000):
                    await asyncio.wait_for(ws.recv(), 5)

            with pytest.raises(websockets.ConnectionClosed):
                await read_until_closed()

    run(main())
    assert server.proc.wait(10) == 0
    assert "Exception in ASGI application" not in server.log


def test_http10_request_with_upgrade_header_is_plain_http(ws_server: RunningServer) -> None:
    request = (
        b"GET /report HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert raw_request(ws_server.port, request).startswith(b"HTTP/1.1 200 ")
