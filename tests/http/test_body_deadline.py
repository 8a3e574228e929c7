"""The request-body deadline (``--timeout-request-body``, ``--limit-request-body-rate``) of
``HTTPProtocol`` on a FakeTransport and a FakeClockLoop, ticked as ``ServerState.tick`` does: no
sockets, no sleeps. On real sockets: tests/test_limits_body.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from krandog_asgi.config import Config
from krandog_asgi.http_protocol import HTTPProtocol, Timer
from krandog_asgi.process.state import ServerState
from tests.support.fakes import FakeClockLoop, FakeTransport, run_with_fake_clock

App = Callable[[Any, Any, Any], Awaitable[None]]
HEAD = b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n"
CHUNKED = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"


class Recorder:
    """An app that reads the whole body (or only after ``wait_for``) and records what came."""

    def __init__(self, answer_first: bool = False) -> None:
        self.events: list[str] = []
        self.answer_first = answer_first
        self.gate: asyncio.Event | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.answer_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"started", "more_body": True})
        if self.gate is not None:
            await self.gate.wait()
        while True:
            message = await receive()
            self.events.append(message["type"])
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        if self.events[-1] == "http.request" and not self.answer_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})


def connect(
    app: App, loop: FakeClockLoop, **options: Any
) -> tuple[ServerState, HTTPProtocol, FakeTransport]:
    options = {"server_header": False, "date_header": False, **options}
    config = Config(app=app, access_log=False, lifespan="off", **options)
    config.load()
    state = ServerState(config, app, loop)
    protocol = HTTPProtocol(state)
    transport = FakeTransport(loop)
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    return state, protocol, transport


async def finish(loop: FakeClockLoop, app: Recorder, transport: FakeTransport) -> None:
    """End the connection and let the app's task return, before the loop closes."""
    if app.gate is not None:
        app.gate.set()
    transport.close()
    for _ in range(10):
        await loop.advance(0)


async def tick(loop: FakeClockLoop, state: ServerState, seconds: float) -> None:
    """Let ``seconds`` pass, ticking every ``tick_interval`` as the server does."""
    end = loop.time() + seconds
    while loop.time() < end - 1e-9:
        await loop.advance(min(state.tick_interval, end - loop.time()))
        state.stop_ticking()
        state.tick()
    state.stop_ticking()


async def trickle(
    loop: FakeClockLoop,
    state: ServerState,
    protocol: HTTPProtocol,
    transport: FakeTransport,
    data: bytes,
    every: float,
) -> float:
    """Feed ``data`` one byte every ``every`` seconds; the time at which the server answered or
    closed (or ran out of bytes)."""
    start = loop.time()
    for byte in data:
        if transport.written or transport.closing:
            break
        protocol.data_received(bytes([byte]))
        await tick(loop, state, every)
    return loop.time() - start


def test_one_byte_a_second_is_answered_408_at_the_default_deadline() -> None:
    async def main(loop: FakeClockLoop) -> None:
        app = Recorder()
        state, protocol, transport = connect(app, loop)
        protocol.data_received(HEAD % 1000)
        assert protocol.timer is Timer.BODY
        took = await trickle(loop, state, protocol, transport, b"x" * 1000, every=1.0)
        # 30 s, plus 1/1024 s bought by each byte: cut in the 31st second.
        assert 30.0 <= took <= 31.0
        assert transport.data.startswith(b"HTTP/1.1 408 ")
        assert transport.eof_written  # then it lingers, draining input, and closes
        await loop.advance(0)
        assert app.events[-1] == "http.disconnect"
        await finish(loop, app, transport)

    run_with_fake_clock(main)


def test_a_chunked_trickle_is_bounded_the_same_way() -> None:
    async def main(loop: FakeClockLoop) -> None:
        app = Recorder()
        state, protocol, transport = connect(app, loop, timeout_request_body=5)
        protocol.data_received(CHUNKED + b"400\r\n")
        took = await trickle(loop, state, protocol, transport, b"y" * 1024, every=0.5)
        assert 5.0 <= took <= 5.5
        assert transport.data.startswith(b"HTTP/1.1 408 ")
        await finish(loop, app, transport)

    run_with_fake_clock(main)


