"""Server-sent events with sse-starlette: events reach the client as they are produced, a
client that goes away cancels the generator, and a graceful shutdown ends an endless stream."""

from __future__ import annotations

import signal
import socket
import struct
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.http_client import get
from tests.support.servers import RunningServer, module_server, start_server, wait_until


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with module_server("starlette_extras:app") as srv:
        yield srv


def parse_events(text: str) -> list[dict[str, str]]:
    """The fields of each event (``data`` lines joined with newlines); comments dropped."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            event[name] = event[name] + "\n" + value if name in event else value
        if event:
            events.append(event)
    return events


def seen(server: RunningServer) -> list[str]:
    return list(httpx.get(server.url + "/sse-seen").json())


def drain(lines: Iterator[str], deadline: float, into: list[str] | None = None) -> None:
    """Read lines until the stream ends (or the test's hang guard passes), keeping them."""
    for line in lines:
        if into is not None:
            into.append(line)
        assert time.monotonic() < deadline


def test_sse_event_stream_fields(server: RunningServer) -> None:
    with httpx.stream("GET", server.url + "/sse") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in r.headers
        text = r.read().decode()
    assert parse_events(text) == [
        {"id": "0", "event": "tick", "data": "tick 0"},
        {"id": "1", "event": "tick", "data": "tick 1"},
        {"id": "2", "event": "tick", "data": "tick 2"},
        {"event": "multi", "data": "line one\nline two"},
        {"event": "end", "data": "bye"},
    ]


def test_sse_events_arrive_before_the_stream_ends(server: RunningServer) -> None:
    with httpx.stream("GET", server.url + "/sse-endless?tag=live") as r:
        lines = r.iter_lines()
        first = [next(lines) for _ in range(2)]
    assert first == ["id: 0", "data: live 0"]
    assert wait_until(lambda: "cancelled:live" in seen(server))


def test_sse_client_close_cancels_generator(server: RunningServer) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(get("/sse-endless?tag=closed", extra="Accept: text/event-stream\r\n"))
    assert b"closed 0" in sock.recv(65536)
    sock.close()
    assert wait_until(lambda: "cancelled:closed" in seen(server))


def test_sse_client_reset_cancels_generator(server: RunningServer) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(get("/sse-endless?tag=reset"))
    assert b"reset 0" in sock.recv(65536)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST instead of FIN
    assert wait_until(lambda: "cancelled:reset" in seen(server))
    assert httpx.get(server.url + "/sse").status_code == 200


def test_sse_endless_stream_ends_at_graceful_shutdown_deadline() -> None:
    server = start_server("starlette_extras:app", "--timeout-graceful-shutdown", "1")
    try:
        with httpx.stream("GET", server.url + "/sse-endless?tag=shutdown") as r:
            lines = r.iter_lines()
            assert next(lines) == "id: 0"
            signalled = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            # The stream goes on until the deadline; then the server cuts it mid-body. The
            # deadline is the server's (measured on its own loop from when it handled the
            # signal), so only a lower bound holds on a busy machine; 30 s guards a hang.
            after_signal: list[str] = []
            with pytest.raises(httpx.RemoteProtocolError):
                drain(lines, signalled + 30, after_signal)
            assert time.monotonic() - signalled >= 1.0
            assert "data: shutdown 1" in after_signal  # events kept coming after SIGTERM
        assert server.proc.wait(30) == 0, server.log
    finally:
        server.stop()
    assert server.wait_for_log("sse generator cancelled: shutdown", timeout=10), server.log
    # In order: the deadline passed, then the task was cancelled (no clean end before it).
    log = server.log
    assert log.index("Graceful shutdown timed out") < log.index("sse generator cancelled"), log
