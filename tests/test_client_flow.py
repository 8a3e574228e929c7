"""Client behaviour on the wire, against raw servers that do exactly one thing: keepalive,
backpressure, peer protocol errors, and the closing handshake's edge cases."""

from __future__ import annotations

import asyncio
import socket

import pytest

from krandog_asgi.client import (
    ConnectionClosedError,
    ConnectionClosedOK,
    OpenTimeout,
    WebSocket,
    connect,
)
from tests.support.fakes import run
from tests.support.peers import (
    STEP,
    accept_websocket,
    frame,
    krandog_server,
    raw_server,
    read_frame,
)

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


# -- keepalive and pings ----------------------------------------------------------------------


def test_keepalive_pings_and_timeout_when_no_pong() -> None:
    """The server reads pings but never answers: 1011 once ping_timeout passes."""
    pings: list[bytes] = []

    async def no_pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_websocket(reader, writer)
        while True:
            opcode, _, payload = await read_frame(reader)
            if opcode == OP_PING:
                pings.append(payload)

    async def main() -> None:
        async with raw_server(no_pong) as url:
            ws = await connect(url, ping_interval=0.1, ping_timeout=0.2)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert (info.value.code, info.value.reason) == (1011, "keepalive ping timeout")
            assert ws.closed

    run(main())
    assert [len(ping) for ping in pings] == [4]


def test_keepalive_keeps_a_ponging_connection_open() -> None:
    pongs_sent = 0

    async def pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal pongs_sent
        await accept_websocket(reader, writer)
        while True:
            opcode, _, payload = await read_frame(reader)
            if opcode == OP_PING:
                pongs_sent += 1
                writer.write(frame(OP_PONG, payload))
                if pongs_sent == 3:
                    writer.write(frame(OP_TEXT, b"three pongs"))
            elif opcode == OP_CLOSE:
                writer.write(frame(OP_CLOSE, payload))
                return

    async def main() -> None:
        async with raw_server(pong) as url:
            async with connect(url, ping_interval=0.05, ping_timeout=0.5) as ws:
                assert await ws.recv() == "three pongs"
            assert ws.close_code == 1000

    run(main())


def test_server_ping_is_answered_with_a_pong() -> None:
    answered: list[bytes] = []

    async def ping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_websocket(reader, writer)
        writer.write(frame(OP_PING, b"are you there"))
        opcode, _, payload = await read_frame(reader)
        assert opcode == OP_PONG
        answered.append(payload)
        writer.write(frame(OP_TEXT, b"thanks"))
        await read_frame(reader)

    async def main() -> None:
        async with raw_server(ping) as url:
            ws = await connect(url, close_timeout=0.2)
            assert await ws.recv() == "thanks"
            await ws.close()

    run(main())
    assert answered == [b"are you there"]


def test_one_pong_acknowledges_earlier_pings() -> None:
    """RFC 6455 §5.5.3: a pong may answer only the latest of several pings."""

    async def last_pong_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_websocket(reader, writer)
        payloads = [(await read_frame(reader))[2] for _ in range(3)]
        writer.write(frame(OP_PONG, b"unrelated"))
        writer.write(frame(OP_PONG, payloads[-1]))
        await read_frame(reader)

    async def main() -> None:
        async with raw_server(last_pong_only) as url:
            ws = await connect(url, close_timeout=0.2)
            latencies = await asyncio.wait_for(
                asyncio.gather(ws.ping(b"1"), ws.ping(b"2"), ws.ping(b"3")), STEP
            )
            assert all(latency >= 0 for latency in latencies)
            with pytest.raises(ValueError, match="already waiting"):
                await asyncio.gather(ws.ping(b"x"), ws.ping(b"x"))
            await ws.close()

    run(main())


def test_pending_ping_fails_when_the_connection_is_lost() -> None:
    async def drop_on_ping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_websocket(reader, writer)
        await read_frame(reader)
        writer.transport.abort()

    async def main() -> None:
        async with raw_server(drop_on_ping) as url:
            ws = await connect(url)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.ping()
            assert info.value.code == 1006

    run(main())


