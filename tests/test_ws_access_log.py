"""WebSocket connections in the access log, as uvicorn users read them: one line when the
handshake is answered (``[accepted]``, or the status of the refusal) and one when an accepted
connection ends, with its close code, how long it lasted and the bytes each way."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from tests.support.servers import RunningServer, module_server, raw_request, wait_until

CLOSED = re.compile(
    r'INFO: +127\.0\.0\.1:(?P<port>\d+) - "WebSocket (?P<path>\S+)" closed (?P<code>\d+) '
    r"after (?P<secs>\d+\.\d{3})s \((?P<bytes_in>\d+) bytes in, (?P<bytes_out>\d+) bytes out\)$"
)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with module_server("ws_apps:app") as srv:
        yield srv


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def lines_for(server: RunningServer, path: str, count: int = 1) -> list[str]:
    needle = f'"WebSocket {path}"'
    assert wait_until(lambda: server.log.count(needle) >= count), server.log[-2000:]
    return [line.rstrip("\n") for line in server.lines if needle in line]


def test_accepted_then_closed_with_code_duration_and_exact_bytes(server: RunningServer) -> None:
    async def talk() -> int:
        async with connect(f"{server.ws_url}/echo?log=1", compression=None) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await asyncio.sleep(0.3)
            return int(ws.local_address[1])

    port = run(talk())
    accepted, closed = lines_for(server, "/echo?log=1", 2)
    assert accepted == f'INFO:     127.0.0.1:{port} - "WebSocket /echo?log=1" [accepted]'
    m = CLOSED.match(closed)
    assert m, closed
    assert int(m["port"]) == port
    assert m["code"] == "1000"
    assert 0.25 <= float(m["secs"]) < 5
    # in: a masked 5-byte text frame (2+4+5) and a masked close 1000 (2+4+2);
    # out: the echo (2+5) and the close answer (2+2).
    assert (int(m["bytes_in"]), int(m["bytes_out"])) == (11 + 8, 7 + 4)


def test_close_code_chosen_by_the_app_is_logged(server: RunningServer) -> None:
    async def talk() -> None:
        async with connect(f"{server.ws_url}/close/4001?log=2") as ws:
            await ws.wait_closed()

    run(talk())
    _, closed = lines_for(server, "/close/4001?log=2", 2)
    m = CLOSED.match(closed)
    assert m, closed
    assert m["code"] == "4001"


@pytest.mark.parametrize(
    ("path", "outcome"),
    [("/deny?log=3", "403 Forbidden"), ("/teapot?log=4", "418 I'm a Teapot")],
)
def test_refused_handshake_is_one_line_with_its_status(
    server: RunningServer, path: str, outcome: str
) -> None:
    async def talk() -> None:
        with pytest.raises(InvalidStatus):
            async with connect(server.ws_url + path):
                pass

    run(talk())
    (line,) = lines_for(server, path)  # and no "[accepted]" or "closed" line
    assert line.endswith(f'- "WebSocket {path}" {outcome}'), line


def test_abandoned_handshake_says_so(server: RunningServer) -> None:
    """The app accepted with a subprotocol the client never offered: no answer, one line."""

    async def talk() -> None:
        with pytest.raises(InvalidMessage):  # no HTTP response at all: the connection closes
            async with connect(f"{server.ws_url}/badproto?log=6", subprotocols=["chat"]):
                pass

    run(talk())
    (line,) = lines_for(server, "/badproto?log=6")
    assert line.endswith('"WebSocket /badproto?log=6" [abandoned: subprotocol not offered]')


def test_invalid_upgrade_request_is_logged_with_the_400(server: RunningServer) -> None:
    raw = (
        b"GET /echo?log=5 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"  # no Sec-WebSocket-Key
    )
    assert raw_request(server.port, raw).startswith(b"HTTP/1.1 400 ")
    (line,) = lines_for(server, "/echo?log=5")
    assert line.endswith('"WebSocket /echo?log=5" 400 Bad Request'), line


def test_no_access_log_means_no_websocket_lines(serve: Any) -> None:
    srv = serve("ws_apps:app", "--no-access-log")

    async def talk() -> None:
        async with connect(f"{srv.ws_url}/echo?quiet=1") as ws:
            await ws.send("x")
            await ws.recv()

    run(talk())
    srv.stop()
    assert "WebSocket /echo" not in srv.log
