"""Size limits, timeouts and concurrency limits: every limit has a default, a flag and a test.

Timeouts are exercised with small flag values and bounded waits.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.http_client import Conn, assert_alive, get, post, statuses, wait_events
from tests.support.servers import RunningServer, module_server, raw_request


@pytest.fixture(scope="module")
def small() -> Iterator[RunningServer]:
    """Small limits, to test the flags themselves."""
    with module_server(
        "http_app:app",
        "--limit-request-line",
        "100",
        "--limit-request-headers",
        "2k",
        "--limit-request-fields",
        "10",
        "--limit-request-body",
        "1000",
    ) as srv:
        yield srv


def exchange(port: int, data: bytes, timeout: float = 2.0) -> tuple[bytes, bool]:
    with Conn(port) as c:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw = c.read_all(timeout)
        return raw, c.eof


# -- request line -------------------------------------------------------------------------


def test_default_request_line_limit_is_8k(http_app: RunningServer) -> None:
    ok = "/" + "a" * (8 * 1024 - 100)
    with Conn(http_app.port) as c:
        assert c.request(get(ok)).status == 200
    raw, closed = exchange(http_app.port, get("/" + "a" * (8 * 1024 + 10)))
    assert statuses(raw) == [414]
    assert closed


def test_request_line_limit_flag(small: RunningServer) -> None:
    with Conn(small.port) as c:
        assert c.request(get("/" + "a" * 90)).status == 200
    raw, closed = exchange(small.port, get("/" + "a" * 101))
    assert statuses(raw) == [414]
    assert closed


def test_request_line_limit_counts_the_query(small: RunningServer) -> None:
    raw, _ = exchange(small.port, get("/?" + "q" * 120))
    assert statuses(raw) == [414]


def test_request_line_limit_when_sent_in_pieces(small: RunningServer) -> None:
    with Conn(small.port) as c:
        c.send(b"GET /")
        for _ in range(15):
            c.send(b"aaaaaaaaaa")
            time.sleep(0.01)
        raw = c.read_all()
    assert statuses(raw) == [414]


# -- header block -------------------------------------------------------------------------


def test_default_header_block_limit_is_64k(http_app: RunningServer) -> None:
    # Just under: several big headers (cookies, JWTs) are fine.
    headers = "".join(f"X-Big-{i}: {'v' * 7000}\r\n" for i in range(8))
    with Conn(http_app.port) as c:
        assert c.request(get("/", extra=headers)).status == 200
    headers = "".join(f"X-Big-{i}: {'v' * 7000}\r\n" for i in range(10))
    raw, closed = exchange(http_app.port, get("/", extra=headers))
    assert statuses(raw) == [431]
    assert closed


def test_huge_single_header_is_431(http_app: RunningServer) -> None:
    raw, closed = exchange(http_app.port, get("/", extra=f"X-Huge: {'v' * 100_000}\r\n"))
    assert statuses(raw) == [431]
    assert closed


def test_endless_header_is_cut(http_app: RunningServer) -> None:
    """A header that never ends is refused once the limit is passed, not buffered forever."""
    with Conn(http_app.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent = 0
        try:
            while sent < 4_000_000:
                c.send(b"v" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw = c.read_all(3)
    assert statuses(raw) == [431]


def test_header_limit_flag(small: RunningServer) -> None:
    with Conn(small.port) as c:
        assert c.request(get("/", extra=f"X-A: {'v' * 1500}\r\n")).status == 200
    raw, closed = exchange(small.port, get("/", extra=f"X-A: {'v' * 2100}\r\n"))
    assert statuses(raw) == [431]
    assert closed


def test_header_limit_applies_to_pipelined_requests(small: RunningServer) -> None:
    """A big head right behind a small request in the same packet is still measured."""
    big = get("/", extra="".join(f"X-{i}: {'v' * 500}\r\n" for i in range(8)))
    raw, closed = exchange(small.port, get("/first") + big)
    assert statuses(raw) == [200, 431]
    assert closed


def test_header_field_count_limit(small: RunningServer) -> None:
    with Conn(small.port) as c:
        assert c.request(get("/", extra="X-A: 1\r\n" * 9)).status == 200
    raw, closed = exchange(small.port, get("/", extra="X-A: 1\r\n" * 11))
    assert statuses(raw) == [431]
    assert closed


def test_default_field_count_limit_is_100(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        assert c.request(get("/", extra="X-A: 1\r\n" * 99)).status == 200
    raw, _ = exchange(http_app.port, get("/", extra="X-A: 1\r\n" * 101))
    assert statuses(raw) == [431]


def test_trailer_section_is_bounded(http_app: RunningServer) -> None:
    """Trailers are header fields too: an endless trailer is refused, not buffered."""
    with Conn(http_app.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        c.send(b"3\r\nabc\r\n0\r\nX-Trailer: ")
        sent = 0
        try:
            while sent < 2_000_000:
                c.send(b"v" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw = c.read_all(3)
    # Unbounded, the request would never end and never be answered.
    assert statuses(raw) == [431]


def test_trailer_field_count_is_bounded(small: RunningServer) -> None:
    trailer = b"X-T: 1\r\n" * 20
    req = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
    raw, closed = exchange(small.port, req + trailer + b"\r\n")
    assert statuses(raw) == [431]
    assert closed


# -- body ---------------------------------------------------------------------------------


def test_body_limit_by_content_length_is_immediate(small: RunningServer) -> None:
    """Refused from the header alone, without waiting for (or reading) the body."""
    with Conn(small.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 413
        assert c.closed_by_server(3)


def test_body_limit_exact_size_is_fine(small: RunningServer) -> None:
    with Conn(small.port) as c:
        assert c.request(post("/echo", b"x" * 1000)).body == b"x" * 1000


def test_body_limit_chunked_counts_the_total(small: RunningServer) -> None:
    """The limit is on the whole body, not on what is buffered at one time."""
    with Conn(small.port) as c:
        c.send(b"POST /wait-body?tag=lim HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(5):
            c.send(b"12c\r\n" + b"x" * 300 + b"\r\n")
            time.sleep(0.05)
        raw = c.read_all(2)
    assert statuses(raw) == [413]


def test_body_limit_chunked_tells_the_reading_app_http_disconnect(small: RunningServer) -> None:
    with Conn(small.port) as c:
        c.send(
            b"POST /wait-body?tag=lim-dc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        c.send(b"258\r\n" + b"x" * 600 + b"\r\n")
        time.sleep(0.1)  # the app has read those 600 bytes
        c.send(b"258\r\n" + b"x" * 600 + b"\r\n")
        assert c.read_response().status == 413
    (event,) = wait_events(small, "lim-dc", "body-wait")
    assert event["message"] == "http.disconnect"
    assert event["total"] == 600


def test_body_limit_content_length_read_slowly(small: RunningServer) -> None:
    with Conn(small.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n")
        c.send(b"x" * 900)
        assert c.read_response().status == 200


def test_default_body_limit_lets_large_bodies_through(http_app: RunningServer) -> None:
    body = b"y" * (5 * 1024 * 1024)
    r = httpx.post(http_app.url + "/echo", content=body, timeout=20)
    assert r.status_code == 200
    assert len(r.content) == len(body)


def test_default_body_limit_is_100_mib(http_app: RunningServer) -> None:
    """Refused from the Content-Length alone: not one byte of the body is needed."""
    limit = 100 * 1024 * 1024
    with Conn(http_app.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (limit + 1))
        assert c.read_response().status == 413
    with Conn(http_app.port) as c:
        c.send(b"POST /wait-body HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % limit)
        c.send(b"x" * 65536)
        assert c.closed_by_server(0.5) is False  # exactly at the limit: accepted, still reading


def test_body_limit_with_expect_100_continue_answers_413_instead_of_100(
    small: RunningServer,
) -> None:
    with Conn(small.port) as c:
        c.send(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        resp = c.read_response()
        assert resp.status == 413  # the first answer: no 100 Continue before it
        assert c.closed_by_server(3)


def test_body_limit_chunked_after_the_response_started_closes(small: RunningServer) -> None:
    """Over the limit once the app has answered: nothing more can be said, so the connection
    closes, and the app's receive gets http.disconnect."""
    with Conn(small.port) as c:
        c.send(
            b"POST /answer-then-read?tag=lim-late HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        raw = b""
        while b"started" not in raw:
            assert c._fill(), raw
            raw = c.buf
        c.send(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
        c.send(b"1\r\nx\r\n")
        rest = c.read_all(3)
        assert c.eof
        assert b"HTTP/1.1 413" not in raw + rest
    (event,) = wait_events(small, "lim-late", "body-wait")
    assert event["message"] == "http.disconnect"


# -- header read timeout (slowloris) --------------------------------------------------------


@pytest.fixture(scope="module")
def fast_timeouts() -> Iterator[RunningServer]:
    with module_server(
        "http_app:app", "--timeout-request-header", "1", "--timeout-keep-alive", "1.5"
    ) as srv:
        yield srv


def test_slowloris_is_cut_at_the_deadline(fast_timeouts: RunningServer) -> None:
    """1 byte every 0.2 s: the deadline counts from the first byte and is not reset per byte."""
    request = get("/", extra="X-Slow: " + "s" * 40 + "\r\n")
    with socket.create_connection(("127.0.0.1", fast_timeouts.port), timeout=5) as sock:
        sock.settimeout(0.01)
        t0 = time.monotonic()
        received = b""
        closed_at = None
        for i in range(len(request)):
            if time.monotonic() - t0 > 5:
                break
            try:
                sock.sendall(request[i : i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.monotonic() - t0
                break
            end = time.monotonic() + 0.2
            while time.monotonic() < end:
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    closed_at = time.monotonic() - t0
                    break
                received += chunk
            if closed_at is not None:
                break
    assert closed_at is not None, "the trickling client was never cut off"
    # Deadline 1 s (ticks every 0.25 s): cut between 1 s and ~1.6 s, well before the request
    # (about 90 bytes = 18 s at this pace) could complete.
    assert 0.9 <= closed_at <= 2.0, closed_at
    assert statuses(received) in ([408], [])


def test_header_deadline_starts_at_first_byte_not_at_accept(fast_timeouts: RunningServer) -> None:
    """An idle connection is governed by keep-alive (1.5 s), not by the header deadline (1 s)."""
    with Conn(fast_timeouts.port) as c:
        time.sleep(1.2)
        resp = c.request(get("/late"))
    assert resp.body == b"GET /late"


def test_slow_but_complete_head_within_deadline(fast_timeouts: RunningServer) -> None:
    request = get("/ok")
    with Conn(fast_timeouts.port) as c:
        for piece in (request[:10], request[10:20], request[20:]):
            c.send(piece)
            time.sleep(0.2)
        assert c.read_response().body == b"GET /ok"


def test_header_deadline_applies_to_each_request(fast_timeouts: RunningServer) -> None:
    with Conn(fast_timeouts.port) as c:
        assert c.request(get("/a")).status == 200
        c.send(b"GET /b HTTP/1.1\r\n")
        t0 = time.monotonic()
        raw = c.read_all(3)
        elapsed = time.monotonic() - t0
    assert statuses(raw) == [408]
    assert 0.9 <= elapsed <= 2.0


def test_header_deadline_of_a_request_begun_in_the_previous_read(
    fast_timeouts: RunningServer,
) -> None:
    """A complete request and the start of the next in one read: the next one's header
    deadline (1 s) runs from that read, not from a later one, and it ends in 408 rather than
    in a silent keep-alive close (1.5 s)."""
    with Conn(fast_timeouts.port) as c:
        c.send(get("/a") + b"GET /b HT")
        t0 = time.monotonic()
        raw = c.read_all(3)
        elapsed = time.monotonic() - t0
    assert statuses(raw) == [200, 408]
    assert 0.9 <= elapsed <= 1.45


def test_header_deadline_waits_while_queued_requests_hold_reading_back(
    fast_timeouts: RunningServer,
) -> None:
    """Pipelined requests that take longer than the header deadline to answer: the head that
    began behind them is not the client's delay, so it must not end in 408."""
    with Conn(fast_timeouts.port, timeout=10) as c:
        c.send(
            b"".join(get(f"/slow?delay=0.1&n={i}") for i in range(20)) + b"GET /last HTTP/1.1\r\nHo"
        )
        time.sleep(0.05)
        c.send(b"st: x\r\n\r\n")
        responses = [c.read_response() for _ in range(21)]
    assert [r.status for r in responses] == [200] * 21
    assert responses[-1].body == b"GET /last"


def test_keep_alive_timeout_closes_idle_connection(fast_timeouts: RunningServer) -> None:
    with Conn(fast_timeouts.port) as c:
        assert c.request(get("/")).status == 200
        t0 = time.monotonic()
        assert c.closed_by_server(4)
        elapsed = time.monotonic() - t0
    assert 1.3 <= elapsed <= 2.5, elapsed


def test_keep_alive_timeout_does_not_cut_a_slow_response(fast_timeouts: RunningServer) -> None:
    with Conn(fast_timeouts.port) as c:
        resp = c.request(get("/slow?delay=2.2&id=x"))
        assert resp.body == b"slow x"
        # And the connection is still good afterwards.
        assert c.request(get("/after")).body == b"GET /after"


def test_keep_alive_timeout_does_not_cut_a_slow_upload(fast_timeouts: RunningServer) -> None:
    with Conn(fast_timeouts.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        for _ in range(10):
            c.send(b"x")
            time.sleep(0.25)
        assert c.read_response().body == b"x" * 10


def test_default_keep_alive_is_5s(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        assert c.request(get("/")).status == 200
        time.sleep(3.5)
        assert c.request(get("/again")).status == 200
        t0 = time.monotonic()
        assert c.closed_by_server(8)
    assert 4 <= time.monotonic() - t0 <= 7


# -- concurrency and request-count limits -----------------------------------------------------


def test_limit_concurrency_answers_503(serve) -> None:
    srv = serve("http_app:app", "--limit-concurrency", "2")
    results: list[int] = []

    def slow() -> None:
        with Conn(srv.port) as c:
            results.append(c.request(get("/slow?delay=1")).status)

    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.4)
    with Conn(srv.port) as c:
        resp = c.request(get("/"))
        assert resp.status == 503
        assert resp.closes
    for t in threads:
        t.join(5)
    assert sorted(results) == [200, 200]
    # Capacity is back once they are done.
    with Conn(srv.port) as c:
        assert c.request(get("/")).status == 200


def test_limit_max_requests_stops_the_server(serve) -> None:
    srv = serve("http_app:app", "--limit-max-requests", "3")
    with Conn(srv.port) as c:
        for i in range(3):
            assert c.request(get(f"/{i}")).status == 200
    srv.proc.wait(10)
    assert srv.proc.returncode == 0
    assert srv.wait_for_log("Maximum request limit")


def test_limits_do_not_kill_the_server(small: RunningServer) -> None:
    for data in (get("/" + "a" * 500), get("/", extra="X: " + "v" * 5000 + "\r\n")):
        exchange(small.port, data, timeout=0.5)
    with Conn(small.port) as c:
        assert c.request(get("/alive")).body == b"GET /alive"


def test_server_alive(http_app: RunningServer) -> None:
    assert_alive(http_app)


def test_keep_alive_zero_closes_after_each_response(serve) -> None:
    http_app = serve("basic:hello", "--timeout-keep-alive", "0")
    data = raw_request(http_app.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close\r\n" in data.lower()
