"""The browser-compatible ``WebSocket``: every property, the event order of the HTML spec, and
closing in every state, against our server and the ``websockets`` server (ws:// and wss://)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import re
import socket
import ssl
import struct
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from krandog_asgi.client import (
    CloseEvent,
    ConnectionClosedError,
    ErrorEvent,
    HandshakeRefused,
    InvalidState,
    MessageEvent,
    WebSocket,
    connect,
    run_until_closed,
)
from tests.support.certs import Certificates
from tests.support.fakes import run
from tests.support.peers import (
    STEP,
    WebsocketsPeer,
    accept_websocket,
    frame,
    krandog_server,
    raw_server,
    read_frame,
    read_request,
    switching_protocols,
)

ROOT = Path(__file__).resolve().parents[1]
PEERS = ["krandog-ws", "krandog-wss", "websockets-ws", "websockets-wss"]


@dataclass
class Peer:
    kind: str
    url: str
    ssl: ssl.SSLContext | None

    def socket(self, path: str = "/echo", *args: Any, **options: Any) -> WebSocket:
        return WebSocket(self.url + path, *args, ssl=self.ssl, **options)


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
            yield Peer(request.param, theirs.url, client_ssl)


@pytest.fixture(scope="module")
def websockets_url() -> Iterator[str]:
    with WebsocketsPeer() as theirs:
        yield theirs.url


@pytest.fixture(scope="module")
def krandog_url() -> Iterator[str]:
    with krandog_server() as ours:
        yield ours.ws_url


async def opened(ws: WebSocket) -> None:
    """Wait for the ``open`` event (through ``onopen``), at most STEP seconds."""
    event = asyncio.Event()
    ws.onopen = event.set
    await asyncio.wait_for(event.wait(), STEP)


def record(ws: WebSocket, log: list[tuple[Any, ...]]) -> None:
    """Log every event with the readyState seen inside its handler."""
    ws.onopen = lambda event: log.append(("open", ws.readyState))
    ws.onmessage = lambda event: log.append(("message", event.data, ws.readyState))
    ws.onerror = lambda event: log.append(("error", ws.readyState))
    ws.onclose = lambda event: log.append(
        ("close", event.code, event.reason, event.wasClean, ws.readyState)
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- event order and properties ---------------------------------------------------------------


def test_open_before_messages_then_clean_close(peer: Peer) -> None:
    log: list[tuple[Any, ...]] = []

    async def main() -> None:
        ws = peer.socket("/welcome")
        assert ws.readyState == WebSocket.CONNECTING == 0
        record(ws, log)
        ws.addEventListener("open", lambda event: ws.send("hi"))

        def on_hi(event: MessageEvent) -> None:
            if event.data == "hi":
                ws.close(4001, "done")
                log.append(("after close()", ws.readyState))

        ws.addEventListener("message", on_hi)
        await ws.wait_closed()
        assert ws.readyState == WebSocket.CLOSED

    run(main())
    # Both servers echo the code and the reason; the close event reports what the server sent.
    reason = "done"
    assert log == [
        ("open", 1),
        ("message", "welcome", 1),
        ("message", "hi", 1),
        ("after close()", 2),
        ("close", 4001, reason, True, 3),
    ]


def test_properties(peer: Peer) -> None:
    seen: dict[str, Any] = {}

    async def main() -> None:
        ws = peer.socket("/echo?a=1", ["superchat", "chat"])
        assert ws.url == peer.url + "/echo?a=1"
        assert (ws.protocol, ws.extensions, ws.bufferedAmount, ws.binaryType) == ("", "", 0, "blob")

        def on_open(event: Any) -> None:
            seen.update(
                protocol=ws.protocol,
                extensions=ws.extensions,
                buffered=ws.bufferedAmount,
                state=ws.readyState,
                target=event.target,
                type=event.type,
            )
            ws.close()

        ws.onopen = on_open
        assert ws.onopen is on_open
        await ws.wait_closed()

        assert (ws.CONNECTING, ws.OPEN, ws.CLOSING, ws.CLOSED) == (0, 1, 2, 3)
        assert "readyState=3" in repr(ws)
        plain = peer.socket("/echo", "chat", compression=None)
        plain.onopen = lambda: plain.close()
        await plain.wait_closed()
        assert (plain.protocol, plain.extensions) == ("chat", "")

    run(main())
    assert seen["protocol"] == "superchat"
    assert seen["extensions"].startswith("permessage-deflate")
    assert seen["buffered"] == 0
    assert seen["state"] == WebSocket.OPEN
    assert seen["type"] == "open"
    assert isinstance(seen["target"], WebSocket)


def test_binary_type(peer: Peer) -> None:
    received: list[Any] = []

    async def main() -> None:
        ws = peer.socket()
        with pytest.raises(ValueError, match="binaryType must be 'blob' or 'arraybuffer'"):
            ws.binaryType = "buffer"
        ws.onopen = lambda: ws.send(b"\x01\x02")

        def on_message(event: MessageEvent) -> None:
            received.append(event.data)
            if len(received) == 1:
                ws.binaryType = "arraybuffer"
                ws.send(bytearray(b"\x03"))
            else:
                ws.close()

        ws.onmessage = on_message
        await ws.wait_closed()

    run(main())
    assert received == [b"\x01\x02", bytearray(b"\x03")]
    assert [type(data) for data in received] == [bytes, bytearray]


def test_message_event_details(peer: Peer) -> None:
    events: list[MessageEvent] = []

    async def main() -> None:
        ws = peer.socket("/welcome")
        ws.onmessage = lambda event: (events.append(event), ws.close())
        await ws.wait_closed()

    run(main())
    (event,) = events
    assert (event.type, event.data, event.origin) == ("message", "welcome", peer.url)
    assert "welcome" in repr(event)


# -- errors: always error, then close ---------------------------------------------------------


def test_refused_connection_gives_error_then_close() -> None:
    log: list[tuple[Any, ...]] = []
    errors: list[ErrorEvent] = []

    async def main() -> None:
        ws = WebSocket(f"ws://127.0.0.1:{_closed_port()}/")
        record(ws, log)
        ws.addEventListener("error", errors.append)
        await ws.wait_closed()

    run(main())
    assert log == [("error", 3), ("close", 1006, "", False, 3)]
    assert isinstance(errors[0].error, ConnectionRefusedError)
    assert "Cannot connect to ws://127.0.0.1:" in str(errors[0])


def test_refused_handshake_gives_error_then_close(peer: Peer) -> None:
    log: list[tuple[Any, ...]] = []
    errors: list[ErrorEvent] = []

    async def main() -> None:
        ws = peer.socket("/deny")
        record(ws, log)
        ws.addEventListener("error", errors.append)
        await ws.wait_closed()

    run(main())
    assert log == [("error", 3), ("close", 1006, "", False, 3)]
    assert isinstance(errors[0].error, HandshakeRefused)
    assert errors[0].error.status in (401, 403)


def test_dropped_connection_gives_error_then_close(websockets_url: str) -> None:
    log: list[tuple[Any, ...]] = []

    async def main() -> None:
        ws = WebSocket(websockets_url + "/abort")
        record(ws, log)
        await ws.wait_closed()

    run(main())
    assert log == [("open", 1), ("error", 3), ("close", 1006, "", False, 3)]


def test_protocol_error_from_server_gives_error_then_close() -> None:
    log: list[tuple[Any, ...]] = []
    errors: list[ErrorEvent] = []
    close_frames: list[bytes] = []

    async def misbehave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_websocket(reader, writer)
        writer.write(frame(0x1, b"before") + frame(0x3))  # then a reserved opcode
        close_frames.append((await read_frame(reader))[2])
        await reader.read()

    async def main() -> None:
        async with raw_server(misbehave) as url:
            ws = WebSocket(url, close_timeout=0.5)
            record(ws, log)
            ws.addEventListener("error", errors.append)
            await ws.wait_closed()

    run(main())
    assert log == [
        ("open", 1),
        ("message", "before", 1),
        ("error", 3),
        ("close", 1006, "", False, 3),
    ]
    assert isinstance(errors[0].error, ConnectionClosedError)
    assert errors[0].error.code == 1002
    assert "reserved opcode" in errors[0].message
    assert close_frames[0][:2] == (1002).to_bytes(2, "big")


# -- closing in every state -------------------------------------------------------------------


def test_close_while_connecting_fails_the_connection(peer: Peer) -> None:
    log: list[tuple[Any, ...]] = []

    async def main() -> None:
        ws = peer.socket()
        record(ws, log)
        ws.close()
        assert ws.readyState == WebSocket.CLOSING
        ws.close()  # still a no-op
        await ws.wait_closed()

    run(main())
    assert log == [("error", 3), ("close", 1006, "", False, 3)]


def test_cancelling_the_socket_task_while_connecting_is_not_close() -> None:
    """asyncio.run() ending (or a task group) cancels the socket's task: that is not close(),
    so the cancellation propagates and no error/close events claim close() was called."""
    events: list[str] = []

    async def main() -> None:
        asked, dropped = asyncio.Event(), asyncio.Event()

        async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            asked.set()
            await reader.read()  # until the client drops the connection
            dropped.set()

        async with raw_server(never_answer) as url:
            ws = WebSocket(url, open_timeout=30)
            ws.onerror = lambda event: events.append(f"error: {event.message}")
            ws.onclose = lambda event: events.append(f"close {event.code}")
            await asyncio.wait_for(asked.wait(), STEP)
            task = ws._task
            assert task is not None
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, STEP)
            assert task.cancelled()
            await asyncio.wait_for(ws.wait_closed(), STEP)
            await asyncio.wait_for(dropped.wait(), STEP)  # the connection did not leak

    run(main())
    assert events == []


def test_send_while_connecting_raises(peer: Peer) -> None:
    async def main() -> None:
        ws = peer.socket()
        with pytest.raises(InvalidState, match="still CONNECTING"):
            ws.send("too early")
        ws.onopen = lambda: ws.close()
        await ws.wait_closed()

    run(main())


def test_send_and_close_when_closing_and_closed(peer: Peer) -> None:
    amounts: list[int] = []

    async def main() -> None:
        ws = peer.socket()

        def on_open() -> None:
            ws.close()
            assert ws.readyState == WebSocket.CLOSING
            ws.close(4000)  # no-op while CLOSING
            ws.send("12345")  # discarded, but counted
            amounts.append(ws.bufferedAmount)

        ws.onopen = on_open
        await ws.wait_closed()
        assert ws.readyState == WebSocket.CLOSED
        ws.close()  # no-op when CLOSED
        ws.send(b"abc")
        amounts.append(ws.bufferedAmount)
        with pytest.raises(TypeError, match="str or bytes-like"):
            ws.send(3.14)  # type: ignore[arg-type]

    run(main())
    assert amounts == [5, 8]


def test_server_initiated_close_is_clean(peer: Peer) -> None:
    log: list[tuple[Any, ...]] = []

    async def main() -> None:
        ws = peer.socket("/close/4444")
        record(ws, log)
        await ws.wait_closed()

    run(main())
    assert log == [("open", 1), ("close", 4444, "bye", True, 3)]


def test_ready_state_is_closing_between_the_close_frames_and_the_tcp_close() -> None:
    states: list[int] = []

    async def main() -> None:
        replied, looked = asyncio.Event(), asyncio.Event()

        async def close_slowly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accept_websocket(reader, writer)
            writer.write(frame(0x8, b"\x03\xe8"))
            assert (await read_frame(reader))[0] == 0x8  # the client's reply
            replied.set()
            await looked.wait()  # TCP stays open until the test has looked

        async with raw_server(close_slowly) as url:
            ws = WebSocket(url)
            ws.onclose = lambda: states.append(ws.readyState)
            await asyncio.wait_for(replied.wait(), STEP)
            states.append(ws.readyState)
            looked.set()
            await ws.wait_closed()

    run(main())
    assert states == [WebSocket.CLOSING, WebSocket.CLOSED]


def test_messages_queued_when_close_is_called_are_dropped() -> None:
    """HTML "a WebSocket message has been received": nothing is dispatched unless OPEN, so the
    messages still queued when close() is called never reach the handlers."""
    log: list[tuple[Any, ...]] = []

    async def burst(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        # Five messages in the same write as the 101: all queued before the first dispatch.
        messages = b"".join(frame(0x1, f"m{i}".encode()) for i in range(5))
        writer.write(switching_protocols(request) + messages)
        opcode, _, payload = await read_frame(reader)
        assert opcode == 0x8
        writer.write(frame(0x8, payload))
        await writer.drain()

    async def main() -> None:
        async with raw_server(burst) as url:
            ws = WebSocket(url)

            def on_message(event: MessageEvent) -> None:
                log.append((event.data, ws.readyState))
                ws.close()

            ws.onmessage = on_message
            ws.onclose = lambda event: log.append(("close", event.code, event.wasClean))
            await asyncio.wait_for(ws.wait_closed(), STEP)

    run(main())
    assert log == [("m0", WebSocket.OPEN), ("close", 1000, True)]


def test_close_argument_validation(peer: Peer) -> None:
    async def main() -> None:
        ws = peer.socket()
        for code in (1001, 1011, 2999, 5000):
            with pytest.raises(ValueError, match="1000 or in 3000-4999"):
                ws.close(code)
        with pytest.raises(ValueError, match="at most 123 bytes"):
            ws.close(1000, "é" * 62)
        ws.close(3000, "é" * 61)
        await ws.wait_closed()

    run(main())


def test_buffered_amount_grows_while_the_server_does_not_read(krandog_url: str) -> None:
    amounts: list[int] = []

    async def main() -> None:
        ws = WebSocket(krandog_url + "/no-read", compression=None, close_timeout=0.3)
        await opened(ws)
        chunk = b"x" * 65536
        for _ in range(400):  # at most 25 MiB: far more than the socket buffers hold
            ws.send(chunk)
            amounts.append(ws.bufferedAmount)
            if ws.bufferedAmount > 4 * 1024 * 1024:
                break
            await asyncio.sleep(0)  # let the loop flush what the kernel takes
        ws.close()
        await ws.wait_closed()

    run(main())
    assert amounts[-1] > 4 * 1024 * 1024
    # once the kernel's buffers are full, every send adds at least its payload
    last = amounts[-10:]
    assert all(later - earlier >= 65536 for earlier, later in itertools.pairwise(last))


def test_buffered_amount_counts_application_data_only(krandog_url: str) -> None:
    """WHATWG: bufferedAmount is the bytes of application data (UTF-8 text, binary) queued by
    send() and not yet transmitted, "not including framing overhead". With deflate on, a highly
    compressible message still counts its full size; the close frame counts nothing. (Messages
    sent in the current task always count, whatever the kernel has taken, so these are exact.)"""
    amounts: list[int] = []

    async def main() -> None:
        ws = WebSocket(krandog_url + "/echo")  # deflate negotiated
        await opened(ws)
        assert ws.extensions.startswith("permessage-deflate")
        for message in (b"y" * 100, "é" * 50, "a" * 100_000, b""):
            ws.send(message)
            amounts.append(ws.bufferedAmount)
        ws.close()
        amounts.append(ws.bufferedAmount)
        await ws.wait_closed()
        amounts.append(ws.bufferedAmount)  # a clean close: the server read everything

    run(main())
    assert amounts == [100, 200, 100_200, 100_200, 100_200, 0]


def test_buffered_amount_is_kept_when_a_connection_is_lost_with_data_unsent() -> None:
    """WHATWG: "the number does not reset to zero once the connection closes". A peer that
    never reads: the close times out, the connection is dropped, the count stays."""
    at_close: list[tuple[int, bool]] = []

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_websocket(reader, writer)
        await asyncio.sleep(30)

    async def main() -> None:
        async with raw_server(never_read) as url:
            ws = WebSocket(url, compression=None, close_timeout=0.3)
            ws.onclose = lambda e: at_close.append((ws.bufferedAmount, e.wasClean))
            await opened(ws)
            for _ in range(1000):  # past the kernel's buffers on both sides, then 2 MiB more
                ws.send(b"x" * 65536)
                await asyncio.sleep(0)
                if ws.bufferedAmount > 2 * 1024 * 1024:
                    break
            assert ws.bufferedAmount > 2 * 1024 * 1024
            ws.close()
            await ws.wait_closed()

    run(main())
    ((amount, clean),) = at_close
    assert not clean
    assert amount > 2 * 1024 * 1024


def test_buffered_amount_after_a_reset_counts_only_what_was_unsent() -> None:
    """The server reads every byte, then resets the connection: the count kept after the
    unclean close is what was still unsent when the buffer last drained (at most a write
    buffer's worth), not the whole 4 MiB queued at the last send."""
    at_close: list[tuple[int, bool]] = []
    received = 0

    async def read_all_then_reset(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal received
        await accept_websocket(reader, writer)
        while received < 4 * 1024 * 1024:
            chunk = await reader.read(1 << 20)
            if not chunk:
                return
            received += len(chunk)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST

    async def main() -> None:
        async with raw_server(read_all_then_reset) as url:
            ws = WebSocket(url, compression=None, close_timeout=0.5)
            ws.onclose = lambda e: at_close.append((ws.bufferedAmount, e.wasClean))
            await opened(ws)
            ws.send(b"x" * (4 * 1024 * 1024))
            await ws.wait_closed()

    run(main())
    assert received >= 4 * 1024 * 1024
    ((amount, clean),) = at_close
    assert not clean
    assert amount <= 64 * 1024


def test_buffered_amount_counts_a_message_until_the_loop_moves_on(peer: Peer) -> None:
    """WHATWG: the count is "as of the last time the event loop reached step 1", so it
    "includes any text sent during the execution of the current task"."""
    amounts: list[int] = []

    async def main() -> None:
        ws = peer.socket("/echo")
        await opened(ws)
        ws.send("hello")
        ws.send(b"\x00" * 3)
        amounts.append(ws.bufferedAmount)  # the kernel already took them; still counted
        for _ in range(3):
            await asyncio.sleep(0)
        amounts.append(ws.bufferedAmount)
        ws.close()
        await ws.wait_closed()
        amounts.append(ws.bufferedAmount)  # a clean close: everything was transmitted

    run(main())
    assert amounts == [8, 0, 0]


# -- listeners and handlers -------------------------------------------------------------------


def test_listener_order_once_removal_and_handle_event(peer: Peer) -> None:
    calls: list[str] = []

    class Handler:
        def handleEvent(self, event: Any) -> None:  # the DOM's name
            calls.append(f"object:{event.data}")

    async def main() -> None:
        ws = peer.socket()

        def first(event: Any) -> None:
            calls.append(f"first:{event.data}")

        def removed(event: Any) -> None:
            calls.append("removed")

        ws.addEventListener("message", first)
        ws.addEventListener("message", first)  # a second add is ignored
        ws.onmessage = lambda event: calls.append(f"on:{event.data}")
        ws.addEventListener("message", lambda event: calls.append(f"once:{event.data}"), once=True)
        ws.addEventListener("message", Handler())
        ws.addEventListener("message", removed)
        ws.removeEventListener("message", removed)
        ws.removeEventListener("message", lambda event: None)  # unknown: ignored
        ws.onmessage = lambda event: calls.append(f"on2:{event.data}")  # keeps its position
        ws.addEventListener("message", lambda: calls.append("no-arg"), {"once": True})

        def stop(event: Any) -> None:
            if event.data == "b":
                ws.onmessage = None
                ws.close()

        ws.addEventListener("message", stop)
        ws.onopen = lambda: (ws.send("a"), ws.send("b"))
        with pytest.raises(ValueError, match="Unknown event type 'mesage'"):
            ws.addEventListener("mesage", first)
        with pytest.raises(TypeError, match="must be callable"):
            ws.addEventListener("message", 42)
        await ws.wait_closed()

    run(main())
    assert calls == [
        "first:a", "on2:a", "once:a", "object:a", "no-arg",
        "first:b", "on2:b", "object:b",
    ]  # fmt: skip


def test_async_handlers_are_awaited_in_order(peer: Peer) -> None:
    log: list[str] = []

    async def main() -> None:
        ws = peer.socket()

        async def on_open() -> None:
            for i in range(3):
                ws.send(str(i))
            await asyncio.sleep(0)
            log.append("open done")

        async def on_message(event: MessageEvent) -> None:
            log.append(f"start {event.data}")
            for _ in range(5):
                await asyncio.sleep(0)  # other tasks run; the next event must still wait
            log.append(f"end {event.data}")
            if event.data == "2":
                ws.close()

        async def on_close(event: CloseEvent) -> None:
            await asyncio.sleep(0)
            log.append(f"close {event.code}")

        ws.onopen = on_open
        ws.onmessage = on_message
        ws.onclose = on_close
        await ws.wait_closed()

    run(main())
    assert log == [
        "open done",
        "start 0", "end 0", "start 1", "end 1", "start 2", "end 2",
        "close 1000",
    ]  # fmt: skip


def test_handler_exceptions_are_logged_and_dispatch_goes_on(
    peer: Peer, caplog: pytest.LogCaptureFixture
) -> None:
    after: list[str] = []

    async def main() -> None:
        ws = peer.socket("/welcome")

        def broken(event: Any) -> None:
            raise RuntimeError("handler bug")

        ws.onmessage = broken
        ws.addEventListener("message", lambda event: (after.append(event.data), ws.close()))
        await ws.wait_closed()

    with caplog.at_level(logging.ERROR, logger="krandog_asgi.client"):
        run(main())
    assert after == ["welcome"]
    assert "Exception in a WebSocket 'message' handler" in caplog.text
    assert "handler bug" in caplog.text


def test_listeners_are_matched_with_eq_and_removal_applies_at_once(websockets_url: str) -> None:
    """As in the DOM: a bound method (a new object at each access) is found again with ``==``,
    and a listener removed by an earlier one in the same dispatch does not run."""
    ran: list[str] = []

    class Client:
        def on_open(self, event: Any) -> None:
            ran.append("open")

        def on_message(self, event: Any) -> None:
            ran.append("bound method not removed")

    async def main() -> None:
        client = Client()
        ws = WebSocket(websockets_url + "/welcome")
        ws.addEventListener("open", client.on_open)
        ws.addEventListener("open", client.on_open)  # the same listener: ignored
        ws.addEventListener("message", client.on_message)
        ws.removeEventListener("message", client.on_message)

        def second(event: Any) -> None:
            ran.append("second")

        def third(event: Any) -> None:
            ran.append("third (once)")

        def first(event: Any) -> None:
            ran.append(f"first: {event.data}")
            ws.removeEventListener("message", second)
            ws.removeEventListener("message", third)

        ws.addEventListener("message", first)
        ws.addEventListener("message", second)
        ws.addEventListener("message", third, once=True)
        ws.addEventListener("message", lambda: ws.close())
        await ws.wait_closed()

    run(main())
    assert ran == ["open", "first: welcome"]


def test_a_rejected_handler_leaves_the_old_one_in_place(websockets_url: str) -> None:
    """Assigning something that cannot be called raises TypeError and changes nothing: the
    getter and the dispatch both keep the previous handler (or None)."""
    seen: list[str] = []

    async def main() -> None:
        ws = WebSocket(websockets_url + "/welcome")

        def handler(event: MessageEvent) -> None:
            seen.append(str(event.data))
            ws.close()

        ws.onmessage = handler
        with pytest.raises(TypeError, match="must be callable"):
            ws.onmessage = "not a function"  # type: ignore[assignment]
        assert ws.onmessage is handler
        with pytest.raises(TypeError, match="must be callable"):
            ws.onerror = 42  # type: ignore[assignment]
        assert ws.onerror is None
        await ws.wait_closed()

    run(main())
    assert seen == ["welcome"]


# -- where a WebSocket can be created ---------------------------------------------------------


def test_relay_from_a_server_handler(krandog_url: str, websockets_url: str) -> None:
    """Our server's app creates a browser-style WebSocket inside its running loop."""

    async def main() -> None:
        upstream = websockets_url + "/welcome"
        async with connect(f"{krandog_url}/relay?to={upstream}") as ws:
            assert await ws.recv() == "upstream: welcome"
            await ws.send("hi")
            assert await ws.recv() == "upstream: hi"

    run(main())


def test_socket_left_open_is_dropped_when_its_loop_ends() -> None:
    """asyncio.run cancels the dispatcher; the connection must not outlive the loop."""
    server_saw_eof = threading.Event()

    def serve() -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            ports.put(listener.getsockname()[1])
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(STEP)
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                key = re.search(rb"(?i)sec-websocket-key: *(\S+)", request)
                assert key is not None
                conn.sendall(switching_protocols({"sec-websocket-key": key.group(1).decode()}))
                while conn.recv(4096):
                    pass
                server_saw_eof.set()

    ports: queue.Queue[int] = queue.Queue()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = ports.get(timeout=STEP)

    async def main() -> None:
        ws = WebSocket(f"ws://127.0.0.1:{port}/")
        await opened(ws)
        # return without closing

    asyncio.run(main())
    assert server_saw_eof.wait(STEP)
    thread.join(STEP)


def test_run_until_closed_refuses_to_run_inside_a_loop() -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match=r"await ws\.wait_closed"):
            run_until_closed()

    run(main())


def _script(code: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_example_script_mirrors_the_js_example(websockets_url: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "websocket_client.py"),
            websockets_url + "/echo-once",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Connected!\nReceived: Echo: Hello Server\nConnection closed\n"
    assert result.stderr == ""


def test_example_script_reports_errors() -> None:
    url = f"ws://127.0.0.1:{_closed_port()}"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "websocket_client.py"), url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert result.stdout == "Connection closed\n"
    assert result.stderr.startswith(f"Error: [Errno 111] Cannot connect to {url}/")


def test_run_until_closed_waits_for_sockets_opened_by_handlers(krandog_url: str) -> None:
    result = _script(
        """
        import sys
        from krandog_asgi.client import WebSocket, run_until_closed

        base = sys.argv[1]
        first = WebSocket(base + "/close/1000")

        def open_second(event):
            second = WebSocket(base + "/close/4002")
            second.onclose = lambda e: print("second closed", e.code, e.wasClean)

        first.onopen = open_second
        first.onclose = lambda e: print("first closed", e.code)
        run_until_closed()
        print("returned")
        """,
        krandog_url,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(lines[:2]) == ["first closed 1000", "second closed 4002 True"]
    assert lines[2:] == ["returned"]


def test_run_until_closed_timeout_closes_what_is_still_open(krandog_url: str) -> None:
    result = _script(
        """
        import sys
        from krandog_asgi.client import WebSocket, run_until_closed

        ws = WebSocket(sys.argv[1] + "/echo")
        ws.onopen = lambda: print("open")
        ws.onclose = lambda e: print("close", e.code, e.wasClean)
        run_until_closed(timeout=0.5)
        print("returned", ws.readyState)
        """,
        krandog_url,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["open", "close 1000 True", "returned 3"]


def test_run_until_closed_timeout_also_closes_sockets_opened_after_it(krandog_url: str) -> None:
    """Neither the browser reconnect pattern (a new socket in onclose) nor a socket opened by a
    timer after the deadline keeps run_until_closed(timeout) running: once the deadline has
    passed, new sockets are closed before they connect."""
    result = _script(
        """
        import asyncio, sys
        from krandog_asgi.client import WebSocket, run_until_closed

        def make(name, reconnects):
            ws = WebSocket(sys.argv[1] + "/echo")
            ws.onopen = lambda: print(name, "open")

            def onclose(event):
                print(name, "close", int(event.code))
                if reconnects:
                    make(name, reconnects - 1)

            ws.onclose = onclose

        async def slow_close():  # keeps a socket open past the deadline...
            asyncio.get_running_loop().call_later(0.2, make, "timer", 0)  # ...while a timer
            await asyncio.sleep(0.6)  # opens one from outside any handler
            print("slow closed")

        make("reconnect", 20)
        WebSocket(sys.argv[1] + "/echo").onclose = slow_close
        run_until_closed(timeout=0.5)
        print("returned")
        """,
        krandog_url,
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "returned"
    assert sorted(set(lines[:-1])) == [
        "reconnect close 1000",  # open at the deadline: closed normally
        "reconnect close 1006",  # the 20 reconnects after it never connect
        "reconnect open",
        "slow closed",
        "timer close 1006",
    ]
    assert lines.count("reconnect close 1006") == 20
    assert lines.count("reconnect open") == 1


def test_socket_never_started_warns_at_exit() -> None:
    result = _script(
        """
        from krandog_asgi.client import WebSocket
        ws = WebSocket("ws://127.0.0.1:9/")
        print(ws.readyState)
        """
    )
    assert result.returncode == 0
    assert result.stdout == "0\n"
    assert "RuntimeWarning" in result.stderr
    assert "never connected: call krandog_asgi.client.run_until_closed()" in result.stderr
