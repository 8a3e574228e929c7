"""krandog/sender.py: ``req.ws`` against an in-memory server ``send`` (tests/support/asgi.py).
What a send becomes, what each readyState does with it, the closing rules, the order kept
through flow control, the bounded queue that closes a client with 1008, sends from threads,
and what is left when the connection ends."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

import krandog_asgi
from krandog_asgi.krandog.app import krandog_app
from krandog_asgi.krandog.sender import (
    CLOSED,
    CLOSING,
    CONNECTING,
    OPEN,
    SLOW_CONSUMER_CODE,
    ReadyState,
    WebSocket,
    check_close,
)
from tests.support.asgi import AsgiPeer, websocket_events, websocket_scope
from tests.support.fakes import run

T = TypeVar("T")
LIMIT = 1 << 20


def connection(peer: AsgiPeer, *, limit: int = LIMIT, state: int = OPEN) -> WebSocket:
    """A connection as the app leaves it after the accept (call it on a running loop)."""
    ws = WebSocket(websocket_scope("/chat"), peer.send, limit)
    ws.readyState = state
    return ws


def on_loop(main: Callable[[AsgiPeer], Awaitable[T]]) -> T:
    return run(main(AsgiPeer()))


def text(data: str) -> dict[str, Any]:
    return {"type": "websocket.send", "text": data}


def binary(data: bytes) -> dict[str, Any]:
    return {"type": "websocket.send", "bytes": data}


def close(code: int = 1000, reason: str = "") -> dict[str, Any]:
    return {"type": "websocket.close", "code": code, "reason": reason}


# -- what a send becomes ------------------------------------------------------------------------


def test_str_is_a_text_message_and_bytes_like_a_binary_one() -> None:
    class Color(str, enum.Enum):
        RED = "red"

    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer)
        for data in ("é", b"\x00", bytearray(b"ba"), memoryview(b"mv"), Color.RED, ""):
            await ws.send(data)  # went out at once: nothing to wait for
        assert peer.sent == [
            text("é"),
            binary(b"\x00"),
            binary(b"ba"),
            binary(b"mv"),
            text("red"),
            text(""),
        ]
        assert all(type(m.get("bytes", b"")) is bytes for m in peer.sent)

    on_loop(main)


@pytest.mark.parametrize("data", [123, None, ["x"], 1.5])
def test_anything_else_is_a_type_error(data: Any) -> None:
    async def main(peer: AsgiPeer) -> None:
        with pytest.raises(TypeError, match=r"ws.send\(\) takes str or bytes, not "):
            connection(peer).send(data)
        assert peer.sent == []

    on_loop(main)


def test_send_accepts_str_subclasses_and_close_accepts_1003() -> None:
    class Color(str, enum.Enum):
        RED = "red"

    check_close(1003, "unsupported data")  # RFC 6455 §7.4.1: a valid code to send
    peer = AsgiPeer(*websocket_events("x"))
    app = krandog_asgi.krandog_app(
        lambda req: req.ws.send(Color.RED) if req.type == "websocket" else None
    )
    run(app(websocket_scope(), peer.receive, peer.send))
    assert [m.get("text") for m in peer.sent if m["type"] == "websocket.send"] == ["red"]


# -- readyState ---------------------------------------------------------------------------------


def test_ready_state_is_the_browsers_int() -> None:
    assert (CONNECTING, OPEN, CLOSING, CLOSED) == (0, 1, 2, 3)
    assert (WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED) == (
        0,
        1,
        2,
        3,
    )
    assert [state.name for state in ReadyState] == ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]
    assert (krandog_asgi.OPEN, krandog_asgi.CLOSED) == (1, 3)

    async def main(peer: AsgiPeer) -> None:
        ws = WebSocket(websocket_scope("/chat"), peer.send, LIMIT)
        assert ws.readyState == ws.CONNECTING
        assert type(ws.readyState) is int  # printed or sent as JSON, it reads 0, not a name
        assert repr(ws) == "<WebSocket '/chat' CONNECTING>"
        ws.readyState = OPEN
        assert repr(ws) == "<WebSocket '/chat' OPEN>"
        assert ws.url == "ws://localhost/chat"  # a connection's URL is ws:// unless told
        assert ws.protocol == ""

    on_loop(main)


def test_sends_while_connecting_wait_for_the_accept() -> None:
    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer, state=CONNECTING)
        first = ws.send("é")
        second = ws.send(b"12")
        assert ws.bufferedAmount == 4  # UTF-8 bytes of the text, bytes of the binary
        await asyncio.sleep(0)
        assert peer.sent == []
        ws.readyState = OPEN  # what the app does after the accept...
        ws._start_drainer()  # ...then this
        await asyncio.wait_for(second, 1)
        assert first.done()  # type: ignore[attr-defined]
        assert peer.sent == [text("é"), binary(b"12")]
        assert ws.bufferedAmount == 0

    on_loop(main)


@pytest.mark.parametrize("state", [CLOSING, CLOSED])
def test_sends_once_closing_or_closed_are_dropped(state: int) -> None:
    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer, state=state)
        await ws.send("late")
        await ws.close()
        await asyncio.sleep(0)
        assert peer.sent == []
        assert ws.bufferedAmount == 0

    on_loop(main)


# -- close --------------------------------------------------------------------------------------


def test_close_goes_out_once_and_later_sends_are_dropped() -> None:
    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer)
        ws.send("before")
        await ws.close(4000, "bye now")
        assert ws.readyState == CLOSING
        await ws.close(1000)  # idempotent
        await ws.send("dropped: sent after close")
        assert peer.sent == [text("before"), close(4000, "bye now")]

    on_loop(main)


def test_close_before_the_accept_only_marks_the_refusal() -> None:
    """In an upgrade event the app refuses the connection once the handler returns."""

    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer, state=CONNECTING)
        await ws.close(4000)
        assert ws.readyState == CLOSING
        assert peer.sent == []

    on_loop(main)


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999])
def test_sendable_close_codes(code: int) -> None:
    check_close(code, "")
    check_close(code, "é" * 61 + "x")  # 123 bytes in UTF-8: the most a close frame holds


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 2999, 5000, True, 1000.0, "1000"])
def test_unsendable_close_codes_raise_at_the_call(code: Any) -> None:
    with pytest.raises(ValueError, match=r"Invalid WebSocket close code .* \(use 1000-1003, "):
        check_close(code, "")


@pytest.mark.parametrize("reason", ["é" * 62, b"bytes", None])
def test_a_close_reason_is_a_str_of_at_most_123_bytes(reason: Any) -> None:
    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer)
        with pytest.raises(ValueError, match="at most 123 bytes in UTF-8"):
            ws.close(1000, reason)
        assert ws.readyState == OPEN
        assert peer.sent == []

    on_loop(main)


# -- flow control: order, backpressure and the writer task --------------------------------------


def test_sends_behind_one_held_by_flow_control_queue_in_order() -> None:
    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer)
        tasks = asyncio.all_tasks()
        peer.hold()
        first = ws.send("a")  # the server's send suspends: a writer task takes it over
        queued = [ws.send("bb"), ws.send(b"ccc")]
        assert ws.bufferedAmount == 5
        await asyncio.sleep(0)
        assert peer.holding == 1
        assert peer.sent == [text("a")]
        assert not any(f.done() for f in (first, *queued))  # type: ignore[attr-defined]
        peer.release()
        await asyncio.wait_for(queued[-1], 1)
        assert peer.sent == [text("a"), text("bb"), binary(b"ccc")]
        assert ws.bufferedAmount == 0
        assert ws._drainer is None  # the writer task ended with the queue
        assert asyncio.all_tasks() == tasks
        await ws.send("d")  # nothing ahead of it again: straight to the server
        assert peer.sent[-1] == text("d")

    on_loop(main)


def test_a_client_whose_queue_overflows_is_closed_with_1008_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The close does not wait behind the send stuck in flow control (it may never finish)."""

    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer, limit=1000)
        peer.hold()
        stuck = ws.send(b"x" * 10)
        queued = ws.send(b"y" * 600)
        assert ws.bufferedAmount == 600
        await ws.send(b"z" * 600)  # 600 + 2 x 256 (bookkeeping) + 600 > 1000: overflow
        assert peer.sent == [binary(b"x" * 10), close(SLOW_CONSUMER_CODE)]
        assert ws.readyState == CLOSING
        assert ws.bufferedAmount == 0
        await asyncio.wait_for(queued, 1)  # dropped, but nobody waits forever
        await ws.send("after")
        peer.release()
        await asyncio.wait_for(stuck, 1)
        assert peer.sent == [binary(b"x" * 10), close(SLOW_CONSUMER_CODE)]

    with caplog.at_level(logging.WARNING, "krandog_asgi.error"):
        on_loop(main)
    assert "Closing WebSocket /chat: its send queue exceeded 1000 bytes" in caplog.text


