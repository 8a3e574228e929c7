"""The C accelerator's parser-free read of a bodyless head (``http._speedups.plain_request``) and
the connection's use of it (``HTTPProtocol.take_plain``).

``plain_request`` must give, for every head it takes, exactly the scope llhttp and the head
rules give (the same method, target, header list, key order), and the offset where the next
request starts; every head in any other form, or that needs a rule, limit or answer, must be
left to the parser (None). The fuzz checks (tests/support/fuzzing.check_http_stream) compare
whole connections with and without it; these tests name each kind of head it must leave alone,
and the connection states in which the parser, not this shortcut, must see the next byte.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
import pytest

from krandog_asgi import http_protocol
from krandog_asgi.http import request_head
from krandog_asgi.http.request_head import read_request_head_py
from tests.http.test_cycle import OK_HEAD, connect, ok_app, settle
from tests.http.test_request_head import context
from tests.support.fakes import FakeClockLoop, run_with_fake_clock

pytestmark = pytest.mark.skipif(
    request_head.plain_request is None, reason="the C accelerator is not built (no C compiler)"
)
GET = b"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"


class _Collect:
    """What HTTPProtocol's parser callbacks collect of one head."""

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value.rstrip()))

    def on_headers_complete(self) -> None:
        self.complete = True


def by_the_parser(head: bytes, conn: Any) -> Any:
    """The scope llhttp and the rules give ``head``, or "refused"/"incomplete"."""
    collect = _Collect()
    parser = httptools.HttpRequestParser(collect)
    parser.set_dangerous_leniencies(lenient_version=True, lenient_data_after_close=True)
    try:
        parser.feed_data(head)
    except httptools.HttpParserError:
        return "refused"
    if not collect.complete:
        return "incomplete"
    try:
        scope, _, _ = read_request_head_py(parser, collect.url, collect.headers, conn)
    except request_head.RequestError:
        return "refused"
    return scope


def plain(data: bytes, conn: Any = None, pos: int = 0) -> Any:
    conn = conn or context()
    constants = http_protocol._PLAIN_CONSTANTS
    return request_head.plain_request(data, pos, conn, constants)  # type: ignore[misc]


def warm(head: bytes, conn: Any) -> Any:
    """The parser's scope for ``head``: the rules see it first, as on a live connection (they
    fill the method and host caches the accelerator reads)."""
    return by_the_parser(head, conn)


def test_a_plain_get_gets_the_parsers_scope_key_for_key_and_its_end() -> None:
    conn = context()
    expected = warm(GET, conn)
    scope, end = plain(GET + b"GET / HTTP/1.1\r\n", conn)
    assert list(scope.items()) == list(expected.items())
    assert end == len(GET)


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"HEAD /x HTTP/1.1\r\nhost:example.com\r\n\r\n",
        b"GET /a/b?q=%20&r=/?x HTTP/1.1\r\nHOST: example.com\r\nX-Odd-NAME: v\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\nX-Blank: \t \r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Pad: \t a \t b \t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: Keep-Alive\r\n\r\n",
        b"GET //twice HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b'GET /"<>\\^`{|}?"<>\\^`{|}~ HTTP/1.1\r\nHost: example.com\r\n\r\n',
        b"DELETE /x HTTP/1.1\r\nHost: example.com\r\nCookie: a=b; c=d\r\n\r\n",
    ],
)
def test_heads_it_takes_get_exactly_the_parsers_scope(head: bytes) -> None:
    conn = context()
    expected = warm(head, conn)
    assert isinstance(expected, dict), expected
    taken = plain(head + b"rest", conn)
    assert taken is not None, head
    assert list(taken[0].items()) == list(expected.items())
    assert taken[1] == len(head)


HOST = b"Host: example.com\r\n"


@pytest.mark.parametrize(
    "head",
    [
        # framing, expectations, upgrades, proxies and connection options: the rules decide
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 0\r\n\r\n",
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"Expect: 100-continue\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"Upgrade: h2c\r\nConnection: upgrade\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X-Forwarded-For: 1.2.3.4\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"x-forwarded-proto: https\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"Connection: keep-alive, x\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"Proxy-Connection: keep-alive\r\n\r\n",
        # Host: none, two, or one the rules have not passed yet
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + HOST + b"\r\n",
        b"GET / HTTP/1.1\r\nHost: not-seen.example\r\n\r\n",
        # the request line: anything but one plain form
        b"get / HTTP/1.1\r\n" + HOST + b"\r\n",
        b"BREW / HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET  / HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET / HTTP/1.0\r\n" + HOST + b"\r\n",
        b"GET / HTTP/1.1 \r\n" + HOST + b"\r\n",
        b"GET * HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET http://example.com/ HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET /a#frag HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET /%7e HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET /\x7f HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET /\xe9 HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET / HTTP/1.1\n" + HOST + b"\r\n",
        b"\r\nGET / HTTP/1.1\r\n" + HOST + b"\r\n",
        # field lines: anything but "token: visible ASCII CRLF"
        b"GET / HTTP/1.1\r\n" + HOST + b"X : y\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X: y\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X: y\rz\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X: a\r\n\tb\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X: caf\xc3\xa9\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X: a\x0bb\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X(y): z\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b": z\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"\n",
    ],
)
def test_heads_that_need_the_parser_or_a_rule_are_left_to_them(head: bytes) -> None:
    conn = context()
    warm(b"GET / HTTP/1.1\r\n" + HOST + b"\r\n", conn)  # GET and the host are known
    warm(b"DELETE / HTTP/1.1\r\n" + HOST + b"\r\n", conn)
    assert plain(head + b"GET / HTTP/1.1\r\n" + HOST + b"\r\n", conn) is None


