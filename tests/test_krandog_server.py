"""krandog handlers (krandog_asgi.compat) over real sockets: a real server with the
``websockets`` client, httpx and raw sockets, plus uvicorn. The seed's three patterns (echo,
broadcast, the request object), HTTP return forms and errors, sync/async/threaded handlers,
lifecycle and upgrade events, send ordering and flow control against a client that stops
reading, and the examples. The same behaviours without sockets, event by event: tests/krandog/.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.fakes import run
from tests.support.servers import APPS, RunningServer, wait_until


async def recv_n(ws: Any, n: int) -> list[Any]:
    return [await ws.recv() for _ in range(n)]


# -- echo ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("attr", ["handler", "ahandler", "callable_handler", "returns_coroutine"])
def test_echo_many_messages(serve, attr: str) -> None:
    server: RunningServer = serve(f"krandog_echo:{attr}")

    async def main() -> None:
        async with websockets.connect(server.ws_url + "/echo") as ws:
            # one at a time
            for i in range(300):
                await ws.send(f"message {i}")
                assert await ws.recv() == f"Echo: message {i}"
            # pipelined: 1,000 in flight, echoed in order
            for i in range(1000):
                await ws.send(f"p{i}")
            assert await recv_n(ws, 1000) == [f"Echo: p{i}" for i in range(1000)]
            # binary frames stay bytes, text stays str (also non-ASCII and large)
            blob = bytes(range(256)) * 400
            await ws.send(blob)
            assert await ws.recv() == blob
            await ws.send("ünïcödé ✓")
            assert await ws.recv() == "Echo: ünïcödé ✓"
            await ws.send("")
            assert await ws.recv() == "Echo: "

    run(main())


def test_echo_many_connections(serve) -> None:
    server = serve("krandog_echo:handler")

    async def client(n: int) -> None:
        async with websockets.connect(server.ws_url + f"/c{n}") as ws:
            for i in range(50):
                await ws.send(f"{n}:{i}")
                assert await ws.recv() == f"Echo: {n}:{i}"

    async def main() -> None:
        await asyncio.gather(*(client(n) for n in range(20)))

    run(main())


# -- broadcast (the seed, verbatim) -------------------------------------------------------------


def test_broadcast_three_clients(serve) -> None:
    server = serve("krandog_broadcast:handler")

    def states() -> list[int]:
        result: list[int] = httpx.get(server.url + "/").json()["states"]
        return result

    async def main() -> None:
        a = await websockets.connect(server.ws_url + "/")
        b = await websockets.connect(server.ws_url + "/")
        c = await websockets.connect(server.ws_url + "/")
        try:
            # A client joins the list with its first message (krandog had no open event).
            await a.send("a joins")
            assert await a.recv() == "Broadcast: a joins"
            await b.send("b joins")
            assert await a.recv() == "Broadcast: b joins"
            assert await b.recv() == "Broadcast: b joins"
            await c.send("c joins")
            for ws in (a, b, c):
                assert await ws.recv() == "Broadcast: c joins"
            assert states() == [1, 1, 1]
            # Every client receives every broadcast, in the order the server handled them.
            for sender, text in ((a, "x"), (b, "y"), (c, "z")):
                await sender.send(text)
                for ws in (a, b, c):
                    assert await ws.recv() == f"Broadcast: {text}"
            # Pipelined from all three at once: each receiver sees each sender's messages in order.
            await asyncio.gather(
                *(ws.send(f"{n}-{i}") for n, ws in enumerate((a, b, c)) for i in range(20))
            )
            for ws in (a, b, c):
                got = await recv_n(ws, 60)
                for n in range(3):
                    mine = [m for m in got if m.startswith(f"Broadcast: {n}-")]
                    assert mine == [f"Broadcast: {n}-{i}" for i in range(20)]
            # c leaves: it stays in the list (as in krandog) but is skipped by its readyState.
            await c.close()
            assert wait_until(lambda: states() == [1, 1, 3]), states()
            await a.send("after c left")
            assert await a.recv() == "Broadcast: after c left"
            assert await b.recv() == "Broadcast: after c left"
            assert states() == [1, 1, 3]
        finally:
            for ws in (a, b, c):
                await ws.close()

    run(main())
    assert "Traceback" not in server.log


# -- the request object -------------------------------------------------------------------------


def test_websocket_request_fields(serve) -> None:
    server = serve("krandog_fields:handler")
    port = server.port

    async def main() -> None:
        url = server.ws_url + "/room/42?a=1&a=2&b=x%20y&empty="
        async with websockets.connect(url, additional_headers={"X-Test": "yes"}) as ws:
            await ws.send("hello")
            first = json.loads(await ws.recv())
            await ws.send(b"\x00\xff")
            second = json.loads(await ws.recv())
        async with websockets.connect(server.ws_url + "/other") as ws2:
            await ws2.send("hi")
            other = json.loads(await ws2.recv())

        assert first["type"] == "websocket"
        assert first["data_type"] == "str"
        assert first["data"] == "hello"
        assert second["data_type"] == "bytes"
        assert second["data"] == "00ff"
        for field in (first, second):
            assert field["pathname"] == "/room/42"
            assert field["query"] == {"a": ["1", "2"], "b": ["x y"], "empty": [""]}
            assert field["query_first"] == {"a": "1", "b": "x y", "empty": ""}
            assert field["headers"]["x-test"] == "yes"
            assert field["headers"]["upgrade"].lower() == "websocket"
            assert "sec-websocket-key" in field["headers"]
            assert all(name == name.lower() for name in field["headers"])
            assert field["x_test_upper"] == "yes"
            assert field["has_X_Test"] is True
            assert field["client"][0] == "127.0.0.1"
            assert field["ready_state"] == 1
            assert field["open_constant"] == 1
            assert field["ws_url"] == f"ws://127.0.0.1:{port}/room/42?a=1&a=2&b=x%20y&empty="
            assert field["url"] == field["ws_url"]
            assert field["ws_pathname"] == "/room/42"
            assert field["ws_in_list"] is True
        # One req.ws per connection, identical across its messages; a new one for a new connection.
        assert first["connection_index"] == second["connection_index"] == 0
        assert other["connection_index"] == 1
        assert other["pathname"] == "/other"
        assert other["query"] == {}

    run(main())


def test_http_request_fields(serve) -> None:
    server = serve("krandog_fields:handler")
    response = httpx.post(
        server.url + "/api/items?q=1&q=2&name=%C3%A9",
        json={"x": [1, 2]},
        headers={"X-Test": "yes", "X-Dup": "1"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    fields = response.json()
    assert fields["type"] == "http"
    assert fields["method"] == "POST"
    assert fields["pathname"] == "/api/items"
    assert fields["url"] == f"http://127.0.0.1:{server.port}/api/items?q=1&q=2&name=%C3%A9"
    assert fields["query"] == {"q": ["1", "2"], "name": ["é"]}
    assert fields["query_first"]["q"] == "1"
    assert fields["headers"]["x-test"] == "yes"
    assert fields["headers"]["content-type"] == "application/json"
    assert fields["x_test_upper"] == "yes"
    assert fields["has_X_Test"] is True
    assert fields["json"] == {"x": [1, 2]}
    assert json.loads(fields["body"]) == {"x": [1, 2]}
    assert fields["text"] == fields["body"]
    assert fields["client"][0] == "127.0.0.1"


def test_http_repeated_headers_and_bad_json(serve) -> None:
    server = serve("krandog_fields:handler")
    response = httpx.get(
        server.url + "/",
        headers=[("X-Test", "a"), ("x-test", "b"), ("Cookie", "a=1"), ("cookie", "b=2")],
    )
    fields = response.json()
    assert fields["headers"]["x-test"] == "a, b"
    assert fields["headers"]["cookie"] == "a=1; b=2"
    # A body that is not JSON: req.json() raises BadRequest, answered with 400 (not a 500).
    bad = httpx.post(
        server.url + "/", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400
    assert "not valid JSON" in bad.text
    assert "Traceback" not in server.log


def test_kept_request_objects_keep_their_data(serve) -> None:
    """A request object the app keeps is never reused for a later message."""
    server = serve("krandog_keep:handler")

    async def main() -> None:
        async with websockets.connect(server.ws_url + "/") as ws:
            for i in range(20):
                await ws.send(f"keep {i}" if i % 3 == 0 else f"drop {i}")
            await ws.send("report")
            report = json.loads(await ws.recv())
        assert report == [[f"keep {i}", "websocket", True] for i in range(0, 20, 3)]

    run(main())


# -- HTTP return forms --------------------------------------------------------------------------


@pytest.mark.parametrize("attr", ["handler", "ahandler", "returns_coroutine"])
def test_http_return_forms(serve, attr: str) -> None:
    server = serve(f"krandog_http:{attr}")
    with httpx.Client(base_url=server.url) as http:
        r = http.get("/str")
        assert (r.status_code, r.text) == (200, "plain text ü")
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert r.headers["content-length"] == str(len("plain text ü".encode()))

        r = http.get("/bytes")
        assert (r.status_code, r.content) == (200, b"\x00\x01binary")
        assert r.headers["content-type"] == "application/octet-stream"

        r = http.get("/dict")
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"message": "hello", "n": 1}

        assert http.get("/list").json() == [1, "two", None]
        assert http.get("/empty-dict").json() == {}

        r = http.get("/response")
        assert (r.status_code, r.text) == (201, "created")
        assert r.headers["content-type"] == "text/x-custom"
        assert r.headers.get_list("x-multi") == ["a", "b"]

        r = http.get("/response-pairs")
        assert (r.status_code, r.content) == (200, b"pairs")
        assert (r.headers["x-one"], r.headers["x-two"]) == ("1", "2")

        r = http.get("/response-json-body")
        assert (r.status_code, r.json()) == (202, {"ok": True})

        r = http.get("/no-status")
        assert (r.status_code, r.text) == (200, "defaults to 200")

        r = http.get("/status-only")
        assert (r.status_code, r.content) == (204, b"")
        assert "content-length" not in r.headers

        r = http.get("/headers-only")
        assert (r.status_code, r.content, r.headers["x-only"]) == (200, b"", "yes")

        r = http.get("/content-length-ignored")
        assert (r.text, r.headers["content-length"]) == ("four", "4")

        r = http.post("/echo-body", content=b"x" * 100_000)
        assert r.content == b"x" * 100_000

        r = http.head("/str")
        assert (r.status_code, r.content) == (200, b"")

        r = http.post(
            "/text",
            content="héllo".encode("latin-1"),
            headers={"Content-Type": "text/plain; charset=latin-1"},
        )
        assert r.json() == {"text": "héllo", "length": 5}

        r = http.post("/json", json={"a": [1, 2, {"b": None}]})
        assert r.json() == {"got": {"a": [1, 2, {"b": None}]}}

        assert http.get("/nowhere").status_code == 404
    assert "Traceback" not in server.log
    assert "ERROR" not in server.log


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/bad-status", "status must be an int from 200 to 599, got '200'"),
        ("/bad-status-range", "status must be an int from 200 to 599, got 99"),
        ("/bad-status-bool", "status must be an int from 200 to 599, got True"),
        ("/bad-type", "the handler returned/contained a NotARequest"),
        ("/bad-tuple", "the handler returned/contained a tuple"),
        ("/bad-body", "the body returned/contained a float"),
        ("/bad-json", "the body could not be sent as JSON"),
        ("/bad-header-crlf", "header 'X-Evil' contains a control character"),
        ("/bad-header-name", "invalid header name 'Bad Name'"),
        ("/bad-headers-type", "headers must be a dict or a list of pairs, not str"),
    ],
)
def test_http_invalid_return_is_500_with_reason_logged(serve, path: str, reason: str) -> None:
    server = serve("krandog_http:handler")
    r = httpx.get(server.url + path)
    assert r.status_code == 500
    assert r.text == (
        "Internal Server Error: the handler returned an invalid response (see the server log)\n"
    )
    assert "Injected" not in str(r.headers)
    assert server.wait_for_log(re.escape(f"krandog handler, GET {path}: {reason}")), server.log


@pytest.mark.parametrize("attr", ["handler", "ahandler"])
def test_http_none_and_exceptions(serve, attr: str) -> None:
    server = serve(f"krandog_http:{attr}")
    r = httpx.get(server.url + "/none")
    assert r.status_code == 500
    assert "the handler returned nothing for an HTTP request" in r.text
    assert server.wait_for_log(r"GET /none: the handler returned nothing \(None\)")

    r = httpx.get(server.url + "/raise")
    assert (r.status_code, r.text) == (500, "Internal Server Error\n")
    assert "boom" not in r.text  # the traceback goes to the log, not to the client
    assert server.wait_for_log(r"Exception in krandog handler for GET /raise(.|\n)*Traceback")
    assert server.wait_for_log("RuntimeError: boom in the handler")

    r = httpx.get(server.url + "/http-error")
    assert (r.status_code, r.text) == (418, "I am a teapot, said the handler\n")
    # The server is still fine after all that.
    assert httpx.get(server.url + "/str").text == "plain text ü"


def test_http_body_limit(serve) -> None:
    server = serve("krandog_http:small_body")
    assert httpx.post(server.url + "/echo-body", content=b"x" * 1024).content == b"x" * 1024
    assert httpx.post(server.url + "/echo-body", content=b"x" * 1025).status_code == 413

    def chunks() -> Any:
        for _ in range(10):
            yield b"y" * 200

    r = httpx.post(server.url + "/echo-body", content=chunks())  # chunked: no Content-Length
    assert r.status_code == 413


def test_server_body_limits_bound_a_handler_that_reads_whole_bodies(serve) -> None:
    """The krandog layer reads a whole body before calling the handler: the server's
    --limit-request-body and --timeout-request-body bound it from outside (it sees them as
    ASGI only: a 413 answered before the app runs, or http.disconnect)."""
    server = serve(
        "krandog_http:handler",
        "--limit-request-body",
        "1000",
        "--timeout-request-body",
        "1",
    )
    r = httpx.post(server.url + "/echo-body", content=b"x" * 5000)
    assert r.status_code == 413
    assert r.text == "Request body too large."  # the server's answer, not the handler's
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /echo-body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        sock.settimeout(0.2)
        answer = b""
        started = time.monotonic()
        while not answer and time.monotonic() - started < 8:
            sock.sendall(b"x")  # one byte every 0.2 s
            try:
                answer = sock.recv(4096)
            except TimeoutError:
                pass
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - started < 4
    assert httpx.post(server.url + "/echo-body", content=b"ok").content == b"ok"
    assert "Traceback" not in server.log


def test_websocket_upgrade_to_http_only_handler_is_accepted(serve) -> None:
    """A handler that ignores WebSocket messages (returns None) still gets connections."""
    server = serve("krandog_http:handler")

    async def main() -> None:
        async with websockets.connect(server.ws_url + "/") as ws:
            await ws.send("nobody answers")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)

    run(main())


# -- sync handlers: on the loop, or in threads ------------------------------------------------


def test_sync_handler_runs_on_the_loop_by_default(serve) -> None:
    server = serve("krandog_echo:handler")
    assert httpx.get(server.url + "/").text == "MainThread"


def test_sync_handler_in_threads(serve) -> None:
    server = serve("krandog_echo:handler", "--handler-threads")
    name = httpx.get(server.url + "/").text
    assert name != "MainThread"  # a worker of the loop's default executor

    async def main() -> None:
        # ws.send from a worker thread: thread-safe, still in order.
        async with websockets.connect(server.ws_url + "/") as ws:
            for i in range(200):
                await ws.send(f"t{i}")
            assert await recv_n(ws, 200) == [f"Echo: t{i}" for i in range(200)]

    run(main())


def test_async_handler_ignores_thread_flag(serve) -> None:
    server = serve("krandog_echo:ahandler", "--handler-threads")
    assert httpx.get(server.url + "/").text == "async MainThread"


# -- lifecycle events and WebSocket errors ------------------------------------------------------


@pytest.mark.parametrize("attr", ["handler", "ahandler"])
def test_lifecycle_events_keep_the_room_clean(serve, attr: str) -> None:
    server = serve(f"krandog_lifecycle:{attr}")

    def state() -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(server.url + "/").json()
        return result

    async def main() -> None:
        a = await websockets.connect(server.ws_url + "/a")
        b = await websockets.connect(server.ws_url + "/b")
        assert await a.recv() == "welcome"  # sent from the open event
        assert await b.recv() == "welcome"
        await a.send("count")
        assert await a.recv() == "2"
        await b.send("to everyone")
        assert await a.recv() == "to everyone"
        assert await b.recv() == "to everyone"
        await b.close(4001, "b leaves")
        assert wait_until(lambda: state()["room"] == 1)
        await a.send("count")
        assert await a.recv() == "1"
        await a.close()
        assert wait_until(lambda: state()["room"] == 0)

    run(main())
    events = state()["events"]
    assert [e["type"] for e in events][:2] == ["websocket.open", "websocket.open"]
    closes = {e["pathname"]: e for e in events if e["type"] == "websocket.close"}
    assert closes["/b"]["code"] == 4001
    assert closes["/b"]["reason"] == "b leaves"
    assert closes["/a"]["code"] == 1000
    assert closes["/a"]["ready_state"] == 3


def test_server_shutdown_closes_with_1012_and_fires_close_events(serve) -> None:
    server = serve("krandog_lifecycle:handler")

    async def main() -> None:
        clients = [await websockets.connect(server.ws_url + f"/s{i}") for i in range(3)]
        for ws in clients:
            assert await ws.recv() == "welcome"
        server.proc.send_signal(signal.SIGTERM)
        for ws in clients:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 1012

    run(main())
    assert server.proc.wait(15) == 0
    assert "Traceback" not in server.log
    assert "ERROR" not in server.log


def test_handler_exception_closes_with_1011(serve) -> None:
    server = serve("krandog_lifecycle:handler")

    async def main() -> None:
        async with websockets.connect(server.ws_url + "/err") as ws:
            assert await ws.recv() == "welcome"
            await ws.send("raise")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 1011
        # Other connections are unaffected.
        async with websockets.connect(server.ws_url + "/ok") as ws:
            assert await ws.recv() == "welcome"
            await ws.send("count")
            assert await ws.recv() == "1"

    run(main())
    assert server.wait_for_log(r"Exception in krandog handler for a WebSocket message on /err")
    assert server.wait_for_log(r"ValueError: handler failed on purpose")
    assert wait_until(
        lambda: any(
            e["type"] == "websocket.close" and e["pathname"] == "/err" and e["code"] == 1011
            for e in httpx.get(server.url + "/").json()["events"]
        )
    )


def test_close_with_code_and_reason_then_sends_are_dropped(serve) -> None:
    server = serve("krandog_lifecycle:handler")

    async def main() -> None:
        async with websockets.connect(server.ws_url + "/") as ws:
            assert await ws.recv() == "welcome"
            await ws.send("close 4000 bye now")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()  # "dropped: sent after close" must not arrive first
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "bye now")

    run(main())


def test_invalid_close_and_send_arguments(serve) -> None:
    server = serve("krandog_lifecycle:handler")

    async def main() -> None:
        async with websockets.connect(server.ws_url + "/") as ws:
            assert await ws.recv() == "welcome"
            await ws.send("bad-close")
            assert (await ws.recv()).startswith("ValueError: Invalid WebSocket close code 1005")
            await ws.send("bad-send")
            assert await ws.recv() == "TypeError: ws.send() takes str or bytes, not int"

    run(main())


def test_return_value_on_websocket_message_warns_once_and_keeps_open(serve) -> None:
    server = serve("krandog_lifecycle:handler")

    async def main() -> None:
        async with websockets.connect(server.ws_url + "/") as ws:
            assert await ws.recv() == "welcome"
            for _ in range(3):
                await ws.send("return")
            await ws.send("count")
            assert await ws.recv() == "1"  # still open: krandog would have closed it

    run(main())
    assert server.wait_for_log("krandog handler returned dict for a WebSocket message")
    assert server.log.count("krandog handler returned") == 1


# -- upgrade events: deny with a response ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/deny", 401, b"no token\n"),
        ("/deny-str", 200, b"go away"),
        ("/close", 403, None),
        ("/raise", 500, b"Internal Server Error\n"),
        ("/http-error", 429, b"slow down\n"),
        ("/bad-return", 500, b"Internal Server Error\n"),
        ("/bad-proto", 500, b"Internal Server Error\n"),
    ],
)
def test_upgrade_denied(serve, path: str, status: int, body: bytes | None) -> None:
    server = serve("krandog_upgrade:handler")

    async def main() -> None:
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(server.ws_url + path):
                pass
        response = info.value.response
        assert response.status_code == status
        if body is not None:
            assert response.body == body
        if path == "/deny":
            assert response.headers["WWW-Authenticate"] == "Bearer"

    run(main())
    if path in ("/raise",):
        assert server.wait_for_log("Exception in krandog handler for WebSocket upgrade /raise")
    if path == "/bad-proto":
        assert server.wait_for_log("'not-offered' was not offered by the client")


def test_upgrade_accepts_picks_subprotocol_and_flushes_early_sends(serve) -> None:
    server = serve("krandog_upgrade:handler")

    async def main() -> None:
        async with websockets.connect(server.ws_url + "/proto", subprotocols=["a", "b"]) as ws:
            assert ws.subprotocol == "b"
            assert await ws.recv() == "queued while connecting"
            assert await ws.recv() == "open b"
            await ws.send("echo me")
            assert await ws.recv() == "echo me"
        async with websockets.connect(server.ws_url + "/plain") as ws:
            assert ws.subprotocol is None
            assert await ws.recv() == "queued while connecting"
            assert await ws.recv() == "open "

    run(main())


# -- ws.send from sync code: ordering and flow control ------------------------------------------


class RawClient:
    """A WebSocket client on a plain socket with a small receive buffer, that reads only when
    told to: the only way to make a server's writes back up deterministically on loopback
    (where kernel autotuning would otherwise absorb tens of MiB)."""

    def __init__(self, port: int, path: str = "/") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        return chunk

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += self._recv()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def send_text(self, text: str) -> None:
        payload = text.encode()
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def read_frame(self) -> tuple[int, bytes]:
        first, second = self._take(2)
        assert first & 0x80, "the server does not fragment these messages"
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(self._take(2), "big")
        elif length == 127:
            length = int.from_bytes(self._take(8), "big")
        return first & 0x0F, self._take(length)

    def close(self) -> None:
        self.sock.close()


def flood_report(server: RunningServer) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(server.url + "/").json()
    return result


def read_sequence(client: RawClient, count: int) -> tuple[list[int], int, bytes]:
    """Read up to ``count`` binary frames; return their sequence numbers and the next frame."""
    sequence = []
    for _ in range(count):
        opcode, payload = client.read_frame()
        if opcode != 0x2:
            return sequence, opcode, payload
        sequence.append(int.from_bytes(payload[:4], "big"))
    opcode, payload = client.read_frame()
    return sequence, opcode, payload


def test_sync_flood_to_itself_is_ordered_through_backpressure(serve) -> None:
    """600 x 16 KiB from one synchronous loop to its own client, which is not reading: far more
    than the socket takes. All of it arrives in order, and the next message from that client is
    handled only after (the connection reads nothing more while its sends are blocked)."""
    server = serve("krandog_flood:handler")
    client = RawClient(server.port)
    try:
        client.send_text("flood 600 16384")
        client.send_text("hello")
        assert wait_until(lambda: flood_report(server)["last_buffered"] is not None)
        sequence, opcode, payload = read_sequence(client, 600)
        assert sequence == list(range(600))
        assert (opcode, payload) == (0x1, b"done")
        assert client.read_frame() == (0x1, b"hello")
        assert flood_report(server)["peers"] == [1]
    finally:
        client.close()


def test_sends_to_a_client_that_is_not_reading_queue_in_order(serve) -> None:
    """Another connection's handler sends 600 x 16 KiB to a client that is not reading: the
    messages wait in that client's queue (bufferedAmount), then arrive complete and in order."""
    server = serve("krandog_flood:handler")
    receiver = RawClient(server.port)
    try:
        receiver.send_text("hello")
        assert receiver.read_frame() == (0x1, b"hello")

        async def send_fanout() -> None:
            async with websockets.connect(server.ws_url + "/") as sender:
                await sender.send("fanout 600 16384")
                await sender.send("hello")
                assert await sender.recv() == "hello"  # the fanout handler has returned

        run(send_fanout())
        # The queue was used: the socket could not take ~9.4 MiB while nobody read.
        assert flood_report(server)["last_buffered"] > 1024 * 1024
        sequence, opcode, payload = read_sequence(receiver, 600)
        assert sequence == list(range(600))
        assert (opcode, payload) == (0x1, b"done")
        receiver.send_text("hello")
        assert receiver.read_frame() == (0x1, b"hello")
    finally:
        receiver.close()