def test_an_overflow_close_held_by_flow_control_is_finished_by_a_task() -> None:
    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer, limit=600)
        tasks = asyncio.all_tasks()
        peer.hold("websocket.send", "websocket.close")
        ws.send("stuck")
        ws.send("a" * 300)
        ws.send("b" * 300)  # overflow: the close suspends too
        assert peer.sent == [text("stuck"), close(SLOW_CONSUMER_CODE)]
        await asyncio.sleep(0)
        assert peer.holding == 2
        assert len(asyncio.all_tasks() - tasks) == 2  # the writer and the close's finisher
        peer.release()
        for _ in range(3):
            await asyncio.sleep(0)
        assert peer.holding == 0
        assert asyncio.all_tasks() == tasks

    on_loop(main)


def test_a_flood_of_tiny_messages_to_a_client_that_never_reads_is_bounded() -> None:
    """Second review: the queue limit counted payload bytes only, so empty or tiny messages
    never reached it. Each queued message is now charged its bookkeeping too."""
    stuck = asyncio.Event()  # the server's send that never completes: a client not reading
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "websocket.close":
            stuck.set()  # like our server: the close ends the connection, a stuck send fails
        elif message["type"] == "websocket.send":
            await stuck.wait()
            raise ConnectionResetError("the client is gone")

    async def handler(req: Any) -> None:
        if req.type == "websocket":
            for _ in range(100_000):
                req.ws.send(b"")  # empty messages, not awaited: zero payload bytes each

    peer = AsgiPeer(*websocket_events("go"))
    run(krandog_app(handler, send_queue_limit=256 * 1024)(websocket_scope(), peer.receive, send))
    closes = [m for m in sent if m["type"] == "websocket.close"]
    assert closes, "the queue never overflowed"
    assert closes[0]["code"] == SLOW_CONSUMER_CODE
    assert len(sent) < 2000