def test_each_rate_bytes_buy_one_more_second() -> None:
    async def main(loop: FakeClockLoop) -> None:
        app = Recorder()
        state, protocol, transport = connect(
            app, loop, timeout_request_body=2, limit_request_body_rate=100
        )
        protocol.data_received(HEAD % 100_000)
        for _ in range(10):  # 300 bytes/s for 10 s: 3 s bought per second
            protocol.data_received(b"z" * 150)
            await tick(loop, state, 0.5)
            protocol.data_received(b"z" * 150)
            await tick(loop, state, 0.5)
        assert not transport.written
        # Then nothing: due 2 s + 3000 bytes / 100 = 32 s from the start, 22 s from now.
        await tick(loop, state, 21)
        assert not transport.written
        await tick(loop, state, 1.5)
        assert transport.data.startswith(b"HTTP/1.1 408 ")
        await finish(loop, app, transport)

    run_with_fake_clock(main)


def test_the_clock_stands_still_while_the_app_holds_reading_back() -> None:
    async def main(loop: FakeClockLoop) -> None:
        app = Recorder()
        app.gate = asyncio.Event()
        state, protocol, transport = connect(
            app, loop, timeout_request_body=2, limit_request_body_rate=0
        )
        protocol.data_received(HEAD % 200_000 + b"a" * 100_000)  # over the high-water mark
        await loop.advance(0)
        assert not transport.reading
        await tick(loop, state, 60)  # the app takes a minute before it reads
        assert not transport.written
        app.gate.set()
        await loop.advance(0)
        assert transport.reading
        await tick(loop, state, 1.5)  # 1.5 s of the client's own time: within its 2 s
        protocol.data_received(b"b" * 100_000)
        await loop.advance(0)
        assert transport.data.startswith(b"HTTP/1.1 200 ")
        await finish(loop, app, transport)

    run_with_fake_clock(main)


def test_with_expect_100_continue_the_clock_starts_at_our_100() -> None:
    async def main(loop: FakeClockLoop) -> None:
        app = Recorder()
        app.gate = asyncio.Event()
        state, protocol, transport = connect(app, loop, timeout_request_body=2)
        protocol.data_received(HEAD.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n") % 5)
        assert protocol.timer is not Timer.BODY
        await tick(loop, state, 30)  # the app has not asked for the body: no clock
        assert not transport.written
        app.gate.set()
        await loop.advance(0)
        assert transport.take() == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert protocol.timer is Timer.BODY
        await tick(loop, state, 2.5)
        assert transport.data.startswith(b"HTTP/1.1 408 ")
        await finish(loop, app, transport)

    run_with_fake_clock(main)


def test_once_the_response_started_the_deadline_closes_without_an_answer() -> None:
    async def main(loop: FakeClockLoop) -> None:
        app = Recorder(answer_first=True)
        state, protocol, transport = connect(app, loop, timeout_request_body=2)
        protocol.data_received(HEAD % 10)
        await loop.advance(0)
        assert transport.take().startswith(b"HTTP/1.1 200 ")
        await tick(loop, state, 2.5)
        assert transport.closing
        assert b"408" not in transport.data
        await loop.advance(0)
        assert app.events == ["http.disconnect"]
        await finish(loop, app, transport)

    run_with_fake_clock(main)


def test_a_complete_body_stops_the_clock_and_keep_alive_takes_over() -> None:
    async def main(loop: FakeClockLoop) -> None:
        app = Recorder()
        _state, protocol, transport = connect(app, loop, timeout_request_body=2)
        protocol.data_received(HEAD % 3 + b"abc")
        await loop.advance(0)
        assert transport.take().startswith(b"HTTP/1.1 200 ")
        assert protocol.timer is Timer.IDLE
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")  # no body: no body clock
        assert protocol.timer is not Timer.BODY
        await finish(loop, app, transport)

    run_with_fake_clock(main)


def test_timeout_zero_disables_the_body_deadline() -> None:
    async def main(loop: FakeClockLoop) -> None:
        app = Recorder()
        state, protocol, transport = connect(app, loop, timeout_request_body=0)
        protocol.data_received(HEAD % 10 + b"a")
        await tick(loop, state, 600)
        assert not transport.written
        assert not transport.closing
        await finish(loop, app, transport)

    run_with_fake_clock(main)