def test_an_incomplete_head_is_left_to_the_parser_at_every_cut() -> None:
    conn = context()
    warm(GET, conn)
    for cut in range(len(GET)):
        assert plain(GET[:cut], conn) is None, cut
    assert plain(GET, conn) is not None


def test_it_reads_from_pos_and_gives_the_end_in_the_whole_buffer() -> None:
    conn = context()
    warm(GET, conn)
    data = b"xyz" + GET + GET
    _, end = plain(data, conn, pos=3)
    assert end == 3 + len(GET)
    assert plain(data, conn, pos=end)[1] == len(data)
    assert plain(data, conn, pos=len(data)) is None
    with pytest.raises(ValueError):
        plain(data, conn, pos=len(data) + 1)


def test_with_root_path_the_rules_build_the_scope() -> None:
    conn = context(root_path="/mounted")
    warm(GET, conn)
    assert plain(GET, conn) is None


@pytest.mark.parametrize(
    ("option", "head"),
    [
        ("limit_request_line", b"GET /" + b"a" * 99 + b" HTTP/1.1\r\n" + HOST + b"\r\n"),
        ("limit_request_fields", b"GET / HTTP/1.1\r\n" + HOST + b"A: 1\r\nB: 2\r\n\r\n"),
        ("limit_request_headers", b"GET / HTTP/1.1\r\n" + HOST + b"X-Long: 123456789\r\n\r\n"),
    ],
)
def test_a_head_over_a_limit_is_left_to_the_connections_answer(option: str, head: bytes) -> None:
    """At the limit it is taken; one over, the parser path answers (414, 431)."""
    sizes = {
        "limit_request_line": 100,
        "limit_request_fields": 3,
        "limit_request_headers": len(b"/") + len(b"host") + len(b"example.com") + 4 + 19,
    }
    at_limit: dict[str, Any] = {option: sizes[option]}
    over: dict[str, Any] = {option: sizes[option] - 1}
    warm(head, context(**at_limit))
    assert plain(head, context(**at_limit)) is not None
    assert plain(head, context(**over)) is None


# -- the connection: when the parser must see the next byte ------------------------------------


def serve(*reads: bytes, app: Any = ok_app) -> tuple[bytes, int]:
    """What ``app``'s connection wrote for ``reads``, and how many heads the accelerator took."""
    taken = 0
    real = request_head.plain_request

    def counting(*args: Any) -> Any:
        nonlocal taken
        result = real(*args)  # type: ignore[misc]
        taken += result is not None
        return result

    async def main(loop: FakeClockLoop) -> bytes:
        protocol, transport = connect(app)
        for data in reads:
            protocol.data_received(data)
            await settle(loop)
        transport.close()
        await settle(loop)
        return transport.data

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(http_protocol, "plain_request", counting)
        return run_with_fake_clock(main), taken


SIMPLE = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
POST = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"


def test_plain_requests_of_a_read_are_taken_and_answered_in_order() -> None:
    serve(SIMPLE)  # the rules pass host "h" once
    written, taken = serve(SIMPLE * 3, SIMPLE)
    assert written == (OK_HEAD + b"ok") * 4
    assert taken == 4


def test_the_rest_of_a_read_after_a_head_it_does_not_take_goes_to_the_parser() -> None:
    serve(SIMPLE)
    written, taken = serve(SIMPLE + POST + SIMPLE)
    assert written == (OK_HEAD + b"ok") * 3
    assert taken == 1  # the POST and all after it in that read: the parser's


def test_a_head_the_parser_has_begun_is_never_read_again_from_the_next_read() -> None:
    """The parser holds "GET" of a head begun after the POST in the same read: the next read
    continues that head ("GETGET /x": a 400), though on its own it looks like a plain GET."""
    serve(SIMPLE)
    written, taken = serve(POST + b"GET", b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    assert written.startswith(OK_HEAD + b"ok" + b"HTTP/1.1 400 ")
    assert taken == 0


def test_what_follows_a_closing_request_is_left_to_the_parser_which_ignores_it() -> None:
    """The closing request's answer is still being made when the next read comes."""
    serve(SIMPLE)
    paths: list[str] = []

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        paths.append(scope["path"])
        for _ in range(30):  # past the first read's settle(): answered after the next read
            await asyncio.sleep(0)
        await ok_app(scope, receive, send)

    closing = b"GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    written, taken = serve(closing, SIMPLE, app=slow_app)
    assert written.count(b"HTTP/1.1 200 OK\r\n") == 1
    assert (paths, taken) == (["/c"], 0)


def test_only_crlf_between_requests_keeps_the_parser_at_the_boundary() -> None:
    serve(SIMPLE)
    written, taken = serve(SIMPLE, b"\r\n", SIMPLE)
    assert written == (OK_HEAD + b"ok") * 2
    assert taken == 2


def test_a_read_that_is_not_bytes_is_left_to_the_parser() -> None:
    conn = context()
    warm(GET, conn)
    assert plain(GET, conn) is not None
    assert plain(bytearray(GET), conn) is None  # type: ignore[arg-type]
    assert plain(memoryview(GET), conn) is None  # type: ignore[arg-type]


def test_wrong_argument_types_raise() -> None:
    conn, constants = context(), http_protocol._PLAIN_CONSTANTS
    fast: Any = request_head.plain_request
    with pytest.raises(TypeError):
        fast(GET, 0, conn)  # too few
    with pytest.raises(TypeError):
        fast(GET, "0", conn, constants)
    with pytest.raises(TypeError):
        fast(GET, 0, conn, constants[:4])  # without the common names
    with pytest.raises(TypeError):
        fast(GET, 0, conn, (*constants[:4], []))
    with pytest.raises(ValueError):
        fast(GET, -1, conn, constants)