def test_send_to_another_connection_from_a_handler(serve) -> None:
    server = serve("krandog_flood:handler")

    async def main() -> None:
        async with (
            websockets.connect(server.ws_url + "/", max_size=None) as receiver,
            websockets.connect(server.ws_url + "/") as sender,
        ):
            await receiver.send("hello")
            assert await receiver.recv() == "hello"
            await sender.send("fanout 200 16384")
            for i in range(200):
                message = await receiver.recv()
                assert int.from_bytes(message[:4], "big") == i
            assert await receiver.recv() == "done"

    run(main())


def test_client_that_does_not_read_is_closed_not_buffered_forever(serve) -> None:
    """A broadcast to a client that never reads must not grow the server's memory: past the
    queue limit (256 KiB here) it is closed with 1008."""
    server = serve("krandog_flood:limited")
    tasks_before = flood_report(server)["tasks"]
    receiver = RawClient(server.port)
    try:
        receiver.send_text("hello")
        assert receiver.read_frame() == (0x1, b"hello")

        async def send_fanout() -> None:
            async with websockets.connect(server.ws_url + "/") as sender:
                await sender.send("fanout 400 65536")  # 25 MiB from one synchronous loop
                await sender.send("hello")
                assert await sender.recv() == "hello"

        run(send_fanout())
        assert wait_until(lambda: flood_report(server)["peers"][0] == 2), flood_report(server)
        # What did arrive is a gap-free prefix, then the close frame with 1008, no "done".
        sequence, opcode, payload = read_sequence(receiver, 400)
        assert opcode == 0x8
        assert int.from_bytes(payload[:2], "big") == 1008
        assert sequence == list(range(len(sequence)))
        assert 0 < len(sequence) < 400
    finally:
        receiver.close()
    assert server.wait_for_log("its send queue exceeded 262144 bytes")
    assert wait_until(lambda: flood_report(server)["peers"] == [3, 3])
    # Both connections are gone, and so are their tasks (no writer task left behind).
    assert wait_until(lambda: flood_report(server)["tasks"] == tasks_before), flood_report(server)

    async def main() -> None:  # the server still serves others
        async with websockets.connect(server.ws_url + "/") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"

    run(main())