# -- a server send that fails -------------------------------------------------------------------


def test_a_send_to_a_client_that_left_closes_quietly(caplog: pytest.LogCaptureFixture) -> None:
    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer)
        peer.fail_sends(ConnectionResetError("gone"))  # ASGI: send raises an OSError
        await ws.send("a")
        assert ws.readyState == CLOSING
        await ws.send("b")
        assert peer.sent == [text("a")]

    with caplog.at_level(logging.DEBUG, "krandog_asgi.error"):
        on_loop(main)
    assert "WebSocket send on a closed connection: gone" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_any_other_send_failure_is_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer)
        peer.fail_sends(RuntimeError("server bug"))
        await ws.send("a")
        assert ws.readyState == CLOSING

    with caplog.at_level(logging.DEBUG, "krandog_asgi.error"):
        on_loop(main)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "WebSocket send failed"
    ]


def test_a_held_send_that_fails_drops_the_queue_behind_it() -> None:
    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer)
        peer.hold()
        first = ws.send("a")
        queued = ws.send("b")
        await asyncio.sleep(0)
        peer.fail_sends(ConnectionResetError("gone"))
        peer.release()
        await asyncio.wait_for(asyncio.gather(first, queued), 1)
        assert peer.sent == [text("a")]
        assert ws.readyState == CLOSING
        assert ws.bufferedAmount == 0

    on_loop(main)


# -- the end of the connection ------------------------------------------------------------------


def test_finish_cancels_the_writer_and_completes_every_waiting_send() -> None:
    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer)
        peer.hold()
        first = ws.send("a")
        queued = ws.send("b")
        await asyncio.sleep(0)
        assert peer.holding == 1
        ws._finish()
        assert ws.readyState == CLOSED
        await asyncio.wait_for(asyncio.gather(first, queued), 1)
        await asyncio.sleep(0)
        assert peer.holding == 0  # the server's send coroutine was cancelled, not left behind
        assert ws.bufferedAmount == 0
        await ws.send("late")
        assert peer.sent == [text("a")]

    on_loop(main)


def test_await_send_completes_when_the_connection_ends_before_the_writer_runs() -> None:
    """Second review: _finish cancelled the writer task before its first step, so the future
    returned by send() never completed and the server's send coroutine was never closed."""

    async def main() -> bool:
        gate = asyncio.Event()
        closed = []

        async def send(message: dict[str, Any]) -> None:
            try:
                await gate.wait()  # flow control: the send suspends
            finally:
                closed.append(True)

        ws = WebSocket({"path": "/", "headers": []}, send, LIMIT)
        ws.readyState = OPEN
        done = ws.send("hello")  # suspends: a writer task is created...
        ws._finish()  # ...and the connection ends in the same loop pass
        await asyncio.wait_for(asyncio.shield(done), 2)
        return bool(closed)

    assert run(main())


# -- sends from worker threads ------------------------------------------------------------------


def test_sends_from_a_thread_are_handed_to_the_loop_in_order() -> None:
    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer)

        def worker() -> None:
            handles = [ws.send(f"t{i}") for i in range(50)]
            for handle in handles:
                handle.result(5)  # type: ignore[attr-defined]
            ws.close(4001, "from a thread").result(5)  # type: ignore[attr-defined]

        await asyncio.get_running_loop().run_in_executor(None, worker)
        assert peer.sent == [text(f"t{i}") for i in range(50)] + [close(4001, "from a thread")]
        assert ws.readyState == CLOSING
        handle = await asyncio.get_running_loop().run_in_executor(None, ws.send, "late")
        await asyncio.wait_for(handle, 1)  # awaitable on the loop too; dropped: CLOSING
        assert len(peer.sent) == 51

    on_loop(main)


def test_a_thread_send_held_by_flow_control_completes_once_the_server_took_it() -> None:
    async def main(peer: AsgiPeer) -> None:
        ws = connection(peer, state=CONNECTING)
        loop = asyncio.get_running_loop()
        early = await loop.run_in_executor(None, ws.send, "while connecting")
        await asyncio.sleep(0)
        assert not early.done()  # type: ignore[attr-defined]
        peer.hold()
        ws.readyState = OPEN
        ws._start_drainer()
        await asyncio.sleep(0)
        assert peer.sent == [text("while connecting")]
        assert not early.done()  # type: ignore[attr-defined]
        peer.release()
        await asyncio.wait_for(early, 1)

    on_loop(main)
