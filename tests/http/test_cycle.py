"""The ASGI ``http`` exchange (``http.cycle.RequestCycle``) driven through ``HTTPProtocol`` on a
FakeTransport and a FakeClockLoop: the exact ``receive`` events an app gets, the exact bytes
each ``send`` sequence puts on the wire, what happens when the app fails before or after
starting its response, keep-alive and its timer, and the messages the state machine refuses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from krandog_asgi.asgi_types import UnexpectedMessage
from krandog_asgi.config import Config
from krandog_asgi.http.cycle import RequestCycle, RequestState, ResponseState
from krandog_asgi.http.response import ClientDisconnected, error_response
from krandog_asgi.http_protocol import HTTPProtocol
from krandog_asgi.process.state import ServerState
from krandog_asgi.transport.eager import EAGER
from tests.support.fakes import FakeClockLoop, FakeTransport, run_with_fake_clock

App = Callable[[Any, Any, Any], Awaitable[None]]
GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
OK_HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
START_OK = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
BODY_OK = {"type": "http.response.body", "body": b"ok"}
ERROR_500 = error_response(500, "Internal Server Error")


def connect(
    app: App, state: ServerState | None = None, **options: Any
) -> tuple[HTTPProtocol, FakeTransport]:
    """A connection of ``app`` (of ``state``'s server, or of a new one) on a fake transport;
    call inside the running (fake clock) loop."""
    loop = asyncio.get_running_loop()
    if state is None:
        options = {"server_header": False, "date_header": False, **options}
        config = Config(app=app, access_log=False, lifespan="off", **options)
        config.load()
        state = ServerState(config, app, loop)
    protocol = HTTPProtocol(state)
    transport = FakeTransport(loop)
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    return protocol, transport


async def settle(loop: FakeClockLoop, rounds: int = 20) -> None:
    """Let the app's task and the callbacks it scheduled run; no time passes."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def exchange(app: App, *reads: bytes, **options: Any) -> FakeTransport:
    """Feed ``reads`` one by one, letting the app run after each; the transport afterwards."""

    async def main(loop: FakeClockLoop) -> FakeTransport:
        protocol, transport = connect(app, **options)
        for data in reads:
            protocol.data_received(data)
            await settle(loop)
        return transport

    return run_with_fake_clock(main)


async def ok_app(scope: Any, receive: Any, send: Any) -> None:
    await send(START_OK)
    await send(BODY_OK)


# -- receive ----------------------------------------------------------------------------------


def test_receive_delivers_body_chunks_as_they_arrive_then_the_end() -> None:
    events: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            events.append(await receive())
            if not events[-1]["more_body"]:
                break
        await send(START_OK)
        await send(BODY_OK)

    head = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    transport = exchange(app, head + b"5\r\nhello\r\n", b"6\r\n world\r\n", b"0\r\n\r\n")
    assert events == [
        {"type": "http.request", "body": b"hello", "more_body": True},
        {"type": "http.request", "body": b" world", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": False},
    ]
    assert transport.data == OK_HEAD + b"ok"


def test_body_that_arrived_before_receive_comes_in_one_event() -> None:
    events: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for _ in range(3):
            await asyncio.sleep(0)  # the whole body is parsed meanwhile
        events.append(await receive())
        await send(START_OK)
        await send(BODY_OK)

    request = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    request += b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"
    exchange(app, request)
    assert events == [{"type": "http.request", "body": b"abcdef", "more_body": False}]


def test_request_without_body_is_one_empty_event() -> None:
    events: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        events.append(await receive())
        await ok_app(scope, receive, send)

    exchange(app, GET)
    assert events == [{"type": "http.request", "body": b"", "more_body": False}]


def test_receive_after_the_body_waits_for_the_disconnect() -> None:
    events: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        events.append(await receive())
        events.append(await receive())  # blocks until the client goes away

    async def main(loop: FakeClockLoop) -> list[RequestState]:
        protocol, transport = connect(app)
        protocol.data_received(GET)
        await settle(loop)
        cycle = protocol.cycle
        assert cycle is not None
        states = [cycle.request_state]
        assert len(events) == 1
        transport.close()  # connection_lost on the next iteration
        await settle(loop)
        states.append(cycle.request_state)
        return states

    states = run_with_fake_clock(main)
    assert events == [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    ]
    assert states == [RequestState.DELIVERED, RequestState.DISCONNECTED]


def test_receive_after_the_response_is_a_disconnect_at_once() -> None:
    events: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await ok_app(scope, receive, send)
        events.append(await receive())

    transport = exchange(app, GET)
    assert events == [{"type": "http.disconnect"}]
    assert transport.data == OK_HEAD + b"ok"
    assert not transport.closing  # a disconnect event, not a closed connection


def test_half_close_while_the_app_waits_for_body_is_a_disconnect() -> None:
    events: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        events.append(await receive())
        events.append(await receive())
        try:
            await send(START_OK)
        except ClientDisconnected:
            events.append({"type": "send raised ClientDisconnected"})

    async def main(loop: FakeClockLoop) -> FakeTransport:
        protocol, transport = connect(app)
        protocol.data_received(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab")
        await settle(loop)
        protocol.eof_received()  # the body can never complete
        await settle(loop)
        return transport

    transport = run_with_fake_clock(main)
    assert events == [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.disconnect"},
        {"type": "send raised ClientDisconnected"},
    ]
    assert transport.data == b""
    assert transport.closing


def test_half_close_after_a_complete_request_ends_a_waiting_receive_at_once() -> None:
    """The client sent its request and shut its side: waiting for more is waiting for nobody,
    so ``receive`` says disconnect without waiting for the close, and ``send`` then raises."""
    events: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        events.append(await receive())
        events.append(await receive())
        try:
            await send(START_OK)
        except ClientDisconnected:
            events.append({"type": "send raised ClientDisconnected"})

    async def main(loop: FakeClockLoop) -> tuple[bool | None, FakeTransport]:
        protocol, transport = connect(app)
        protocol.data_received(GET)
        keep_open = protocol.eof_received()  # before the app ran: it is still to be answered
        transport.set_protocol(None)  # type: ignore[arg-type]  # no connection_lost: receive alone
        await settle(loop)
        return keep_open, transport

    keep_open, transport = run_with_fake_clock(main)
    assert keep_open is True
    assert events == [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
        {"type": "send raised ClientDisconnected"},
    ]
    assert transport.data == b""
    assert transport.closing


@pytest.mark.skipif(not EAGER, reason="needs eager Tasks (3.12+): on 3.11 the answer is lost")
def test_tls_close_notify_with_the_request_still_gets_the_answer_the_app_gives_at_once() -> None:
    """A TLS transport shuts down once ``eof_received`` returns and drops later writes, so the
    app waiting in this pass's batch must take its first step inside ``eof_received``."""

    async def main(loop: FakeClockLoop) -> tuple[bytes, bytes, FakeTransport]:
        protocol, transport = connect(ok_app)
        protocol.scheme = "https"
        protocol.data_received(GET)
        before = transport.data  # the app has not run yet: its start is deferred
        protocol.eof_received()
        answered = transport.data
        await settle(loop)
        return before, answered, transport

    before, answered, transport = run_with_fake_clock(main)
    assert before == b""
    assert answered == OK_HEAD + b"ok"
    assert transport.closing


def test_expect_100_continue_is_answered_when_the_app_reads() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["body"] == b"abc"
        await ok_app(scope, receive, send)

    async def main(loop: FakeClockLoop) -> tuple[bytes, FakeTransport]:
        protocol, transport = connect(app)
        protocol.data_received(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        )
        await settle(loop)
        interim = transport.take()
        protocol.data_received(b"abc")
        await settle(loop)
        return interim, transport

    interim, transport = run_with_fake_clock(main)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert transport.data == OK_HEAD + b"ok"
    assert not transport.closing


def test_answering_without_reading_an_expected_body_closes() -> None:
    head = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    transport = exchange(ok_app, head)
    # No 100 Continue was sent, so the client may or may not send the body: close after.
    assert transport.data == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
    assert transport.closing or transport.eof_written


# -- send: framing as the app drives it ---------------------------------------------------------


def test_content_length_response_is_one_write() -> None:
    transport = exchange(ok_app, GET)
    assert transport.written == [OK_HEAD + b"ok"]
    assert not transport.closing


def test_streamed_response_without_length_is_chunked() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"cde", "more_body": True})
        await send({"type": "http.response.body"})

    transport = exchange(app, GET)
    assert transport.written == [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n",
        b"3\r\ncde\r\n",
        b"0\r\n\r\n",
    ]
    assert not transport.closing


def test_http10_response_without_length_is_close_delimited() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"c"})

    transport = exchange(app, b"GET / HTTP/1.0\r\n\r\n")
    assert transport.data == b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nabc"
    assert transport.closing


