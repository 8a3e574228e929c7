"""``--limit-max-connections`` and ``--limit-connections-per-ip`` on real sockets.

At the limit, a new connection takes the place of the oldest idle keep-alive connection; when
every connection is busy it is refused (closed before a byte is read, with no answer); WebSocket
connections count too; the per-IP limit counts the peer address. The rules in memory:
tests/process/test_admission.py.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator

import pytest

from tests.support.http_client import Conn, assert_alive, get
from tests.support.servers import RunningServer, module_server, wait_until
from tests.test_ws_server import UPGRADE

# A request whose body never comes: its connection stays busy until the test ends it.
BUSY = b"POST /wait-body?tag=busy HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"


def refused(conn: Conn) -> bool:
    """The server closed the connection without answering (a request sent now gets nothing)."""
    try:
        conn.send(get("/"))
    except (BrokenPipeError, ConnectionResetError):
        return True
    return conn.read_all(3) == b"" and conn.eof


@pytest.fixture
def three(serve) -> RunningServer:
    return serve("http_app:app", "--limit-max-connections", "3")


def test_the_oldest_idle_connection_makes_room(three: RunningServer) -> None:
    conns = [Conn(three.port) for _ in range(3)]
    for conn in conns:  # each becomes idle in this order
        assert conn.request(get("/")).status == 200
        time.sleep(0.05)
    newcomer = Conn(three.port)
    assert newcomer.request(get("/")).status == 200
    assert conns[0].closed_by_server(3)
    for conn in conns[1:]:  # the two idle longest after it are untouched
        assert conn.request(get("/")).status == 200
    for conn in (*conns, newcomer):
        conn.close()


def test_a_connection_that_never_sent_a_request_counts_as_idle(three: RunningServer) -> None:
    silent = Conn(three.port)
    time.sleep(0.1)
    busy = [Conn(three.port) for _ in range(2)]
    for conn in busy:
        conn.send(BUSY)
    time.sleep(0.2)
    newcomer = Conn(three.port)
    assert newcomer.request(get("/")).status == 200
    assert silent.closed_by_server(3)
    for conn in (*busy, newcomer):
        conn.close()


def test_when_every_connection_is_busy_the_new_one_is_refused(three: RunningServer) -> None:
    busy = [Conn(three.port) for _ in range(3)]
    for conn in busy:
        conn.send(BUSY)
    time.sleep(0.3)
    late = Conn(three.port)
    assert refused(late)
    assert three.wait_for_log(r"Refusing connections: --limit-max-connections 3 reached")
    busy[0].send(b"x" * 100)  # one request completes; its connection is idle again
    assert busy[0].read_response().status == 200
    retry = Conn(three.port)
    assert retry.request(get("/")).status == 200
    for conn in (*busy, late, retry):
        conn.close()
    assert wait_until(lambda: _served(three.port))


def test_websocket_connections_count_and_are_never_evicted(serve) -> None:
    server = serve(
        "ws_apps:app", "--limit-max-connections", "2", "--timeout-graceful-shutdown", "1"
    )
    sockets = []
    for _ in range(2):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(UPGRADE)
        assert sock.recv(4096).startswith(b"HTTP/1.1 101 ")
        sockets.append(sock)
    late = Conn(server.port)
    assert refused(late)
    late.close()
    sockets.pop().close()
    assert wait_until(lambda: _served(server.port))
    for sock in sockets:
        sock.close()


def _served(port: int) -> bool:
    with Conn(port) as conn:
        try:
            return conn.request(get("/")).status == 200
        except (ConnectionError, AssertionError):
            return False


# -- per client IP ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def per_ip() -> Iterator[RunningServer]:
    with module_server("http_app:app", "--limit-connections-per-ip", "2") as server:
        yield server


def from_address(port: int, source: str) -> Conn:
    """A Conn whose socket is bound to ``source`` (any 127.x.y.z is loopback on Linux)."""
    conn = Conn.__new__(Conn)
    conn.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    conn.sock.settimeout(5)
    conn.sock.bind((source, 0))
    conn.sock.connect(("127.0.0.1", port))
    conn.timeout, conn.buf, conn.eof = 5.0, b"", False
    return conn


def test_per_ip_limit_refuses_the_third_connection_of_an_address(per_ip: RunningServer) -> None:
    first, second = Conn(per_ip.port), Conn(per_ip.port)
    assert first.request(get("/")).status == 200
    assert second.request(get("/")).status == 200
    third = Conn(per_ip.port)
    assert refused(third)
    assert per_ip.wait_for_log(r"--limit-connections-per-ip 2 reached by 127\.0\.0\.1")
    # Idle connections of the same address are not evicted for it: the limit is per address.
    assert first.request(get("/")).status == 200
    other = from_address(per_ip.port, "127.0.0.2")
    assert other.request(get("/")).status == 200
    first.close()
    assert wait_until(lambda: _served(per_ip.port))  # its slot is free again
    for conn in (second, third, other):
        conn.close()


def test_per_ip_slots_are_released_by_websocket_connections(serve) -> None:
    server = serve(
        "ws_apps:app", "--limit-connections-per-ip", "1", "--timeout-graceful-shutdown", "1"
    )
    for _ in range(3):  # each one ends before the next: the one slot is released every time
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(UPGRADE)
        assert sock.recv(4096).startswith(b"HTTP/1.1 101 ")
        sock.close()
        assert wait_until(lambda: _served(server.port))


def test_server_keeps_serving_after_refusals(three: RunningServer) -> None:
    busy = [Conn(three.port) for _ in range(3)]
    for conn in busy:
        conn.send(BUSY)
    time.sleep(0.3)
    for _ in range(20):
        late = Conn(three.port)
        assert refused(late)
        late.close()
    for conn in busy:
        conn.close()
    assert wait_until(lambda: _served(three.port))
    assert_alive(three)


@pytest.mark.skipif(sys.platform != "linux", reason="counts the server's fds in /proc")
def test_a_flood_of_silent_connections_cannot_lock_out_a_working_client(serve) -> None:
    """200 connections that never send a byte against a limit of 20: they replace each other,
    the server's descriptors stay bounded, and a client with a request is served."""
    server = serve("http_app:app", "--limit-max-connections", "20")
    fd_dir = f"/proc/{server.proc.pid}/fd"
    baseline = len(os.listdir(fd_dir))
    flood = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(200)]
    time.sleep(0.5)
    assert len(os.listdir(fd_dir)) <= baseline + 20 + 2  # (+2: a connection being accepted)
    with Conn(server.port) as conn:
        assert conn.request(get("/")).status == 200
    for sock in flood:
        sock.close()
    assert_alive(server)
