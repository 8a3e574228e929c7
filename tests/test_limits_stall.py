"""``--timeout-write-stall`` on real sockets: a client that reads nothing of a response (HTTP)
or of our messages (WebSocket) is cut off once our writes have made no progress for the
timeout, and the app's ``send`` raises instead of waiting forever; a client that reads slowly
but steadily is not. The fake-clock tests of the same rule are in tests/transport/test_flow.py.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.support.certs import Certificates
from tests.support.http_client import assert_alive, get, wait_events
from tests.support.servers import RunningServer, wait_until
from tests.test_ws_server import UPGRADE

STALL = 1.0
# The bound: the timeout, plus one tick (a quarter of it here), plus time for the kernel buffers
# to fill before our writes pause at all, plus scheduling slack on a busy machine.
BOUND = STALL + 4.0


def non_reading_socket(port: int) -> socket.socket:
    """A client socket with a small receive buffer, so that the server's writes back up soon."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    return sock


def cut_off(sock: socket.socket, timeout: float = 10.0) -> bool:
    """Whether the server closed or reset the connection (reading what it had buffered)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def read_until_closed(sock: socket.socket) -> str:
    """How the connection ended for a client reading all it can: "reset" or "eof"."""
    sock.settimeout(5)
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        return "reset"
    return "eof"


PROC_NET_TCP = Path("/proc/net/tcp")
FIN_WAIT1 = 0x04


def server_end(server_port: int, client: socket.socket) -> tuple[int, int] | None:
    """The server's end of ``client``'s connection as the kernel lists it in /proc/net/tcp:
    (state, bytes in its send queue), or None once the kernel holds nothing of it."""
    client_port = client.getsockname()[1]
    for line in PROC_NET_TCP.read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
        if int(local.split(":")[1], 16) == server_port and (
            int(remote.split(":")[1], 16) == client_port
        ):
            return int(state, 16), int(queues.split(":")[0], 16)
    return None


def assert_reset_and_freed(server_port: int, sock: socket.socket) -> None:
    """The stall close was a reset: the server's socket is gone at once, not left in FIN-WAIT-1
    holding the bytes the client never read, and the client's next read sees the reset."""
    assert wait_until(lambda: server_end(server_port, sock) is None, timeout=5.0), (
        f"the server's end is still {server_end(server_port, sock)} (state, send queue)"
    )
    assert read_until_closed(sock) == "reset"


@pytest.mark.skipif(not PROC_NET_TCP.exists(), reason="needs Linux's /proc/net/tcp")
def test_http_write_stall_close_resets_and_frees_the_unsent_bytes(serve) -> None:
    server = serve("http_app:app", "--timeout-write-stall", str(STALL))
    sock = non_reading_socket(server.port)
    sock.sendall(get("/stream-forever?tag=reset"))
    assert wait_until(lambda: (server_end(server.port, sock) or (0, 0))[1] > 0), (
        "the server's send queue never filled"
    )
    assert server.wait_for_log(r"took no data for \d", timeout=BOUND), server.log
    assert_reset_and_freed(server.port, sock)
    sock.close()
    assert_alive(server)


@pytest.mark.skipif(not PROC_NET_TCP.exists(), reason="needs Linux's /proc/net/tcp")
def test_websocket_write_stall_close_resets_and_frees_the_unsent_bytes(serve) -> None:
    server = serve(
        "ws_apps:app", "--timeout-write-stall", str(STALL), "--timeout-graceful-shutdown", "1"
    )
    sock = non_reading_socket(server.port)
    sock.sendall(UPGRADE.replace(b"/echo", b"/stream"))
    assert server.wait_for_log(r"Closing WebSocket .* took none of our data", timeout=BOUND)
    assert_reset_and_freed(server.port, sock)
    sock.close()
    assert httpx.get(server.url + "/report").status_code == 200  # still serving


def test_http_client_that_reads_nothing_is_cut_off(serve) -> None:
    server = serve("http_app:app", "--timeout-write-stall", str(STALL))
    sock = non_reading_socket(server.port)
    started = time.monotonic()
    sock.sendall(get("/stream-forever?tag=stall"))
    assert server.wait_for_log(r"took no data for \d", timeout=BOUND), server.log
    elapsed = time.monotonic() - started
    assert STALL <= elapsed < BOUND
    (event,) = wait_events(server, "stall", "stream-end")
    assert event["raised"] == "ClientDisconnected", event
    assert cut_off(sock)
    sock.close()
    assert_alive(server)


def test_http_client_that_reads_slowly_is_not_cut_off(serve) -> None:
    """One read every 0.25 s from a small receive buffer (about 100 KiB/s): our writes stay
    paused for many seconds, since the kernel wakes a writer only once half its send buffer is
    free, but every read is acknowledged, which is progress."""
    server = serve("http_app:app", "--timeout-write-stall", str(STALL))
    sock = non_reading_socket(server.port)
    sock.sendall(get("/stream-forever?tag=slow"))
    received = 0
    reading_until = time.monotonic() + 4 * STALL + 1
    while time.monotonic() < reading_until:
        time.sleep(0.25)
        chunk = sock.recv(256 * 1024)
        assert chunk, f"closed after {received} bytes"
        received += len(chunk)
    sock.close()
    assert received > 256 * 1024
    assert "took no data" not in server.log


def test_http_write_stall_can_be_disabled(serve) -> None:
    server = serve("http_app:app", "--timeout-write-stall", "0")
    sock = non_reading_socket(server.port)
    sock.sendall(get("/stream-forever?tag=off"))
    time.sleep(2.5)
    assert "took no data" not in server.log
    sock.close()


def test_websocket_client_that_reads_nothing_is_cut_off(serve) -> None:
    server = serve(
        "ws_apps:app", "--timeout-write-stall", str(STALL), "--timeout-graceful-shutdown", "1"
    )
    sock = non_reading_socket(server.port)
    sock.sendall(UPGRADE.replace(b"/echo", b"/stream"))
    started = time.monotonic()
    assert server.wait_for_log(r"Closing WebSocket .* took none of our data", timeout=BOUND)
    assert STALL <= time.monotonic() - started < BOUND
    assert wait_until(
        lambda: httpx.get(server.url + "/report").json().get("stream", "").startswith("send raised")
    )
    assert cut_off(sock)
    sock.close()


def test_default_write_stall_spares_a_pause_of_a_few_seconds(http_app: RunningServer) -> None:
    """The default (30 s) is far above a client that stops reading for a moment."""
    sock = non_reading_socket(http_app.port)
    size = 8 * 1024 * 1024
    sock.sendall(get(f"/big?size={size}&tag=pause"))
    time.sleep(2.0)
    received = 0
    while received < size:
        chunk = sock.recv(1 << 20)
        assert chunk, f"closed after {received} bytes"
        received += len(chunk)
    sock.close()


def test_tls_client_that_reads_nothing_is_cut_off(serve, certs: Certificates) -> None:
    server = serve(
        "http_app:app",
        "--timeout-write-stall",
        str(STALL),
        "--ssl-certfile",
        str(certs.certfile),
        "--ssl-keyfile",
        str(certs.keyfile),
    )
    raw = non_reading_socket(server.port)
    tls = certs.client_context().wrap_socket(raw, server_hostname="127.0.0.1")
    started = time.monotonic()
    tls.sendall(get("/stream-forever?tag=tls"))
    assert server.wait_for_log(r"took no data for \d", timeout=BOUND), server.log
    assert time.monotonic() - started < BOUND
    tls.close()
    assert "Traceback" not in server.log