def test_overflowing_client_that_never_reads_is_disconnected(serve) -> None:
    """Second review: the 1008 close used to wait behind the send stuck in flow control, so a
    client that never read again kept its connection (and the app its ws) forever."""
    server = serve("krandog_flood:limited", "--ws-close-timeout", "1")
    receiver = RawClient(server.port)
    receiver.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        receiver.send_text("hello")
        assert receiver.read_frame() == (0x1, b"hello")

        async def send_fanout() -> None:
            async with websockets.connect(server.ws_url + "/") as sender:
                await sender.send("fanout 400 65536")
                await sender.send("hello")
                assert await sender.recv() == "hello"

        run(send_fanout())
        assert server.wait_for_log("its send queue exceeded 262144 bytes")
        # The receiver reads nothing more; the server gives up on it within its close timeouts.
        assert wait_until(lambda: flood_report(server)["peers"][0] == 3, timeout=8)
    finally:
        receiver.close()


# -- the CLI's --interface -----------------------------------------------------------------------


def test_cli_interface_asgi_does_not_wrap(serve) -> None:
    server = serve("krandog_echo:handler", "--interface", "asgi")
    assert httpx.get(server.url + "/").status_code == 500  # called as ASGI: a TypeError
    server2 = serve("krandog_echo:handler", "--interface", "krandog")
    assert httpx.get(server2.url + "/").text == "MainThread"


