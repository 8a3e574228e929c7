"""Malformed and ambiguous requests: each gets a clear 4xx/5xx, the connection closes, and no
second request hidden behind it is ever answered (feature-matrix §1.2 and §3).

Every case appends a valid ``GET /smuggled`` after the bad bytes: if the server ever answers it,
a request was smuggled.
"""

from __future__ import annotations

import time

import pytest

from tests.support.http_client import Conn, assert_alive, count_responses, get, statuses
from tests.support.servers import RunningServer

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def exchange(http_app: RunningServer, data: bytes, timeout: float = 2.0) -> tuple[bytes, bool]:
    """Send ``data``; return everything read and whether the server closed the connection."""
    with Conn(http_app.port) as c:
        c.send(data)
        raw = c.read_all(timeout)
        return raw, c.eof


def H(extra: str) -> bytes:
    return f"POST /echo HTTP/1.1\r\nHost: x\r\n{extra}".encode()


MALFORMED: dict[str, tuple[bytes, int]] = {
    # CL/TE conflicts and Content-Length tricks
    "cl-and-te": (H("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n") + b"0\r\n\r\n", 400),
    "te-and-cl": (H("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n") + b"0\r\n\r\n", 400),
    "duplicate-cl": (H("Content-Length: 3\r\nContent-Length: 4\r\n\r\n") + b"abcd", 400),
    "cl-list": (H("Content-Length: 3, 4\r\n\r\n") + b"abcd", 400),
    "cl-plus": (H("Content-Length: +3\r\n\r\n") + b"abc", 400),
    "cl-minus": (H("Content-Length: -3\r\n\r\n") + b"abc", 400),
    "cl-hex": (H("Content-Length: 0x3\r\n\r\n") + b"abc", 400),
    "cl-empty": (H("Content-Length: \r\n\r\n"), 400),
    "cl-letters": (H("Content-Length: 3a\r\n\r\n") + b"abc", 400),
    "cl-overflow": (H("Content-Length: 99999999999999999999999\r\n\r\n"), 400),
    "cl-space-before-colon": (H("Content-Length : 3\r\n\r\n") + b"abc", 400),
    # Transfer-Encoding tricks
    "te-chunked-twice": (H("Transfer-Encoding: chunked, chunked\r\n\r\n") + b"0\r\n\r\n", 400),
    "te-not-final-chunked": (H("Transfer-Encoding: chunked, gzip\r\n\r\n") + b"0\r\n\r\n", 400),
    "te-identity": (H("Transfer-Encoding: identity\r\n\r\n") + b"abc", 400),
    "te-garbage": (H("Transfer-Encoding: xchunked\r\n\r\n") + b"0\r\n\r\n", 400),
    "te-space-before-colon": (H("Transfer-Encoding : chunked\r\n\r\n") + b"0\r\n\r\n", 400),
    "te-two-chunked-fields": (
        H("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n") + b"0\r\n\r\n",
        400,
    ),
    "te-http10": (
        b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    "te-obs-fold": (H("Transfer-Encoding:\r\n chunked\r\n\r\n") + b"0\r\n\r\n", 400),
    "te-vertical-tab": (H("Transfer-Encoding:\x0bchunked\r\n\r\n") + b"0\r\n\r\n", 400),
    "te-cr-prefix": (H("X: y\r\n\rTransfer-Encoding: chunked\r\n\r\n") + b"0\r\n\r\n", 400),
    # Unsupported (but well-formed) codings: 501 (RFC 9112 §6.1)
    "te-gzip-chunked": (H("Transfer-Encoding: gzip, chunked\r\n\r\n") + b"0\r\n\r\n", 501),
    "te-two-fields": (
        H("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n") + b"0\r\n\r\n",
        501,
    ),
    # Chunk framing (CVE-2025-43859 class and friends)
    "chunk-bad-terminator": (
        H("Transfer-Encoding: chunked\r\n\r\n") + b"3\r\nabcXX0\r\n\r\n",
        400,
    ),
    "chunk-missing-crlf": (H("Transfer-Encoding: chunked\r\n\r\n") + b"3\r\nabc0\r\n\r\n", 400),
    "chunk-lf-only": (H("Transfer-Encoding: chunked\r\n\r\n") + b"3\nabc\n0\n\n", 400),
    "chunk-size-negative": (
        H("Transfer-Encoding: chunked\r\n\r\n") + b"-3\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    "chunk-size-overflow": (
        H("Transfer-Encoding: chunked\r\n\r\n") + b"fffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    "chunk-size-space": (H("Transfer-Encoding: chunked\r\n\r\n") + b"3 \r\nabc\r\n0\r\n\r\n", 400),
    "chunk-size-0x": (H("Transfer-Encoding: chunked\r\n\r\n") + b"0x3\r\nabc\r\n0\r\n\r\n", 400),
    "chunk-ext-lf": (H("Transfer-Encoding: chunked\r\n\r\n") + b"3;a\nb\r\nabc\r\n0\r\n\r\n", 400),
    "chunk-ext-cr": (H("Transfer-Encoding: chunked\r\n\r\n") + b"3;a\rb\r\nabc\r\n0\r\n\r\n", 400),
    "trailer-space-before-colon": (
        H("Transfer-Encoding: chunked\r\n\r\n") + b"3\r\nabc\r\n0\r\nX : y\r\n\r\n",
        400,
    ),
    "trailer-obs-fold": (
        H("Transfer-Encoding: chunked\r\n\r\n") + b"3\r\nabc\r\n0\r\nX: y\r\n z\r\n\r\n",
        400,
    ),
    "trailer-bare-lf": (
        H("Transfer-Encoding: chunked\r\n\r\n") + b"3\r\nabc\r\n0\r\nX: y\n\r\n",
        400,
    ),
    # Header syntax
    "obs-fold": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
    "obs-fold-tab": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", 400),
    "bare-cr-in-value": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400),
    "bare-lf-line-ending": (b"GET / HTTP/1.1\nHost: x\n\n", 400),
    "bare-cr-line-ending": (b"GET / HTTP/1.1\rHost: x\r\r", 400),
    "space-before-colon": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n", 400),
    "tab-before-colon": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A\t: b\r\n\r\n", 400),
    "leading-space-name": (b"GET / HTTP/1.1\r\nHost: x\r\n X-A: b\r\n\r\n", 400),
    "no-colon": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A b\r\n\r\n", 400),
    "empty-name": (b"GET / HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n", 400),
    "nul-in-value": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    "ctl-in-value": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400),
    "del-in-value": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n", 400),
    "non-ascii-name": (b"GET / HTTP/1.1\r\nHost: x\r\nX\xc3\xa9: b\r\n\r\n", 400),
    "separator-in-name": (b"GET / HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n", 400),
    # Request line
    "invalid-method-char": (b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    # RFC 9110 §9.1: any token is a method (case-sensitive); one not implemented is a 501.
    "lowercase-method": (b"get / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    "unknown-method": (b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    "unknown-method-token-chars": (b"FOO-BAR! / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    "te-trailing-empty-element": (H("Transfer-Encoding: chunked,\r\n\r\n") + b"0\r\n\r\n", 400),
    "lowercase-http": (b"GET / http/1.1\r\nHost: x\r\n\r\n", 400),
    "two-digit-minor": (b"GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400),
    "garbage-version": (b"GET / HTTP/X.Y\r\nHost: x\r\n\r\n", 400),
    "tab-separator": (b"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "space-in-target": (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "ctl-in-target": (b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "nul-in-target": (b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "del-in-target": (b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "asterisk-get": (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "garbage-line": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
    "http2-preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    # Versions: RFC 9110 §6.2 / §15.6.6
    "http2-version": (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    "http3-version": (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    "http09-version": (b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505),
    # Host: RFC 9112 §3.2
    "no-host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "two-hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "two-hosts-http10": (b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "host-with-space": (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    "host-with-slash": (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    "host-with-userinfo": (b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400),
    "host-bad-port": (b"GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", 400),
    "host-comma": (b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400),
    "host-non-ascii": (b"GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", 400),
    # CONNECT cannot be served by an ASGI app; it must never skip a body into a new request.
    "connect-authority": (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        501,
    ),
    "connect-with-body": (
        b"CONNECT / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED),
        501,
    ),
    # A WebSocket handshake with a body: what follows the head would be frames.
    "websocket-upgrade-with-body": (
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Content-Length: %d\r\n\r\n" % len(SMUGGLED),
        400,
    ),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_request_is_refused_and_nothing_is_smuggled(
    http_app: RunningServer, name: str
) -> None:
    data, expected = MALFORMED[name]
    raw, closed = exchange(http_app, data + SMUGGLED)
    assert statuses(raw) == [expected], raw[:500]
    assert closed, "the connection must close after a refused request"
    assert b"/smuggled" not in raw
    # The error page is complete and parseable.
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    assert len(body) == length
    assert b"connection: close" in head.lower()


def test_server_still_serves_after_all_that(http_app: RunningServer) -> None:
    for data, _ in list(MALFORMED.values())[:10]:
        exchange(http_app, data, timeout=0.5)
    assert_alive(http_app)


def test_error_page_does_not_reflect_request_data(http_app: RunningServer) -> None:
    evil = "<script>alert(1)</script>"
    raw, _ = exchange(http_app, f"GET /{evil} HTTP/1.1\r\nHost: {evil}\r\n\r\n".encode())
    assert statuses(raw) == [400]
    assert b"script" not in raw
    raw, _ = exchange(http_app, f"GET /x HTTP/1.1\r\nHost: a\r\nHost: {evil}\r\n\r\n".encode())
    assert statuses(raw) == [400]
    assert b"script" not in raw


def test_valid_then_malformed_pipelined_answers_first_then_400(http_app: RunningServer) -> None:
    """A bad pipelined request must not cost the client the answer to the good one before it."""
    good = b"GET /slow?delay=0.3&id=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    bad = b"GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n"
    raw, closed = exchange(http_app, good + bad + SMUGGLED)
    assert statuses(raw) == [200, 400]
    assert b"slow 1" in raw
    assert b"/smuggled" not in raw
    assert closed


def test_bad_chunk_in_pipelined_request_after_slow_one(http_app: RunningServer) -> None:
    good = b"GET /slow?delay=0.3&id=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    bad = H("Transfer-Encoding: chunked\r\n\r\n") + b"3\r\nabcXX0\r\n\r\n"
    raw, closed = exchange(http_app, good + bad + SMUGGLED)
    assert statuses(raw) == [200, 400]
    assert closed


def test_bad_chunk_while_app_reads_body(http_app: RunningServer) -> None:
    """The app is already running when the body turns out malformed: 400, and it sees a
    disconnect rather than a truncated body."""
    with Conn(http_app.port) as c:
        c.send(H("Transfer-Encoding: chunked\r\n\r\n").replace(b"/echo", b"/wait-body?tag=bc"))
        c.send(b"3\r\nabc\r\n")
        time.sleep(0.2)
        c.send(b"3\r\nabcXX" + SMUGGLED)
        raw = c.read_all()
    assert statuses(raw) == [400]
    assert b"/smuggled" not in raw


def test_trailers_do_not_leak_into_the_next_request(http_app: RunningServer) -> None:
    req = (
        H("Transfer-Encoding: chunked\r\n\r\n") + b"3\r\nabc\r\n0\r\nX-Injected: evil\r\n\r\n"
        b"GET /scope HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    with Conn(http_app.port) as c:
        c.send(req)
        first = c.read_response()
        second = c.read_response()
    assert first.body == b"abc"
    names = [n for n, _ in second.json()["headers"]]
    assert names == ["host"]


def test_smuggling_via_connect_slash_is_impossible(http_app: RunningServer) -> None:
    req = b"CONNECT / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED)
    raw, _ = exchange(http_app, req + SMUGGLED)
    assert b"/smuggled" not in raw
    assert count_responses(raw) == 1


def test_many_tiny_chunks_are_linear(http_app: RunningServer) -> None:
    """100k one-byte chunks (aiohttp CVE-2025-69229 class): processed in bounded time."""
    n = 100_000
    body = b"1\r\nx\r\n" * n + b"0\r\n\r\n"
    with Conn(http_app.port, timeout=30) as c:
        t0 = time.monotonic()
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        resp = c.read_response()
        elapsed = time.monotonic() - t0
    assert resp.status == 200
    assert resp.body == b"x" * n
    assert elapsed < 10


def test_http2_prior_knowledge_is_refused_cleanly(http_app: RunningServer) -> None:
    raw, closed = exchange(http_app, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00" * 20)
    assert statuses(raw) == [505]
    assert closed


def test_tls_handshake_on_plain_port_is_refused(http_app: RunningServer) -> None:
    hello = bytes.fromhex("160301007a0100007603035f") + b"\x00" * 100
    raw, closed = exchange(http_app, hello)
    assert statuses(raw) == [400]
    assert closed


def test_h2c_upgrade_without_body_is_served_as_http11(http_app: RunningServer) -> None:
    """RFC 9110 §7.8: a server may ignore Upgrade; the request is then answered normally."""
    req = (
        b"GET /scope HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
    )
    with Conn(http_app.port) as c:
        c.send(req + get("/after"))
        first = c.read_response()
        second = c.read_response()
    assert first.status == 200
    assert first.json()["path"] == "/scope"
    assert second.body == b"GET /after"


def test_request_after_connection_close_is_ignored(http_app: RunningServer) -> None:
    """Bytes after a ``Connection: close`` request are never parsed as a request."""
    raw, closed = exchange(http_app, get("/first", extra="Connection: close\r\n") + SMUGGLED)
    assert statuses(raw) == [200]
    assert b"/smuggled" not in raw
    assert closed


UPGRADE_FIELDS = (
    "Connection: upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQ\r\n"
)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_ignored_upgrade_body_is_the_body_and_never_a_request(
    http_app: RunningServer, framing: str
) -> None:
    """RFC 9110 §7.8: an Upgrade we do not take (h2c; ``curl --http2`` on a POST) is ignored
    and the request served as HTTP/1.1, its body included. llhttp alone would end the message
    at the head; the body must reach the app whole and no byte of it may become a request."""
    if framing == "chunked":
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
        head = H(UPGRADE_FIELDS + "Transfer-Encoding: chunked\r\n\r\n")
    else:
        body = SMUGGLED
        head = H(UPGRADE_FIELDS + f"Content-Length: {len(SMUGGLED)}\r\n\r\n")
    with Conn(http_app.port) as c:
        c.send(head + body + get("/after"))
        first = c.read_response()
        second = c.read_response()
        assert c.read_all(0.5) == b""  # nothing else was answered
    assert first.status == 200
    assert first.body == SMUGGLED
    assert second.body == b"GET /after"


def test_ignored_upgrade_body_split_across_reads_and_connection_close(
    http_app: RunningServer,
) -> None:
    head = H(UPGRADE_FIELDS + "Connection: close\r\nContent-Length: 6\r\n\r\n")
    with Conn(http_app.port) as c:
        c.send(head + b"abc")
        time.sleep(0.2)
        c.send(b"def" + SMUGGLED)
        raw = c.read_all()
        assert c.eof
    assert statuses(raw) == [200]
    assert raw.endswith(b"\r\n\r\nabcdef")
    assert b"/smuggled" not in raw