def test_head_request_gets_headers_and_no_body() -> None:
    transport = exchange(ok_app, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", GET)
    assert transport.data == OK_HEAD + OK_HEAD + b"ok"  # keep-alive: the next request is served


@pytest.mark.parametrize(
    ("status", "head"),
    [
        (204, b"HTTP/1.1 204 No Content\r\n\r\n"),
        (304, b"HTTP/1.1 304 Not Modified\r\ncontent-length: 2\r\n\r\n"),
    ],
)
def test_204_and_304_carry_no_body(status: int, head: bytes) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({**START_OK, "status": status})
        await send(BODY_OK)

    transport = exchange(app, GET, GET)
    assert transport.data == head + head
    assert not transport.closing


def test_informational_status_from_the_app_is_refused_and_answered_500() -> None:
    raised: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "status": 103, "headers": []})
        except ValueError as exc:
            raised.append(exc)
            raise

    transport = exchange(app, GET)
    assert len(raised) == 1
    assert transport.data == ERROR_500


def test_head_waits_for_the_next_loop_iteration_when_the_body_is_late() -> None:
    gate = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(START_OK)
        await gate.wait()
        await send(BODY_OK)

    async def main(loop: FakeClockLoop) -> tuple[list[bytes], FakeTransport]:
        protocol, transport = connect(app)
        protocol.data_received(GET)
        await settle(loop)
        before = list(transport.written)
        gate.set()
        await settle(loop)
        return before, transport

    before, transport = run_with_fake_clock(main)
    assert before == [OK_HEAD]  # flushed by ServerState.flush_heads, not held back
    assert transport.written == [OK_HEAD, b"ok"]