# -- backpressure -----------------------------------------------------------------------------


def test_send_waits_while_the_server_does_not_read() -> None:
    received = 0
    gate: asyncio.Event | None = None  # set by the test when the server may start reading

    async def slow_reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received
        await accept_websocket(reader, writer)
        assert gate is not None
        await gate.wait()
        while True:
            opcode, _, payload = await read_frame(reader)
            if opcode == OP_CLOSE:
                writer.write(frame(OP_CLOSE, payload))
                return
            received += len(payload)

    async def main() -> None:
        nonlocal gate
        gate = asyncio.Event()
        async with raw_server(slow_reader) as url:
            ws = await connect(url, compression=None, write_limit=64 * 1024)
            chunk = b"x" * 256 * 1024
            sent = 0
            # Fill the kernel buffers and ours; bounded: 256 MiB would be absurd.
            while not ws.protocol.write_paused and sent < 1024:
                ws.protocol.send_data(chunk)
                sent += 1
            assert ws.protocol.write_paused, "the transport never applied backpressure"
            assert ws.protocol.transport.get_write_buffer_size() > 64 * 1024
            blocked = asyncio.ensure_future(ws.send(chunk))
            done, _ = await asyncio.wait({blocked}, timeout=0.3)
            assert not done, "send() returned while the buffer was over its limit"
            gate.set()
            await asyncio.wait_for(blocked, STEP)
            await ws.close()
            assert received == (sent + 1) * len(chunk)

    run(main())


# -- the peer breaks the protocol -------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_frame", "code", "reason"),
    [
        (bytes([0x81, 0x82, 0, 0, 0, 0]) + b"hi", 1002, "masked frame from server"),
        (frame(0x3, b""), 1002, "reserved opcode 3"),
        (frame(OP_TEXT, b"\xff\xfe"), 1007, "invalid UTF-8"),
        (frame(OP_TEXT, b"x", rsv=0x40), 1002, "reserved bits set without an extension"),
        (frame(OP_PING, b"x", fin=False), 1002, "fragmented control frame"),
        (frame(0x0, b"x"), 1002, "continuation frame without a message"),
        (frame(OP_CLOSE, b"\x03\xe7"), 1002, "invalid close code 999"),
    ],
)
def test_protocol_errors_fail_the_connection(bad_frame: bytes, code: int, reason: str) -> None:
    closes: list[bytes] = []

    async def misbehave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_websocket(reader, writer)
        writer.write(frame(OP_TEXT, b"before") + bad_frame)
        opcode, _, payload = await read_frame(reader)
        assert opcode == OP_CLOSE
        closes.append(payload)
        await reader.read()

    async def main() -> None:
        async with raw_server(misbehave) as url:
            async with connect(url, compression=None) as ws:
                assert await ws.recv() == "before"  # what came first is still delivered
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
            assert info.value.code == code
            assert reason in info.value.reason

    run(main())
    assert [int.from_bytes(payload[:2], "big") for payload in closes] == [code]


