"""Answers to pipelined requests gathered into one write (``http.gather``), on its own and
through ``HTTPProtocol`` on a FakeTransport: one write for a batch, never an answer held back by
a later request's app that waits, the wire order kept with the connection's own writes (100
Continue, error answers, closing), and large answers not held at all.
"""

from __future__ import annotations

import asyncio
from typing import Any

from krandog_asgi.http.gather import GATHER_LIMIT, GatheredWrites
from tests.http.test_cycle import BODY_OK, OK_HEAD, START_OK, connect, exchange, ok_app, settle
from tests.support.fakes import FakeClockLoop, FakeTransport, run_with_fake_clock

OK = OK_HEAD + b"ok"


def request(path: str, extra: bytes = b"") -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: h\r\n%s\r\n" % (path.encode(), extra)


# -- GatheredWrites ---------------------------------------------------------------------------


def test_writes_pass_through_unless_held_and_a_hold_ends_behind_what_was_queued() -> None:
    async def main(loop: FakeClockLoop) -> None:
        transport = FakeTransport(loop)
        gathered = GatheredWrites(transport, loop)
        gathered.write(b"direct")
        assert transport.written == [b"direct"]
        order: list[str] = []
        loop.call_soon(order.append, "queued before the hold")
        gathered.hold()
        gathered.write(b"a")
        gathered.write(b"b")
        gathered.hold()  # a second request started before the first hold ended
        gathered.write(b"c")
        assert transport.written == [b"direct"]
        await asyncio.sleep(0)
        assert order == ["queued before the hold"]
        assert transport.written == [b"direct", b"abc"]  # both holds ended: one write
        gathered.write(b"after")
        assert transport.written[-1] == b"after"

    run_with_fake_clock(main)


def test_close_writes_what_was_gathered_first_and_a_large_answer_is_not_held() -> None:
    async def main(loop: FakeClockLoop) -> None:
        transport = FakeTransport(loop)
        gathered = GatheredWrites(transport, loop)
        gathered.hold()
        gathered.write(b"x" * (GATHER_LIMIT - 1))
        assert transport.written == []
        gathered.write(b"yy")  # over the limit: written at once
        assert transport.written == [b"x" * (GATHER_LIMIT - 1) + b"yy"]
        gathered.write(b"last")
        gathered.close()
        assert transport.written[-1] == b"last"
        assert transport.closing  # FakeTransport refuses a write after close: order kept

    run_with_fake_clock(main)


def test_discard_drops_what_a_lost_connection_cannot_take() -> None:
    async def main(loop: FakeClockLoop) -> None:
        transport = FakeTransport(loop)
        gathered = GatheredWrites(transport, loop)
        gathered.hold()
        gathered.write(b"never delivered")
        gathered.discard()
        await asyncio.sleep(0)
        assert transport.written == []

    run_with_fake_clock(main)


# -- through the connection -------------------------------------------------------------------


def test_a_batch_of_pipelined_requests_is_answered_in_one_write() -> None:
    transport = exchange(ok_app, b"".join(request(f"/{i}") for i in range(16)))
    assert transport.written == [OK * 16]


def test_a_lone_request_is_written_at_once() -> None:
    transport = exchange(ok_app, request("/"), request("/"))
    assert transport.written == [OK, OK]  # nothing queued behind either: nothing gathered


def test_a_waiting_app_never_holds_back_the_answers_before_it() -> None:
    async def main(loop: FakeClockLoop) -> None:
        release = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["path"] == "/wait":
                await release.wait()
            await ok_app(scope, receive, send)

        protocol, transport = connect(app)
        protocol.data_received(request("/0") + request("/1") + request("/wait") + request("/3"))
        await settle(loop)
        assert transport.data == OK * 2  # out while /wait is still waiting
        release.set()
        await settle(loop)
        assert transport.data == OK * 4

    run_with_fake_clock(main)


def test_an_app_that_waits_after_its_head_gets_its_head_out_in_order() -> None:
    async def main(loop: FakeClockLoop) -> None:
        release = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send(START_OK)
            if scope["path"] == "/wait":
                await release.wait()
            await send(BODY_OK)

        protocol, transport = connect(app)
        protocol.data_received(request("/0") + request("/wait") + request("/2"))
        await settle(loop)
        assert transport.data == OK + OK_HEAD  # the head is flushed on the next iteration
        release.set()
        await settle(loop)
        assert transport.data == OK * 3

    run_with_fake_clock(main)


def test_an_error_answer_comes_after_the_gathered_answers_then_the_close() -> None:
    transport = exchange(ok_app, request("/0") + request("/1") + b"GET / HTTP/1.1\r\nBad\r\n\r\n")
    data = transport.data
    assert data.startswith(OK * 2 + b"HTTP/1.1 400 ")
    assert transport.eof_written or transport.closing


def test_connection_close_on_the_last_pipelined_request_writes_everything_first() -> None:
    transport = exchange(
        ok_app, request("/0") + request("/1") + request("/2", b"Connection: close\r\n")
    )
    assert transport.data.count(b"HTTP/1.1 200 OK") == 3
    assert transport.closing  # and FakeTransport would have refused a write after it


def test_100_continue_of_a_pipelined_request_stays_in_order() -> None:
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def main(loop: FakeClockLoop) -> None:
        protocol, transport = connect(echo)
        upload = b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
        upload += b"Expect: 100-continue\r\n\r\n"
        protocol.data_received(request("/0") + upload)
        await settle(loop)
        data = transport.data
        assert data.index(b"HTTP/1.1 200 OK") < data.index(b"HTTP/1.1 100 Continue")
        protocol.data_received(b"abc")
        await settle(loop)
        assert transport.data.endswith(b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")

    run_with_fake_clock(main)


def test_large_pipelined_answers_are_not_held() -> None:
    big = b"z" * GATHER_LIMIT

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": big})

    transport = exchange(app, request("/0") + request("/1") + request("/2"))
    assert len(transport.written) == 3  # each over the limit: written as it comes
    assert transport.data.count(big) == 3


def test_a_client_that_leaves_mid_batch_gets_nothing_written_after() -> None:
    async def main(loop: FakeClockLoop) -> None:
        protocol, transport = connect(ok_app)
        protocol.data_received(request("/0") + request("/1") + request("/2"))
        await asyncio.sleep(0)  # the first answers are gathered, a hold is still pending
        gathered = protocol.gathered
        assert gathered is not None
        assert gathered.parts
        assert gathered.holds
        assert transport.data == b""
        protocol.connection_lost(None)
        await settle(loop)
        assert transport.data == b""  # gathered, then dropped with the connection

    run_with_fake_clock(main)