# -- app failures -----------------------------------------------------------------------------


def test_error_before_start_is_a_500_and_a_close() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    transport = exchange(app, GET, GET)
    assert transport.data == ERROR_500  # the second request is never answered
    assert transport.closing or transport.eof_written


def test_error_after_start_before_any_byte_replaces_the_response_with_500() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(START_OK)
        raise RuntimeError("boom")  # the head is still pending: nothing on the wire

    transport = exchange(app, GET)
    assert transport.data == ERROR_500


def test_error_after_bytes_went_out_closes_without_500() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("boom")

    transport = exchange(app, GET, GET)
    assert transport.data == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\npart\r\n"
    assert transport.closing  # no last chunk: the client knows the body is cut off


def test_error_500_for_a_head_request_has_no_body() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    transport = exchange(app, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert transport.data == error_response(500, "Internal Server Error", head=True)


def test_returning_without_a_response_is_a_500() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    assert exchange(app, GET).data == ERROR_500


def test_returning_after_start_only_is_a_500() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(START_OK)

    assert exchange(app, GET).data == ERROR_500


def test_returning_mid_body_closes() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(START_OK)
        await send({"type": "http.response.body", "body": b"o", "more_body": True})

    transport = exchange(app, GET)
    assert transport.data == OK_HEAD + b"o"
    assert transport.closing


def test_body_over_content_length_before_any_byte_is_a_500() -> None:
    raised: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(START_OK)
        try:
            await send({"type": "http.response.body", "body": b"too long"})
        except RuntimeError as exc:
            raised.append(exc)

    transport = exchange(app, GET)
    assert [str(e) for e in raised] == ["Response content longer than Content-Length"]
    assert transport.data == ERROR_500


# -- keep-alive -------------------------------------------------------------------------------


def test_keep_alive_serves_requests_one_after_another() -> None:
    transport = exchange(ok_app, GET, GET, GET)
    assert transport.written == [OK_HEAD + b"ok"] * 3
    assert not transport.closing


def test_pipelined_requests_are_answered_in_order() -> None:
    paths: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        paths.append(scope["path"])
        await ok_app(scope, receive, send)

    request = b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n"
    transport = exchange(app, b"".join(request % i for i in range(3)))
    assert paths == ["/0", "/1", "/2"]
    assert transport.written == [(OK_HEAD + b"ok") * 3]  # gathered: one write, one packet


def test_connection_close_request_closes_after_its_response() -> None:
    transport = exchange(ok_app, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert transport.data == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
    assert transport.closing


def test_idle_connection_closes_when_the_keep_alive_timer_fires() -> None:
    async def main(loop: FakeClockLoop) -> list[bool]:
        protocol, transport = connect(ok_app, timeout_keep_alive=5)
        protocol.data_received(GET)
        await settle(loop)
        assert protocol.deadline == loop.time() + 5
        seen = []
        for step in (4.9, 0.2):
            await loop.advance(step)
            if protocol.deadline <= loop.time():
                protocol.on_deadline(loop.time())  # as ServerState.tick does
            seen.append(transport.closing)
        return seen

    assert run_with_fake_clock(main) == [False, True]


# -- the state machine refuses what it does not allow -------------------------------------------


@pytest.mark.parametrize(
    ("before", "message", "error"),
    [
        ([], BODY_OK, "'http.response.body' before 'http.response.start'"),
        ([START_OK], START_OK, "'http.response.start' sent twice"),
        ([], {"type": "http.response.nope"}, "type 'http.response.nope' in an HTTP connection"),
        ([START_OK], {"type": "websocket.send"}, "type 'websocket.send' in an HTTP"),
        ([START_OK, BODY_OK], {"type": "http.response.trailers"}, "type 'http.response.trailers'"),
    ],
)
def test_unexpected_message_raises_one_error_type(
    before: list[dict[str, Any]], message: dict[str, Any], error: str
) -> None:
    raised: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for m in before:
            await send(m)
        try:
            await send(message)
        except Exception as exc:
            raised.append(exc)
        if not before:
            await send(START_OK)
        if len(before) < 2:
            await send(BODY_OK)

    transport = exchange(app, GET)
    assert len(raised) == 1
    assert isinstance(raised[0], UnexpectedMessage)
    assert isinstance(raised[0], RuntimeError)
    assert error in str(raised[0])
    assert transport.data == OK_HEAD + b"ok"  # the valid response after the misuse goes out


def test_messages_after_the_response_are_ignored() -> None:
    returned: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await ok_app(scope, receive, send)
        await send(BODY_OK)  # ASGI: further messages on the channel are ignored, not errors
        await send(START_OK)
        returned.append(True)

    transport = exchange(app, GET, GET)
    assert returned == [True, True]
    assert transport.written == [OK_HEAD + b"ok"] * 2


def test_send_after_the_client_left_raises_client_disconnected() -> None:
    raised: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        assert await receive() == {"type": "http.disconnect"}
        try:
            await send(START_OK)
        except OSError as exc:
            raised.append(exc)
            raise

    async def main(loop: FakeClockLoop) -> FakeTransport:
        protocol, transport = connect(app)
        protocol.data_received(GET)
        await settle(loop)
        protocol.connection_lost(None)
        await settle(loop)
        return transport

    transport = run_with_fake_clock(main)
    assert [type(e) for e in raised] == [ClientDisconnected]
    assert transport.data == b""


def test_response_state_follows_start_body_done() -> None:
    seen: list[ResponseState] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        cycle = send.__self__  # the app may run before data_received returns: no other handle
        assert isinstance(cycle, RequestCycle)
        seen.append(cycle.response_state)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        seen.append(cycle.response_state)
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        seen.append(cycle.response_state)
        await send({"type": "http.response.body"})
        seen.append(cycle.response_state)

    async def main(loop: FakeClockLoop) -> None:
        protocol, _ = connect(app)
        protocol.data_received(GET)
        await settle(loop)

    run_with_fake_clock(main)
    assert seen == [ResponseState.START, ResponseState.BODY, ResponseState.BODY, ResponseState.DONE]


# -- starting the app: inline after the parser, a Task only when it waits -----------------------


def test_the_app_runs_in_the_next_pass_not_inside_data_received() -> None:
    async def main(loop: FakeClockLoop) -> FakeTransport:
        protocol, transport = connect(ok_app)
        protocol.data_received(GET)
        assert transport.data == b""  # the parser's read returned first
        await asyncio.sleep(0)
        assert transport.data == OK_HEAD + b"ok"  # one loop pass later
        return transport

    run_with_fake_clock(main)


@pytest.mark.skipif(not EAGER, reason="eager tasks need Python 3.12+")
def test_apps_of_one_pass_start_together_from_one_callback_each_in_an_eager_task() -> None:
    """Three connections read in one pass: one scheduled callback starts the three apps; an
    app that never waits has finished in its eager first step (its Task never scheduled)."""
    cycles: list[RequestCycle] = []
    scheduled: list[object] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        cycles.append(send.__self__)
        await send(START_OK)
        await send(BODY_OK)

    async def main(loop: FakeClockLoop) -> list[FakeTransport]:
        first = connect(app)
        conns = [first, connect(app, first[0].state), connect(app, first[0].state)]
        call_soon = loop.call_soon

        def counting_call_soon(callback: Any, *args: Any, **kwargs: Any) -> Any:
            scheduled.append(callback)
            return call_soon(callback, *args, **kwargs)

        loop.call_soon = counting_call_soon  # type: ignore[method-assign]
        for protocol, _ in conns:
            protocol.data_received(GET)
        loop.call_soon = call_soon  # type: ignore[method-assign]
        assert [t.data for _, t in conns] == [b""] * 3
        await asyncio.sleep(0)
        return [t for _, t in conns]

    transports = run_with_fake_clock(main)
    assert len(scheduled) == 1  # one callback for the three requests
    assert [t.data for t in transports] == [OK_HEAD + b"ok"] * 3
    assert [c.task is not None and c.task.done() for c in cycles] == [True] * 3


def test_an_app_that_waits_goes_on_in_a_task() -> None:
    async def main(loop: FakeClockLoop) -> tuple[FakeTransport, RequestCycle]:
        gate = asyncio.Event()
        cycles: list[RequestCycle] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            cycles.append(send.__self__)
            await gate.wait()
            await send(START_OK)
            await send(BODY_OK)

        protocol, transport = connect(app)
        protocol.data_received(GET)
        await settle(loop)
        assert transport.data == b""
        assert protocol.cycle is cycles[0]
        task = cycles[0].task
        assert isinstance(task, asyncio.Task)
        assert not task.done()
        gate.set()
        await settle(loop)
        assert task.done()
        return transport, cycles[0]

    transport, _ = run_with_fake_clock(main)
    assert transport.data == OK_HEAD + b"ok"


def test_the_app_starts_only_after_the_parser_consumed_the_whole_read() -> None:
    """Never inside a parser callback: when the first app runs, the second request of the
    same read has already been parsed and queued behind it."""
    queued: list[int] = []

    async def main(loop: FakeClockLoop) -> FakeTransport:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            queued.append(len(protocol.pipeline))
            await send(START_OK)
            await send(BODY_OK)

        protocol, transport = connect(app)
        protocol.data_received(GET + GET)
        await settle(loop)
        return transport

    transport = run_with_fake_clock(main)
    assert queued == [1, 0]
    assert transport.data == (OK_HEAD + b"ok") * 2


def test_a_bad_request_after_a_good_one_in_the_same_read_is_answered_after_it() -> None:
    transport = exchange(ok_app, GET + b"NOT HTTP\r\n\r\n")
    response = transport.data
    assert response.startswith(OK_HEAD + b"ok" + b"HTTP/1.1 400 Bad Request\r\n")
    assert transport.eof_written or transport.closing


def test_context_variables_an_app_sets_do_not_leak_into_the_next_request() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(var.get())
        var.set(scope["path"])
        await send(START_OK)
        await send(BODY_OK)

    exchange(app, GET, GET.replace(b"/ ", b"/two "))
    assert seen == ["unset", "unset"]


def test_header_names_of_any_spelling_reach_the_app_lower_case() -> None:
    seen: list[list[tuple[bytes, bytes]]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["headers"])
        await send(START_OK)
        await send(BODY_OK)

    request = (
        b"GET / HTTP/1.1\r\nHOST: h\r\nUser-Agent: t \r\nX-Odd-NAME: v\r\n"
        b"content-TYPE: text/plain\r\n\r\n"
    )
    exchange(app, request, request)
    expected = [
        (b"host", b"h"),
        (b"user-agent", b"t"),
        (b"x-odd-name", b"v"),
        (b"content-type", b"text/plain"),
    ]
    assert seen == [expected, expected]
    assert seen[0][1][0] is seen[1][1][0]  # a common name is one shared bytes object
