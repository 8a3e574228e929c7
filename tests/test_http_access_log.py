"""The access log: method, path, status, size and duration; control characters escaped."""

from __future__ import annotations

import re
import threading
import time

import pytest

from tests.support.http_client import Conn, get, post
from tests.support.servers import RunningServer

LINE = re.compile(
    r'INFO: +(?P<client>\S+) - "(?P<method>\S+) (?P<path>.*) HTTP/(?P<version>1\.[01])" '
    r"(?P<status>\d{3}) (?P<phrase>[A-Za-z' -]*?) ?(?P<size>\d+) (?P<ms>\d+(?:\.\d+)?)ms$"
)


def access_lines(http_app: RunningServer, needle: str, timeout: float = 3.0) -> list[re.Match]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in map(LINE.match, http_app.lines) if m and needle in m.group("path")]
        if found:
            return found
        time.sleep(0.02)
    return []


def test_access_log_fields(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.request(get("/log/fields?x=1"))
    (m,) = access_lines(http_app, "/log/fields")
    assert m.group("client").startswith("127.0.0.1:")
    assert m.group("method") == "GET"
    assert m.group("path") == "/log/fields?x=1"
    assert m.group("version") == "1.1"
    assert m.group("status") == "200"
    assert m.group("phrase") == "OK"
    assert m.group("size") == str(len(b"logged"))
    assert float(m.group("ms")) >= 0


def test_access_log_duration(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.request(get("/slow?delay=0.3&id=logdur"))
    (m,) = access_lines(http_app, "id=logdur")
    assert 250 <= float(m.group("ms")) < 2000


def test_access_log_size_of_streamed_response(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.request(get("/stream?n=4&size=100&tag=logsize"))
    (m,) = access_lines(http_app, "tag=logsize")
    assert m.group("size") == "400"


def test_access_log_errors_and_500(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.request(get("/raise?logerr=1"))
    (m,) = access_lines(http_app, "logerr=1")
    assert m.group("status") == "500"
    assert m.group("phrase") == "Internal Server Error"


def test_access_log_http10_and_post(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.send(b"POST /echo?log10=1 HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
        c.read_all()
    (m,) = access_lines(http_app, "log10=1")
    assert m.group("method") == "POST"
    assert m.group("version") == "1.0"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("/log/%1b[31mred%0a", "%1b[31mred%0a"),  # encoded: logged as received, still inert
        ('/log/quote"x', 'quote\\"x'),
        ("/log/back\\slash", "back\\\\slash"),
    ],
)
def test_access_log_is_not_injectable(http_app: RunningServer, raw: str, needle: str) -> None:
    with Conn(http_app.port) as c:
        c.request(get(raw))
    found = access_lines(http_app, needle)
    assert found, http_app.log[-2000:]
    assert "\x1b" not in http_app.log
    for m in found:
        assert "\n" not in m.group(0)


def test_access_log_escapes_client_from_proxy_headers(http_app: RunningServer) -> None:
    """The client address can come from X-Forwarded-For (any visible byte, even obs-text such
    as NEL): it must not forge log fields or lines either."""
    with Conn(http_app.port) as c:
        resp = c.request(
            b'GET /log/xff HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: evil" 200\x85INFO:\r\n\r\n'
        )
    assert resp.status == 200
    deadline = time.monotonic() + 3
    while "/log/xff" not in http_app.log and time.monotonic() < deadline:
        time.sleep(0.02)
    (line,) = [ln for ln in http_app.lines if "/log/xff" in ln]
    assert line.startswith('INFO:     evil\\" 200\\u0085INFO:0 - "GET /log/xff HTTP/1.1" 200')
    assert "\x85" not in http_app.log


def test_no_access_log_flag(serve) -> None:
    srv = serve("http_app:app", "--no-access-log")
    with Conn(srv.port) as c:
        c.request(get("/log/silent"))
        c.request(post("/echo", b"x"))
    time.sleep(0.3)
    assert "/log/silent" not in srv.log


def test_access_log_duration_of_a_fast_request_has_real_precision(http_app: RunningServer) -> None:
    """Microseconds show (three decimals under 1 ms), not uvloop's millisecond clock steps."""
    with Conn(http_app.port) as c:
        for i in range(5):
            c.request(get(f"/log/fast?n={i}"))
    found = access_lines(http_app, "/log/fast?n=4")
    assert found
    durations = [m.group("ms") for m in access_lines(http_app, "/log/fast")]
    assert len(durations) == 5
    for text in durations:
        assert float(text) > 0, durations  # never a rounded-down 0.0
        whole, _, decimals = text.partition(".")
        assert len(whole) + len(decimals) >= 3 or len(whole) >= 3, durations


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0.1834, "0.183ms"),
        (0.0004, "0.000ms"),
        (4.271, "4.27ms"),
        (52.14, "52.1ms"),
        (1503.4, "1503ms"),
    ],
)
def test_duration_format_keeps_three_significant_digits(ms: float, text: str) -> None:
    from krandog_asgi.http.cycle import format_duration

    assert format_duration(ms) == text


def test_status_text_has_the_reason_phrase() -> None:
    from krandog_asgi.http.cycle import status_text

    assert status_text(200) == "200 OK"
    assert status_text(404) == "404 Not Found"
    assert status_text(413) == "413 Content Too Large"  # RFC 9110's name
    assert status_text(299) == "299"  # no phrase for an unregistered code


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-worker", "two-workers"])
def test_every_line_of_a_burst_is_written_once_and_whole(serve, workers: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Under load the lines are written in batches (process.access_lines): none lost, none
    doubled, none cut or mixed with another, even with two workers writing to one pipe."""
    srv = serve("http_app:app", *workers)
    per_conn, conns = 150, 8

    def burst(c: int) -> None:
        with Conn(srv.port) as conn:
            for i in range(0, per_conn, 10):  # ten pipelined requests a write
                conn.send(b"".join(get(f"/log/burst?c={c}&i={i + k}") for k in range(10)))
                for _ in range(10):
                    assert conn.read_response().status == 200

    threads = [threading.Thread(target=burst, args=(c,)) for c in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    expected = {f"/log/burst?c={c}&i={i}" for c in range(conns) for i in range(per_conn)}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [line for line in srv.lines if "/log/burst" in line]
        if len(lines) >= len(expected):
            break
        time.sleep(0.05)
    paths = []
    for line in lines:
        m = LINE.fullmatch(line.rstrip("\n"))
        assert m is not None, f"a cut or mixed line: {line!r}"
        paths.append(m.group("path"))
    assert sorted(paths) == sorted(expected)  # each exactly once
