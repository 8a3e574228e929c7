"""HTTP/1.1 message framing and semantics over real sockets (RFC 9110 / RFC 9112).

Raw sockets everywhere framing matters; the response parser in ``http_helpers`` is strict, so
a stray byte or a wrong length fails the test.
"""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from tests.support.http_client import Conn, chunked, get, post
from tests.support.servers import RunningServer

# -- default headers ----------------------------------------------------------------------


def test_date_and_server_headers(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get("/"))
    assert resp.status == 200
    assert resp.header("server") == b"krandog-asgi"
    date = resp.header("date")
    assert date is not None
    parsed = email.utils.parsedate_to_datetime(date.decode())
    assert abs(parsed.timestamp() - time.time()) < 5
    assert date.endswith(b" GMT")  # IMF-fixdate, RFC 9110 §5.6.7
    assert len(resp.header_all("date")) == 1


def test_date_header_is_refreshed(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        first = c.request(get("/")).header("date")
        time.sleep(2.2)
        second = c.request(get("/")).header("date")
    assert first != second


def test_app_server_and_date_headers_replace_defaults(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get("/server-header"))
    assert resp.header_all("server") == [b"my-app"]
    assert resp.header_all("date") == [b"yesterday"]


def test_header_flags(serve) -> None:
    srv = serve(
        "http_app:app", "--no-server-header", "--no-date-header", "--header", "X-Extra: one two"
    )
    with Conn(srv.port) as c:
        resp = c.request(get("/"))
    assert resp.header("server") is None
    assert resp.header("date") is None
    assert resp.header("x-extra") == b"one two"
    # The extra header is on server-generated error responses too.
    with Conn(srv.port) as c:
        resp = c.request(b"GET / HTTP/1.1\r\n\r\n")
    assert resp.status == 400
    assert resp.header("x-extra") == b"one two"


# -- response framing ---------------------------------------------------------------------


def test_content_length_response(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get("/"))
    assert resp.header("content-length") == b"5"
    assert resp.body == b"GET /"
    assert resp.header("transfer-encoding") is None


def test_repeated_app_content_length_is_sent_once(http_app: RunningServer) -> None:
    """RFC 9110 §8.6: the same length given twice (even spelled differently) is one field on
    the wire; clients may refuse a response with two (the strict parser here does)."""
    with Conn(http_app.port) as c:
        resp = c.request(get("/headers?kind=ok-cl-twice"))
        assert resp.header_all("content-length") == [b"2"]
        assert resp.body == b"ok"
        assert c.request(get("/")).status == 200  # the framing held


def test_streaming_response_is_chunked_on_http11(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get("/stream?n=3&size=5"))
        assert resp.chunked
        assert resp.body == b"aaaaabbbbbccccc"
        assert resp.chunk_sizes == [5, 5, 5, 0]
        assert resp.header("content-length") is None
        # The connection stays usable.
        assert c.request(get("/again")).body == b"GET /again"


def test_streaming_response_is_close_delimited_on_http10(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.send(b"GET /stream?n=2&size=3 HTTP/1.0\r\n\r\n")
        raw = c.read_all()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding" not in head.lower()
    assert b"content-length" not in head.lower()
    assert b"connection: close" in head.lower()
    assert body == b"aaabbb"
    assert c.eof


def test_http10_keep_alive_honoured(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(b"GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert resp.body == b"GET /one"
        assert resp.header("connection") == b"keep-alive"
        resp = c.request(b"GET /two HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert resp.body == b"GET /two"
        resp = c.request(b"GET /three HTTP/1.0\r\n\r\n")
        assert resp.body == b"GET /three"
        assert c.closed_by_server()


def test_http10_without_keep_alive_closes(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(b"GET / HTTP/1.0\r\n\r\n")
        assert resp.status == 200
        assert resp.closes
        assert c.closed_by_server()


def test_http10_keep_alive_with_streaming_response_closes(http_app: RunningServer) -> None:
    """No Content-Length on 1.0 means a close-delimited body, whatever the client asked."""
    with Conn(http_app.port) as c:
        c.send(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        raw = c.read_all()
    assert b"connection: close" in raw.lower()
    assert raw.endswith(b"aaaaabbbbbccccc")
    assert c.eof


def test_http11_keep_alive_by_default(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        for i in range(20):
            resp = c.request(get(f"/k{i}"))
            assert resp.body == f"GET /k{i}".encode()
            assert not resp.closes


def test_connection_close_request_honoured(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get("/", extra="Connection: close\r\n"))
        assert resp.status == 200
        assert resp.closes
        assert c.closed_by_server()


def test_connection_close_token_in_list(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get("/", extra="Connection: foo, close\r\n"))
        assert resp.closes
        assert c.closed_by_server()


def test_app_connection_close_header(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get("/connection-close"))
        assert resp.body == b"bye"
        assert resp.header_all("connection") == [b"close"]
        assert c.closed_by_server()


def test_app_transfer_encoding_is_ignored(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get("/te-from-app"))
        assert resp.header("transfer-encoding") is None
        assert resp.header("content-length") == b"5"
        assert resp.body == b"hello"
        assert c.request(get("/after")).body == b"GET /after"


# -- HEAD, 204, 304 -----------------------------------------------------------------------


def test_head_sends_no_body_but_keeps_content_length(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(b"HEAD /abc HTTP/1.1\r\nHost: x\r\n\r\n", method="HEAD")
        assert resp.status == 200
        assert resp.header("content-length") == b"9"  # len("HEAD /abc")
        # A body would be parsed as the start of the next response here.
        assert c.request(get("/next")).body == b"GET /next"


def test_head_streaming_response_has_no_body_or_chunks(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(b"HEAD /head-stream HTTP/1.1\r\nHost: x\r\n\r\n", method="HEAD")
        assert resp.status == 200
        assert c.request(get("/next")).body == b"GET /next"


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(http_app: RunningServer, status: int) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get(f"/status/{status}?cl=0"))
        assert resp.status == status
        assert resp.header("transfer-encoding") is None
        assert c.request(get("/next")).body == b"GET /next"


def test_204_never_carries_content_length(http_app: RunningServer) -> None:
    """RFC 9110 §8.6: a server MUST NOT send Content-Length in a 204 response."""
    with Conn(http_app.port) as c:
        resp = c.request(get("/status/204"))
        assert resp.status == 204
        assert resp.header("content-length") is None
        assert c.request(get("/next")).body == b"GET /next"


def test_304_keeps_content_length_but_sends_no_body(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get("/status/304"))
        assert resp.status == 304
        assert c.request(get("/next")).body == b"GET /next"


@pytest.mark.parametrize("status", [200, 201, 404, 418, 500, 599, 299])
def test_status_codes_pass_through(http_app: RunningServer, status: int) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get(f"/status/{status}"))
    assert resp.status == status
    assert resp.body == b"body that must not be sent"


# -- request bodies -----------------------------------------------------------------------


def test_content_length_body(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(post("/echo", b"hello world"))
        assert resp.body == b"hello world"
        resp = c.request(post("/echo", b""))
        assert resp.body == b""


def test_chunked_body_is_decoded(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(chunked("/echo", [b"hello", b" ", b"world" * 100]))
        assert resp.body == b"hello world" + b"world" * 99
        assert c.request(get("/next")).body == b"GET /next"


def test_chunked_with_extensions_and_trailers(http_app: RunningServer) -> None:
    req = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    with Conn(http_app.port) as c:
        assert c.request(req).body == b"hello"
        assert c.request(get("/next")).body == b"GET /next"


def test_large_body_arrives_in_several_events(http_app: RunningServer) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    with Conn(http_app.port) as c:
        c.send(b"POST /messages HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 65536):
            c.send(body[i : i + 65536])
            time.sleep(0.002)
        data = c.read_response().json()
    assert data["total"] == len(body)
    assert len(data["messages"]) > 1
    assert all(m["more_body"] for m in data["messages"][:-1])
    assert data["messages"][-1]["more_body"] is False
    assert all(m["type"] == "http.request" for m in data["messages"])


def test_large_body_integrity(http_app: RunningServer) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB
    r = httpx.post(http_app.url + "/echo", content=body, timeout=10)
    assert r.content == body
    r = httpx.post(http_app.url + "/echo", content=iter([body[:1000], body[1000:]]), timeout=10)
    assert r.content == body


def test_get_without_body_gets_one_empty_request_event(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        data = c.request(get("/messages")).json()
    assert data["messages"] == [{"type": "http.request", "size": 0, "more_body": False}]


# -- Expect: 100-continue -----------------------------------------------------------------


def test_expect_100_continue_sent_when_app_reads(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.send(
            b"POST /expect?read=1&delay=0.3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        t0 = time.monotonic()
        interim = c.read_response()
        assert interim.status == 100
        # Only when the app first reads, not on arrival.
        assert time.monotonic() - t0 >= 0.2
        c.send(b"hello")
        final = c.read_response()
        assert final.status == 200
        assert final.body == b"read hello"
        assert c.request(get("/next")).body == b"GET /next"


def test_expect_100_continue_not_sent_when_app_answers_without_reading(
    http_app: RunningServer,
) -> None:
    with Conn(http_app.port) as c:
        c.send(
            b"POST /expect?read=0&delay=0.1&status=413 HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n"
        )
        resp = c.read_response()
        assert resp.status == 413
        assert resp.body == b"refused"
        # The body was never asked for: the connection cannot be reused safely.
        assert resp.closes
        assert c.closed_by_server()


def test_expect_100_continue_ignored_for_http10(http_app: RunningServer) -> None:
    """RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request MUST be ignored."""
    with Conn(http_app.port) as c:
        c.send(
            b"POST /expect?read=1&delay=0 HTTP/1.0\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        time.sleep(0.3)
        c.send(b"hello")
        data = c.read_all()
    assert not data.startswith(b"HTTP/1.1 100")
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b"read hello")


def test_unknown_expectation_gets_417(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get("/", extra="Expect: something-else\r\n"))
    assert resp.status == 417


def test_expect_100_continue_with_httpx(http_app: RunningServer) -> None:
    r = httpx.post(http_app.url + "/echo", content=b"x" * 1000, headers={"Expect": "100-continue"})
    assert r.status_code == 200
    assert r.content == b"x" * 1000


# -- request target -----------------------------------------------------------------------


def scope_of(http_app: RunningServer, request: bytes) -> dict:
    with Conn(http_app.port) as c:
        resp = c.request(request)
    assert resp.status == 200, resp
    return resp.json()  # type: ignore[no-any-return]


def test_absolute_form_target(http_app: RunningServer) -> None:
    scope = scope_of(http_app, get("http://example.com/scope?x=1"))
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == "/scope"
    assert scope["query_string"] == "x=1"


def test_absolute_form_authority_replaces_host(http_app: RunningServer) -> None:
    """RFC 9112 §3.2.2: with an absolute-form target the server MUST ignore Host and use the
    target's authority."""
    scope = scope_of(http_app, b"GET http://example.com:8080/scope HTTP/1.1\r\nHost: other\r\n\r\n")
    assert ["host", "example.com:8080"] in scope["headers"]
    assert ["host", "other"] not in scope["headers"]
    scope = scope_of(http_app, b"GET https://[::1]/scope?q HTTP/1.1\r\nHost: other\r\n\r\n")
    assert ["host", "[::1]"] in scope["headers"]
    assert scope["query_string"] == "q"


def test_absolute_form_http10_without_host(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.send(b"GET http://example.com/scope HTTP/1.0\r\n\r\n")
        raw = c.read_all()
    assert b'"headers": [["host", "example.com"]]' in raw


@pytest.mark.parametrize(
    "target", [b"http://user@example.com/", b"ftp://example.com/", b"example.com:80", b"http:/x"]
)
def test_bad_absolute_form_targets(http_app: RunningServer, target: bytes) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert resp.status == 400
        assert c.closed_by_server()


def test_options_asterisk(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.status == 200
    assert resp.body == b"OPTIONS *"


def test_asterisk_only_for_options(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(b"GET * HTTP/1.1\r\nHost: x\r\n\r\n")
        assert resp.status == 400
        assert c.closed_by_server()


def test_percent_decoding(http_app: RunningServer) -> None:
    scope = scope_of(http_app, get("/scope/%2Fx/caf%C3%A9%20y?q=%20a&b"))
    # %2F is decoded in path (ASGI: "percent-encoded sequences decoded") but kept in raw_path.
    assert scope["path"] == "/scope//x/café y"
    assert scope["raw_path"] == "/scope/%2Fx/caf%C3%A9%20y"
    assert scope["query_string"] == "q=%20a&b"


def test_invalid_utf8_in_path_does_not_break(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(get("/%ff%fe"))
        assert resp.status == 200
        assert c.request(get("/next")).body == b"GET /next"


def test_http12_is_answered_as_http11(http_app: RunningServer) -> None:
    """RFC 9110 §6.2: a higher minor version is served with the highest version we support."""
    scope = scope_of(http_app, b"GET /scope HTTP/1.2\r\nHost: x\r\n\r\n")
    assert scope["http_version"] == "1.1"


def test_header_whitespace_is_trimmed(http_app: RunningServer) -> None:
    scope = scope_of(http_app, b"GET /scope HTTP/1.1\r\nHost: x\r\nX-Pad: \t value  \t\r\n\r\n")
    assert ["x-pad", "value"] in scope["headers"]


def test_empty_header_value(http_app: RunningServer) -> None:
    scope = scope_of(http_app, b"GET /scope HTTP/1.1\r\nHost: x\r\nX-Empty:\r\n\r\n")
    assert ["x-empty", ""] in scope["headers"]


def test_leading_crlf_before_request_is_tolerated(http_app: RunningServer) -> None:
    """RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line."""
    with Conn(http_app.port) as c:
        assert c.request(b"\r\n" + get("/x")).body == b"GET /x"


def test_request_methods(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]:
            resp = c.request(
                f"{method} /m HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
            )
            assert resp.body == f"{method} /m".encode()


# -- review findings: HEAD on error paths, list syntax, methods ------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"HEAD /raise HTTP/1.1\r\nHost: x\r\n\r\n", 500),
        (b"HEAD /no-response HTTP/1.1\r\nHost: x\r\n\r\n", 500),
        (b"HEAD / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"HEAD /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ],
    ids=["app-raises", "app-no-response", "no-host", "uri-too-long"],
)
def test_error_answers_to_head_have_no_body(
    http_app: RunningServer, request_bytes: bytes, status: int
) -> None:
    """RFC 9110 §9.3.2: no content in a response to HEAD, the server's own errors included (a
    pipelining client would read the body as the next response)."""
    with Conn(http_app.port) as c:
        c.send(request_bytes)
        resp = c.read_response("HEAD")
        assert resp.status == status
        assert resp.header("content-length") is not None
        assert c.read_all(1.0) == b""  # no body bytes, then the close


def test_unknown_method_gets_501_and_the_server_keeps_serving(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        resp = c.request(b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.status == 501
    assert resp.closes
    with Conn(http_app.port) as c:
        assert c.request(get("/")).status == 200


def test_empty_elements_of_transfer_encoding_are_ignored(http_app: RunningServer) -> None:
    """RFC 9110 §5.6.1: a recipient MUST ignore empty list elements: ``, chunked`` is chunked."""
    body = b"3\r\nabc\r\n0\r\n\r\n"
    with Conn(http_app.port) as c:
        resp = c.request(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , chunked\r\n\r\n" + body
        )
        assert resp.status == 200
        assert resp.body == b"abc"
        assert c.request(get("/after")).body == b"GET /after"  # framing stayed in step


@pytest.mark.parametrize("value", [b"", b" ", b",", b"100-continue, "])
def test_empty_expect_members_are_ignored(http_app: RunningServer, value: bytes) -> None:
    """RFC 9110 §10.1.1: 417 only for a member other than 100-continue; an empty list has
    none."""
    with Conn(http_app.port) as c:
        resp = c.request(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect:%s\r\n\r\nabc" % value
        )
    assert resp.status == 200
    assert resp.body == b"abc"


def test_rfc9110_reason_phrases(http_app: RunningServer) -> None:
    with Conn(http_app.port) as c:
        c.send(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = c.read_all(2.0)
    assert raw.startswith(b"HTTP/1.1 414 URI Too Long\r\n")


@pytest.mark.parametrize("order", ["unknown-first", "unknown-last"])
def test_expect_lines_form_one_list(http_app: RunningServer, order: str) -> None:
    """RFC 9110 §5.3: several Expect lines are one list; an unknown member anywhere is 417."""
    lines = [b"Expect: 100-continue\r\n", b"Expect: foo\r\n"]
    if order == "unknown-first":
        lines.reverse()
    with Conn(http_app.port) as c:
        resp = c.request(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            + b"".join(lines)
            + b"\r\nabc"
        )
    assert resp.status == 417