# -- under another ASGI server ------------------------------------------------------------------


@pytest.fixture
def uvicorn_serve() -> Iterator[Callable[[str], str]]:
    """Start ``uvicorn APP`` on a free port; return its base URL. Stopped after the test."""
    pytest.importorskip("uvicorn")
    started: list[subprocess.Popen[str]] = []

    def start(app: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, "--app-dir", str(APPS), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1", NO_COLOR="1"),
            start_new_session=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        deadline = time.monotonic() + 15
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
            if match:
                return match.group(1)
        raise RuntimeError("uvicorn did not start:\n" + "".join(lines))

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def test_wrapped_handler_runs_on_uvicorn(uvicorn_serve) -> None:
    """The compat layer is a plain ASGI app: uvicorn serves it too."""
    echo = uvicorn_serve("krandog_echo:app")
    broadcast = uvicorn_serve("krandog_broadcast:app")
    upgrade = uvicorn_serve("krandog_upgrade:handler")
    http_app = uvicorn_serve("krandog_http:small_body")
    assert httpx.get(echo + "/").text == "MainThread"
    r = httpx.get(http_app + "/response")
    assert (r.status_code, r.text, r.headers["content-type"]) == (201, "created", "text/x-custom")
    assert httpx.get(http_app + "/dict").json() == {"message": "hello", "n": 1}
    assert httpx.get(http_app + "/none").status_code == 500
    assert httpx.post(http_app + "/echo-body", content=b"x" * 2000).status_code == 413

    async def main() -> None:
        async with websockets.connect(echo.replace("http", "ws") + "/") as ws:
            for i in range(200):
                await ws.send(f"u{i}")
            assert await recv_n(ws, 200) == [f"Echo: u{i}" for i in range(200)]
        url = broadcast.replace("http", "ws") + "/"
        async with websockets.connect(url) as a, websockets.connect(url) as b:
            await a.send("a")
            assert await a.recv() == "Broadcast: a"
            await b.send("b")
            assert [await a.recv(), await b.recv()] == ["Broadcast: b"] * 2
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(upgrade.replace("http", "ws") + "/deny"):
                pass
        assert info.value.response.status_code == 401
        async with websockets.connect(upgrade.replace("http", "ws") + "/ok") as ws:
            assert await ws.recv() == "queued while connecting"

    run(main())


# -- the examples -------------------------------------------------------------------------------


def test_example_echo(serve) -> None:
    server = serve("examples.echo:handler")
    assert httpx.get(server.url + "/").text == "HTTP Server with WebSocket support\n"

    async def main() -> None:
        async with websockets.connect(server.ws_url + "/") as ws:
            for i in range(100):
                await ws.send(f"m{i}")
            assert await recv_n(ws, 100) == [f"m{i}" for i in range(100)]
            await ws.send(b"\x01")
            assert await ws.recv() == b"\x01"

    run(main())


def test_example_broadcast_prunes_closed_clients(serve) -> None:
    server = serve("examples.broadcast:handler")

    async def main() -> None:
        clients = [await websockets.connect(server.ws_url + "/") for _ in range(3)]
        for n, ws in enumerate(clients):
            await ws.send(f"hi {n}")
            for other in clients[: n + 1]:
                assert await other.recv() == f"Broadcast: hi {n}"
        await clients[2].close()
        await clients[0].send("two left")
        assert await clients[0].recv() == "Broadcast: two left"
        assert await clients[1].recv() == "Broadcast: two left"
        for ws in clients[:2]:
            await ws.close()

    run(main())
    assert "Client connected, total: 3" in server.log


def test_example_chat_protocol(serve) -> None:
    server = serve("examples.chat:handler")
    page = httpx.get(server.url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "new WebSocket(" in page.text
    assert httpx.get(server.url + "/missing").status_code == 404

    async def recv_json(ws: Any) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(await ws.recv())
        return result

    async def main() -> None:
        alice = await websockets.connect(server.ws_url + "/ws")
        bob = await websockets.connect(server.ws_url + "/ws")
        await alice.send(json.dumps({"type": "message", "text": "too early"}))
        assert (await recv_json(alice))["error"] == "join first"
        await alice.send("not json")
        assert (await recv_json(alice))["type"] == "error"
        await alice.send(json.dumps({"type": "join", "name": "alice"}))
        assert await recv_json(alice) == {"type": "welcome", "name": "alice", "users": ["alice"]}
        assert await recv_json(alice) == {"type": "join", "name": "alice", "users": ["alice"]}
        await bob.send(json.dumps({"type": "join", "name": "alice"}))
        assert (await recv_json(bob))["error"] == "that name is taken"
        await bob.send(json.dumps({"type": "join", "name": " \x00bob\u202e "}))
        welcome = await recv_json(bob)
        assert welcome == {"type": "welcome", "name": "bob", "users": ["alice", "bob"]}
        for ws in (alice, bob):
            assert await recv_json(ws) == {"type": "join", "name": "bob", "users": ["alice", "bob"]}
        await bob.send(json.dumps({"type": "message", "text": "hello alice"}))
        for ws in (alice, bob):
            assert await recv_json(ws) == {"type": "message", "name": "bob", "text": "hello alice"}
        await bob.close()
        assert await recv_json(alice) == {"type": "leave", "name": "bob", "users": ["alice"]}
        await alice.close()

    run(main())


def test_example_fastapi_app(serve) -> None:
    pytest.importorskip("fastapi")
    server = serve("examples.fastapi_app:app")
    assert httpx.get(server.url + "/").json() == {
        "message": "FastAPI on krandog-asgi; WebSocket echo at /ws"
    }

    async def main() -> None:
        async with websockets.connect(server.ws_url + "/ws") as ws:
            for i in range(50):
                await ws.send(f"f{i}")
            assert await recv_n(ws, 50) == [f"f{i}" for i in range(50)]
            await ws.send(b"\x00\x01")
            assert await ws.recv() == b"\x00\x01"

    run(main())
    assert "Traceback" not in server.log