def test_max_fragments_bounds_frames_per_message() -> None:
    async def fragments(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_websocket(reader, writer)
        for count in (4, 5):
            parts = [
                frame(OP_TEXT if i == 0 else 0x0, b"ab", fin=i == count - 1) for i in range(count)
            ]
            writer.write(b"".join(parts))
        await read_frame(reader)

    async def main() -> None:
        async with raw_server(fragments) as url:
            async with connect(url, max_fragments=4) as ws:
                assert await ws.recv() == "ab" * 4
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
            assert (info.value.code, info.value.reason) == (1009, "too many fragments")

    run(main())


# -- the closing handshake --------------------------------------------------------------------


def test_empty_close_frame_ends_iteration_quietly() -> None:
    async def empty_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_websocket(reader, writer)
        writer.write(frame(OP_TEXT, b"last") + frame(OP_CLOSE))
        opcode, _, payload = await read_frame(reader)
        assert (opcode, payload) == (OP_CLOSE, b"")  # 1005 is echoed as an empty close

    async def main() -> None:
        async with raw_server(empty_close) as url:
            async with connect(url) as ws:
                assert [m async for m in ws] == ["last"]
            assert ws.close_code == 1005

    run(main())


def test_close_times_out_when_the_server_never_answers() -> None:
    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_websocket(reader, writer)
        await reader.read()

    async def main() -> None:
        async with raw_server(deaf) as url:
            ws = await connect(url, close_timeout=0.2)
            await asyncio.wait_for(ws.close(), STEP)
            assert ws.closed
            assert ws.close_code == 1006
            with pytest.raises(ConnectionClosedError):
                await ws.recv()

    run(main())


def test_client_waits_for_the_server_to_close_tcp_then_gives_up() -> None:
    """RFC 6455 §7.1.1: the server closes TCP first; a server that does not is not waited for
    longer than close_timeout, and the close still counts as clean."""

    async def lingering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_websocket(reader, writer)
        _, _, payload = await read_frame(reader)
        writer.write(frame(OP_CLOSE, payload))
        await reader.read()  # keeps TCP open

    async def main() -> None:
        async with raw_server(lingering) as url:
            ws = await connect(url, close_timeout=0.2)
            await asyncio.wait_for(ws.close(4000, "later"), STEP)
            assert (ws.close_code, ws.close_reason) == (4000, "later")
            assert ws.protocol.closed_cleanly
            with pytest.raises(ConnectionClosedError):
                await ws.recv()

    run(main())


def test_messages_queued_before_the_close_are_delivered_first() -> None:
    async def burst(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_websocket(reader, writer)
        writer.write(b"".join(frame(OP_TEXT, str(i).encode()) for i in range(10)))
        writer.write(frame(OP_CLOSE, b"\x03\xe8done"))
        await read_frame(reader)

    async def main() -> None:
        async with raw_server(burst) as url:
            async with connect(url) as ws:
                assert [m async for m in ws] == [str(i) for i in range(10)]
            assert (ws.close_code, ws.close_reason) == (1000, "done")
            with pytest.raises(ConnectionClosedOK):
                await ws.send("too late")

    run(main())


# -- IPv6 -------------------------------------------------------------------------------------


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_literal_url() -> None:
    async def main(url: str) -> None:
        async with connect(url + "/headers") as ws:
            assert ws.remote_address[0] == "::1"
            headers = await ws.recv()
            assert f'"host": "{url[5:]}"' in headers

    with krandog_server(None, "--host", "::1") as server:
        assert server.ws_url.startswith("ws://[::1]:")
        run(main(server.ws_url))


# -- nothing leaks ----------------------------------------------------------------------------


def test_no_timer_task_or_socket_survives_a_closed_connection() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_websocket(reader, writer)
        while True:
            opcode, _, payload = await read_frame(reader)
            if opcode == OP_CLOSE:
                writer.write(frame(OP_CLOSE, payload))
                return
            if opcode == OP_TEXT:
                writer.write(frame(OP_TEXT, payload))

    async def main() -> None:
        before = asyncio.all_tasks()
        async with raw_server(echo) as url:
            async with connect(url, ping_interval=0.05, ping_timeout=5) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
                assert ws.protocol.timer is not None  # keepalive armed
            assert ws.protocol.timer is None
            assert ws.protocol.transport.is_closing()
            assert asyncio.all_tasks() == before

            browser = WebSocket(url, ping_interval=0.05)
            browser.onopen = lambda: browser.close()
            await browser.wait_closed()
            await asyncio.sleep(0)  # the dispatcher task returns right after the close event
            assert browser._protocol is not None
            assert browser._protocol.timer is None
            assert asyncio.all_tasks() == before

    run(main())


def test_open_timeout_closes_the_socket() -> None:
    done: asyncio.Event

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        assert await reader.read() == b""  # the client hung up instead of leaving it open
        done.set()

    async def main() -> None:
        nonlocal done
        done = asyncio.Event()
        async with raw_server(silent) as url:
            with pytest.raises(OpenTimeout):
                await connect(url, open_timeout=0.2)
            await asyncio.wait_for(done.wait(), STEP)

    run(main())
