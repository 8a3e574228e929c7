"""``--timeout-request-body`` and ``--limit-request-body-rate`` on real sockets.

Once a head is complete its body is due within the timeout, and each ``rate`` bytes received
buy one more second: a client trickling one byte a second is answered 408 (or cut off, once
the app has answered) and the app sees ``http.disconnect``; a steady upload, an app that reads
late, and a client waiting for our 100 Continue are not cut. The same rules on a fake clock:
tests/http/test_body_deadline.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.http_client import Conn, assert_alive, wait_events
from tests.support.servers import RunningServer, module_server

TIMEOUT = 1.0
RATE = 1000  # bytes that buy one more second
# The timeout, one tick (a quarter of it), and slack for a busy machine.
BOUND = TIMEOUT + 2.5


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with module_server(
        "http_app:app",
        "--timeout-request-body",
        str(TIMEOUT),
        "--limit-request-body-rate",
        str(RATE),
    ) as srv:
        yield srv


def head(path: str, length: int, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n" % (
        path.encode(),
        length,
        extra,
    )


def trickle(conn: Conn, until: float, gap: float = 0.2) -> float | None:
    """Send one byte every ``gap`` seconds until the server answers or closes; when it did."""
    started = time.monotonic()
    conn.sock.settimeout(gap)
    while time.monotonic() - started < until:
        try:
            conn.sock.sendall(b"x")
            chunk = conn.sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
        conn.buf += chunk
        return time.monotonic() - started
    return None


def test_a_trickled_body_is_answered_408_at_the_deadline(server: RunningServer) -> None:
    with Conn(server.port) as conn:
        conn.send(head("/wait-body?tag=trickle", 100))
        answered = trickle(conn, until=10)
        assert answered is not None, "still open after 10 s"
        assert TIMEOUT <= answered < BOUND
        assert conn.read_response().status == 408
        assert conn.closed_by_server(4)
    (event,) = wait_events(server, "trickle", "body-wait")
    assert event["message"] == "http.disconnect"
    assert 0 < event["total"] < 100
    assert server.wait_for_log(r"Request body read timed out after \d")
    assert_alive(server)


def test_a_trickled_chunked_body_is_answered_408(server: RunningServer) -> None:
    with Conn(server.port) as conn:
        conn.send(
            b"POST /wait-body?tag=trickle-te HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n64\r\n"
        )
        answered = trickle(conn, until=10)
        assert answered is not None
        assert answered < BOUND
        assert conn.read_response().status == 408
    (event,) = wait_events(server, "trickle-te", "body-wait")
    assert event["message"] == "http.disconnect"


def test_once_the_app_answered_a_trickled_body_closes_the_connection(
    server: RunningServer,
) -> None:
    with Conn(server.port) as conn:
        conn.send(head("/answer-then-read?tag=late", 100))
        answered = trickle(conn, until=10)  # the response head and first part come first
        assert answered is not None
        assert answered < TIMEOUT
        assert b"started" in conn.buf or conn._fill()
        rest = conn.read_all(BOUND + 1)
        assert conn.eof, "the connection stayed open"
        assert b"408" not in rest  # the response was under way: only a close can say it
    (event,) = wait_events(server, "late", "body-wait")
    assert event["message"] == "http.disconnect"


def test_a_steady_upload_outlives_the_timeout(server: RunningServer) -> None:
    """3000 bytes/s against a rate of 1000: every second sent buys three; 3 s in all."""
    size = 9000
    with Conn(server.port) as conn:
        conn.send(head("/wait-body?tag=steady", size))
        for _ in range(30):
            time.sleep(0.1)
            conn.send(b"x" * (size // 30))
        resp = conn.read_response()
        assert resp.status == 200
        assert resp.body == b"9000"


def test_time_the_app_takes_to_read_does_not_count(serve) -> None:
    """The app waits 2 s before reading a 2 MiB body: reading pauses (it is our side that is
    slow), the clock stands still, and the client is not cut, even with a fixed 1 s deadline
    (rate 0: the bytes received buy no time)."""
    srv = serve(
        "http_app:app", "--timeout-request-body", str(TIMEOUT), "--limit-request-body-rate", "0"
    )
    size = 2 * 1024 * 1024
    with Conn(srv.port, timeout=10) as conn:
        conn.send(head("/slow-reader?delay=2", size) + b"z" * size)
        resp = conn.read_response()
        assert resp.status == 200
        assert resp.json()["total"] == size


def test_with_rate_zero_the_deadline_is_fixed(serve) -> None:
    srv = serve(
        "http_app:app", "--timeout-request-body", str(TIMEOUT), "--limit-request-body-rate", "0"
    )
    with Conn(srv.port) as conn:
        conn.send(head("/wait-body", 200_000))  # never completed: 40 x 2500 bytes at most
        started = time.monotonic()
        for _ in range(40):  # 100 KB/s, but a fixed deadline does not care
            conn.send(b"x" * 2500)
            time.sleep(0.05)
            if time.monotonic() - started > BOUND:
                break
        assert conn.read_response().status == 408
        assert time.monotonic() - started < BOUND


def test_the_clock_starts_at_our_100_continue(server: RunningServer) -> None:
    """The app waits 2 s before it asks for the body: the client, waiting for the 100, is not
    the slow one."""
    with Conn(server.port) as conn:
        conn.send(head("/expect?delay=2", 5, b"Expect: 100-continue\r\n"))
        assert conn.read_response().status == 100
        conn.send(b"hello")
        resp = conn.read_response()
        assert resp.status == 200
        assert resp.body == b"read hello"


def test_default_body_deadline_spares_a_pause_of_a_few_seconds(http_app: RunningServer) -> None:
    with Conn(http_app.port) as conn:
        conn.send(head("/wait-body?tag=pause", 10) + b"12345")
        time.sleep(2.5)
        conn.send(b"67890")
        resp = conn.read_response()
        assert resp.status == 200
        assert resp.body == b"10"


def test_the_body_of_an_ignored_upgrade_has_the_same_deadline(server: RunningServer) -> None:
    """A request whose Upgrade we ignore (h2c) has its body framed by a second parser: the
    body deadline must run for it too, even when no byte follows the head."""
    extra = b"Connection: upgrade\r\nUpgrade: h2c\r\n"
    with Conn(server.port) as conn:
        started = time.monotonic()
        conn.send(head("/wait-body?tag=h2c", 100, extra))
        resp = conn.read_response()
        elapsed = time.monotonic() - started
        assert resp.status == 408
        assert TIMEOUT <= elapsed < BOUND
        assert conn.closed_by_server(4)
    assert_alive(server)
